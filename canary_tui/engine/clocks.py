"""Real clocks for the loop: wall time, and wall time sped up for the demo."""

from __future__ import annotations

import time


class WallClock:
    """Real time: the system's wall clock and its monotonic clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Time running `speed` times faster, starting now (the demo's --speed).

    Both readings derive from the monotonic clock, so a wall-clock step does not jump the
    simulated time either.
    """

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.speed

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
