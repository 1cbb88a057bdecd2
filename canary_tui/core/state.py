"""The canary's state: phase, step, weight, shadow mode, auto-rollback arming, the kill latch,
why the plan holds, and the version every change bumps.

Times in a state (`step_started_at`, `started_at`, `LastChange.at`) are the loop's time: a
monotonic clock that starts at the wall clock when the loop starts (see `engine.shared`), so a
wall-clock step can neither end a hold early nor stretch it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any


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
class KillLatch:
    """An accepted kill the router has not confirmed yet.

    While it is set nothing may raise the weight, step, resume, shadow or promote; only the
    router's confirmation (weight 0 read back) or an operator's audited "cancel kill" lifts it.
    It is part of every audit record's state, so it survives restarts.
    """

    actor: str
    reason: str
    action_id: str
    at: float  # wall time the kill was accepted (for people; never used for scheduling)

    def to_dict(self) -> dict[str, object]:
        return {"actor": self.actor, "reason": self.reason, "action_id": self.action_id,
                "at": self.at}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillLatch:
        return cls(
            actor=str(data.get("actor", "?")),
            reason=str(data.get("reason", "")),
            action_id=str(data.get("action_id", "")),
            at=float(data.get("at", 0.0)),
        )


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
    kill: KillLatch | None = None
    #: Why the plan holds (auto-advance stops) until a person acts: the router was changed
    #: outside the loop, or the loop adopted a weight that is not on the plan.
    hold: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 100:
            raise ValueError(f"weight must be within 0..100, got {self.weight}")
        if self.step_index < 0:
            raise ValueError(f"step index must not be negative, got {self.step_index}")

    @property
    def terminal(self) -> bool:
        return self.phase.terminal

    @property
    def kill_pending(self) -> bool:
        return self.kill is not None

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
