"""Time as the core sees it: a Clock protocol (wall time and a monotonic clock) and a virtual
clock for tests and replays.

Wall time (`now`) is only for query windows and records. Everything that schedules or
measures a duration (ticks, holds, graces, kill retries, staleness) uses `monotonic`, which
never steps when someone or NTP sets the system clock.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class Clock(Protocol):
    """Seconds since the epoch, a monotonic reading, and a way to wait for time to move."""

    def now(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class Scaled(Protocol):
    """A clock that runs `speed` times faster than real time (the demo's --speed)."""

    speed: float


def speed_of(clock: Clock) -> float:
    """How many times faster than real time `clock` runs (1 unless it says otherwise)."""
    return float(clock.speed) if isinstance(clock, Scaled) else 1.0


class VirtualClock:
    """A clock that only moves when told to; `sleep` advances it instantly.

    `step_wall` moves the wall clock alone (forwards or backwards), as an operator or NTP
    setting the system clock would: the monotonic reading does not move.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        """Set the wall clock `seconds` forwards (or backwards, if negative)."""
        self._now += seconds
