"""Evidence never contradicts itself: a property over random streams.

For every verdict the sequential judge gives, on bursty, sparse, zero and huge counts, with
regressions or without, in either effect: the effect it quotes lies inside the interval it
quotes, and equals the quotient (or difference) of the two rates it quotes, at the precision
they are displayed with. Checked on the numbers (the Evidence) and on the words (the `why`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary_tui.core.judging.base import StepContext
from canary_tui.core.judging.sequential import Effect, SequentialJudge
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Status, Verdict

BOUNDS = (0.1, 0.25, 0.5, math.inf)
RATE = r"(?:n/a|[\d.]+%)"
NUMBER_X = r"(?:[<>]?(?:[\d.]+x|inf|n/a))"
NUMBER_PP = r"(?:[<>]?(?:[+-][\d.e+-]+ pp|[+-]inf|n/a))"


@dataclass(frozen=True)
class StreamSpec:
    seed: int
    ticks: int
    rate: float
    share: float
    base_err: float
    canary_err: float
    base_slow: float
    canary_slow: float
    onset: int
    burst: int  # largest burst (1: independent)
    effect: str
    tolerance: float
    tolerance_abs: float


streams = st.builds(
    StreamSpec,
    seed=st.integers(0, 2**32 - 1),
    ticks=st.integers(5, 150),
    rate=st.sampled_from([0.0, 2.0, 20.0, 1000.0, 200_000.0]),
    share=st.sampled_from([0.01, 0.05, 0.5]),
    base_err=st.sampled_from([0.0, 0.0002, 0.005, 0.05]),
    canary_err=st.sampled_from([0.0, 0.0002, 0.005, 0.02, 0.3, 1.0]),
    base_slow=st.sampled_from([0.0, 0.05]),
    canary_slow=st.sampled_from([0.0, 0.05, 0.2]),
    onset=st.integers(0, 100),
    burst=st.sampled_from([1, 1, 4, 20]),
    effect=st.sampled_from(["ratio", "difference"]),
    tolerance=st.sampled_from([1.0, 1.2, 1.5]),
    tolerance_abs=st.sampled_from([0.0, 0.002]),
)


def _count(rng: np.random.Generator, n: int, p: float, burst: int) -> int:
    if burst == 1 or p <= 0:
        return int(rng.binomial(n, min(1.0, p)))
    mean = 0.5 * (1 + burst)
    k = int(rng.poisson(n * p / mean))
    return min(n, int(rng.integers(1, burst + 1, size=k).sum()))


def samples(spec: StreamSpec) -> list[Sample]:
    rng = np.random.default_rng(spec.seed)
    out = []
    for t in range(spec.ticks):
        total = int(rng.poisson(spec.rate))
        n_c = int(rng.binomial(total, spec.share))
        n_b = total - n_c
        after = t >= spec.onset
        c_err = spec.canary_err if after else spec.base_err
        c_slow = spec.canary_slow if after else spec.base_slow
        counts = []
        for n, err, slow in ((n_b, spec.base_err, spec.base_slow), (n_c, c_err, c_slow)):
            s = _count(rng, n, slow, spec.burst)
            hist = Histogram(BOUNDS, (0.0, float(n - s), float(n), float(n)))
            counts.append(VariantCounts(float(n), float(_count(rng, n, err, spec.burst)), hist))
        out.append(Sample(float(t), float(t + 1), counts[0], counts[1]))
    return out


def _value(text: str) -> tuple[float, float]:
    """The range of true values a displayed number stands for (rounding, open ends)."""
    text = text.strip()
    if text in ("inf", "+inf"):
        return math.inf, math.inf
    if text == "-inf":
        return -math.inf, -math.inf
    marker = text[0] if text[0] in "<>" else ""
    body = text.lstrip("<>")
    unit = 1.0
    if body.endswith("x"):
        body = body[:-1]
    elif body.endswith(" pp"):
        body, unit = body[:-3], 0.01
    elif body.endswith("%"):
        body, unit = body[:-1], 0.01
    mantissa = body.split("e")[0].lstrip("+-")
    digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
    if "e" in body:
        exponent = int(body.split("e")[1])
        half = 0.5 * 10.0 ** (exponent - digits)
    elif body.lstrip("+-").isdigit() and len(body.lstrip("+-")) > 1 and unit == 0.01:
        half = 0.5 * 10.0 ** (len(body.lstrip("+-")) - 2)  # '%.2g' of 12 -> '12'
        half = min(half, 0.5)
    else:
        half = 0.5 * 10.0**-digits
    # '%.2g' rounds to two significant digits: allow for that on the pp values
    if unit == 0.01 and "pp" in text and "." not in body:
        half = max(half, 0.5 * 10 ** max(0, len(body.lstrip("+-")) - 2))
    value = float(body)
    lo, hi = (value - half) * unit, (value + half) * unit
    if unit == 0.01 and "pp" in text:
        lo, hi = min(lo, hi), max(lo, hi)
        sig = abs(value) * 0.05 * unit  # two significant digits: 5% relative at most
        lo, hi = lo - sig, hi + sig
    if marker == ">":
        hi = math.inf
    if marker == "<":
        lo = -math.inf
    return lo, hi


def check(verdict: Verdict) -> None:
    e = verdict.evidence
    why = verdict.why
    # on the numbers
    if e.effect is not None and e.interval is not None:
        lo, hi = e.interval
        assert lo - 1e-12 <= e.effect <= hi + 1e-12 * max(1.0, abs(hi)), why
    if e.effect is not None and e.canary_rate is not None and e.baseline_rate is not None:
        if e.effect_kind == "ratio" and e.baseline_rate > 0:
            assert math.isclose(e.effect, e.canary_rate / e.baseline_rate, rel_tol=1e-9), why
        elif e.effect_kind == "difference":
            assert math.isclose(e.effect, e.canary_rate - e.baseline_rate, abs_tol=1e-12), why
    # on the words
    m = re.search(
        rf"canary ({RATE}) vs baseline ({RATE})(?: \([^)]*\))?, "
        rf"(ratio|difference) ({NUMBER_X}|{NUMBER_PP}) \[({NUMBER_X}|{NUMBER_PP}), "
        rf"({NUMBER_X}|{NUMBER_PP})\]",
        why,
    )
    if (
        verdict.status in (Status.PASS, Status.FAIL, Status.WARMING_UP)
        and e.rule not in ("ceiling",)
        and "SLO" not in verdict.metric
        and not verdict.no_data
    ):
        assert m, why
    if not m or "n/a" in m.group(0):
        return
    c_rate, b_rate, kind, effect, low, high = m.groups()
    effect_lo, effect_hi = _value(effect)
    low_lo, _ = _value(low)
    _, high_hi = _value(high)
    # inside the quoted interval, at the displayed precision
    assert low_lo <= effect_hi and effect_lo <= high_hi, why
    c_lo, c_hi = _value(c_rate)
    b_lo, b_hi = _value(b_rate)
    c_lo, b_lo = max(c_lo, 0.0), max(b_lo, 0.0)
    if kind == "ratio":
        if b_lo <= 0:
            return  # a baseline shown as 0%: any ratio is the quotient
        q_lo, q_hi = c_lo / b_hi, c_hi / b_lo
    else:
        q_lo, q_hi = c_lo - b_hi, c_hi - b_lo
    # the quotient (difference) of the quoted rates, at their precision
    assert effect_lo <= q_hi + 1e-12 and q_lo - 1e-12 <= effect_hi, why


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_every_verdicts_effect_lies_in_its_interval_and_is_the_quotient_of_its_rates(
    spec: StreamSpec,
) -> None:
    specs = (
        MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=spec.tolerance,
                   tolerance_abs=spec.tolerance_abs),
        MetricSpec("latency", MetricKind.LATENCY, threshold_ms=250.0,
                   tolerance_ratio=spec.tolerance, tolerance_abs=spec.tolerance_abs),
    )  # fmt: skip
    judge = SequentialJudge(
        specs, effect=Effect(spec.effect), min_requests=10, warmup_s=spec.onset % 7 * 5.0
    )
    judge.start_step(0, 0.0)
    for sample in samples(spec):
        judge.observe(sample)
        for verdict in judge.verdicts(StepContext(0, sample.end, 30.0, sample.end)):
            check(verdict)


def test_the_contradiction_once_reported_cannot_recur() -> None:
    """A sharp regression between two notes of the running totals: the FAIL used to quote a
    window diluted by the seconds before the onset ('ratio 4.26x [7.75x, 8.93x]')."""
    spec = StreamSpec(11, 400, 1000.0, 0.05, 0.002, 0.3, 0.05, 0.05, 302, 1, "ratio", 1.0, 0.0)
    specs = (MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.0),)
    judge = SequentialJudge(specs)
    failed = False
    for sample in samples(spec):
        judge.observe(sample)
        for verdict in judge.verdicts(StepContext(0, sample.end, 30.0, sample.end)):
            check(verdict)
            failed = failed or verdict.status is Status.FAIL
    assert failed
