"""The recording reader: open a recording (whole, cut short, or damaged) and seek in it.

A `Recording` reads a file written by `Recorder`: complete (its index is read, nothing else),
or cut short by a crash (its chunks are scanned, up to the last whole one). It reads frames
in order, finds frames by time, lists the ticks, actions and verdict changes, and rebuilds at
any frame the `full` frame a client attaching at that moment would have received (the graph
window and the recent activity, from the nearest snapshot), which is how replay seeks.
"""

from __future__ import annotations

import bisect
import json
import math
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from canary_tui.core.codec import frame_from_dict
from canary_tui.core.frames import Frame
from canary_tui.records import columns
from canary_tui.records.audit import AuditHead
from canary_tui.records.chunks import (
    FORMAT_VERSION,
    MAGIC,
    PREAMBLE,
    TRAILER,
    TRAILER_MAGIC,
    ChunkError,
    ChunkInfo,
    decompress,
    read_chunk,
)
from canary_tui.records.header import POINTS as _POINTS
from canary_tui.records.header import REST as _REST
from canary_tui.records.header import TIMELINE as _TIMELINE
from canary_tui.records.header import RecordingError, RecordingHeader

__all__ = ["Recording"]


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
        #: Every head of the audit log this recording anchored, in the order written.
        self.audit_anchors: list[AuditHead] = []
        self._handle, self._size = handle, size
        self._chunks: list[ChunkInfo] = []
        self._firsts: list[int] = []
        self._snaps: list[ChunkInfo] = []
        self._snap_at: list[int] = []
        self._tick_prefix: list[int] = [0]
        self._nt: list[list[int]] = []
        self._busy: list[bool] = []  # per chunk: has it any activity (or a full frame)?
        self.marks = _Marks()
        self._final_anchor: AuditHead | None = None
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
        if self._final_anchor is not None:
            self.audit_anchors.append(self._final_anchor)
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
            final = AuditHead.from_json(body.get("audit"))
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
        if final is not None:
            self._final_anchor = final
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
        anchor = AuditHead.from_json(c.meta.get("audit"))
        if anchor is not None and c.kind in "FS":
            self.audit_anchors.append(anchor)
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
    def audit_anchor(self) -> AuditHead | None:
        """The newest head of the audit log this recording saw (None if it anchored none)."""
        return max(self.audit_anchors, key=lambda a: a.seq, default=None)

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
        if not isinstance(rows, list):
            raise RecordingError(f"{self.path}: frame data is damaged (timeline)")
        return rows

    def _points_of(self, i: int) -> list[Any]:
        k = self._chunk_of(i)
        points = self._part(k, _POINTS)[i - self._chunks[k].first]
        if not isinstance(points, list):
            raise RecordingError(f"{self.path}: frame data is damaged (points)")
        return points

    def _rest_rows(self, k: int) -> list[dict[str, Any]]:
        """Every frame's rest in chunk `k` (decoded once, for playing in order)."""
        entry = self._entry(k)
        if entry[2 + _REST + 1] is None:
            data = self._part(k, _REST)
            entry[2 + _REST + 1] = self._checked(k, lambda: columns.decode(data), entry[0].count)
        rows = entry[2 + _REST + 1]
        if not isinstance(rows, list):
            raise RecordingError(f"{self.path}: frame data is damaged (columns)")
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
