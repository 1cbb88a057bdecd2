"""The ramp plan: the ordered steps a canary walks through on its way to 100%."""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RampStep:
    """One step of the ramp: the canary's traffic weight and how long it must hold."""

    weight: int
    hold_s: float
    analysis_window_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"step weight must be within 0..100, got {self.weight}")
        if self.hold_s < 0:
            raise ValueError(f"step hold must not be negative, got {self.hold_s}")
        if self.analysis_window_s <= 0:
            raise ValueError(f"analysis window must be positive, got {self.analysis_window_s}")


@dataclass(frozen=True, slots=True)
class RampPlan:
    """An ordered, non-empty list of steps with non-decreasing weights."""

    steps: tuple[RampStep, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a ramp plan needs at least one step")
        weights = [s.weight for s in self.steps]
        if any(b < a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"step weights must not decrease: {weights}")

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def last_index(self) -> int:
        return len(self.steps) - 1

    def step(self, index: int) -> RampStep:
        return self.steps[index]

    @classmethod
    def of(cls, *pairs: tuple[int, float]) -> RampPlan:
        """Build a plan from (weight, hold seconds) pairs; handy in tests and defaults."""
        return cls(tuple(RampStep(weight=w, hold_s=h) for w, h in pairs))


DEFAULT_PLAN = RampPlan.of((5, 60), (10, 60), (25, 120), (50, 120), (75, 120))
