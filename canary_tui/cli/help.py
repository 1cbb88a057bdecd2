"""Every command's summary for the command list and its one-line example (its --help)."""

from __future__ import annotations

import click

#: Per command (its path under `canary-tui`): the summary for the command list (short enough
#: for 80 columns, never cut mid-phrase) and one example line, shown under its --help.
HELP: dict[str, tuple[str, str]] = {
    "demo": ("The dashboard on a simulated canary (no cluster needed)",
             "canary-tui demo --scenario error-regression --speed 5"),
    "run": ("Run the loop for a config file, dashboard or headless",
            "canary-tui run --config canary.yaml --headless"),
    "serve": ("Run the loop as a session daemon (--config or --demo)",
              "nohup canary-tui serve --config canary.yaml &"),
    "attach": ("Open a dashboard on a running session",
               "canary-tui attach checkout"),
    "ls": ("List live sessions and who is attached",
           "canary-tui ls --json"),
    "watch": ("Watch a canary already in the cluster (KIND/NAME)",
              "canary-tui watch rollout/checkout -n shop --prometheus http://prom:9090"),
    "audit": ("Check (verify) and read (tail) audit logs",
              "canary-tui audit verify ~/.local/state/canary-tui/audit/checkout.jsonl"),
    "audit verify": ("Check an audit log's hash chain",
                     "canary-tui audit verify ~/.local/state/canary-tui/audit/checkout.jsonl"),
    "audit tail": ("Print the last records of an audit log",
                   "canary-tui audit tail -n 50 -f checkout.jsonl"),
    "replay": ("Replay a recorded session in the dashboard",
               "canary-tui replay --speed 10 recordings/auto-rollback.ctrec"),
    "report": ("A postmortem timeline (Markdown or HTML) of a recording",
               "canary-tui report --html -o report.html recordings/auto-rollback.ctrec"),
    "recordings": ("List recorded sessions",
                   "canary-tui recordings"),
}  # fmt: skip


def document(group: click.Group, prefix: str = "") -> None:
    """Give every command its summary and its example (from HELP)."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        summary, example = HELP.get(path, (None, None))
        if summary is not None:
            command.short_help = summary
        if example is not None:
            command.epilog = f"\b\nExample:\n  {example}"
        if isinstance(command, click.Group):
            document(command, f"{path} ")
