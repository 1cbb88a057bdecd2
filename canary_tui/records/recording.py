"""Session recordings: write a session's frames to a crash-safe file, and read them back.

One job: the recording file. A `Recorder` is an engine subscriber: it buffers frames and
writes them as compressed, checksummed chunks (flushed and fsynced at each chunk boundary),
a snapshot of the recent activity at regular intervals, and, on close, an index and a
trailer. A `Recording` opens such a file (complete, or cut short by a crash: then up to its
last whole chunk), reads frames in order, and rebuilds at any frame the `full` frame a client
attaching at that moment would have received. Secrets never reach the file (see `redact`).

Each frames chunk has three independently compressed parts, so that seeking reads little:
  0  per frame: time, activity, full flag   (read from the nearest snapshot onwards)
  1  per frame: graph points                (read for the graph window only)
  2  per frame: everything else, in columns (read for the frame shown)
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from canary_tui import __version__
from canary_tui.core.codec import frame_from_dict, frame_to_dict, plan_from_list, plan_to_list
from canary_tui.core.frames import CanaryInfo, Frame, SeriesPoint
from canary_tui.core.plan import RampPlan
from canary_tui.paths import state_dir
from canary_tui.records import columns
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
_TIMELINE, _POINTS, _REST = 0, 1, 2  # the parts of a frames chunk
POINT_FIELDS = tuple(f.name for f in fields(SeriesPoint))  # a graph point is stored as a list
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


class RecordingError(Exception):
    """A recording cannot be written, opened or read; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class RecorderOptions:
    """When chunks are cut and snapshots taken. The defaults suit ticks of 1 to 5 seconds."""

    chunk_frames: int = 64  # a chunk holds at most this many frames ...
    chunk_seconds: float = 60.0  # ... or this much recorded time (what a crash can lose)
    snapshot_frames: int = 600  # a snapshot after the chunk in which this many frames passed
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
    point_fields: tuple[str, ...] = POINT_FIELDS

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
            "point_fields": list(self.point_fields),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordingHeader:
        tick = d.get("tick_s")
        config = d.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError("config is not a mapping")
        history, keep = float(d.get("history_s", 600.0)), int(d.get("activity_keep", 200))
        if not (math.isfinite(history) and history > 0 and 0 < keep <= 1_000_000):
            raise ValueError("bad history settings")
        point_fields = tuple(str(name) for name in d.get("point_fields", POINT_FIELDS))
        if "t" not in point_fields or len(set(point_fields)) != len(point_fields):
            raise ValueError("bad point fields")
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
            point_fields=point_fields,
        )


def default_directory() -> Path:
    """Where recordings go unless told otherwise: the user's state directory."""
    return state_dir() / "recordings"


def recording_name(canary: str, started_at: float) -> str:
    """`<canary>-<UTC start YYYYmmddTHHMMSSZ>.ctrec`."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", canary).strip("._") or "canary"
    stamp = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe}-{stamp}{SUFFIX}"


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
        """Create the file and write its header. The file is named by canary and start time
        in `directory` (by default `default_directory()`), or is `path`. `history_s` and
        `activity_keep` are the engine's settings of the same names. Raises RecordingError if
        the file cannot be created."""
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
        return cls(target, handle, header, scrubber, opts, threaded)

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
        """Flush, write the index and the trailer, and close the file. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._queue is None:
                self._safely(self._finish)
                return
        assert self._queue is not None and self._thread is not None
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the writer ------------------------------------------------------------------------
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

    def _safely(self, fn: Callable[..., None], *args: Any) -> None:
        finishing = fn == self._finish
        if self.error is not None and not finishing:
            return
        try:
            fn(*args)
        except Exception as exc:  # a full disk must never reach the engine's loop
            if self.error is None:
                self.error = f"recording {self.path} stopped: {exc}"
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
        self._write(
            "F", parts, first=self._first, count=count, t0=self._t0, t1=self._t1, meta=marks
        )
        if self._since_snapshot >= self.options.snapshot_frames:
            j = self.frames - 1
            body = {"index": j, "activity": list(self._activity)}
            self._write("S", [_json(self._scrub.tree(body))], first=j, t0=self._t1, t1=self._t1)
            self._since_snapshot = 0

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
            self._flush()
            index_at = self._offset
            chunks = [c.to_list() for c in self._index]
            body = {"frames": self.frames, "dropped": self.dropped, "chunks": chunks}
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


# --- reading ---------------------------------------------------------------------------------


@dataclass
class _Marks:
    actions: list[int] = field(default_factory=list)
    verdicts: list[int] = field(default_factory=list)
    phases: list[int] = field(default_factory=list)
    fulls: list[int] = field(default_factory=list)


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
        self._busy: list[bool] = []  # per chunk: has it any activity (or a full frame)?
        self.marks = _Marks()
        self._cache: OrderedDict[int, list[Any]] = OrderedDict()

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
        self.marks.fulls.extend(ints("f"))
        self._busy.append(bool(ints("act") or ints("f")))

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
        """Whether frame `i` is a tick (it adds a graph point), not an action or a join."""
        k = self._chunk_of(i)
        nt, rel = self._nt[k], i - self._chunks[k].first
        pos = bisect.bisect_left(nt, rel)
        return not (pos < len(nt) and nt[pos] == rel)

    def tick_number(self, i: int) -> int:
        """How many ticks there are up to and including frame `i`."""
        k = self._chunk_of(i)
        rel = i - self._chunks[k].first
        return self._tick_prefix[k] + rel + 1 - bisect.bisect_right(self._nt[k], rel)

    def next_tick(self, i: int) -> int | None:
        return next((j for j in range(max(i + 1, 0), self.frames) if self.is_tick(j)), None)

    def prev_tick(self, i: int) -> int | None:
        start = min(i - 1, self.frames - 1)
        return next((j for j in range(start, -1, -1) if self.is_tick(j)), None)

    def time_of(self, i: int) -> float:
        k = self._chunk_of(i)
        return float(self._timeline(k)[i - self._chunks[k].first]["now"])

    def index_at(self, t: float) -> int:
        """The last frame recorded at or before `t` (the first frame if `t` is earlier)."""
        if not self._chunks:
            raise RecordingError("the recording holds no frames")
        k = max(0, bisect.bisect_right([c.t_first for c in self._chunks], t) - 1)
        times = [float(row["now"]) for row in self._timeline(k)]
        return self._chunks[k].first + max(bisect.bisect_right(times, t) - 1, 0)

    def _first_at_or_after(self, t: float) -> int:
        """The first frame recorded at or after `t` (`frames` if there is none)."""
        k = bisect.bisect_left([c.t_last for c in self._chunks], t)
        if k >= len(self._chunks):
            return self.frames
        times = [float(row["now"]) for row in self._timeline(k)]
        return self._chunks[k].first + bisect.bisect_left(times, t)

    def frame(self, i: int) -> Frame:
        """Frame `i` as it was published (after the first, frames carry only what is new)."""
        k = self._chunk_of(i)
        return self._to_frame(self._row(k, i - self._chunks[k].first))

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        """Frames `start` to `stop` in order (stops, raising, at a damaged chunk)."""
        i = max(start, 0)
        while i < (self.frames if stop is None else min(stop, self.frames)):
            k = self._chunk_of(i)
            c, end = self._chunks[k], self.frames if stop is None else min(stop, self.frames)
            self._rest_rows(k)
            for rel in range(i - c.first, min(end, c.first + c.count) - c.first):
                yield self._to_frame(self._row(k, rel))
            i = c.first + c.count

    def full_frame_at(self, i: int) -> Frame:
        """The full frame a client attaching just after frame `i` would have received:
        frame `i` with the graph window and the recent activity, as the engine kept them."""
        k = self._chunk_of(i)
        row = self._row(k, i - self._chunks[k].first)
        row.update(points=self._points_window(i), activity=self._activity_window(i))
        row.update(full=True, sample=None)  # as the engine's full_frame()
        return self._to_frame(row)

    def _activity_window(self, i: int) -> list[Any]:
        """The last activity_keep entries up to frame `i`: nearest snapshot, then frames."""
        while True:
            s = bisect.bisect_right(self._snap_at, i) - 1
            window: deque[Any] = deque(maxlen=self.header.activity_keep)
            start = 0
            if s >= 0:
                try:
                    window.extend(self._snapshot(s))
                except RecordingError:
                    del self._snaps[s], self._snap_at[s]
                    continue
                start = self._snap_at[s] + 1
            for row in self._rows_between(_TIMELINE, start, i, only=self._busy):
                if not isinstance(row.get("activity"), list):
                    raise RecordingError(f"{self.path}: frame data is damaged (activity)")
                if row.get("full"):
                    window.clear()
                window.extend(row["activity"])
            return list(window)

    def _points_window(self, i: int) -> list[Any]:
        """The graph points the engine held after frame `i`: those of the last full frame and
        the ticks since, no older than history_s before the newest (times never go back)."""
        f_pos = bisect.bisect_right(self.marks.fulls, i) - 1
        f = self.marks.fulls[f_pos] if f_pos >= 0 else 0
        last = i if self.is_tick(i) else self.prev_tick(i)
        if last is None or last < f:
            start, horizon = f, -math.inf
        else:
            newest = self._points_of(last)
            try:
                horizon = max(float(p["t"]) for p in newest) - self.header.history_s
            except (ValueError, TypeError, KeyError) as exc:
                raise RecordingError(f"{self.path}: frame data is damaged (points)") from exc
            start = max(f, self._first_at_or_after(horizon))
        window = []
        for points in self._rows_between(_POINTS, start, i):
            for p in points:
                if not isinstance(p, dict) or not isinstance(p.get("t"), int | float):
                    raise RecordingError(f"{self.path}: frame data is damaged (points)")
                if p["t"] >= horizon:
                    window.append(p)
        return window

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- decoding --------------------------------------------------------------------------
    def _to_frame(self, d: Mapping[str, Any]) -> Frame:
        try:
            frame = frame_from_dict(d, info=self.info, plan=self.plan)
        except Exception as exc:  # untrusted bytes: any decoding failure means "damaged"
            raise RecordingError(f"{self.path}: frame data is damaged ({exc!r})") from exc
        if frame.state.step_index >= len(self.plan) or not math.isfinite(frame.now):
            raise RecordingError(f"{self.path}: frame data is damaged (impossible state)")
        return frame

    def _row(self, k: int, rel: int) -> dict[str, Any]:
        """Frame `rel` of chunk `k` as a codec dict (without info and plan)."""
        entry = self._entry(k)
        rest = entry[2 + _REST + 1]
        if rest is not None:
            row = dict(rest[rel])
        else:
            data = self._part(k, _REST)
            row = self._checked(k, lambda: [columns.decode_row(data, rel)], 1)[0]
        row.update(self._timeline(k)[rel])
        row["points"] = self._points_of(self._chunks[k].first + rel)
        return row

    def _rows_between(
        self, part: int, start: int, stop: int, only: list[bool] | None = None
    ) -> Iterator[Any]:
        """Part `part` of frames `start` to `stop` (inclusive), of chunks `only` allows."""
        j = max(start, 0)
        while j <= stop:
            k = self._chunk_of(j)
            c = self._chunks[k]
            if only is None or only[k]:
                yield from self._part(k, part)[j - c.first : stop + 1 - c.first]
            j = c.first + c.count

    def _timeline(self, k: int) -> list[dict[str, Any]]:
        rows = self._part(k, _TIMELINE)
        assert isinstance(rows, list)
        return rows

    def _points_of(self, i: int) -> list[Any]:
        k = self._chunk_of(i)
        points = self._part(k, _POINTS)[i - self._chunks[k].first]
        assert isinstance(points, list)
        return points

    def _rest_rows(self, k: int) -> list[dict[str, Any]]:
        """Every frame's rest in chunk `k` (decoded once, for playing in order)."""
        entry = self._entry(k)
        if entry[2 + _REST + 1] is None:
            data = self._part(k, _REST)
            entry[2 + _REST + 1] = self._checked(k, lambda: columns.decode(data), entry[0].count)
        rows = entry[2 + _REST + 1]
        assert isinstance(rows, list)
        return rows

    def _entry(self, k: int) -> list[Any]:
        """Chunk `k`'s cache entry: info, payload, its three parts, all its rests decoded."""
        c = self._chunks[k]
        entry = self._cache.get(c.offset)
        if entry is None:
            entry = [*self._read_chunk(k), None, None, None, None]
            self._cache[c.offset] = entry
            if len(self._cache) > self._CACHE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(c.offset)
        return entry

    def _part(self, k: int, part: int) -> Any:
        entry = self._entry(k)
        if entry[2 + part] is None:
            count = entry[0].count

            def load() -> Any:
                data = json.loads(decompress(entry[0], entry[1], part))
                if part == _REST:
                    if not isinstance(data, dict) or len(data.get("s", ())) != count:
                        raise ValueError("wrong number of frames")
                elif part == _POINTS:
                    names = self.header.point_fields
                    if not isinstance(data, list) or not all(isinstance(p, list) for p in data):
                        raise ValueError("damaged points")
                    rows = []
                    for frame_points in data:
                        if not all(
                            isinstance(v, list) and len(v) == len(names) for v in frame_points
                        ):
                            raise ValueError("damaged points")
                        rows.append(
                            {"points": [dict(zip(names, v, strict=True)) for v in frame_points]}
                        )
                    return rows
                elif not all(isinstance(r.get("now"), int | float) for r in data):
                    raise ValueError("a frame has no time")
                return data

            loaded = self._checked(k, load, None if part == _REST else count)
            entry[2 + part] = [r["points"] for r in loaded] if part == _POINTS else loaded
        return entry[2 + part]

    def _checked(self, k: int, load: Callable[[], Any], count: int | None) -> Any:
        """Run `load` (and check it gave `count` mappings); any failure means chunk `k` is
        damaged, which ends the readable recording just before it."""
        c = self._chunks[k]
        try:
            data = load()
            if count is not None and (
                not isinstance(data, list)
                or len(data) != count
                or not all(isinstance(r, dict) for r in data)
            ):
                raise ValueError("wrong number of frames")
        except (ChunkError, ValueError, RecursionError) as exc:
            self._truncate(k, f"the chunk at byte {c.offset} holds damaged frames ({exc})")
            raise RecordingError(f"{self.path}: {self.problem}") from exc
        return data

    def _read_chunk(self, k: int) -> tuple[ChunkInfo, bytes]:
        c = self._chunks[k]
        try:
            info, payload = read_chunk(self._handle, c.offset, self._size)
            if (info.kind, info.first, info.count) != ("F", c.first, c.count):
                raise ChunkError(f"the index does not match the chunk at byte {c.offset}")
            return info, payload
        except (ChunkError, OSError) as exc:
            self._truncate(k, str(exc))
            raise RecordingError(f"{self.path}: {self.problem}") from exc

    def _snapshot(self, s: int) -> list[Any]:
        c = self._snaps[s]
        try:
            info, payload = read_chunk(self._handle, c.offset, self._size)
            body = json.loads(decompress(info, payload))
            if info.kind != "S" or not isinstance(body, dict) or body.get("index") != c.first:
                raise ValueError("not the snapshot the index names")
            activity = body["activity"]
            if not isinstance(activity, list):
                raise ValueError("damaged activity")
        except (ChunkError, ValueError, KeyError, RecursionError, OSError) as exc:
            raise RecordingError(f"the snapshot at byte {c.offset} is damaged ({exc})") from exc
        return activity

    def _truncate(self, k: int, why: str) -> None:
        """Chunk `k` is unreadable: the readable recording ends just before it."""
        lost = self._chunks[k]
        self._chunks = self._chunks[:k]
        self._firsts, self._nt, self._busy = self._firsts[:k], self._nt[:k], self._busy[:k]
        self._tick_prefix = self._tick_prefix[: k + 1]
        keep = [j for j, at in enumerate(self._snap_at) if at < lost.first]
        self._snaps = [self._snaps[j] for j in keep]
        self._snap_at = [self._snap_at[j] for j in keep]
        m = self.marks
        for marks in (m.actions, m.verdicts, m.phases, m.fulls):
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
