"""`canary-tui audit tail`: the last records of an audit log, one line each, and new ones as they
arrive (-f), from any file a person may point it at.

A file that is not an audit log (binary, another text or JSON, a line longer than any record)
gets one clear message and exit code 2, never silence or a traceback; a log with a few damaged
lines prints what it can and warns. Reading is bounded: no line is read past MAX_LINE bytes, and
a FIFO with no writer reads as empty instead of waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import click

#: No audit record comes near this (they are a few hundred bytes); a longer line is not one.
MAX_LINE = 1 << 20
FOLLOW_POLL_S = 0.5
#: Lines read before a file with no record at all is called "not an audit log".
GIVE_UP_AFTER = 10


class NotAnAuditLog(Exception):
    """The file cannot be read as an audit log; the message says why and where."""


def is_record(value: Any) -> bool:
    """The shape every audit record has: an object with a whole `seq`, a `type` and a `hash`."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("seq"), int)
        and not isinstance(value.get("seq"), bool)
        and isinstance(value.get("type"), str)
        and isinstance(value.get("hash"), str)
    )


@dataclass
class LogReader:
    """Reads whole records from `path`, from where it stopped last time (for -f)."""

    path: Path
    offset: int = 0
    line: int = 0
    records: int = 0
    bad: list[int] = field(default_factory=list)

    def _open(self) -> BinaryIO:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise NotAnAuditLog(
                f"cannot read audit log {self.path}: {exc.strerror or exc}"
            ) from None
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            os.close(fd)
            raise NotAnAuditLog(f"cannot read audit log {self.path}: Is a directory")
        with contextlib.suppress(OSError):  # block again: a pipe's writer may be slow
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")

    def read(self) -> list[dict[str, Any]]:
        """The whole records added since the last call. A last line without its newline (a
        write in progress, or torn by a crash) is left for the next call."""
        out: list[dict[str, Any]] = []
        with self._open() as handle:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                if os.fstat(handle.fileno()).st_size < self.offset:
                    raise NotAnAuditLog(
                        f"{self.path} became shorter than what was already read: it was"
                        " truncated or replaced"
                    )
                handle.seek(self.offset)
            while raw := handle.readline(MAX_LINE + 1):
                if not raw.endswith(b"\n"):
                    if len(raw) > MAX_LINE:
                        raise NotAnAuditLog(
                            f"{self.path}: line {self.line + 1} is longer than"
                            f" {MAX_LINE >> 20} MiB: this is not an audit log"
                        )
                    if not self.records:  # no record, and not even a whole line
                        self.bad.append(self.line + 1)
                    break  # a partial last line: being written, or torn by a crash
                self.offset += len(raw)
                self.line += 1
                try:
                    value = json.loads(raw)
                except (ValueError, RecursionError):
                    value = None
                if is_record(value):
                    out.append(value)
                    self.records += 1
                else:
                    self.bad.append(self.line)
                    if not self.records and len(self.bad) >= GIVE_UP_AFTER:
                        break
        if self.bad and not self.records:
            raise NotAnAuditLog(
                f"{self.path} is not an audit log: line {self.bad[0]} is not an audit record"
                " (a JSON object with seq, type and hash, one a line)"
            )
        return out


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"canary-tui: {message}", err=True)
    sys.exit(code)


def _show(rec: dict[str, Any], as_json: bool) -> None:
    from canary_tui.records.audit import describe

    if as_json:
        click.echo(json.dumps(rec, sort_keys=True))
        return
    try:
        text = describe(rec)
    except (ValueError, TypeError, OverflowError, OSError, AttributeError):
        text = (
            f"#{rec['seq']} {rec['type'][:40]}: (a record this version cannot describe;"
            " --json prints it)"
        )
    click.echo(text)


def tail_command(file: Path, lines: int, follow: bool, as_json: bool) -> None:
    """The body of `canary-tui audit tail`."""
    reader = LogReader(file)
    try:
        last = deque(reader.read(), maxlen=lines)
    except NotAnAuditLog as exc:
        _fail(str(exc))
    if reader.bad:
        shown = ", ".join(str(n) for n in reader.bad[:5]) + (", ..." if len(reader.bad) > 5 else "")
        click.echo(
            f"canary-tui: warning: {file}: {len(reader.bad)} line(s) are not audit records"
            f" (line {shown}); `canary-tui audit verify {file}` checks the whole chain",
            err=True,
        )
    if not reader.records and not follow:
        click.echo(f"canary-tui: {file}: no records yet", err=True)
    for rec in last:
        _show(rec, as_json)
    if not follow:
        return
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)
            for rec in reader.read():
                _show(rec, as_json)
    except NotAnAuditLog as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        return
