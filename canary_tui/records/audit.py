"""The audit log: append-only JSON Lines with a SHA-256 hash chain, fsynced on every record.

Each record carries `seq` (1, 2, ...), `prev` (the previous record's hash, or the genesis
value) and `hash` (SHA-256 of the record's canonical JSON without `hash`). Editing,
removing or reordering any record breaks the chain at that record, and `verify` names it.

A new log starts with a `header` record (seq 0: format, tool, host), so an empty file or one
that is not an audit log is never "OK"; the records after it are numbered 1, 2, ... as before.
The chain cannot see its own tail cut off, so its head (`AuditHead`: the last seq and hash)
is anchored outside the file as it grows (the session recording keeps it; `AuditLog.head()`
and `add_listener` give it to anything else, such as an annotation on the router's object),
and `verify_against` checks a log against those anchors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
#: Where the chain's head goes on the router's object (value: `str(AuditLog.head())`, i.e.
#: "SEQ:SHA256", which `canary-tui audit verify --against` reads back).
HEAD_ANNOTATION = "canary-tui/audit-head"
#: The audit log's own format (in its header record); logs written before it have no header.
AUDIT_FORMAT = 1
_HASH = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger("canary_tui.audit")


class AuditError(Exception):
    """The audit log cannot be opened, read or written; the message says why and where."""


def canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditHead:
    """The head of a chain: the last record's seq and hash (seq 0 and GENESIS when empty).

    `str(head)` is `"<seq>:<hash>"`, the form for an annotation or an Event, and what
    `AuditHead.parse` and `canary-tui audit verify --against` read back.
    """

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    def short(self) -> str:
        return f"seq {self.seq} with hash {self.hash[:16]}…"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        """`"45:<64 hex>"` -> AuditHead; ValueError with a readable message otherwise."""
        seq_text, sep, digest = text.strip().partition(":")
        if not sep or not seq_text.isdigit() or not _HASH.fullmatch(digest.lower()):
            raise ValueError(f"{text!r} is not an audit head (expected SEQ:SHA256, e.g. 45:3fa9…)")
        return cls(int(seq_text), digest.lower())

    @classmethod
    def from_json(cls, value: Any) -> AuditHead | None:
        """A head stored as `[seq, hash]` or `{"seq": .., "hash": ..}`; None if malformed."""
        if isinstance(value, Mapping):
            value = [value.get("seq"), value.get("hash")]
        if (
            isinstance(value, list | tuple)
            and len(value) == 2
            and type(value[0]) is int
            and value[0] >= 0
            and isinstance(value[1], str)
            and _HASH.fullmatch(value[1])
        ):
            return cls(value[0], value[1])
        return None


EMPTY_HEAD = AuditHead(0, GENESIS)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `verify` found. `problem` is "" when ok, else "broken", "empty" or "headerless"."""

    ok: bool
    records: int
    bad_line: int | None = None
    reason: str = ""
    problem: str = ""
    head: AuditHead = EMPTY_HEAD
    header: dict[str, Any] | None = None
    hashes: dict[int, str] = field(default_factory=dict, repr=False)


MAX_LINE = 1 << 20  # no record is near 1 MiB: a longer line is not an audit log (/dev/zero)


def require_regular_file(path: Path) -> None:
    """An audit log is a regular file: a FIFO would hang a reader, a device never ends."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreachable: whoever opens it says so, in its own words
    if stat.S_ISDIR(mode):
        raise AuditError(f"cannot read audit log {path}: it is a directory")
    if not stat.S_ISREG(mode):
        raise AuditError(f"audit log {path} is not a regular file (a FIFO or a device, say)")


def _check_chain(path: Path, keep: Iterable[int] = ()) -> VerifyResult:
    """The chain alone: every record well formed and linked to the one before it.
    The hashes of the records whose seq is in `keep` are returned in `hashes`."""
    prev, expected_seq, count = GENESIS, 1, 0  # count: records after the header
    wanted = set(keep)
    hashes: dict[int, str] = {}
    header: dict[str, Any] | None = None
    require_regular_file(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc

    def broken(lineno: int, reason: str) -> VerifyResult:
        head = AuditHead(expected_seq - 1, prev)
        return VerifyResult(False, count, lineno, reason, "broken", head, header, hashes)

    with handle:
        try:
            for lineno, raw in enumerate(iter(lambda: handle.readline(MAX_LINE + 1), b""),
                                         start=1):  # fmt: skip
                if len(raw) > MAX_LINE:
                    return broken(lineno, f"a line longer than {MAX_LINE} bytes (not an audit log)")
                if not raw.strip():
                    return broken(lineno, "empty line")
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    return broken(lineno, "not valid JSON (truncated or edited)")
                if not isinstance(rec, dict):
                    return broken(lineno, "not a JSON object")
                is_header = lineno == 1 and rec.get("type") == "header" and rec.get("seq") == 0
                if is_header:
                    expected_seq = 0
                if rec.get("seq") != expected_seq:
                    return broken(
                        lineno,
                        f"sequence {rec.get('seq')!r} where {expected_seq} was expected "
                        "(a record was removed, inserted or reordered)",
                    )
                if rec.get("prev") != prev:
                    return broken(lineno, "does not chain to the record before it")
                if rec.get("hash") != record_hash(rec):
                    return broken(lineno, "content does not match its hash (edited)")
                if expected_seq in wanted:
                    hashes[expected_seq] = rec["hash"]
                if is_header:
                    header = rec
                else:
                    count += 1
                prev, expected_seq = rec["hash"], expected_seq + 1
        except OSError as exc:
            raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc
    head = AuditHead(expected_seq - 1, prev)
    return VerifyResult(True, count, head=head, header=header, hashes=hashes)


def verify(path: Path, *, legacy: bool = False, keep: Iterable[int] = ()) -> VerifyResult:
    """Check the whole chain; name the first broken record (1-based line number).

    An empty file is not OK, nor one that does not start with a header record (unless
    `legacy`: a log written before audit logs had headers)."""
    result = _check_chain(path, keep)
    if not result.ok:
        return result
    if result.records == 0 and result.header is None:
        return VerifyResult(
            False, 0, None, "the file is empty: no header and no records (an audit log always "
            "starts with its header record; this one was emptied, or never written)",
            "empty", result.head, None, result.hashes,
        )  # fmt: skip
    if result.header is None and not legacy:
        return VerifyResult(
            False, result.records, 1, "no header record: the chain is intact, but the log does "
            "not start as canary-tui starts its logs (a log written before audit logs had "
            "headers verifies with --legacy)",
            "headerless", result.head, None, result.hashes,
        )  # fmt: skip
    return result


@dataclass(frozen=True, slots=True)
class AnchorCheck:
    """A log checked against anchors of its head kept elsewhere (`verify_against`)."""

    ok: bool
    log_head: AuditHead
    anchor: AuditHead | None  # the newest anchor (the highest seq)
    anchors: int
    message: str


def verify_against(
    path: Path, anchors: Iterable[AuditHead], *, legacy: bool = False
) -> AnchorCheck:
    """Check the log's chain, then that every anchor is in it: a record with the anchor's seq
    and hash. An anchor past the log's end means records were cut off its tail; a different
    hash means the log was rewritten from that record on (or the anchors are another log's).
    Raises AuditError if the log cannot be read."""
    points = sorted({a for a in anchors if a.seq > 0}, key=lambda a: (a.seq, a.hash))
    newest = points[-1] if points else None
    result = verify(path, legacy=legacy, keep=[a.seq for a in points])
    if not result.ok and result.problem == "broken":
        return AnchorCheck(
            False, result.head, newest, len(points),
            f"BROKEN at record on line {result.bad_line}: {result.reason} "
            f"({result.records} records before it are intact)",
        )  # fmt: skip
    if newest is None:
        return AnchorCheck(
            False, result.head, None, 0,
            "no anchor to check against: the recording saw no audit record",
        )  # fmt: skip
    end = result.head
    if newest.seq > end.seq:
        lost = newest.seq - end.seq
        where = f"the log ends at seq {end.seq}"
        if end.seq == 0:
            where = "the log holds only its header" if result.header else "the log is empty"
        return AnchorCheck(
            False, end, newest, len(points),
            f"TAIL MISSING: {where} but the anchor saw {newest.short()} "
            f"(full hash {newest.hash}): at least {lost} record{'s' if lost != 1 else ''} "
            "were cut off the end of the log",
        )  # fmt: skip
    for anchor in points:
        found = result.hashes.get(anchor.seq)
        if found != anchor.hash:
            return AnchorCheck(
                False, end, newest, len(points),
                f"REWRITTEN: record seq {anchor.seq} has hash {str(found)[:16]}… but the anchor "
                f"saw {anchor.hash[:16]}…: the log was rewritten from there on (or the anchor "
                "belongs to another log)",
            )  # fmt: skip
    if not result.ok:  # empty or headerless, with every anchor present
        return AnchorCheck(False, end, newest, len(points), result.reason)
    return AnchorCheck(
        True, end, newest, len(points),
        f"OK, {result.records} records, chain intact, tail matches the anchor "
        f"({newest.short()}; {len(points)} anchor{'s' if len(points) != 1 else ''} checked)",
    )  # fmt: skip


def read_head(path: Path) -> AuditHead:
    """The head of the log at `path`: its last whole record's seq and hash (EMPTY_HEAD if it
    has none). Raises AuditError if the file cannot be read."""
    head = EMPTY_HEAD
    for rec in read_records(path):
        found = AuditHead.from_json([rec.get("seq"), rec.get("hash")])
        if found is not None:
            head = found
    return head


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every whole record in the file (a torn last line is skipped)."""
    try:
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    continue
                if isinstance(rec, dict):
                    yield rec
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from exc


Listener = Callable[[AuditHead], None]


class AuditLog:
    """An open audit log, appended to with `append`, continuing an existing chain.

    A new (or empty) file gets a header record first. `head()` is the chain's head after the
    last durable append; listeners added with `add_listener` are called with it after each
    append (in order, on the appending thread: they must not block)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        self._prev, self._seq = GENESIS, 0
        self._listeners: list[Listener] = []
        fresh = True  # no record yet: the header comes first
        require_regular_file(path)
        if path.exists():
            result = _check_chain(path)
            if not result.ok and not self._recover_torn_tail(result):
                raise AuditError(
                    f"audit log {path} is broken at line {result.bad_line}: {result.reason}; "
                    "refusing to append to it (move it aside, or check it with "
                    f"`canary-tui audit verify {path}`)"
                )
            for rec in read_records(path):
                self._prev, self._seq = rec["hash"], rec["seq"]
                fresh = False
        self._head = AuditHead(self._seq, self._prev)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise AuditError(
                f"cannot open audit log {path} for writing: {exc.strerror or exc}"
            ) from exc
        if fresh:
            self._append(
                0,
                {
                    "type": "header",
                    "format": AUDIT_FORMAT,
                    "tool": "canary-tui",
                    "tool_version": _version(),
                    "host": socket.gethostname(),
                    "time": time.time(),
                    "message": "audit log created",
                },
            )

    def _recover_torn_tail(self, result: VerifyResult) -> bool:
        """A crash mid-write leaves a torn last line with no newline: drop just that line."""
        data = self.path.read_bytes()
        if result.reason.startswith("not valid JSON") and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            if result.bad_line == data[:cut].count(b"\n") + 1:
                with self.path.open("r+b") as handle:
                    handle.truncate(cut)
                return _check_chain(self.path).ok
        return False

    def head(self) -> AuditHead:
        """The chain's head after the last durable append (seq 0 and GENESIS when empty).
        Cheap, thread-safe and lock-free (one immutable value, replaced after each append):
        read it as often as you like, from anywhere, e.g. to anchor it elsewhere."""
        return self._head

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(head)` after every append from now on (it must not block)."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record durably (flushed and fsynced) and return it with seq and hashes."""
        return self._append(None, record)

    def _append(self, seq: int | None, record: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"cannot write audit log {self.path}: it is closed")
            rec = dict(record)
            rec["seq"] = self._seq + 1 if seq is None else seq
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
            head = self._head = AuditHead(self._seq, self._prev)
            for listener in self._listeners:
                try:
                    listener(head)
                except Exception:  # an anchor's failure never fails the record
                    log.exception("audit head listener %r failed", listener)
            return rec

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _version() -> str:
    from canary_tui import __version__

    return __version__


def last_session_state(path: Path) -> dict[str, Any] | None:
    """The canary state the log last recorded, if the last session did not stop cleanly.

    A daemon killed mid-session leaves no `stop` record: its successor resumes from this
    state (and the router's read-back). After a clean stop, a new session starts fresh.
    """
    if not path.exists():
        return None
    last: dict[str, Any] | None = None
    for rec in read_records(path):
        if rec.get("type") != "header":
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
