"""Replay: a Session fed by a recording instead of an engine; every action is refused.

The dashboard cannot tell a replay from a live session except that actions are refused: it
gets a full frame first (rebuilt from the recording's nearest snapshot), then frames as they
were published. Playing, stepping and seeking are methods here, driven by the TUI's keys and
timer: playing moves a playhead through recorded time at a speed; stepping moves one tick;
seeking delivers a full frame rebuilt for that moment, so the dashboard ends up exactly as
it was live then.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from canary_tui.core.actions import ActionOutcome, Actor, Verb
from canary_tui.core.frames import Frame
from canary_tui.records.recording import Recording, RecordingError
from canary_tui.session.base import FrameHandler

SPEEDS = (1.0, 2.0, 10.0, 60.0)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?")


class ReplaySession:
    """A Session that plays a recording. Control methods run on the event loop thread."""

    def __init__(self, recording: Recording, *, identity: Actor | None = None) -> None:
        if recording.frames == 0:
            raise RecordingError(f"{recording.path}: the recording holds no frames to replay")
        self.recording = recording
        self._identity = identity or Actor("replay", kind="person")
        self._on_frame: FrameHandler | None = None
        self.on_change: Callable[[], None] | None = None
        self.position = 0
        self.playhead = recording.time_of(0)
        self.speed = SPEEDS[0]
        self.playing = False
        self.current: Frame = recording.full_frame_at(0)

    @classmethod
    def open(cls, path: Path | str, *, identity: Actor | None = None) -> ReplaySession:
        """Open a recording for replay. Raises RecordingError when nothing can be replayed."""
        recording = Recording.open(path)
        try:
            return cls(recording, identity=identity)
        except RecordingError as exc:
            recording.close()
            problem = f" ({recording.problem})" if recording.problem else ""
            raise RecordingError(f"{exc}{problem}") from exc

    # --- the Session protocol --------------------------------------------------------------
    @property
    def identity(self) -> Actor:
        return self._identity

    @property
    def read_only(self) -> str | None:
        return f"replay of {self.recording.path.name}"

    async def attach(self, on_frame: FrameHandler) -> None:
        self._on_frame = on_frame
        try:
            self._seek(self.position)  # a full frame first, as a live session sends
        except RecordingError:
            self._damaged()
        self._changed()

    async def submit(
        self, verb: Verb, *, expected_version: int | None, reason: str = ""
    ) -> ActionOutcome:
        version = self.current.state.version
        return ActionOutcome(False, verb, f"actions are disabled: {self.read_only}", version)

    async def detach(self) -> None:
        self._on_frame = None
        self.playing = False
        self.recording.close()

    # --- where we are ----------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.recording.frames

    @property
    def at_end(self) -> bool:
        return self.position >= self.frames - 1

    @property
    def tick(self) -> int:
        """Ticks up to the frame shown (0 if the recording shrank to nothing under us)."""
        try:
            return self.recording.tick_number(self.position)
        except RecordingError:
            return 0

    @property
    def ticks(self) -> int:
        return self.recording.ticks

    @property
    def problem(self) -> str | None:
        """Why the replay is not the whole session (cut short, damaged), or None."""
        return self.recording.problem

    # --- playing ---------------------------------------------------------------------------
    def play(self) -> None:
        if self.at_end:
            self.seek(0)
        self.playing = True
        self._changed()

    def pause(self) -> None:
        self.playing = False
        self._changed()

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def set_speed(self, speed: float) -> None:
        if speed > 0:
            self.speed = speed
            self._changed()

    def faster(self) -> None:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))

    def slower(self) -> None:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))

    def advance(self, wall_seconds: float) -> int:
        """Move the playhead by `wall_seconds` x speed; deliver the frames it passes.
        Returns how many were delivered; stops playing at the end."""
        if not self.playing:
            return 0
        self.playhead += wall_seconds * self.speed
        delivered = 0
        try:
            while not self.at_end and self.recording.time_of(self.position + 1) <= self.playhead:
                self._deliver(self.position + 1)
                delivered += 1
        except RecordingError:
            self._damaged()
        if self.at_end:
            self.playing = False
        if delivered or not self.playing:
            self._changed()
        return delivered

    # --- stepping and seeking --------------------------------------------------------------
    def step(self, ticks: int = 1) -> None:
        """Forward: deliver the frames up to the next tick. Back: show the previous tick."""
        self.playing = False
        try:
            for _ in range(abs(ticks)):
                if ticks > 0:
                    target = self.recording.next_tick(self.position)
                    last = self.frames - 1 if target is None else target
                    while self.position < last:
                        self._deliver(self.position + 1)
                else:
                    back = self.recording.prev_tick(self.position)
                    self._seek(0 if back is None else back)
            self.playhead = self.current.now
        except RecordingError:
            self._damaged()
        self._changed()

    def seek(self, index: int) -> None:
        """Show the dashboard as it was right after frame `index` (a full frame)."""
        try:
            self._seek(max(0, min(index, self.frames - 1)))
        except RecordingError:
            self._damaged()
        self._changed()

    def seek_time(self, t: float) -> None:
        try:
            index = self.recording.index_at(t)
        except RecordingError:
            self._damaged()
            index = self.position
        self.seek(index)

    def next_action(self) -> bool:
        return self._jump(self.recording.marks.actions, forward=True)

    def prev_action(self) -> bool:
        return self._jump(self.recording.marks.actions, forward=False)

    def next_verdict_change(self) -> bool:
        return self._jump(self.recording.marks.verdicts, forward=True)

    def prev_verdict_change(self) -> bool:
        return self._jump(self.recording.marks.verdicts, forward=False)

    def _jump(self, marks: list[int], *, forward: bool) -> bool:
        if forward:
            pos = bisect.bisect_right(marks, self.position)
            target = marks[pos] if pos < len(marks) else None
        else:
            pos = bisect.bisect_left(marks, self.position) - 1
            target = marks[pos] if pos >= 0 else None
        if target is None:
            return False
        self.playing = False
        self.seek(target)
        return True

    def parse_time(self, text: str) -> float:
        """A recorded time from what a person types; raises ValueError with a hint.

        `HH:MM:SS` (or `HH:MM`): UTC wall-clock time during the recording; `+90s`, `-2m`:
        relative to now; `1m30s`, `90`, `1h`: from the start; `50%`: of the way through.
        """
        s = text.strip().lower()
        start, end = self.recording.start_time, self.recording.end_time
        try:
            if s.endswith("%"):
                return start + (end - start) * float(s[:-1]) / 100.0
            if ":" in s:
                return _clock_on(s, start, end)
            if s[:1] in "+-" and len(s) > 1:
                sign = 1.0 if s[0] == "+" else -1.0
                return self.current.now + sign * _duration(s[1:])
            return start + _duration(s)
        except ValueError:
            raise ValueError(
                f"cannot read {text!r}: type HH:MM:SS (UTC), +30s / -2m, 1m30s from the "
                "start, or 50%"
            ) from None

    # --- delivering ------------------------------------------------------------------------
    def _deliver(self, index: int) -> None:
        frame = self.recording.frame(index)
        self.position, self.current = index, frame
        if self._on_frame is not None:
            self._on_frame(frame)

    def _seek(self, index: int) -> None:
        frame = self.recording.full_frame_at(index)
        self.position, self.current, self.playhead = index, frame, frame.now
        if self._on_frame is not None:
            self._on_frame(frame)

    def _damaged(self) -> None:
        """A damaged chunk was found: the recording now ends before it; stay within it."""
        self.playing = False
        if self.position >= self.frames:
            with contextlib.suppress(RecordingError):  # nothing readable is left
                self._seek(self.frames - 1)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _duration(text: str) -> float:
    m = _DURATION.fullmatch(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(text)
    h, mins, secs = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + secs


def _clock_on(text: str, start: float, end: float) -> float:
    """`HH:MM[:SS]` UTC on the recording's first day (or the next, for a session that runs
    over midnight)."""
    parts = [float(p) for p in text.split(":")]
    if len(parts) == 2:
        parts.append(0.0)
    if len(parts) != 3 or not (0 <= parts[0] < 24 and 0 <= parts[1] < 60 and 0 <= parts[2] < 60):
        raise ValueError(text)
    day = datetime.fromtimestamp(start, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    t = day.timestamp() + parts[0] * 3600 + parts[1] * 60 + parts[2]
    if t < start and t + 86400 <= end:
        t += 86400
    return t
