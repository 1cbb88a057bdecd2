"""The canary's state: phase, step, weight, shadow mode, auto-rollback arming and version."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Phase(StrEnum):
    """Where the canary is in its life. PROMOTED and ROLLED_BACK are terminal."""

    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"

    @property
    def terminal(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True, slots=True)
class LastChange:
    """Who changed the state last, what they did (past tense) and when; for stale refusals."""

    actor: str
    did: str
    at: float


@dataclass(frozen=True, slots=True)
class CanaryState:
    """An immutable snapshot of the canary. `version` grows by one on every change."""

    phase: Phase
    step_index: int
    weight: int
    shadow: bool
    armed: bool
    version: int
    step_started_at: float
    started_at: float
    last_change: LastChange | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"weight must be within 0..100, got {self.weight}")
        if self.step_index < 0:
            raise ValueError(f"step index must not be negative, got {self.step_index}")

    @property
    def terminal(self) -> bool:
        return self.phase.terminal

    def time_in_step(self, now: float) -> float:
        return max(0.0, now - self.step_started_at)

    def evolve(self, **changes: object) -> CanaryState:
        """A copy with `changes` applied and the version bumped."""
        return replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]

    @classmethod
    def initial(cls, first_weight: int, now: float, armed: bool = True) -> CanaryState:
        return cls(
            phase=Phase.PROGRESSING,
            step_index=0,
            weight=first_weight,
            shadow=False,
            armed=armed,
            version=1,
            step_started_at=now,
            started_at=now,
        )
