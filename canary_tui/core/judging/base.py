"""The judge interface the engine talks to, and the counting shared by every judge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class StepContext:
    """Where the canary is when verdicts are asked for."""

    step_index: int
    time_in_step: float
    hold_s: float
    now: float


class Judge(Protocol):
    """Sees every window of counts; says PASS / FAIL / INCONCLUSIVE per metric, with evidence."""

    def observe(self, sample: Sample) -> None: ...

    def start_step(self, index: int, now: float) -> None: ...

    def verdicts(self, ctx: StepContext) -> tuple[Verdict, ...]: ...


@runtime_checkable
class LearnsBaseline(Protocol):
    """A judge whose slow-request thresholds are the baseline's own quantiles, fixed before
    the canary starts from the baseline's latency then (the engine reads it for the judge)."""

    calibration_min_requests: float

    @property
    def needs_baseline(self) -> bool:
        """True while some threshold is still to be learnt."""
        ...

    def calibrate(self, baseline_latency: Histogram, when: str = "") -> None: ...

    def thresholds_ms(self) -> dict[str, float | None]: ...


@runtime_checkable
class LearnsDispersion(Protocol):
    """A judge that scales its evidence by the baseline's index of dispersion and can measure
    it on the baseline's windows before the canary (the engine reads them for it)."""

    def learn_dispersion(self, windows: Sequence[Sample]) -> dict[str, float]:
        """Take the windows in; the factor each metric has now (by metric name)."""
        ...

    def dispersion_on_windows_only(self) -> None:
        """From now on measure the dispersion only on the windows `learn_dispersion` is given,
        not on the ticks' samples (whose counts overlap: `SmoothsTicks`)."""
        ...


def bad_and_total(spec: MetricSpec, counts: VariantCounts) -> tuple[float, float] | None:
    """(bad events, trials) for `spec` in `counts`, or None if they cannot be counted."""
    match spec.kind:
        case MetricKind.ERRORS:
            return counts.errors, counts.requests
        case MetricKind.LATENCY:
            if counts.latency is None or spec.threshold_ms is None:
                return None
            return counts.latency.count_above(spec.threshold_ms / 1000.0), counts.latency.total
        case MetricKind.CUSTOM:
            if spec.custom_numerator is None or spec.custom_numerator not in counts.custom:
                return None
            bad = counts.custom[spec.custom_numerator]
            if spec.custom_denominator is None:
                return bad, counts.requests
            if spec.custom_denominator not in counts.custom:
                return None
            return bad, counts.custom[spec.custom_denominator]
    return None  # pragma: no cover


def duration_text(seconds: float) -> str:
    """A duration in words: 600 -> '10 min', 45 -> '45 s', 5400 -> '1.5 h'."""
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def pct(x: float | None) -> str:
    """A rate as a short percentage: 0.0192 -> '1.92%'."""
    if x is None:
        return "n/a"
    value = x * 100
    if value == 0:
        return "0%"
    if value < 0.1:
        return f"{value:.3f}%"
    if value < 10:
        return f"{value:.2f}%"
    return f"{value:.1f}%"
