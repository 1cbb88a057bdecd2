"""Session recordings: write a session's frames to a crash-safe file, and read them back.

One job: the recording file. A `Recorder` is an engine subscriber; it buffers frames, writes
them as compressed, checksummed chunks (flushed and fsynced at each chunk boundary), writes a
snapshot of the graph window and recent activity at regular intervals, and on close an index
and a trailer. A `Recording` opens such a file (complete, or cut short by a crash: it then
reads up to the last whole chunk), reads frames in order, and rebuilds the `full` frame a
client attaching at any moment would have received, from the nearest snapshot before it.
Secrets in the config are masked before anything is written (see `redact`).
"""

from __future__ import annotations

import bisect
import json
import math
import os
import queue
import re
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from canary_tui import __version__
from canary_tui.core.codec import frame_from_dict, frame_to_dict, plan_from_list, plan_to_list
from canary_tui.core.frames import CanaryInfo, Frame
from canary_tui.core.plan import RampPlan
from canary_tui.records.chunks import (
    FORMAT_VERSION,
    MAGIC,
    PREAMBLE,
    TRAILER,
    TRAILER_MAGIC,
    ChunkError,
    ChunkInfo,
    decompress,
    pack_chunk,
    read_chunk,
)
from canary_tui.records.redact import Scrubber, redact, secret_values

SUFFIX = ".ctrec"
ACTION_KINDS = frozenset({"intent", "refused"})
__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "Recorder",
    "RecorderOptions",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "recording_name",
    "redact",
]


class RecordingError(Exception):
    """A recording cannot be written, opened or read; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class RecorderOptions:
    """When chunks are cut and snapshots taken. Defaults suit a tick of 1 to 5 seconds."""

    chunk_frames: int = 64  # a chunk holds at most this many frames ...
    chunk_seconds: float = 30.0  # ... or this much recorded time (what a crash can lose)
    snapshot_frames: int = 600  # a snapshot after a chunk once this many frames have passed
    level: int = 10  # zstd level
    queue_size: int = 100_000  # frames waiting for the writer thread; beyond, frames drop
    fsync: bool = True


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """What a recording says about itself; info and plan never change during a session."""

    info: CanaryInfo
    plan: RampPlan
    config: dict[str, Any]
    started_at: float
    host: str
    tool_version: str = __version__
    history_s: float = 600.0
    activity_keep: int = 200
    tick_s: float | None = None
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "tool": "canary-tui",
            "tool_version": self.tool_version,
            "info": asdict(self.info),
            "plan": plan_to_list(self.plan),
            "config": self.config,
            "started_at": self.started_at,
            "host": self.host,
            "history_s": self.history_s,
            "activity_keep": self.activity_keep,
            "tick_s": self.tick_s,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordingHeader:
        tick = d.get("tick_s")
        config = d.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError("config is not a mapping")
        history, keep = float(d.get("history_s", 600.0)), int(d.get("activity_keep", 200))
        if not (math.isfinite(history) and history > 0 and keep > 0):
            raise ValueError("bad history settings")
        return cls(
            info=CanaryInfo(**d["info"]),
            plan=plan_from_list(list(d["plan"])),
            config=config,
            started_at=float(d["started_at"]),
            host=str(d.get("host", "")),
            tool_version=str(d.get("tool_version", "?")),
            history_s=history,
            activity_keep=keep,
            tick_s=float(tick) if tick is not None else None,
            format=int(d.get("format", FORMAT_VERSION)),
        )


def recording_name(canary: str, started_at: float) -> str:
    """`<canary>-<UTC start YYYYmmddTHHMMSSZ>.ctrec`."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", canary).strip("._") or "canary"
    stamp = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe}-{stamp}{SUFFIX}"


class _Window:
    """The graph window and recent activity, kept with the engine's own rules."""

    def __init__(self, history_s: float, keep: int) -> None:
        self.history_s, self.keep = history_s, keep
        self.points: deque[dict[str, Any]] = deque()
        self.activity: deque[dict[str, Any]] = deque(maxlen=keep)

    def fold(self, d: Mapping[str, Any]) -> None:
        if d.get("full"):
            self.points = deque(d.get("points", ()))
            self.activity = deque(d.get("activity", ()), maxlen=self.keep)
            return
        for p in d.get("points", ()):
            self.points.append(p)
            horizon = p["t"] - self.history_s
            while self.points and self.points[0]["t"] < horizon:
                self.points.popleft()
        self.activity.extend(d.get("activity", ()))


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
    ) -> None:
        self.path, self.header, self.options = path, header, options
        self.error: str | None = None
        self.dropped = 0
        self._handle, self._scrub = handle, scrubber
        self._cctx = zstandard.ZstdCompressor(level=options.level)
        self._offset = handle.tell()
        self._index: list[ChunkInfo] = []
        self._window = _Window(header.history_s, header.activity_keep)
        self._count = 0
        self._since_snapshot = 0
        self._buf: list[str] = []
        self._buf_first, self._t0, self._t1 = 0, 0.0, 0.0
        self._nt: list[int] = []
        self._marks: dict[str, list[int]] = {"a": [], "v": [], "p": []}
        self._statuses: dict[str, str] = {}
        self._phase: str | None = None
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
    ) -> Recorder:
        """Create the file (named by canary and start time in `directory`, or at `path`)
        and write its header. Raises RecordingError if it cannot be created."""
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
        )
        scrubber = Scrubber(secret_values(config or {}))
        opts = options or RecorderOptions()
        target = path
        try:
            if target is None:
                if directory is None:
                    raise RecordingError("a recording needs a directory or a path")
                directory.mkdir(parents=True, exist_ok=True)
                target = _free_name(directory, recording_name(info.name, started))
            handle = target.open("xb")
        except OSError as exc:
            raise RecordingError(
                f"cannot create recording {target}: {exc.strerror or exc}"
            ) from exc
        try:
            raw = scrubber(json.dumps(header.to_dict(), separators=(",", ":"))).encode()
            preamble = PREAMBLE.pack(MAGIC, FORMAT_VERSION)
            chunk = pack_chunk("H", raw, zstandard.ZstdCompressor(level=opts.level))
            handle.write(preamble + chunk)
            handle.flush()
            if opts.fsync:
                os.fsync(handle.fileno())
                _fsync_dir(target.parent)
        except OSError as exc:
            handle.close()
            raise RecordingError(f"cannot write recording {target}: {exc.strerror or exc}") from exc
        return cls(target, handle, header, scrubber, opts, threaded)

    # --- the subscriber ------------------------------------------------------------------
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

    def flush(self, timeout: float = 10.0) -> None:
        """Write what is buffered as a chunk now (and wait for the writer thread)."""
        if self._closed:
            return
        if self._queue is None:
            with self._lock:
                self._safely(self._flush)
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush, write the index and trailer, and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._queue is None:
                self._safely(self._finish)
                return
        assert self._thread is not None
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer ----------------------------------------------------------------------
    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._safely(self._finish)
                return
            if isinstance(item, threading.Event):
                self._safely(self._flush)
                item.set()
            elif isinstance(item, Frame):
                self._safely(self._add, item)

    def _safely(self, fn: Any, *args: Any) -> None:
        if self.error is not None and fn is not self._finish:
            return
        try:
            fn(*args)
        except Exception as exc:  # a disk error must never reach the engine's loop
            if self.error is None:
                self.error = f"recording {self.path} stopped: {exc}"
            if fn is self._finish:
                self._handle.close()

    def _add(self, frame: Frame) -> None:
        d = frame_to_dict(frame, with_header=False)
        i = self._count
        self._window.fold(d)
        if not self._buf:
            self._buf_first, self._t0 = i, frame.now
        if frame.full or not frame.points:
            self._nt.append(i - self._buf_first)
        urgent = False
        if not frame.full and any(a.kind in ACTION_KINDS for a in frame.activity):
            self._marks["a"].append(i)
            urgent = True
        statuses = {v.metric: v.status.value for v in frame.verdicts}
        if statuses != self._statuses and (
            self._statuses or any(s != "inconclusive" for s in statuses.values())
        ):
            self._marks["v"].append(i)
        self._statuses = statuses
        phase = frame.state.phase.value
        if self._phase is not None and phase != self._phase:
            self._marks["p"].append(i)
            urgent = True
        self._phase = phase
        self._buf.append(self._scrub(json.dumps(d, separators=(",", ":"), ensure_ascii=False)))
        self._t1 = frame.now
        self._count += 1
        self._since_snapshot += 1
        o = self.options
        if urgent or len(self._buf) >= o.chunk_frames or frame.now - self._t0 >= o.chunk_seconds:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        raw = ("[" + ",".join(self._buf) + "]").encode()
        meta: dict[str, Any] = {k: v for k, v in self._marks.items() if v}
        if self._nt:
            meta["nt"] = self._nt
        first, count = self._buf_first, len(self._buf)
        self._write(
            "F", raw, first=first, count=count, t_first=self._t0, t_last=self._t1, meta=meta
        )
        self._buf, self._nt = [], []
        self._marks = {"a": [], "v": [], "p": []}
        if self._since_snapshot >= self.options.snapshot_frames:
            self._snapshot()

    def _snapshot(self) -> None:
        j = self._count - 1
        body = {
            "index": j,
            "points": list(self._window.points),
            "activity": list(self._window.activity),
        }
        raw = self._scrub(json.dumps(body, separators=(",", ":"), ensure_ascii=False)).encode()
        self._write("S", raw, first=j, count=0, t_first=self._t1, t_last=self._t1, meta={})
        self._since_snapshot = 0

    def _write(
        self,
        kind: str,
        raw: bytes,
        *,
        first: int = 0,
        count: int = 0,
        t_first: float = 0.0,
        t_last: float = 0.0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        data = pack_chunk(
            kind,
            raw,
            self._cctx,
            first=first,
            count=count,
            t_first=t_first,
            t_last=t_last,
            meta=meta,
        )
        self._handle.write(data)
        self._handle.flush()
        if self.options.fsync:
            os.fsync(self._handle.fileno())
        info = ChunkInfo(
            kind, self._offset, first, count, t_first, t_last, {**(meta or {}), "raw": len(raw)}
        )
        self._index.append(replace(info, size=len(data)))
        self._offset += len(data)

    def _finish(self) -> None:
        if self.error is None:
            self._flush()
            index_at = self._offset
            body = {
                "frames": self._count,
                "dropped": self.dropped,
                "chunks": [c.to_list() for c in self._index],
            }
            self._write("I", json.dumps(body, separators=(",", ":")).encode())
            self._handle.write(TRAILER.pack(TRAILER_MAGIC, index_at))
            self._handle.flush()
            if self.options.fsync:
                os.fsync(self._handle.fileno())
        self._handle.close()


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


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Marks:
    actions: list[int] = field(default_factory=list)
    verdicts: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)


class Recording:
    """A recording opened for reading: frames by index, times, marks, and seeking.

    Every method raises only RecordingError. A chunk found damaged while reading ends the
    readable recording just before it (`frames` shrinks, `problem` says so).
    """

    _CACHE = 8

    def __init__(self, path: Path, handle: BinaryIO, size: int, header: RecordingHeader) -> None:
        self.path, self.header = path, header
        self.info, self.plan = header.info, header.plan
        self.complete = False
        self.problem: str | None = None
        self.dropped = 0
        self._handle, self._size = handle, size
        self._chunks: list[ChunkInfo] = []
        self._firsts: list[int] = []
        self._snaps: list[ChunkInfo] = []
        self._snap_at: list[int] = []
        self._tick_prefix: list[int] = [0]
        self._nt: list[list[int]] = []
        self.marks = _Marks()
        self._cache: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()

    # --- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | str) -> Recording:
        """Open a recording. Raises RecordingError with a clear message when nothing in it
        can be replayed; a recording cut short opens with `complete=False` and a `problem`."""
        p = Path(path)
        try:
            handle = p.open("rb")
        except OSError as exc:
            raise RecordingError(f"cannot open {p}: {exc.strerror or exc}") from exc
        try:
            if p.is_dir():
                raise RecordingError(f"{p} is a directory, not a recording")
            size = os.fstat(handle.fileno()).st_size
            header, header_end = _read_header(p, handle, size)
            rec = cls(p, handle, size, header)
            rec._load(header_end)
            return rec
        except RecordingError:
            handle.close()
            raise
        except (OSError, MemoryError) as exc:
            handle.close()
            raise RecordingError(f"cannot read {p}: {exc}") from exc

    def _load(self, header_end: int) -> None:
        chunks, damage = self._from_index(header_end)
        if chunks is None:
            chunks, damage = self._scan(header_end)
        else:
            self.complete = True
        for c in chunks:
            self._add_chunk(c)
        if not self.complete:
            end = f" (at {_clock(self.end_time)} UTC)" if self.frames else ""
            self.problem = (
                f"cut short: {damage}; the session was killed or crashed before closing its "
                f"recording. Replaying the {self.frames} frames up to the last whole chunk{end}."
            )

    def _from_index(self, header_end: int) -> tuple[list[ChunkInfo] | None, str]:
        if self._size < header_end + TRAILER.size:
            return None, ""
        try:
            self._handle.seek(self._size - TRAILER.size)
            tag, at = TRAILER.unpack(self._handle.read(TRAILER.size))
            if tag != TRAILER_MAGIC or not header_end <= at < self._size - TRAILER.size:
                return None, ""
            info, payload = read_chunk(self._handle, at, self._size - TRAILER.size)
            if info.kind != "I":
                return None, ""
            body = json.loads(decompress(info, payload))
            chunks = [ChunkInfo.from_list(item) for item in body["chunks"]]
            self.dropped = int(body.get("dropped", 0))
        except Exception:  # a damaged index is not fatal: the chunks are scanned instead
            return None, ""
        expected, last_end = 0, header_end
        for c in chunks:
            if c.offset < last_end or c.end > at or c.size < 1:
                return None, ""
            if c.kind == "F":
                if c.first != expected or c.count < 1:
                    return None, ""
                expected += c.count
            elif c.kind == "S" and not 0 <= c.first < expected:
                return None, ""
            last_end = c.end
        if int(body.get("frames", -1)) != expected:
            return None, ""
        return chunks, ""

    def _scan(self, offset: int) -> tuple[list[ChunkInfo], str]:
        chunks: list[ChunkInfo] = []
        expected = 0
        damage = "it has no end-of-recording index"
        while offset < self._size:
            try:
                info, _ = read_chunk(self._handle, offset, self._size)
            except ChunkError as exc:
                tail = self._size - offset
                if tail == TRAILER.size:
                    damage = "its end-of-recording index is damaged"
                else:
                    damage = f"{exc} ({tail} bytes after the last whole chunk dropped)"
                break
            if info.kind == "F":
                if info.first != expected or info.count < 1:
                    damage = f"the chunk at byte {offset} is out of sequence"
                    break
                expected += info.count
            if info.kind == "F" or (info.kind == "S" and 0 <= info.first < expected):
                chunks.append(info)
            offset = info.end
        return chunks, damage

    def _add_chunk(self, c: ChunkInfo) -> None:
        if c.kind == "S":
            self._snaps.append(c)
            self._snap_at.append(c.first)
            return
        if c.kind != "F":
            return
        lo, hi = c.first, c.first + c.count

        def ints(key: str, base: int = 0) -> list[int]:
            values = c.meta.get(key, [])
            if not isinstance(values, list):
                return []
            return sorted({v + base for v in values if isinstance(v, int) and lo <= v + base < hi})

        self._chunks.append(c)
        self._firsts.append(c.first)
        nt = [i - lo for i in ints("nt", lo)]
        self._nt.append(nt)
        self._tick_prefix.append(self._tick_prefix[-1] + c.count - len(nt))
        self.marks.actions.extend(ints("a"))
        self.marks.verdicts.extend(ints("v"))
        self.marks.phases.extend(ints("p"))

    # --- what is in it -------------------------------------------------------------------
    @property
    def frames(self) -> int:
        """How many frames can be read."""
        last = self._chunks[-1] if self._chunks else None
        return last.first + last.count if last is not None else 0

    @property
    def ticks(self) -> int:
        return self._tick_prefix[len(self._chunks)]

    @property
    def start_time(self) -> float:
        return self._chunks[0].t_first if self._chunks else self.header.started_at

    @property
    def end_time(self) -> float:
        return self._chunks[-1].t_last if self._chunks else self.header.started_at

    def _chunk_of(self, i: int) -> int:
        if not 0 <= i < self.frames:
            raise RecordingError(f"frame {i} is outside the recording (0..{self.frames - 1})")
        return bisect.bisect_right(self._firsts, i) - 1

    def is_tick(self, i: int) -> bool:
        k = self._chunk_of(i)
        nt = self._nt[k]
        rel = i - self._chunks[k].first
        pos = bisect.bisect_left(nt, rel)
        return not (pos < len(nt) and nt[pos] == rel)

    def tick_number(self, i: int) -> int:
        """How many tick frames there are up to and including frame `i`."""
        k = self._chunk_of(i)
        rel = i - self._chunks[k].first
        return self._tick_prefix[k] + rel + 1 - bisect.bisect_right(self._nt[k], rel)

    def next_tick(self, i: int) -> int | None:
        for j in range(max(i + 1, 0), self.frames):
            if self.is_tick(j):
                return j
        return None

    def prev_tick(self, i: int) -> int | None:
        for j in range(min(i - 1, self.frames - 1), -1, -1):
            if self.is_tick(j):
                return j
        return None

    def time_of(self, i: int) -> float:
        k = self._chunk_of(i)
        return float(self._dicts_of(k)[i - self._chunks[k].first]["now"])

    def index_at(self, t: float) -> int:
        """The last frame recorded at or before `t` (the first frame if `t` is earlier)."""
        if not self._chunks:
            raise RecordingError("the recording holds no frames")
        starts = [c.t_first for c in self._chunks]
        k = max(0, bisect.bisect_right(starts, t) - 1)
        times = [float(d["now"]) for d in self._dicts_of(k)]
        rel = bisect.bisect_right(times, t) - 1
        return self._chunks[k].first + max(rel, 0)

    def frame(self, i: int) -> Frame:
        """Frame `i` as it was published (later frames carry only what is new)."""
        k = self._chunk_of(i)
        return self._to_frame(self._dicts_of(k)[i - self._chunks[k].first])

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        for d in self._iter_dicts(start, self.frames if stop is None else stop):
            yield self._to_frame(d)

    def full_frame_at(self, i: int) -> Frame:
        """The full frame a client attaching just after frame `i` receives: frame `i` with
        the graph window (history_s) and recent activity (activity_keep) as the engine kept them."""
        self._chunk_of(i)
        while True:
            s = bisect.bisect_right(self._snap_at, i) - 1
            window = _Window(self.header.history_s, self.header.activity_keep)
            start = 0
            if s >= 0:
                try:
                    body = self._snapshot(s)
                except RecordingError:
                    del self._snaps[s], self._snap_at[s]
                    continue
                window.points = deque(body["points"])
                window.activity = deque(body["activity"], maxlen=window.keep)
                start = self._snap_at[s] + 1
            last: Mapping[str, Any] | None = None
            for d in self._iter_dicts(start, i + 1):
                try:
                    window.fold(d)
                except (KeyError, TypeError) as exc:
                    raise RecordingError(f"{self.path}: frame data is damaged ({exc})") from exc
                last = d
            if last is None:  # i is the snapshot's own frame
                k = self._chunk_of(i)
                last = self._dicts_of(k)[i - self._chunks[k].first]
            full = {
                **last,
                "full": True,
                "points": list(window.points),
                "activity": list(window.activity),
            }
            return self._to_frame(full)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- decoding ------------------------------------------------------------------------
    def _to_frame(self, d: Mapping[str, Any]) -> Frame:
        try:
            frame = frame_from_dict(d, info=self.info, plan=self.plan)
        except Exception as exc:  # untrusted bytes: any decoding failure is "damaged"
            raise RecordingError(f"{self.path}: frame data is damaged ({exc!r})") from exc
        if frame.state.step_index >= len(self.plan) or not math.isfinite(frame.now):
            raise RecordingError(f"{self.path}: frame data is damaged (impossible state)")
        return frame

    def _iter_dicts(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        i = max(start, 0)
        stop = min(stop, self.frames)
        while i < stop:
            k = self._chunk_of(i)
            dicts = self._dicts_of(k)
            first = self._chunks[k].first
            end = min(stop, first + len(dicts))
            yield from dicts[i - first : end - first]
            i = end
            stop = min(stop, self.frames)  # a damaged chunk shrinks the recording

    def _dicts_of(self, k: int) -> list[dict[str, Any]]:
        c = self._chunks[k]
        cached = self._cache.get(c.offset)
        if cached is not None:
            self._cache.move_to_end(c.offset)
            return cached
        try:
            info, payload = read_chunk(self._handle, c.offset, self._size)
            if (info.kind, info.first, info.count) != ("F", c.first, c.count):
                raise ChunkError(f"the index does not match the chunk at byte {c.offset}")
            dicts = json.loads(decompress(info, payload))
            if not isinstance(dicts, list) or len(dicts) != c.count:
                raise ChunkError(f"the chunk at byte {c.offset} holds damaged frames")
            for d in dicts:
                if not isinstance(d, dict) or not isinstance(d.get("now"), int | float):
                    raise ChunkError(f"the chunk at byte {c.offset} holds damaged frames")
        except (ChunkError, ValueError, RecursionError, OSError) as exc:
            self._truncate(k, str(exc))
            raise RecordingError(f"{self.path}: {self.problem}") from exc
        self._cache[c.offset] = dicts
        if len(self._cache) > self._CACHE:
            self._cache.popitem(last=False)
        return dicts

    def _snapshot(self, s: int) -> dict[str, Any]:
        c = self._snaps[s]
        try:
            info, payload = read_chunk(self._handle, c.offset, self._size)
            body = json.loads(decompress(info, payload))
            ok = (
                info.kind == "S"
                and isinstance(body, dict)
                and body.get("index") == c.first
                and isinstance(body.get("points"), list)
                and isinstance(body.get("activity"), list)
                and all(isinstance(p, dict) for p in body["points"])
            )
            if not ok:
                raise ChunkError(f"the snapshot at byte {c.offset} is damaged")
        except (ChunkError, ValueError, RecursionError, OSError) as exc:
            raise RecordingError(str(exc)) from exc
        return dict(body)

    def _truncate(self, k: int, why: str) -> None:
        """Chunk `k` is unreadable: the readable recording ends just before it."""
        lost = self._chunks[k]
        self._chunks = self._chunks[:k]
        self._firsts, self._nt = self._firsts[:k], self._nt[:k]
        self._tick_prefix = self._tick_prefix[: k + 1]
        keep = [j for j, at in enumerate(self._snap_at) if at < lost.first]
        self._snaps = [self._snaps[j] for j in keep]
        self._snap_at = [self._snap_at[j] for j in keep]
        for marks in (self.marks.actions, self.marks.verdicts, self.marks.phases):
            marks[:] = [i for i in marks if i < lost.first]
        self.complete = False
        self.problem = f"damaged: {why}; replaying the {lost.first} frames before it" + (
            f" (up to {_clock(lost.t_first)} UTC)" if lost.first else ""
        )


def _read_header(path: Path, handle: BinaryIO, size: int) -> tuple[RecordingHeader, int]:
    if size == 0:
        raise RecordingError(f"{path} is empty: the session recorded nothing")
    start = handle.read(PREAMBLE.size)
    if len(start) < PREAMBLE.size and (MAGIC.startswith(start) or start.startswith(MAGIC)):
        raise RecordingError(f"{path} is cut short before its header: nothing to replay")
    if not start.startswith(MAGIC):
        hint = ""
        if start.lstrip()[:1] in (b"{", b"["):
            hint = " (it looks like JSON: an audit log? try `canary-tui audit tail`)"
        elif start.startswith(b"\x28\xb5\x2f\xfd"):
            hint = " (it is a bare zstd stream)"
        raise RecordingError(f"{path} is not a canary-tui recording{hint}")
    _magic, version = PREAMBLE.unpack(start[: PREAMBLE.size])
    if version > FORMAT_VERSION:
        raise RecordingError(
            f"{path} was written by a newer canary-tui (recording format {version}; this "
            f"version reads format {FORMAT_VERSION} and older): upgrade canary-tui to replay it"
        )
    if version < 1:
        raise RecordingError(f"{path} has an unknown recording format ({version})")
    try:
        info, payload = read_chunk(handle, PREAMBLE.size, size)
        if info.kind != "H":
            raise ChunkError("the first chunk is not a header")
        data = json.loads(decompress(info, payload))
        if not isinstance(data, dict):
            raise ValueError("the header is not a mapping")
        fmt = data.get("format", FORMAT_VERSION)
        if isinstance(fmt, int) and fmt > FORMAT_VERSION:
            raise RecordingError(
                f"{path} was written by a newer canary-tui (recording format {fmt}): "
                "upgrade canary-tui to replay it"
            )
        header = RecordingHeader.from_dict(data)
    except RecordingError:
        raise
    except ChunkError as exc:
        raise RecordingError(
            f"{path}: its header cannot be read ({exc}): nothing to replay"
        ) from exc
    except Exception as exc:  # untrusted bytes: any decoding failure is "damaged"
        raise RecordingError(f"{path}: its header is damaged ({exc}): nothing to replay") from exc
    return header, info.end


def _clock(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "?"
