"""The sequential judge: verdicts, evidence, guards, no-data handling, calibration."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

import numpy as np
import pytest

from canary_tui.core.judging.base import Judge, StepContext
from canary_tui.core.judging.sequential import (
    BurnWindow,
    Effect,
    SequentialJudge,
    _Guard,
)
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.slo import SLO, SLOKind
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Status, Verdict
from canary_tui.tui.widgets.verdicts import effect_text

BOUNDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 1.0, math.inf)
ERRORS = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.2)
LATENCY = MetricSpec("latency", MetricKind.LATENCY, threshold_ms=250.0, tolerance_ratio=1.2)


def hist(n: int, slow: int) -> Histogram:
    """n requests, `slow` of them above 250 ms (spread over the buckets around it)."""
    fast = n - slow
    counts = [fast * 0.1, fast * 0.4, fast * 0.7, fast * 0.9, float(fast)]
    counts += [fast + slow * 0.5, fast + slow * 0.8, fast + slow * 0.9, fast + slow * 1.0]
    counts.append(float(n))
    return Histogram(BOUNDS, tuple(counts))


def stream(
    seed: int,
    ticks: int,
    *,
    rate: float = 1000.0,
    share: float = 0.05,
    base_err: float = 0.005,
    canary_err: float = 0.005,
    base_slow: float = 0.05,
    canary_slow: float = 0.05,
    onset: int = 0,
    start: float = 0.0,
) -> Iterator[Sample]:
    rng = np.random.default_rng(seed)
    for t in range(ticks):
        after = t >= onset
        total = rng.poisson(rate)
        n_c = int(rng.binomial(total, share))
        n_b = int(total - n_c)
        c_err = canary_err if after else base_err
        c_slow = canary_slow if after else base_slow
        baseline = VariantCounts(
            n_b, float(rng.binomial(n_b, base_err)), hist(n_b, int(rng.binomial(n_b, base_slow)))
        )
        canary = VariantCounts(
            n_c, float(rng.binomial(n_c, c_err)), hist(n_c, int(rng.binomial(n_c, c_slow)))
        )
        yield Sample(start + t, start + t + 1, baseline, canary)


def run(
    judge: SequentialJudge, samples: Iterator[Sample], hold: float = 60.0, step_start: float = 0.0
) -> tuple[tuple[Verdict, ...], int]:
    """Feed samples as the loop does; stop at the first FAIL. Returns (verdicts, ticks)."""
    verdicts: tuple[Verdict, ...] = ()
    ticks = 0
    for s in samples:
        judge.observe(s)
        ticks += 1
        verdicts = judge.verdicts(StepContext(0, s.end - step_start, hold, s.end))
        if any(v.status is Status.FAIL for v in verdicts):
            break
    return verdicts, ticks


def by_name(verdicts: tuple[Verdict, ...]) -> dict[str, Verdict]:
    return {v.metric: v for v in verdicts}


# --- the protocol and the settings ----------------------------------------------------------


def test_it_is_a_judge_and_checks_its_settings() -> None:
    judge: Judge = SequentialJudge((ERRORS, LATENCY))
    assert judge is not None
    with pytest.raises(ValueError, match="alpha"):
        SequentialJudge((ERRORS,), alpha=0.0)
    with pytest.raises(ValueError, match="unknown metric"):
        SequentialJudge((ERRORS,), slow_quantiles={"latency": 0.95})
    with pytest.raises(ValueError, match="quantile"):
        SequentialJudge((LATENCY,), slow_quantiles={"latency": 1.5})
    with pytest.raises(ValueError, match="at least one"):
        SequentialJudge(())
    j = SequentialJudge(
        (ERRORS, LATENCY), alpha=0.01, slos=(SLO("avail", SLOKind.AVAILABILITY, 0.99),)
    )
    assert j.alpha_per_test == pytest.approx(0.01 / 3)


# --- no data is never a PASS --------------------------------------------------------------


def test_no_window_yet_a_broken_query_and_silent_variants_are_no_data() -> None:
    judge = SequentialJudge((ERRORS, LATENCY), min_requests=0)
    ctx = StepContext(0, 1000.0, 0.0, 1000.0)
    first = judge.verdicts(ctx)
    assert all(v.no_data and v.status is Status.INCONCLUSIVE for v in first)
    assert "waiting for the first window" in first[0].why

    judge.observe(Sample.no_data(0, 1, "prometheus: connection refused"))
    broken = judge.verdicts(ctx)
    assert all(v.no_data for v in broken)
    assert broken[0].why == "no data: prometheus: connection refused"

    judge.observe(
        Sample(1, 2, VariantCounts(100, 0, hist(100, 5)), VariantCounts(0, 0, hist(0, 0)))
    )
    silent = judge.verdicts(ctx)
    assert all(v.no_data for v in silent)
    assert "canary has served no requests yet" in silent[0].why

    judge.observe(Sample(2, 3, VariantCounts(100, 0), VariantCounts(5, 0)))  # no histograms
    v = by_name(judge.verdicts(ctx))
    assert not v["errors"].no_data
    assert v["latency"].no_data and "no latency histogram" in v["latency"].why

    judge.observe(Sample(3, 4, VariantCounts(100, 0), VariantCounts(float("nan"), 0)))
    nan = judge.verdicts(ctx)
    assert all(v.no_data for v in nan) and "not a finite number" in nan[0].why


def test_a_variant_that_stops_serving_makes_every_verdict_no_data() -> None:
    judge = SequentialJudge((ERRORS,), no_traffic_s=30.0)
    for s in stream(1, 40):
        judge.observe(s)
    for t in range(40, 75):
        judge.observe(Sample(t, t + 1, VariantCounts(950, 5), VariantCounts(0, 0)))
    (v,) = judge.verdicts(StepContext(0, 75.0, 0.0, 75.0))
    assert v.no_data and v.status is Status.INCONCLUSIVE
    assert re.search(r"the canary served no requests for 3\d s", v.why)


def test_no_data_after_a_failure_does_not_hide_it_as_a_pass() -> None:
    judge = SequentialJudge((ERRORS,))
    verdicts, _ = run(judge, stream(2, 600, canary_err=0.05))
    assert verdicts[0].status is Status.FAIL
    judge.observe(Sample.no_data(600, 601, "timeout"))
    (v,) = judge.verdicts(StepContext(0, 601.0, 0.0, 601.0))
    assert v.status is Status.INCONCLUSIVE and v.no_data


# --- FAIL, PASS, INCONCLUSIVE -----------------------------------------------------------------


def test_a_bad_canary_fails_within_seconds_with_evidence_a_person_can_read() -> None:
    judge = SequentialJudge((ERRORS, LATENCY))
    verdicts, ticks = run(judge, stream(3, 600, canary_err=0.02))
    v = by_name(verdicts)["errors"]
    assert v.status is Status.FAIL
    assert ticks < 90
    assert re.fullmatch(
        r"errors: canary \d+\.\d+% vs baseline 0\.\d+%( \(last [\d.]+ (min|s)\))?, "
        r"ratio \d+\.\d\dx \[>?\d+\.\d\dx, >?\d+\.\d+x\], tolerance 1\.2x: FAIL",
        v.why,
    ), v.why
    e = v.evidence
    assert e.rule == "sequential: beyond tolerance"
    assert e.interval is not None and e.interval[0] > 1.2
    assert e.interval[0] <= (e.effect or 0) <= e.interval[1]
    assert e.tolerance == 1.2
    assert e.p_value is not None and e.p_value <= 0.01 / 2
    assert e.canary_n > 0 and e.baseline_n > e.canary_n
    assert e.canary_rate is not None and e.baseline_rate is not None
    assert e.canary_rate > e.baseline_rate
    # what the audit record stores survives a round trip through JSON
    again = Verdict.from_dict(json.loads(json.dumps(v.to_dict(), allow_nan=False)))
    assert again == v


def test_a_healthy_canary_passes_after_the_hold_and_not_before() -> None:
    judge = SequentialJudge((LATENCY,), min_requests=500)
    statuses = []
    for s in stream(4, 400, base_slow=0.1, canary_slow=0.1):
        judge.observe(s)
        (v,) = judge.verdicts(StepContext(0, s.end, 120.0, s.end))
        statuses.append(v)
    assert all(v.status is not Status.FAIL for v in statuses)
    assert all(v.status is not Status.PASS for v in statuses[:119])  # held 119 of 120 s
    early = statuses[100]
    assert "held" in early.why or early.status is Status.INCONCLUSIVE
    last = statuses[-1]
    assert last.status is Status.PASS, last.why
    assert re.fullmatch(
        r"latency >250 ms: canary [\d.]+% vs baseline [\d.]+% \(this step\), "
        r"ratio [\d.]+x \[[\d.]+x, [\d.]+x\], tolerance 1\.2x: PASS",
        last.why,
    ), last.why
    assert last.evidence.interval is not None and last.evidence.interval[1] <= 1.2
    assert last.evidence.rule == "sequential: within tolerance"


def test_a_new_step_must_earn_its_own_pass() -> None:
    judge = SequentialJudge((LATENCY,), min_requests=100)
    samples = list(stream(5, 500, base_slow=0.1, canary_slow=0.1))
    for s in samples[:400]:
        judge.observe(s)
    (v,) = judge.verdicts(StepContext(0, 400.0, 60.0, 400.0))
    assert v.status is Status.PASS
    judge.start_step(1, 400.0)
    judge.observe(samples[400])
    (v,) = judge.verdicts(StepContext(1, 1.0, 0.0, 401.0))
    assert v.status is Status.INCONCLUSIVE
    assert "within tolerance" not in v.why


def test_with_canary_scope_a_pass_carries_over_to_the_next_step_after_its_hold() -> None:
    judge = SequentialJudge((LATENCY,), min_requests=100, pass_scope="canary")
    samples = list(stream(5, 500, base_slow=0.1, canary_slow=0.1))
    for s in samples[:400]:
        judge.observe(s)
    judge.start_step(1, 400.0)
    for s in samples[400:410]:
        judge.observe(s)
    (held,) = judge.verdicts(StepContext(1, 10.0, 60.0, 410.0))
    assert held.status is Status.INCONCLUSIVE and "held 10 of 60 s" in held.why
    for s in samples[410:]:
        judge.observe(s)
    (v,) = judge.verdicts(StepContext(1, 100.0, 60.0, 500.0))
    assert v.status is Status.PASS, v.why
    assert "(this step)" not in v.why
    with pytest.raises(ValueError, match="pass_scope"):
        SequentialJudge((LATENCY,), pass_scope="forever")


def test_a_small_difference_is_inconclusive_not_a_failure() -> None:
    judge = SequentialJudge((ERRORS,))
    statuses = [v[0].status for v in _verdicts_over(judge, stream(6, 300, canary_err=0.0055))]
    assert Status.FAIL not in statuses


def _verdicts_over(
    judge: SequentialJudge, samples: Iterator[Sample]
) -> Iterator[tuple[Verdict, ...]]:
    for s in samples:
        judge.observe(s)
        yield judge.verdicts(StepContext(0, s.end, 60.0, s.end))


def test_a_regression_an_hour_into_the_canary_is_caught_as_fast_as_an_early_one() -> None:
    early = SequentialJudge((ERRORS,))
    _, t_early = run(early, stream(7, 900, canary_err=0.02))
    late = SequentialJudge((ERRORS,))
    _, t_late = run(late, stream(7, 3600 + 900, canary_err=0.02, onset=3600, rate=1000.0))
    assert t_late - 3600 < 4 * max(t_early, 20)


def test_load_that_rises_and_falls_does_not_fail_a_healthy_canary() -> None:
    judge = SequentialJudge((ERRORS,), alpha=0.01)
    rng = np.random.default_rng(8)
    for t in range(1200):
        load = 2000 * (1 + 0.9 * math.sin(2 * math.pi * t / 1200))
        err = 0.01 * (1 + 0.8 * math.cos(2 * math.pi * t / 300))  # both variants alike
        total = rng.poisson(load)
        n_c = int(rng.binomial(total, 0.1))
        n_b = int(total - n_c)
        judge.observe(
            Sample(
                t, t + 1,
                VariantCounts(n_b, float(rng.binomial(n_b, err))),
                VariantCounts(n_c, float(rng.binomial(n_c, err))),
            )
        )  # fmt: skip
        (v,) = judge.verdicts(StepContext(0, t + 1.0, 60.0, t + 1.0))
        assert v.status is not Status.FAIL, v.why


# --- tolerances and the difference -----------------------------------------------------------


def test_an_absolute_tolerance_keeps_a_tiny_real_increase_from_failing() -> None:
    small = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.1, tolerance_abs=0.005)
    judge = SequentialJudge((small,))
    # 0.2% -> 0.4%: twice the rate, but only 0.2 percentage points
    verdicts = list(
        _verdicts_over(judge, stream(9, 400, base_err=0.002, canary_err=0.004, rate=5000))
    )
    assert all(v[0].status is not Status.FAIL for v in verdicts)
    assert "or +0.5 pp" in verdicts[-1][0].why
    ratio_only = SequentialJudge((MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.1),))
    v, _ = run(ratio_only, stream(9, 400, base_err=0.002, canary_err=0.004, rate=5000))
    assert v[0].status is Status.FAIL


def test_a_metric_without_bad_events_can_pass_through_its_absolute_tolerance() -> None:
    spec = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.5, tolerance_abs=0.002)
    judge = SequentialJudge((spec,), min_requests=100)
    verdicts = list(_verdicts_over(judge, stream(10, 200, base_err=0.0, canary_err=0.0)))
    assert verdicts[-1][0].status is Status.PASS, verdicts[-1][0].why
    assert "ratio n/a" in verdicts[-1][0].why


def test_the_difference_effect_reports_percentage_points() -> None:
    spec = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.0, tolerance_abs=0.002)
    judge = SequentialJudge((spec,), effect=Effect.DIFFERENCE)
    verdicts, _ = run(judge, stream(11, 600, canary_err=0.03))
    v = verdicts[0]
    assert v.status is Status.FAIL
    assert re.fullmatch(
        r"errors: canary [\d.]+% vs baseline [\d.]+%( \(last [\d.]+ (min|s)\))?, "
        r"difference \+[\d.]+ pp \[\+[\d.]+ pp, \+[\d.]+ pp\], tolerance \+0\.2 pp: FAIL",
        v.why,
    ), v.why
    assert v.evidence.interval is not None and v.evidence.interval[0] > 0.002
    assert v.evidence.tolerance == 0.002
    # and so does the verdict table's diff column, through the evidence alone
    assert v.evidence.effect_kind == "difference"
    assert type(v.evidence).from_dict(v.evidence.to_dict()) == v.evidence  # wire, recordings
    shown = effect_text(v.evidence)
    quoted = re.search(r"difference \+([\d.]+) pp", v.why)
    assert quoted and re.fullmatch(r"\+\d+\.\d\dpp", shown), (shown, v.why)
    assert float(shown[1:-2]) == pytest.approx(float(quoted[1]), abs=0.05)
    ratio = SequentialJudge((spec,))
    r, _ = run(ratio, stream(11, 600, canary_err=0.03))
    assert r[0].evidence.effect_kind == "ratio" and effect_text(r[0].evidence).endswith("x")


# --- the slow-request threshold -----------------------------------------------------------


def test_the_slow_threshold_is_learnt_from_the_baseline_and_snapped_to_a_bucket() -> None:
    judge = SequentialJudge((LATENCY,), slow_quantiles={"latency": 0.95}, calibration_s=30)
    assert judge.thresholds_ms() == {"latency": None}
    samples = stream(12, 200, base_slow=0.08, canary_slow=0.08)
    for s in samples:
        judge.observe(s)
        if s.end < 30:
            (v,) = judge.verdicts(StepContext(0, s.end, 60.0, s.end))
            assert v.status is Status.INCONCLUSIVE and v.evidence.rule == "calibrating"
            assert "learning the baseline's p95" in v.why
    # 8% of requests are above 250 ms, so p95 lies in the (250, 300] bucket: counted from 300
    assert judge.thresholds_ms() == {"latency": 300.0}
    (v,) = judge.verdicts(StepContext(0, 200.0, 60.0, 200.0))
    assert v.why.startswith("latency >300 ms: ")
    assert "baseline p95 was" in v.why or v.status is Status.INCONCLUSIVE


def test_the_engine_can_fix_the_threshold_from_a_pre_canary_histogram() -> None:
    judge = SequentialJudge((LATENCY,), slow_quantiles={"latency": 0.99})
    judge.calibrate(hist(10_000, 300))  # 3% above 250 ms, 1.5% above 300: p99 in (300, 400]
    assert judge.thresholds_ms() == {"latency": 400.0}


def test_a_fixed_threshold_between_buckets_is_snapped_up() -> None:
    spec = MetricSpec("latency", MetricKind.LATENCY, threshold_ms=220.0)
    judge = SequentialJudge((spec,))
    judge.observe(next(stream(13, 1)))
    assert judge.thresholds_ms() == {"latency": 250.0}
    exact = SequentialJudge((spec,), snap_thresholds=False)
    exact.observe(next(stream(13, 1)))
    assert exact.thresholds_ms() == {"latency": 220.0}


# --- guards ---------------------------------------------------------------------------------


def test_the_slo_guard_fails_a_canary_as_bad_as_its_baseline() -> None:
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.999)
    judge = SequentialJudge((ERRORS,), slos=(slo,), burn_windows=())
    verdicts, ticks = run(judge, stream(14, 600, base_err=0.01, canary_err=0.01))
    v = by_name(verdicts)
    assert v["errors"].status is not Status.FAIL
    guard = v["availability SLO"]
    assert guard.status is Status.FAIL
    assert ticks < 120
    assert re.fullmatch(
        r"availability SLO: canary errors [\d.]+%, above the 0\.10% the 99\.9% objective "
        r"allows \(lower bound 0\.1\d*%\): FAIL",
        guard.why,
    ), guard.why
    assert guard.evidence.rule == "slo-bound"
    assert guard.evidence.interval is not None and guard.evidence.interval[0] > 0.001


def test_with_burn_windows_the_guard_fails_fast_and_says_over_how_long() -> None:
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.999)
    judge = SequentialJudge((ERRORS,), slos=(slo,))
    verdicts, _ = run(judge, stream(14, 600, base_err=0.01, canary_err=0.01))
    guard = by_name(verdicts)["availability SLO"]
    assert guard.status is Status.FAIL
    if guard.evidence.rule == "burn-rate":
        assert re.fullmatch(
            r"availability SLO: budget burning [\d.]+x over the [\d.]+ (s|min) so far \(of 6 h\) "
            r"and [\d.]+x over the [\d.]+ (s|min) so far \(of 30 min\), limit 6x: FAIL",
            guard.why,
        ), guard.why


def test_the_slo_guard_passes_a_canary_within_its_objective() -> None:
    slo = SLO("latency", SLOKind.LATENCY, 0.9, threshold_ms=250.0)
    judge = SequentialJudge((ERRORS,), slos=(slo,))
    verdicts = list(_verdicts_over(judge, stream(15, 100)))
    guard = by_name(verdicts[-1])["latency SLO"]
    assert guard.status is Status.PASS
    assert "slow requests" in guard.why and "within" in guard.why


def test_the_burn_rate_rule_needs_both_windows_and_enough_requests() -> None:
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.99)
    guard = _Guard(slo, 0.01, (BurnWindow(600.0, 60.0, 5.0),), None)
    for t in range(600):  # 2% errors for ten minutes, then a minute at 10%
        bad = 20.0 if t < 540 else 100.0
        guard.observe(
            Sample(t, t + 1, VariantCounts(1000, 0), VariantCounts(1000, bad)), float(t), 1.0
        )
    # the long window burns at (540*20 + 60*100) / 600000 / 1% = 2.8x: below 5x
    assert guard._burning() == ""
    for t in range(600, 900):
        guard.observe(
            Sample(t, t + 1, VariantCounts(1000, 0), VariantCounts(1000, 100.0)), float(t), 1.0
        )
    assert re.fullmatch(
        r"budget burning [\d.]+x over 10 min and 10\.0x over 1 min, limit 5x", guard._burning()
    ), guard._burning()
    few = _Guard(slo, 0.01, (BurnWindow(600.0, 60.0, 5.0),), None)
    few.observe(Sample(0, 1, VariantCounts(10, 0), VariantCounts(3, 1.0)), 0.0, 1.0)
    assert few._burning() == ""  # 1 error in 3 requests burns 33x, but proves nothing


# --- bounded memory -------------------------------------------------------------------------


def test_memory_stays_bounded_over_a_long_session() -> None:
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.99)
    judge = SequentialJudge((ERRORS,), slos=(slo,), burn_windows=(BurnWindow(600.0, 60.0, 5.0),))
    for s in stream(16, 2000, rate=50.0):
        judge.observe(s)
    comp, guard = judge._comparisons[0], judge._guards[0]
    assert len(comp._recent) <= 122
    for _, long, short in guard.burns:  # bins of 6 s
        assert len(long._bins) <= 101 and len(short._bins) <= 11


# --- the whole judge under continuous monitoring ----------------------------------------------


@pytest.mark.slow
def test_healthy_canaries_judged_every_second_stay_within_the_false_rollback_budget() -> None:
    """A/A runs through the judge as the loop drives it: errors and slow requests, alpha split
    between them, looked at every window. A generous alpha makes the check meaningful with
    few runs; a fixed-window rule on the same streams fails many of them."""
    runs, alpha = 40, 0.2
    specs = (
        MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.0),
        MetricSpec("latency", MetricKind.LATENCY, threshold_ms=250.0, tolerance_ratio=1.0),
    )
    rolled_back = naive = 0
    for seed in range(runs):
        judge = SequentialJudge(specs, alpha=alpha)
        failed = naive_failed = False
        c_bad = c_n = b_bad = b_n = 0.0
        for s in stream(1000 + seed, 200, rate=300.0, base_err=0.02, canary_err=0.02):
            judge.observe(s)
            if any(
                v.status is Status.FAIL for v in judge.verdicts(StepContext(0, s.end, 60, s.end))
            ):
                failed = True
                break
            assert s.canary is not None and s.baseline is not None
            c_bad, c_n = c_bad + s.canary.errors, c_n + s.canary.requests
            b_bad, b_n = b_bad + s.baseline.errors, b_n + s.baseline.requests
            if c_n > 0 and b_n > 0 and c_bad > 0:  # a z-test on the error rates, every window
                pooled = (c_bad + b_bad) / (c_n + b_n)
                se = math.sqrt(pooled * (1 - pooled) * (1 / c_n + 1 / b_n))
                naive_failed = naive_failed or (c_bad / c_n - b_bad / b_n) / se > 1.645
        rolled_back += failed
        naive += naive_failed
    assert rolled_back / runs <= alpha
    assert naive / runs > alpha


def test_the_guard_quotes_a_recent_rate_that_agrees_with_its_lower_bound() -> None:
    """A regression late in a canary: the whole canary's rate is still under the bound that
    fails it, so the verdict quotes the recent window that shows the failure."""
    slo = SLO("availability", SLOKind.AVAILABILITY, 0.99)
    judge = SequentialJudge((), slos=(slo,), burn_windows=())  # the guard alone
    samples = stream(17, 2000, base_err=0.005, canary_err=0.03, onset=900)
    verdicts, ticks = run(judge, samples)
    guard = by_name(verdicts)["availability SLO"]
    assert guard.status is Status.FAIL and ticks > 900, (ticks, guard.why)
    m = re.fullmatch(
        r"availability SLO: canary errors ([\d.]+)% \(last ([\d.]+) (s|min)\), above the 1\.00% "
        r"the 99% objective allows \(lower bound ([\d.]+)%\): FAIL",
        guard.why,
    )
    assert m, guard.why
    quoted, lower = float(m[1]), float(m[4])
    assert quoted >= lower > 1.0
    whole = guard.evidence.canary_rate
    assert whole is not None and whole * 100 < lower  # what the verdict used to quote


def test_an_open_upper_end_is_infinite_in_the_evidence_and_null_in_json() -> None:
    """'ratio 11.9x [2.09x, >14.8x]': the grid's top is not a bound, so the evidence (audit log,
    report, wire) must not pass it off as one."""
    judge = SequentialJudge((ERRORS,), burn_windows=())
    verdicts, _ = run(judge, stream(18, 600, base_err=0.0002, canary_err=0.3, onset=60))
    errors = by_name(verdicts)["errors"]
    assert errors.status is Status.FAIL and ", >" in errors.why, errors.why
    assert errors.evidence.interval is not None and errors.evidence.interval[1] == math.inf
    data = json.loads(json.dumps(errors.evidence.to_dict(), allow_nan=False))
    assert data["interval"][1] is None
    assert type(errors.evidence).from_dict(data) == errors.evidence


def _huge_stream_verdicts(
    slow_canary: float, start: int, windows: int, slow_baseline: float = 0.0, tol_abs: float = 0.0
) -> list[Verdict]:
    """100k requests/s per variant, `slow_baseline` of the baseline's slow; the canary
    `slow_canary` slow from window `start` (as the baseline before)."""
    bounds = (0.1, 0.25, 0.5, math.inf)
    spec = MetricSpec(
        "latency", MetricKind.LATENCY, threshold_ms=250.0, tolerance_ratio=1.2,
        tolerance_abs=tol_abs,
    )  # fmt: skip
    judge = SequentialJudge((spec,), min_requests=10, dispersion=False, ceiling=None)
    judge.start_step(0, 0.0)
    out = []
    for t in range(windows):
        n = 100_000.0
        slow = (slow_canary if t >= start else slow_baseline) * n
        fast = n - slow_baseline * n
        base = Histogram(bounds, (0.0, fast, n, n))
        canary = Histogram(bounds, (0.0, n - slow, n, n))
        judge.observe(
            Sample(float(t), t + 1.0, VariantCounts(n, 0.0, base), VariantCounts(n, 0.0, canary))
        )
        out.append(judge.verdicts(StepContext(0, t + 1.0, 30.0, t + 1.0))[0])
    return out


def test_a_canary_that_fails_after_a_huge_window_keeps_failing() -> None:
    """The reviewer's case: from 0 to 6% slow at 100k requests/s; the first window's
    evidence was thousands of nats and underflowed the test to -inf, which then never failed
    again ('ratio inf [<0.12x, >11.8x] ... INCONCLUSIVE' for ever)."""
    verdicts = _huge_stream_verdicts(0.06, 73, 150)
    assert [v.status for v in verdicts[73:]] == [Status.FAIL] * 77


def test_a_canary_beyond_an_absolute_tolerance_fails_against_a_baseline_without_bad_events() -> (
    None
):
    """With no slow request in the baseline its rate's lower bound is 0, so the difference
    bound through the ratio was 0 for ever: the canary's own rate bounds it instead."""
    verdicts = _huge_stream_verdicts(0.06, 73, 150, tol_abs=0.002)
    assert verdicts[-1].status is Status.FAIL
    first = next(t for t, v in enumerate(verdicts) if v.status is Status.FAIL)
    assert 74 <= first <= 80  # the whole canary's slow share passes 0.2 pp at window 75
    assert all(v.status is Status.FAIL for v in verdicts[first:])


def test_huge_healthy_traffic_gives_verdicts_with_p_values_in_range() -> None:
    """e-values of e^-1000 (the p-value's exp(-log_e) overflowed with an OverflowError)."""
    for verdict in _huge_stream_verdicts(0.05, 0, 40, slow_baseline=0.05):
        assert verdict.status is not Status.FAIL
        p = verdict.evidence.p_value
        assert p is None or 0.0 <= p <= 1.0


def _ceiling_run(canary_errors: list[float], seconds: int) -> int | None:
    """The second (1 s windows, 950 + 50 requests/s, baseline at 0.5%) at which the errors
    metric fails, with the default hard ceiling (25%) and a warm-up longer than the run."""
    spec = MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.5)
    judge = SequentialJudge((spec,), warmup_s=3600.0)
    judge.start_step(0, 0.0)
    rng = np.random.default_rng(11)
    for t in range(seconds):
        bad_c = canary_errors[t] if t < len(canary_errors) else float(rng.binomial(50, 0.005))
        judge.observe(Sample(float(t), t + 1.0, VariantCounts(950.0, float(rng.binomial(950, 0.005))),
                             VariantCounts(50.0, bad_c)))  # fmt: skip
        verdict = judge.verdicts(StepContext(0, t + 1.0, 60.0, t + 1.0))[0]
        if verdict.status is Status.FAIL:
            assert "hard ceiling" in verdict.why, verdict.why
            return t + 1
    return None


def test_one_burst_in_the_canarys_first_second_does_not_trip_the_ceiling() -> None:
    """Two bursts, 30 errors among the canary's first 50 requests (60%: bursts of 10-20 in the
    benchmark rolled back 3 of 80 healthy canaries in their first 4 s this way)."""
    assert _ceiling_run([30.0, 0.0, 14.0], 120) is None


def test_a_canary_failing_half_its_requests_meets_the_ceiling_within_10_s() -> None:
    assert (_ceiling_run([25.0] * 60, 60) or 99) <= 10
