"""Real clocks for the loop: wall time, and wall time sped up for the demo."""

from __future__ import annotations

import time


class WallClock:
    """Real time."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Wall time running `speed` times faster, starting now (the demo's --speed)."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall0 = time.time()
        self._origin = self._wall0

    def now(self) -> float:
        return self._origin + (time.time() - self._wall0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)
