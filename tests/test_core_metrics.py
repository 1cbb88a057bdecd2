"""Histograms, counts validation, SLO gauges, and the provisional judge."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary_tui.core.judging.base import StepContext
from canary_tui.core.judging.threshold import ThresholdJudge
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.slo import SLO, SLOKind, gauge
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Status

H = Histogram((0.1, 0.25, 0.5, math.inf), (50.0, 80.0, 95.0, 100.0))


def test_count_above_on_bucket_bounds_and_interpolated() -> None:
    assert H.count_above(0.25) == pytest.approx(20.0)
    assert H.count_above(0.5) == pytest.approx(5.0)
    assert H.count_above(0.175) == pytest.approx(35.0)  # halfway through 80-50
    # beyond the last finite bound nothing is known: conservatively, those requests are slow
    assert H.count_above(100.0) == pytest.approx(5.0)


def test_quantile_like_prometheus_histogram_quantile() -> None:
    assert H.quantile(0.5) == pytest.approx(0.1)
    assert H.quantile(0.65) == pytest.approx(0.175)
    assert H.quantile(0.99) == pytest.approx(0.5)  # falls into +Inf: the last finite bound
    assert Histogram((1.0,), (0.0,)).quantile(0.5) is None


@given(st.lists(st.floats(0, 1000), min_size=2, max_size=8))
def test_quantile_is_monotone(increments: list[float]) -> None:
    counts = tuple(float(sum(increments[: i + 1])) for i in range(len(increments)))
    bounds = tuple(float(i + 1) for i in range(len(increments)))
    h = Histogram(bounds, counts)
    qs = [h.quantile(q) for q in (0.1, 0.5, 0.9, 0.99)]
    if h.total > 0:
        vals = [q for q in qs if q is not None]
        assert vals == sorted(vals)


@pytest.mark.parametrize(
    ("counts", "fragment"),
    [
        (VariantCounts(math.nan, 0), "finite"),
        (VariantCounts(math.inf, 0), "finite"),
        (VariantCounts(-5, 0), "negative"),
        (VariantCounts(10, 11), "more errors"),
        (VariantCounts(10, 0, Histogram((1.0, math.inf), (8.0, 5.0))), "histogram"),
        (VariantCounts(10, 0, custom={"x": -1.0}), "custom"),
    ],
)
def test_bad_counts_become_no_data(counts: VariantCounts, fragment: str) -> None:
    good = VariantCounts(10, 0)
    s = Sample(0, 1, good, counts).validated()
    assert not s.ok and s.problem is not None and fragment in s.problem


def test_gauge_budget_and_burn() -> None:
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.99)
    g = gauge(slo, VariantCounts(1000, 5), VariantCounts(100, 2))
    assert g.current == pytest.approx(0.995)
    assert g.budget_left == pytest.approx(0.5)
    assert g.burn_rate == pytest.approx(2.0)
    lat = SLO("latency", SLOKind.LATENCY, 0.9, threshold_ms=250)
    g2 = gauge(lat, VariantCounts(100, 0, H), VariantCounts(100, 0, H))
    assert g2.current == pytest.approx(0.8)
    assert g2.budget_left == pytest.approx(1 - 0.2 / 0.1)
    assert gauge(slo, VariantCounts(0, 0), VariantCounts(0, 0)).current is None


def _sample(t: float, b: tuple[float, float], c: tuple[float, float]) -> Sample:
    return Sample(t - 1, t, VariantCounts(*b), VariantCounts(*c))


def test_threshold_judge_fails_clear_regression_and_never_passes_without_data() -> None:
    spec = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.5)
    judge = ThresholdJudge((spec,), window_s=60, min_requests=100)
    ctx = StepContext(0, 10, 5, 10)
    assert judge.verdicts(ctx)[0].status is Status.INCONCLUSIVE
    for t in range(1, 31):
        judge.observe(_sample(t, (1000, 5), (1000, 50)))
    v = judge.verdicts(ctx)[0]
    assert v.status is Status.FAIL and "FAIL" in v.why and v.evidence.effect == pytest.approx(10)
    judge.observe(Sample.no_data(31, 32, "connection refused"))
    v = judge.verdicts(ctx)[0]
    assert v.status is Status.INCONCLUSIVE and v.no_data and "connection refused" in v.why
