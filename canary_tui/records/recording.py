"""The session recorder: one job, to write a live session's frames to a crash-safe file.

A `Recorder` is an engine subscriber: it buffers frames and writes them as compressed,
checksummed chunks (flushed and fsynced at each chunk boundary), a snapshot of the recent
activity at regular intervals, and, on close, an index and a trailer, so that a reader can
seek without reading from the start and a crash loses at most the chunk being filled.
Secrets in the configuration and in every message are masked before anything is written
(see `redact`). The recorder also anchors the audit log's head (seq and hash) whenever it
moves, in the chunk's metadata, in snapshots and in the index, so that `canary-tui audit
verify --against` can tell a log whose tail was cut off. The reader, `Recording`, is
re-exported here for convenience.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from canary_tui.core.codec import frame_to_dict
from canary_tui.core.frames import CanaryInfo, Frame
from canary_tui.core.plan import RampPlan
from canary_tui.records import columns
from canary_tui.records.audit import AuditHead
from canary_tui.records.chunks import (
    FORMAT_VERSION,
    MAGIC,
    PREAMBLE,
    TRAILER,
    TRAILER_MAGIC,
    ChunkInfo,
    pack_chunk,
)
from canary_tui.records.header import (
    ACTION_KINDS,
    POINT_FIELDS,
    SUFFIX,
    RecordingError,
    RecordingHeader,
    default_directory,
    recording_name,
)
from canary_tui.records.reader import Recording
from canary_tui.records.redact import Scrubber, redact, secret_values

__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "Recorder",
    "RecorderOptions",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "default_directory",
    "recording_name",
    "redact",
]

log = logging.getLogger("canary_tui.recording")


@dataclass(frozen=True, slots=True)
class RecorderOptions:
    """When chunks are cut and snapshots taken. The defaults suit ticks of 1 to 5 seconds."""

    chunk_frames: int = 64  # a chunk holds at most this many frames ...
    chunk_seconds: float = 60.0  # ... or this much recorded time (what a crash can lose)
    snapshot_frames: int = 600  # a snapshot after the chunk in which this many frames passed
    level: int = 10  # zstd level
    queue_size: int = 100_000  # frames waiting for the writer thread; beyond, frames drop
    fsync: bool = True


_STOP = object()


class Recorder:
    """Writes one session's frames to one file. Subscribe `on_frame` to an engine.

    `on_frame` does bounded work and never raises: with `threaded=True` (the default) it
    only queues the frame, and a writer thread encodes, compresses, writes and fsyncs.
    A failure to write stops the recording (see `error`), never the loop.
    """

    def __init__(
        self,
        path: Path,
        handle: BinaryIO,
        header: RecordingHeader,
        scrubber: Scrubber,
        options: RecorderOptions,
        threaded: bool,
        audit_head: Callable[[], AuditHead] | None = None,
    ) -> None:
        self.path, self.header, self.options = path, header, options
        self.error: str | None = None
        self.dropped = 0
        self.frames = 0
        self._handle, self._scrub = handle, scrubber
        self._cctx = zstandard.ZstdCompressor(level=options.level)
        self._offset = handle.tell()
        self._index: list[ChunkInfo] = []
        self._activity: deque[dict[str, Any]] = deque(maxlen=header.activity_keep)
        self._since_snapshot = 0
        self._rows: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        self._first, self._t0, self._t1 = 0, 0.0, 0.0
        self._marks: dict[str, list[int]] = {}
        self._statuses: dict[str, str] = {}
        self._phase: str | None = None
        self._audit_head = audit_head
        self._anchored: AuditHead | None = None  # the last head written into the file
        self._head: AuditHead | None = None  # the newest head seen (maybe not written yet)
        self._polling = True  # read the head at each frame, until on_audit brings each one
        self._lock = threading.Lock()
        self._closed = False
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=options.queue_size)
            self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
            self._thread.start()

    @classmethod
    def create(
        cls,
        directory: Path | None,
        info: CanaryInfo,
        plan: RampPlan,
        config: Mapping[str, Any] | None = None,
        *,
        path: Path | None = None,
        started_at: float | None = None,
        host: str | None = None,
        history_s: float = 600.0,
        activity_keep: int = 200,
        tick_s: float | None = None,
        options: RecorderOptions | None = None,
        threaded: bool = True,
        audit_head: Callable[[], AuditHead] | None = None,
        audit_log: str | None = None,
    ) -> Recorder:
        """Create the file and write its header. The file is named by canary and start time
        in `directory` (by default `default_directory()`), or is `path`. `history_s` and
        `activity_keep` are the engine's settings of the same names. `audit_head` (such as
        `AuditLog.head`) is read at every frame and on `on_audit`, and each new head is
        anchored in the file; `audit_log` names that log in the header. Raises RecordingError
        if the file cannot be created."""
        started = time.time() if started_at is None else started_at
        header = RecordingHeader(
            info=info,
            plan=plan,
            config=redact(config or {}),
            started_at=started,
            host=socket.gethostname() if host is None else host,
            history_s=history_s,
            activity_keep=activity_keep,
            tick_s=tick_s,
            audit_log=audit_log,
        )
        scrubber = Scrubber(secret_values(config or {}))
        opts = options or RecorderOptions()
        target = path
        try:
            if target is None:
                where = default_directory() if directory is None else directory
                where.mkdir(parents=True, exist_ok=True)
                target = _free_name(where, recording_name(info.name, started))
            handle = target.open("xb")
        except OSError as exc:
            raise RecordingError(
                f"cannot create recording {target}: {exc.strerror or exc}"
            ) from exc
        try:
            raw = _json(scrubber.tree(header.to_dict()))
            chunk = pack_chunk("H", [raw], zstandard.ZstdCompressor(level=opts.level))
            handle.write(PREAMBLE.pack(MAGIC, FORMAT_VERSION) + chunk)
            handle.flush()
            if opts.fsync:
                os.fsync(handle.fileno())
                _fsync_dir(target.parent)
        except OSError as exc:
            handle.close()
            raise RecordingError(f"cannot write recording {target}: {exc.strerror or exc}") from exc
        return cls(target, handle, header, scrubber, opts, threaded, audit_head)

    # --- the subscriber --------------------------------------------------------------------
    def on_frame(self, frame: Frame) -> None:
        """Record `frame`. Never raises, never blocks (a full queue drops the frame)."""
        if self._closed:
            return
        if self._queue is None:
            with self._lock:
                self._safely(self._add, frame)
            return
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1

    def on_audit(self, head: AuditHead) -> None:
        """An AuditLog listener: the head moved, anchor it in the file now (never blocks)."""
        if self._closed or self._audit_head is None:
            return
        self._polling = False  # heads now come in order, each one, through the queue
        if self._queue is None:
            with self._lock:
                self._safely(self._anchor_now, head)
            return
        with contextlib.suppress(queue.Full):  # if full, the next head anchors this one too
            self._queue.put_nowait(head)

    def flush(self, timeout: float = 10.0) -> None:
        """Write what is buffered as a chunk now (and wait for the writer thread)."""
        if self._closed:
            return
        if self._queue is None:
            with self._lock:
                self._safely(self._flush)
            return
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Flush, write the index and the trailer, and close the file, waiting at most
        `timeout` seconds for the writer. True if everything was written. Idempotent."""
        with self._lock:
            if self._closed:
                return self._thread is None or not self._thread.is_alive()
            self._closed = True
            if self._queue is None or self._thread is None:
                self._safely(self._finish)
                return self.error is None
        queue_, thread = self._queue, self._thread
        try:
            queue_.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("recording %s: writer stuck, not closed", self.path)
            return False
        thread.join(timeout)
        if thread.is_alive():
            log.warning("recording %s: not finished within %g s at exit", self.path, timeout)
            return False
        return self.error is None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer ------------------------------------------------------------------------
    def _run(self) -> None:
        if self._queue is None:
            return
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._safely(self._finish)
                return
            if isinstance(item, AuditHead):
                self._safely(self._anchor_now, item)
            elif isinstance(item, threading.Event):
                self._safely(self._flush)
                item.set()
            elif isinstance(item, Frame):
                self._safely(self._add, item)

    def _safely(self, fn: Callable[..., None], *args: Any) -> None:
        finishing = fn == self._finish
        if self.error is not None and not finishing:
            return
        try:
            fn(*args)
        except Exception as exc:  # a full disk must never reach the engine's loop
            if self.error is None:
                self.error = f"recording {self.path} stopped: {exc}"
                log.error("%s", self.error, exc_info=logging.getLogger().hasHandlers())
            if finishing:
                self._handle.close()

    def _add(self, frame: Frame) -> None:
        rest = frame_to_dict(frame, with_header=False)
        timeline = {k: rest.pop(k) for k in ("now", "activity", "full")}
        points = [[p[name] for name in POINT_FIELDS] for p in rest.pop("points")]
        i = self.frames
        if not self._rows[0]:
            self._first, self._t0 = i, frame.now
        if frame.full:
            self._activity = deque(timeline["activity"], maxlen=self.header.activity_keep)
            self._mark("f", i)
        else:
            self._activity.extend(timeline["activity"])
        if timeline["activity"]:
            self._mark("act", i)
        if frame.full or not frame.points:
            self._mark("nt", i - self._first)
        urgent = False
        if not frame.full and any(e.kind in ACTION_KINDS for e in frame.activity):
            urgent = self._mark("a", i)
        statuses = {v.metric: v.status.value for v in frame.verdicts}
        if statuses != self._statuses and (
            self._statuses or any(s != "inconclusive" for s in statuses.values())
        ):
            self._mark("v", i)
        self._statuses = statuses
        phase = frame.state.phase.value
        if self._phase is not None and phase != self._phase:
            urgent = self._mark("p", i)
        self._phase = phase
        if self._head_moved(None if self._polling or self._head is None else self._head):
            urgent = True
        for rows, row in zip(self._rows, (timeline, points, rest), strict=True):
            rows.append(row)
        self._t1 = frame.now
        self.frames += 1
        self._since_snapshot += 1
        o = self.options
        if (
            urgent
            or len(self._rows[0]) >= o.chunk_frames
            or frame.now - self._t0 >= o.chunk_seconds
        ):
            self._flush()

    def _head_moved(self, head: AuditHead | None = None) -> bool:
        """Take `head` (by default, read the audit log's head now) if it is newer than the
        newest seen; True if the newest seen is not anchored yet."""
        if self._audit_head is None:
            return False
        if head is None:
            head = self._audit_head()
        if self._head is None or head.seq > self._head.seq:
            self._head = head
        return self._head != self._anchored

    def _anchor_now(self, head: AuditHead) -> None:
        """A new head: write it now, in a frames chunk if frames wait, else in a snapshot.
        Before the first frame there is nowhere to put it: the first frame carries it."""
        if not self._head_moved(head):
            return
        if self._rows[0]:
            self._flush()
        elif self.frames:
            self._snapshot()

    def _anchor_meta(self) -> dict[str, Any]:
        """The head for a chunk's metadata (and marks it anchored)."""
        if self._head is None:
            return {}
        self._anchored = self._head
        return {"audit": [self._head.seq, self._head.hash]}

    def _snapshot(self) -> None:
        j = self.frames - 1
        body = {"index": j, "activity": list(self._activity)}
        parts = [_json(self._scrub.tree(body))]
        self._write("S", parts, first=j, t0=self._t1, t1=self._t1, meta=self._anchor_meta())
        self._since_snapshot = 0

    def _mark(self, kind: str, value: int) -> bool:
        self._marks.setdefault(kind, []).append(value)
        return True

    def _flush(self) -> None:
        timeline, points, rest = self._rows
        if not timeline:
            return
        parts = [
            _json(self._scrub.tree(timeline)),
            _json(points),
            _json(columns.encode(rest, self._scrub)),
        ]
        count, marks = len(timeline), self._marks
        self._rows, self._marks = ([], [], []), {}
        if self._head != self._anchored:
            marks = {**marks, **self._anchor_meta()}
        self._write(
            "F", parts, first=self._first, count=count, t0=self._t0, t1=self._t1, meta=marks
        )
        if self._since_snapshot >= self.options.snapshot_frames:
            self._snapshot()

    def _write(
        self,
        kind: str,
        parts: list[bytes],
        *,
        first: int = 0,
        count: int = 0,
        t0: float = 0.0,
        t1: float = 0.0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        data = pack_chunk(
            kind, parts, self._cctx, first=first, count=count, t_first=t0, t_last=t1, meta=meta
        )
        self._handle.write(data)
        self._handle.flush()
        if self.options.fsync:
            os.fsync(self._handle.fileno())
        info = ChunkInfo(kind, self._offset, first, count, t0, t1, dict(meta or {}))
        self._index.append(replace(info, size=len(data)))
        self._offset += len(data)

    def _finish(self) -> None:
        if self.error is None:
            self._head_moved()
            self._flush()
            index_at = self._offset
            chunks = [c.to_list() for c in self._index]
            body: dict[str, Any] = {
                "frames": self.frames,
                "dropped": self.dropped,
                "chunks": chunks,
            }
            if self._head is not None:  # the head at the end, even if no frame followed it
                body["audit"] = [self._head.seq, self._head.hash]
                self._anchored = self._head
            self._write("I", [_json(body)])
            self._handle.write(TRAILER.pack(TRAILER_MAGIC, index_at))
            self._handle.flush()
            if self.options.fsync:
                os.fsync(self._handle.fileno())
        self._handle.close()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _free_name(directory: Path, name: str) -> Path:
    target = directory / name
    n = 2
    while target.exists():
        target = directory / f"{name.removesuffix(SUFFIX)}-{n}{SUFFIX}"
        n += 1
    return target


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
