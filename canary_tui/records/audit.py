"""The audit log: append-only JSON Lines with a SHA-256 hash chain, fsynced on every record.

Each record carries `seq` (1, 2, ...), `prev` (the previous record's hash, or the genesis
value) and `hash` (SHA-256 of the record's canonical JSON without `hash`). Editing,
removing or reordering any record breaks the chain at that record, and `verify` names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


class AuditError(Exception):
    """The audit log cannot be opened, read or written; the message says why and where."""


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    bad_line: int | None = None
    reason: str = ""


def verify(path: Path) -> VerifyResult:
    """Check the whole chain; name the first broken record (1-based line number)."""
    prev, expected_seq, count = GENESIS, 1, 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                return VerifyResult(False, count, lineno, "empty line")
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return VerifyResult(False, count, lineno, "not valid JSON (truncated or edited)")
            if not isinstance(rec, dict):
                return VerifyResult(False, count, lineno, "not a JSON object")
            if rec.get("seq") != expected_seq:
                return VerifyResult(
                    False,
                    count,
                    lineno,
                    f"sequence {rec.get('seq')!r} where {expected_seq} was expected "
                    "(a record was removed, inserted or reordered)",
                )
            if rec.get("prev") != prev:
                return VerifyResult(False, count, lineno, "does not chain to the record before it")
            if rec.get("hash") != record_hash(rec):
                return VerifyResult(
                    False, count, lineno, "content does not match its hash (edited)"
                )
            prev, expected_seq, count = rec["hash"], expected_seq + 1, count + 1
    return VerifyResult(True, count)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole record in the file (a torn last line is skipped)."""
    try:
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(rec, dict):
                    yield rec
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc


class AuditLog:
    """An open audit log, appended to with `append`, continuing an existing chain."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        self._prev, self._seq = GENESIS, 0
        if path.exists():
            result = verify(path)
            if not result.ok and not self._recover_torn_tail(result):
                raise AuditError(
                    f"audit log {path} is broken at line {result.bad_line}: {result.reason}; "
                    "refusing to append to it (move it aside, or check it with "
                    f"`canary-tui audit verify {path}`)"
                )
            for rec in read_records(path):
                self._prev, self._seq = rec["hash"], rec["seq"]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise AuditError(
                f"cannot open audit log {path} for writing: {exc.strerror or exc}"
            ) from exc

    def _recover_torn_tail(self, result: VerifyResult) -> bool:
        """A crash mid-write leaves a torn last line with no newline: drop just that line."""
        data = self.path.read_bytes()
        if result.reason.startswith("not valid JSON") and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            if result.bad_line == data[:cut].count(b"\n") + 1:
                with self.path.open("r+b") as handle:
                    handle.truncate(cut)
                return verify(self.path).ok
        return False

    def head(self) -> tuple[int, str]:
        """The chain's head: the last record's sequence number and hash."""
        with self._lock:
            return self._seq, self._prev

    def head_text(self) -> str:
        """The head as people and anchors quote it: '#41 9f86d081884c'."""
        seq, digest = self.head()
        return f"#{seq} {digest[:12]}"

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record durably (flushed and fsynced) and return it with seq and hashes."""
        with self._lock:
            rec = dict(record)
            rec["seq"] = self._seq + 1
            rec["prev"] = self._prev
            rec["hash"] = record_hash(rec)
            line = canonical(rec) + b"\n"
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                raise AuditError(f"cannot write audit log {self.path}: {exc}") from exc
            self._seq, self._prev = rec["seq"], rec["hash"]
            return rec

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def last_session_state(path: Path) -> dict[str, Any] | None:
    """The canary state the log last recorded, if the last session did not stop cleanly.

    A daemon killed mid-session leaves no `stop` record: its successor resumes from this
    state (and the router's read-back). After a clean stop, a new session starts fresh.
    """
    if not path.exists():
        return None
    last: dict[str, Any] | None = None
    for rec in read_records(path):
        last = rec
    if last is None or (last.get("type") == "session" and last.get("event") == "stop"):
        return None
    state = last.get("state")
    return state if isinstance(state, dict) else None


def describe(rec: Mapping[str, Any]) -> str:
    """One human line for a record, as `audit tail` and the activity pane show it."""
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(float(rec.get("time", 0)), UTC).strftime("%Y-%m-%d %H:%M:%S")
    actor = rec.get("actor") or {}
    who = actor.get("name", "?") if isinstance(actor, dict) else str(actor)
    if isinstance(actor, dict) and actor.get("ssh_client"):
        who += f"@{actor['ssh_client']}"
    kind = rec.get("type", "?")
    verb = str(rec.get("verb", "")).replace("_", " ")
    if kind == "intent":
        text = f"{who} asks: {verb}" + (f" ({rec['reason']})" if rec.get("reason") else "")
    elif kind == "result":
        outcome = rec.get("outcome", "?")
        text = f"{who}: {verb} {outcome}" + (f": {rec['message']}" if rec.get("message") else "")
    elif kind == "refused":
        text = f"{who}: {verb} refused: {rec.get('message', '')}"
    else:
        text = f"{kind}: {rec.get('message', '')}"
    return f"{when} #{rec.get('seq', '?')} {text}"
