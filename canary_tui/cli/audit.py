"""`canary-tui audit verify` and `audit tail`: check and read audit logs."""

from __future__ import annotations

from pathlib import Path

import click

from canary_tui.cli.group import cli


@cli.group()
def audit() -> None:
    """Check and read audit logs."""


@audit.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--against",
    metavar="RECORDING|SEQ:HASH",
    default=None,
    help="Also check the log's tail against an anchor of its head kept outside it: a session "
    "recording (which anchors the head as the log grows), or SEQ:SHA256 as kept in an "
    "annotation or Event. Records cut off the end of the log are reported.",
)
@click.option(
    "--legacy", is_flag=True, help="Accept a log with no header record (written by old versions)."
)
def audit_verify(file: Path, against: str | None, legacy: bool) -> None:
    """Check the hash chain; name the first broken record.

    Exit 0 if intact; 1 if a record is broken, the file is empty or has no header record, or
    (with --against) records are missing from its tail; 2 if a file cannot be read.
    """
    from canary_tui.cli.records import audit_verify_command

    audit_verify_command(file, against, legacy)


@audit.command("tail")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-n",
    "--lines",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many of the last records to print (0: none, e.g. with -f).",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing records as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON records.")
def audit_tail(file: Path, lines: int, follow: bool, as_json: bool) -> None:
    """Print the last records of an audit log, one line each."""
    from canary_tui.cli.audit_tail import tail_command

    tail_command(file, lines, follow, as_json)
