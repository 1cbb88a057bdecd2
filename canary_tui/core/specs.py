"""What to judge: metric specifications (errors, slow requests, custom counts) and tolerances."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MetricKind(StrEnum):
    ERRORS = "errors"  # errors out of requests
    LATENCY = "latency"  # requests slower than threshold out of requests
    CUSTOM = "custom"  # a custom count out of requests (or out of another custom count)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric to compare canary against baseline.

    The canary fails when its bad-event rate is worse than the baseline's by more than the
    tolerance: `ratio` (canary/baseline) and/or `absolute` (canary - baseline, as a fraction).
    """

    name: str
    kind: MetricKind
    threshold_ms: float | None = None
    baseline_quantile: float | None = None  # latency: the baseline's p95 (0.95) instead
    tolerance_ratio: float = 1.2
    tolerance_abs: float = 0.0
    custom_numerator: str | None = None
    custom_denominator: str | None = None

    def __post_init__(self) -> None:
        q = self.baseline_quantile
        if self.kind is MetricKind.LATENCY:
            if (self.threshold_ms is None) == (q is None):
                raise ValueError(
                    f"latency metric {self.name!r} needs threshold_ms or baseline_quantile"
                    " (one of them)"
                )
            if self.threshold_ms is not None and self.threshold_ms <= 0:
                raise ValueError(f"latency metric {self.name!r} needs a positive threshold_ms")
            if q is not None and not 0.5 <= q < 1.0:
                raise ValueError(f"metric {self.name!r}: baseline_quantile must lie in [0.5, 1)")
        elif q is not None:
            raise ValueError(f"metric {self.name!r}: only a latency metric has a baseline_quantile")
        if self.kind is MetricKind.CUSTOM and not self.custom_numerator:
            raise ValueError(f"custom metric {self.name!r} needs a numerator")
        if self.tolerance_ratio < 1.0:
            raise ValueError(f"metric {self.name!r}: tolerance ratio must be at least 1.0")
        if self.tolerance_abs < 0:
            raise ValueError(f"metric {self.name!r}: absolute tolerance must not be negative")


DEFAULT_METRICS = (
    MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.5, tolerance_abs=0.002),
    MetricSpec(
        "latency", MetricKind.LATENCY, threshold_ms=250.0, tolerance_ratio=1.5, tolerance_abs=0.005
    ),
)
