"""The `canary-tui` command, by command family: `live` (demo, run, serve, attach, ls),
`headless` (the loop for pipelines), `watch`, `audit` and `records` (replay, report,
recordings); `common` holds what they share.

Every failure a person can cause (a bad config, an unknown scenario, an unwritable audit
path, a terminal too small) ends in one clear message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

from canary_tui.cli import audit, live, watch  # noqa: F401  (each registers its commands)
from canary_tui.cli.common import (
    CRASH_ENV,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PROMOTED,
    EXIT_ROLLED_BACK,
    fail,
)
from canary_tui.cli.group import cli
from canary_tui.cli.headless import EventWriter, frame_events, run_headless
from canary_tui.cli.help import HELP, document
from canary_tui.cli.records import COMMANDS as RECORDING_COMMANDS

for _command in RECORDING_COMMANDS:
    cli.add_command(_command)
document(cli)


def main() -> None:
    try:
        cli.main(prog_name="canary-tui", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = [
    "CRASH_ENV",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_PROMOTED",
    "EXIT_ROLLED_BACK",
    "HELP",
    "EventWriter",
    "cli",
    "fail",
    "frame_events",
    "main",
    "run_headless",
]
