"""Service level objectives: availability and latency, error budget left and burn rate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from canary_tui.core.metrics import VariantCounts


class SLOKind(StrEnum):
    AVAILABILITY = "availability"
    LATENCY = "latency"


@dataclass(frozen=True, slots=True)
class SLO:
    """`objective` is the good fraction promised, e.g. 0.999 (99.9% of requests succeed)."""

    name: str
    kind: SLOKind
    objective: float
    threshold_ms: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.objective < 1.0:
            raise ValueError(f"SLO {self.name!r}: objective must be between 0 and 1 (exclusive)")
        if self.kind is SLOKind.LATENCY and (self.threshold_ms is None or self.threshold_ms <= 0):
            raise ValueError(f"latency SLO {self.name!r} needs a positive threshold_ms")

    @property
    def budget(self) -> float:
        """The bad fraction the objective allows."""
        return 1.0 - self.objective

    def bad(self, counts: VariantCounts) -> float | None:
        """Bad events in `counts`, or None when they cannot be told (no histogram)."""
        if self.kind is SLOKind.AVAILABILITY:
            return counts.errors
        if counts.latency is None or self.threshold_ms is None:
            return None
        return counts.latency.count_above(self.threshold_ms / 1000.0)


@dataclass(frozen=True, slots=True)
class Gauge:
    """How an SLO stands for the canary: current good fraction, budget left, burn rate."""

    slo: str
    objective: float
    current: float | None
    budget_left: float | None
    burn_rate: float | None
    requests: float

    def to_dict(self) -> dict[str, object]:
        return {
            "slo": self.slo,
            "objective": self.objective,
            "current": self.current,
            "budget_left": self.budget_left,
            "burn_rate": self.burn_rate,
            "requests": self.requests,
        }


def gauge(slo: SLO, total: VariantCounts, recent: VariantCounts) -> Gauge:
    """The gauge over the whole canary (`total`) with the burn rate over `recent` counts.

    Budget left is 1 - (bad fraction / allowed bad fraction): 1.0 untouched, 0 spent,
    negative overspent. Burn rate 1.0 spends the budget exactly over the SLO period.
    """
    bad_total = slo.bad(total)
    current = budget_left = burn = None
    if bad_total is not None and total.requests > 0:
        bad_fraction = bad_total / total.requests
        current = 1.0 - bad_fraction
        budget_left = 1.0 - bad_fraction / slo.budget
    bad_recent = slo.bad(recent)
    if bad_recent is not None and recent.requests > 0:
        burn = (bad_recent / recent.requests) / slo.budget
    return Gauge(slo.name, slo.objective, current, budget_left, burn, total.requests)
