"""The `canary-tui` command group itself: its help, with the words the commands use."""

from __future__ import annotations

import click

from canary_tui import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="canary-tui")
def cli() -> None:
    """A terminal operations console for live canary deployments.

    Live canary-vs-baseline graphs, SLO gauges and verdicts; one key to step, pause,
    shadow, kill or promote; every action in a hash-chained audit log; and the automated
    rollback loop, which also runs headless.

    \b
    Words used here:
      canary    the new version, given a share of the traffic (its weight)
      baseline  the version it replaces, serving the rest
      judge     compares canary with baseline per metric, every tick: PASS,
                FAIL (auto-rollback kills the canary) or WAIT (not proven yet)
      shadow    mirror a copy of live requests to the canary (answers dropped)
      headless  no dashboard: JSON lines and an exit code, for pipelines
      session   the loop runs in a daemon; dashboards attach and may leave

    \b
    Start here:
      canary-tui demo             the dashboard on a simulated canary
      canary-tui COMMAND --help   every command has an example

    \b
    Environment:
      NO_COLOR                 start in the monochrome theme
      TERM, COLORTERM          a terminal without colour (dumb, vt100): the same
      LC_ALL, LC_CTYPE, LANG   not UTF-8: draw with ASCII only (as --ascii)
      SSH_CONNECTION           set: animations off
      CANARY_TUI_OUTPUT        raw: send Textual's output unchanged (default:
                               only the style changes)
    """
