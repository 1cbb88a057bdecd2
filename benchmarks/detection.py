"""Detection benchmark: the sequential judge against Flagger-like and Kayenta-like rules.

A seeded simulation at 1 s ticks. Every run generates one stream of counts (Poisson arrivals,
split between the variants by the realised weight; binomial errors; latency histogram bucket
counts drawn multinomially from lognormal bucket probabilities, Prometheus-style buckets) and
runs five methods side by side on that identical stream:

  (a) flagger  a Flagger-like rule: a check every 60 s (canary error % <= 1 and p99 <= 500 ms
               over the last 60 s; no canary data fails the check); rollback at 5 failed checks.
  (b) kayenta  a Kayenta-like judgement: Mann-Whitney U (Hodges-Lehmann interval, 98%) on the
               1-minute series of canary and baseline error rate and p95, effect tolerance 25%,
               judged at 15/30/45/60 min on the growing window; rollback when the score <= 75.
  (c) judge    canary_tui's SequentialJudge, fed the Sample objects the engine would build
               (1 s windows), called as the loop calls it (observe, then verdicts); FAIL = rollback.
  (d) oracle   an SPRT that knows the true rates and the onset (started at the onset), on the
               canary's counts of the regressed metric, at the judge's per-metric alpha: the
               lower bound for any count-based test.
  (e) oracle-cp the same likelihood ratio, but not told the onset: the Shiryaev-Roberts mixture
               with the judge's restart prior, so the price of not knowing when a regression
               starts is visible. On A/A streams it watches errors (tuned to 1.0%) and latency
               (tuned to x1.2) at the judge's alpha split, to show its own false-rollback rate.

Arms: 1000, 100 and 20 requests/s, 5% to the canary; baseline errors 0.5%; canary 0.5% (A/A),
1.0% and 2.0%; latency lognormal (median 100 ms, sigma 0.5) with the canary's scaled by 1.2 and
1.5, and a tail-only regression (10% of canary requests slowed so that its p95 rises 20%);
regressions start 5 minutes into the canary (`--onset` moves them) and are watched for an hour
after that.

Further arms at 1000 requests/s (docs/concepts/judge-robustness.md): errors and slow requests
in bursts of 2-4, 1-10 and 10-20 (and 2-4 spread over 5 s), a realised split drifting around
the weight, a diurnal 4:1 swing of load, a canary at 1% of traffic, a warm-up transient (x1.5
slower for 120 s; the judge given a 180 s warm-up) and a catastrophic canary (50% errors from
its first second, under that warm-up). More methods: judge-iid (the judge without the
dispersion handling), judge-nowarm, oracle-cp-b (oracle-cp told the burst sizes too: a
compound-Poisson likelihood), oracle-cp-q (oracle-cp's likelihood divided by the true index
of dispersion: the judge's quasi-likelihood told the index instead of estimating it), and
oracle-ratio (the judge's own likelihood, the canary's share of both variants' bad events,
told the true ratio but neither rate: what comparing costs against oracle-cp, which is told
the baseline's rate). oracle-cp@aa is oracle-cp re-read at the judge's MEASURED A/A budget
instead of its nominal alpha (`matched_oracle`; --judge-aa, --oracle-aa-runs). On the 1000/s
regression arms a second judge with the default
tolerances and a hold ending 60 s after the onset gives the share of runs whose step passes
during the regression ("passed in regression").

Histogram resolution limits latency detection: the judge counts requests above the bucket bound
at or above the baseline's p95 (233 ms -> the 250 ms bucket here), so a regression is only seen
through how many requests cross that bound; finer buckets near the p95 would see it sooner.

    python benchmarks/detection.py --quick            # a few minutes on 2 cores
    python benchmarks/detection.py --json out.json    # 1000 A/A runs per traffic, 300 per arm
    python benchmarks/detection.py --traffic 1000 --family clustered --aa-runs 80 --runs 25
    python benchmarks/detection.py --only "A/A b10-20" --aa-runs 1000 --methods judge

The judge is fed the baseline's 1 s windows over the 10 min before the canary (per tick,
clustered like the arm's), as the loop feeds it the source's past windows, so its index of
dispersion is measured before the first comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from canary_tui.core.judging.base import StepContext
from canary_tui.core.judging.confseq import (
    DEFAULT_FIRST_WEIGHT,
    DEFAULT_RESTART_SCALE_S,
    restart_weight,
)
from canary_tui.core.judging.sequential import DEFAULT_WARMUP_S, SequentialJudge
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Status

BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
    10.0, math.inf,
)  # fmt: skip
CANARY_SHARE = 0.05
BASE_ERRORS = 0.005
MEDIAN_S = 0.1
SIGMA = 0.5
ONSET_S = 300
HOUR_S = 3600
THRESHOLD_S = 0.25  # the bucket bound at or above the baseline's p95 (233 ms)
HISTORY_S = 600  # the loop's judge.baseline_window: the baseline read before the canary
ALPHA = 0.01
METHODS = (
    "flagger", "kayenta", "judge", "judge-iid", "judge-nowarm", "oracle", "oracle-cp",
    "oracle-cp-b", "oracle-cp-q", "oracle-ratio",
)  # fmt: skip
_NORMAL = NormalDist()


TRANSIENT_S = 120  # the warm-up transient: the canary slower for its first two minutes
TRANSIENT_SCALE = 1.5
WARMUP_S = 180.0  # the warm-up the judge is given on the warm-up arms (>= the transient)


@dataclass(frozen=True)
class Arm:
    traffic: float
    kind: str  # aa | errors | latency | tail
    value: float
    onset: int = ONSET_S  # seconds into the canary the regression starts
    share: float = CANARY_SHARE  # the router's weight
    burst: tuple[int, int] = (1, 1)  # bad events come in bursts of lo..hi (uniform)
    spell: int = 1  # a burst's events spread over this many 1 s ticks
    load: str = "flat"  # flat | diurnal (total load swings 4:1 over the hour)
    split: str = "fixed"  # fixed | drift (the realised split wanders around the weight)
    transient: bool = False  # the canary x1.5 slower for its first TRANSIENT_S seconds

    @property
    def label(self) -> str:
        out = {
            "aa": "A/A",
            "errors": f"errors {self.value * 100:.1f}%",
            "latency": f"latency x{self.value:g}",
            "tail": "tail p95 +20%",
        }[self.kind]
        if self.clustered:
            out += f" b{self.burst[0]}-{self.burst[1]}"
            if self.spell > 1:
                out += f"/{self.spell}s"
        if self.share != CANARY_SHARE:
            out += f" {self.share * 100:g}%"
        if self.load != "flat":
            out += f" {self.load}"
        if self.split != "fixed":
            out += f" {self.split}"
        if self.transient:
            out += " warm-up"
        if self.onset == 0 and self.regression:
            out += " @0"
        return out

    @property
    def clustered(self) -> bool:
        return self.burst != (1, 1) or self.spell > 1

    @property
    def mean_burst(self) -> float:
        return 0.5 * (self.burst[0] + self.burst[1])

    @property
    def family(self) -> str:
        """Which group of arms: independent (the original ones), clustered, or realistic."""
        if self.clustered:
            return "clustered"
        if self.traffic != 1000.0 or (
            self.share == CANARY_SHARE
            and self.load == "flat"
            and self.split == "fixed"
            and not self.transient
            and not (self.onset == 0 and self.regression)
        ):
            return "independent"
        return "other"

    @property
    def regression(self) -> bool:
        return self.kind != "aa"

    @property
    def ticks(self) -> int:
        return self.onset + HOUR_S if self.regression else HOUR_S


def aa_twin(arm: Arm) -> Arm:
    """The A/A arm generated like `arm` (same traffic, bursts, split, load, warm-up)."""
    return replace(arm, kind="aa", value=0.0, onset=ONSET_S)


def above(threshold_s: float) -> list[int]:
    """The histogram buckets whose bounds lie above a slow-request threshold."""
    return [i for i, b in enumerate(BUCKETS) if b > threshold_s]


def arms(onset: int = ONSET_S) -> list[Arm]:
    out = []
    for traffic in (1000.0, 100.0, 20.0):
        out += [
            Arm(traffic, "aa", 0.0),
            Arm(traffic, "errors", 0.01, onset),
            Arm(traffic, "errors", 0.02, onset),
            Arm(traffic, "latency", 1.2, onset),
            Arm(traffic, "latency", 1.5, onset),
            Arm(traffic, "tail", 0.1, onset),
        ]
    # clustered errors and slow requests (both come in bursts), several burst sizes
    for burst in ((2, 4), (1, 10), (10, 20)):
        out += [
            Arm(1000.0, "aa", 0.0, burst=burst),
            Arm(1000.0, "errors", 0.02, onset, burst=burst),
            Arm(1000.0, "latency", 1.5, onset, burst=burst),
        ]
        if burst == (2, 4):
            out += [
                Arm(1000.0, "errors", 0.01, onset, burst=burst),
                Arm(1000.0, "latency", 1.2, onset, burst=burst),
            ]
    out.append(Arm(1000.0, "aa", 0.0, burst=(2, 4), spell=5))  # bursts spread over 5 s
    # the realised split drifting around the weight; a diurnal swing of load; a 1% canary
    for extra in ({"split": "drift"}, {"load": "diurnal"}, {"share": 0.01}):
        out += [
            Arm(1000.0, "aa", 0.0, **extra),  # type: ignore[arg-type]
            Arm(1000.0, "errors", 0.02, onset, **extra),  # type: ignore[arg-type]
            Arm(1000.0, "latency", 1.5, onset, **extra),  # type: ignore[arg-type]
        ]
    # warm-up: a canary whose only fault is a slow first two minutes; a catastrophic canary
    # (half its requests failing from the start) that the ceiling must catch during warm-up
    out.append(Arm(1000.0, "aa", 0.0, transient=True))
    out.append(Arm(1000.0, "errors", 0.5, 0, transient=True))
    # regressions whose bursts are spread over 5 s (appended last: the other arms keep their
    # seeds); oracle-cp-b, which does not model the spread, is not run on them
    for kind, value in (("errors", 0.02), ("latency", 1.5)):
        out.append(Arm(1000.0, kind, value, onset, burst=(2, 4), spell=5))
    return out


# --- latency model ------------------------------------------------------------------------


def lognormal_cdf(x: float, scale: float = 1.0) -> float:
    if x <= 0:
        return 0.0
    if math.isinf(x):
        return 1.0
    return _NORMAL.cdf(math.log(x / (MEDIAN_S * scale)) / SIGMA)


def mixture_cdf(x: float, slow_share: float, slow_scale: float) -> float:
    return (1 - slow_share) * lognormal_cdf(x) + slow_share * lognormal_cdf(x, slow_scale)


def tail_scale(slow_share: float = 0.1, p95_rise: float = 1.2) -> float:
    """The slow-down of `slow_share` of requests that raises the p95 by `p95_rise`."""
    target = MEDIAN_S * math.exp(SIGMA * _NORMAL.inv_cdf(0.95)) * p95_rise
    lo, hi = 1.0, 100.0
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if mixture_cdf(target, slow_share, mid) > 0.95:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


TAIL_SCALE = tail_scale()


def bucket_probabilities(cdf: Any) -> np.ndarray:
    cum = np.array([cdf(b) for b in BUCKETS])
    probs = np.diff(np.concatenate([[0.0], cum]))
    probs = np.clip(probs, 0.0, None)
    return probs / probs.sum()


BASE_PROBS = bucket_probabilities(lognormal_cdf)
TRANSIENT_PROBS = bucket_probabilities(lambda x: lognormal_cdf(x, TRANSIENT_SCALE))


def canary_probs(arm: Arm) -> np.ndarray:
    if arm.kind == "latency":
        return bucket_probabilities(lambda x: lognormal_cdf(x, arm.value))
    if arm.kind == "tail":
        return bucket_probabilities(lambda x: mixture_cdf(x, arm.value, TAIL_SCALE))
    return BASE_PROBS


def canary_error_rate(arm: Arm) -> float:
    return arm.value if arm.kind == "errors" else BASE_ERRORS


def slow_share(probs: np.ndarray, threshold_s: float) -> float:
    """Share of requests above a bucket bound."""
    return float(probs[above(threshold_s)].sum())


# --- streams ------------------------------------------------------------------------------


@dataclass
class Stream:
    nb: np.ndarray
    nc: np.ndarray
    eb: np.ndarray
    ec: np.ndarray
    hb: np.ndarray  # ticks x buckets, per-bucket (not cumulative) counts
    hc: np.ndarray
    history: np.ndarray  # the baseline's per-tick (n, bad, per-bucket counts...) before the canary

    def history_total(self) -> Histogram:
        """The baseline's latency over the window before the canary, as one histogram."""
        return Histogram(BUCKETS, tuple(np.cumsum(self.history[:, 2:].sum(axis=0)).tolist()))

    def history_windows(self) -> list[Sample]:
        """The baseline's 1 s windows before the canary (the canary served nothing then)."""
        cum = np.cumsum(self.history[:, 2:], axis=1)
        none = VariantCounts(0.0, 0.0, Histogram(BUCKETS, (0.0,) * len(BUCKETS)))
        return [
            Sample(float(t - len(cum)), float(t - len(cum) + 1),
                   VariantCounts(float(row[0]), float(row[1]),
                                 Histogram(BUCKETS, tuple(cum[t].tolist()))), none)
            for t, row in enumerate(self.history)
        ]  # fmt: skip


def history(arm: Arm, rng: np.random.Generator) -> np.ndarray:
    """The baseline's counts, tick by tick, over the 10 min before the canary: all of the
    traffic, errors and slow requests clustered as the arm's are (columns: requests, errors,
    then the latency buckets)."""
    n = rng.poisson(arm.traffic, HISTORY_S)
    errors = bursts(rng, n, np.full(HISTORY_S, BASE_ERRORS), arm)
    buckets = histograms(rng, n, [BASE_PROBS], np.zeros(HISTORY_S, dtype=np.int64), arm)
    return np.column_stack([n, errors, buckets])


def generate(arm: Arm, rng: np.random.Generator, history_rng: np.random.Generator) -> Stream:
    """One run's counts; the pre-canary history comes from its own generator, so the canary's
    streams are the same with or without it."""
    if arm.clustered or arm.share != CANARY_SHARE or arm.load != "flat" or arm.split != "fixed":
        return generate_extra(arm, rng, history_rng)
    if arm.transient:
        return generate_extra(arm, rng, history_rng)
    ticks = arm.ticks
    total = rng.poisson(arm.traffic, ticks)
    nc = rng.binomial(total, CANARY_SHARE)
    nb = total - nc
    onset = arm.onset if arm.regression else ticks
    p_canary = np.where(np.arange(ticks) >= onset, canary_error_rate(arm), BASE_ERRORS)
    eb = rng.binomial(nb, BASE_ERRORS)
    ec = rng.binomial(nc, p_canary)
    hb = rng.multinomial(nb, BASE_PROBS)
    hc = np.empty_like(hb)
    hc[:onset] = rng.multinomial(nc[:onset], BASE_PROBS)
    if onset < ticks:
        hc[onset:] = rng.multinomial(nc[onset:], canary_probs(arm))
    return Stream(nb, nc, eb, ec, hb, hc, history(arm, history_rng))


def bursts(rng: np.random.Generator, n: np.ndarray, p: np.ndarray, arm: Arm) -> np.ndarray:
    """Bad events per tick with mean n * p: binomial, or bursts of arm.burst sizes (a
    compound Poisson count), each burst's events spread over arm.spell ticks."""
    if not arm.clustered:
        return rng.binomial(n, p)
    ticks = len(n)
    k = rng.poisson(n * p / arm.mean_burst)
    where = np.repeat(np.arange(ticks), k)
    sizes = rng.integers(arm.burst[0], arm.burst[1] + 1, size=len(where))
    if arm.spell > 1:
        events = np.repeat(where, sizes) + rng.integers(0, arm.spell, size=int(sizes.sum()))
        out = np.bincount(events[events < ticks], minlength=ticks)
    else:
        out = np.bincount(where, weights=sizes, minlength=ticks).astype(np.int64)
    return np.minimum(out, n)


ABOVE = np.array([b > THRESHOLD_S for b in BUCKETS])


def histograms(
    rng: np.random.Generator, n: np.ndarray, probs: list[np.ndarray], rows: np.ndarray, arm: Arm
) -> np.ndarray:
    """Per-tick bucket counts: multinomial, or (clustered) the requests over the 250 ms bound
    drawn in bursts and spread over the buckets above it, the rest over those below."""
    out = np.zeros((len(n), len(BUCKETS)), dtype=np.int64)
    if not arm.clustered:
        for r, pr in enumerate(probs):
            sel = rows == r
            if sel.any():
                out[sel] = rng.multinomial(n[sel], pr)
        return out
    slow_p = np.array([pr[ABOVE].sum() for pr in probs])[rows]
    slow = bursts(rng, n, slow_p, arm)
    for r, pr in enumerate(probs):
        sel = rows == r
        if not sel.any():
            continue
        hi, lo = pr * ABOVE, pr * ~ABOVE
        out[sel] += rng.multinomial(slow[sel], hi / hi.sum())
        out[sel] += rng.multinomial(n[sel] - slow[sel], lo / lo.sum())
    return out


def generate_extra(arm: Arm, rng: np.random.Generator, history_rng: np.random.Generator) -> Stream:
    """The other arms: bursts, a drifting split, a diurnal load, a small canary, warm-up."""
    ticks = arm.ticks
    t = np.arange(ticks)
    load = np.full(ticks, arm.traffic)
    if arm.load == "diurnal":  # a 4:1 swing over the hour, from a random phase
        load = arm.traffic * (1 + 0.6 * np.sin(2 * math.pi * t / HOUR_S + rng.uniform(0, 6.3)))
    share = np.full(ticks, arm.share)
    if arm.split == "drift":  # AR(1) in log share: about +-20%, correlated over ~100 s
        x = np.zeros(ticks)
        noise = rng.normal(0.0, 0.03, ticks)
        for i in range(1, ticks):
            x[i] = 0.99 * x[i - 1] + noise[i]
        share = arm.share * np.exp(x)
    total = rng.poisson(load)
    nc = rng.binomial(total, np.clip(share, 0.0, 1.0))
    nb = total - nc
    onset = arm.onset if arm.regression else ticks
    p_canary = np.where(t >= onset, canary_error_rate(arm), BASE_ERRORS)
    eb = bursts(rng, nb, np.full(ticks, BASE_ERRORS), arm)
    ec = bursts(rng, nc, p_canary, arm)
    probs = [BASE_PROBS, canary_probs(arm), TRANSIENT_PROBS]
    rows_c = np.where(t >= onset, 1, 0)
    if arm.transient:
        rows_c = np.where(t < TRANSIENT_S, 2, rows_c)
    hb = histograms(rng, nb, probs, np.zeros(ticks, dtype=np.int64), arm)
    hc = histograms(rng, nc, probs, rows_c, arm)
    return Stream(nb, nc, eb, ec, hb, hc, history(arm, history_rng))


# --- (a) Flagger-like -------------------------------------------------------------------


def quantile(counts: np.ndarray, q: float) -> float | None:
    """histogram_quantile over per-bucket counts, in seconds."""
    cum = np.cumsum(counts)
    return Histogram(BUCKETS, tuple(float(c) for c in cum)).quantile(q)


def flagger(s: Stream) -> int | None:
    failed = 0
    for end in range(60, len(s.nb) + 1, 60):
        n = s.nc[end - 60 : end].sum()
        ok = n > 0
        if ok:
            error_pct = 100.0 * s.ec[end - 60 : end].sum() / n
            p99 = quantile(s.hc[end - 60 : end].sum(axis=0), 0.99)
            ok = error_pct <= 1.0 and p99 is not None and p99 * 1000.0 <= 500.0
        if not ok:
            failed += 1
            if failed >= 5:
                return end
    return None


# --- (b) Kayenta-like ---------------------------------------------------------------------

Z98 = _NORMAL.inv_cdf(0.99)


def mann_whitney_high(canary: np.ndarray, baseline: np.ndarray, tolerance: float = 0.25) -> bool:
    """Kayenta's MannWhitneyClassifier, direction=increase: is the canary 'High'?"""
    if len(canary) == 0 or len(baseline) == 0:
        return False  # no data: not classified High
    if np.array_equal(np.sort(canary), np.sort(baseline)):
        return False
    if len(np.unique(np.concatenate([canary, baseline]))) == 1:
        return False
    diffs = np.sort((canary[:, None] - baseline[None, :]).ravel())
    n, m = len(canary), len(baseline)
    estimate = float(np.median(diffs))
    k = math.floor(n * m / 2 - Z98 * math.sqrt(n * m * (n + m + 1) / 12))
    if k < 0:
        return False
    lower = float(diffs[k])
    mean_b = float(baseline.mean())
    deviation = 1.0 if mean_b == 0 else float(canary.mean()) / mean_b
    return lower > tolerance * abs(estimate) and deviation >= 1.0


def kayenta(s: Stream) -> int | None:
    minutes = len(s.nb) // 60

    def per_minute(a: np.ndarray) -> np.ndarray:
        return a[: minutes * 60].reshape(minutes, 60, *a.shape[1:]).sum(axis=1)

    nb, nc, eb, ec = (per_minute(a) for a in (s.nb, s.nc, s.eb, s.ec))
    hb, hc = per_minute(s.hb), per_minute(s.hc)
    for judged_at in (15, 30, 45, 60):
        if judged_at > minutes:
            break
        c_ok, b_ok = nc[:judged_at] > 0, nb[:judged_at] > 0
        c_err = ec[:judged_at][c_ok] / nc[:judged_at][c_ok]
        b_err = eb[:judged_at][b_ok] / nb[:judged_at][b_ok]
        c_p95 = np.array([quantile(h, 0.95) for h in hc[:judged_at][c_ok]], dtype=float)
        b_p95 = np.array([quantile(h, 0.95) for h in hb[:judged_at][b_ok]], dtype=float)
        passed = sum(not mann_whitney_high(c, b) for c, b in ((c_err, b_err), (c_p95, b_p95)))
        if 100.0 * passed / 2 <= 75.0:
            return judged_at * 60
    return None


# --- (c) the judge --------------------------------------------------------------------------


def judge_specs(tolerance: float) -> tuple[MetricSpec, ...]:
    return (
        MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=tolerance, tolerance_abs=0.0),
        MetricSpec(
            "latency", MetricKind.LATENCY, baseline_quantile=0.95, tolerance_ratio=tolerance,
            tolerance_abs=0.0,
        ),
    )  # fmt: skip


def samples(s: Stream, stop: int | None = None) -> Iterator[Sample]:
    cb, cc = np.cumsum(s.hb, axis=1), np.cumsum(s.hc, axis=1)
    for t in range(len(s.nb) if stop is None else min(stop, len(s.nb))):
        yield Sample(
            float(t),
            float(t + 1),
            VariantCounts(float(s.nb[t]), float(s.eb[t]), Histogram(BUCKETS, tuple(cb[t].tolist()))),
            VariantCounts(float(s.nc[t]), float(s.ec[t]), Histogram(BUCKETS, tuple(cc[t].tolist()))),
        )  # fmt: skip


def run_judge(
    s: Stream,
    tolerance: float,
    *,
    dispersion: bool = True,
    warmup_s: float = DEFAULT_WARMUP_S,
    prior: bool = True,
) -> tuple[int | None, str]:
    """The judge as the loop runs it: slow-request threshold from the baseline's p95 over the
    10 min before the canary and the index of dispersion from its windows then
    (`engine.metrics.Metrics.calibrate`), then one observe + verdicts a tick."""
    judge = SequentialJudge(judge_specs(tolerance), ALPHA, dispersion=dispersion, warmup_s=warmup_s)
    judge.calibrate(s.history_total(), "over the 10 min before the canary")
    if prior:
        judge.learn_dispersion(s.history_windows())
    if judge.thresholds_ms()["latency"] != THRESHOLD_S * 1000.0:  # the oracles count from it
        raise RuntimeError(f"the judge counts slow requests from {judge.thresholds_ms()}")
    judge.start_step(0, 0.0)
    for t, sample in enumerate(samples(s)):
        judge.observe(sample)
        verdicts = judge.verdicts(StepContext(0, t + 1.0, 60.0, t + 1.0))
        failing = [v for v in verdicts if v.status is Status.FAIL]
        if failing:
            return t + 1, failing[0].why
    return None, ""


PASS_AFTER_ONSET_S = 60  # the pass-risk runs: the step's hold ends this long after the onset
PASS_WATCH_S = 900  # and they are watched this long after the hold ends


def pass_risk(arm: Arm, s: Stream) -> bool:
    """Does the step pass (every metric PASS) after its hold, which ends 60 s into a live
    regression, before the judge fails it? The judge with the default tolerances (errors
    1.5x or +0.2 pp, slow requests 1.5x or +0.5 pp), every regression arm beyond them."""
    specs = (
        MetricSpec("errors", MetricKind.ERRORS, tolerance_ratio=1.5, tolerance_abs=0.002),
        MetricSpec("latency", MetricKind.LATENCY, baseline_quantile=0.95, tolerance_ratio=1.5,
                   tolerance_abs=0.005),
    )  # fmt: skip
    judge = SequentialJudge(specs, ALPHA, warmup_s=DEFAULT_WARMUP_S)
    judge.calibrate(s.history_total())
    judge.learn_dispersion(s.history_windows())
    judge.start_step(0, 0.0)
    hold = float(arm.onset + PASS_AFTER_ONSET_S)
    for t, sample in enumerate(samples(s, arm.onset + PASS_AFTER_ONSET_S + PASS_WATCH_S)):
        judge.observe(sample)
        verdicts = judge.verdicts(StepContext(0, t + 1.0, hold, t + 1.0))
        if any(v.status is Status.FAIL for v in verdicts):
            return False
        if t + 1 >= hold and all(v.status is Status.PASS for v in verdicts):
            return True
    return False


# --- (d), (e) oracles -----------------------------------------------------------------------


def oracle_counts(
    arm: Arm, s: Stream, threshold_s: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The regressed metric's canary (bad, n) per tick and its true rates before/after."""
    if arm.kind == "errors":
        return s.ec, s.nc, BASE_ERRORS, arm.value
    bad = s.hc[:, above(threshold_s)].sum(axis=1)
    return (
        bad,
        s.nc,
        slow_share(BASE_PROBS, threshold_s),
        slow_share(canary_probs(arm), threshold_s),
    )


def llr_series(bad: np.ndarray, n: np.ndarray, p0: float, p1: float) -> np.ndarray:
    return bad * math.log(p1 / p0) + (n - bad) * math.log((1 - p1) / (1 - p0))


def oracle_sprt(arm: Arm, s: Stream, threshold_s: float, alpha: float) -> int | None:
    bad, n, p0, p1 = oracle_counts(arm, s, threshold_s)
    llr = np.cumsum(llr_series(bad[arm.onset :], n[arm.onset :], p0, p1))
    tick = first_crossing(llr, math.log(1 / alpha))
    return tick + arm.onset if tick is not None else None


def compound_loglik(bad: np.ndarray, n: np.ndarray, p: float, arm: Arm) -> np.ndarray:
    """log P(bad) per tick when bad events come in bursts of arm.burst sizes (uniform) at the
    rate p per request: a compound Poisson law, summed over the number of bursts."""
    top = int(bad.max()) if len(bad) else 0
    sizes = np.zeros(top + 1)
    lo, hi = arm.burst
    sizes[lo : min(hi, top) + 1] = 1.0 / (hi - lo + 1)
    conv = np.zeros((top + 1, top + 1))  # conv[k, c] = P(k bursts hold c events)
    conv[0, 0] = 1.0
    for k in range(1, top + 1):
        conv[k] = np.convolve(conv[k - 1], sizes)[: top + 1]
    lam = np.maximum(n * p / arm.mean_burst, 1e-300)
    k = np.arange(top + 1)
    log_pois = (
        k[None, :] * np.log(lam)[:, None] - lam[:, None] - np.array(
            [math.lgamma(j + 1) for j in k])[None, :]
    )  # fmt: skip
    with np.errstate(divide="ignore"):
        log_conv = np.log(conv[:, bad].T)  # ticks x bursts
    return np.logaddexp.reduce(log_pois + log_conv, axis=1)


def shiryaev_roberts(llr: np.ndarray) -> np.ndarray:
    """log R_t after each tick: the first window's weight, then a restart every window with
    the judge's prior, each multiplied by every later tick's likelihood ratio."""
    out = np.empty(len(llr))
    log_r = math.log(DEFAULT_FIRST_WEIGHT)
    share = 1.0 - DEFAULT_FIRST_WEIGHT
    for t, step in enumerate(llr):
        w = restart_weight(float(t), 1.0, DEFAULT_RESTART_SCALE_S, share)
        log_r = float(np.logaddexp(log_r, math.log(w))) + float(step)
        out[t] = log_r
    return out


def oracle_llr(arm: Arm, s: Stream, threshold_s: float, model: str = "binomial") -> np.ndarray:
    """Per tick, the log-likelihood ratio of the canary's counts at its true rate after the
    onset against its rate before (the baseline's), both known. `model`: binomial (oracle-cp),
    bursts (oracle-cp-b: told the burst sizes too) or quasi (oracle-cp-q: the binomial ratio
    divided by the true index of dispersion E[b^2]/E[b], the judge's quasi-likelihood told
    the truth instead of estimating it)."""
    bad, n, p0, p1 = oracle_counts(arm, s, threshold_s)
    if model == "bursts":
        llr = compound_loglik(bad, n, p1, arm) - compound_loglik(bad, n, p0, arm)
        return np.nan_to_num(llr, nan=0.0)  # a count clipped to an impossible value
    if model == "quasi":
        sizes = np.arange(arm.burst[0], arm.burst[1] + 1)
        return llr_series(bad, n, p0, p1) / float((sizes**2).mean() / sizes.mean())
    return llr_series(bad, n, p0, p1)


def ratio_llr(arm: Arm, s: Stream, threshold_s: float) -> np.ndarray:
    """Per tick, the judge's own likelihood (the canary's share of the bad events of both
    variants, binomial given the realised split) at the TRUE ratio against a ratio of 1: the
    test a comparison could run if it were told the effect but neither variant's rate."""
    bad_c, n_c, p0, p1 = oracle_counts(arm, s, threshold_s)
    bad_b = s.eb if arm.kind == "errors" else s.hb[:, above(threshold_s)].sum(axis=1)
    nc, nb = n_c.astype(float), s.nb.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta0 = nc / (nc + nb)
        theta1 = (p1 / p0) * nc / ((p1 / p0) * nc + nb)
        llr = bad_c * np.log(theta1 / theta0) + bad_b * np.log((1 - theta1) / (1 - theta0))
    return np.nan_to_num(llr, nan=0.0, posinf=0.0, neginf=0.0)  # a tick with no traffic


def first_crossing(log_r: np.ndarray, limit: float) -> int | None:
    hits = np.nonzero(log_r >= limit)[0]
    return int(hits[0]) + 1 if len(hits) else None


def records(log_r: np.ndarray) -> list[tuple[int, float]]:
    """(tick, value) each time log R reaches a new high (from 0 up): enough to find the first
    crossing of any limit above 0 without keeping the whole path."""
    top = np.maximum.accumulate(log_r)
    new = np.nonzero((log_r >= 0) & (log_r >= top) & (np.r_[-np.inf, top[:-1]] < log_r))[0]
    return [(int(t) + 1, float(log_r[t])) for t in new]


def oracle_changepoint(
    arm: Arm, s: Stream, threshold_s: float, alpha: float, model: str = "binomial"
) -> int | None:
    return first_crossing(shiryaev_roberts(oracle_llr(arm, s, threshold_s, model)),
                          math.log(1 / alpha))  # fmt: skip


# --- one run --------------------------------------------------------------------------------


Task = tuple[int, int, int, float, int, frozenset[str]]


def one_run(task: Task) -> dict[str, Any]:
    arm_index, run, seed, tolerance, onset, methods = task
    arm = arms(onset)[arm_index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, arm_index, run]))
    s = generate(arm, rng, np.random.default_rng(np.random.SeedSequence([seed, arm_index, run, 1])))
    threshold_s = THRESHOLD_S
    decided: dict[str, int | None] = {}
    if "flagger" in methods:
        decided["flagger"] = flagger(s)
    if "kayenta" in methods:
        decided["kayenta"] = kayenta(s)
    warmup = WARMUP_S if arm.transient else DEFAULT_WARMUP_S
    why = ""
    if "judge" in methods:
        decided["judge"], why = run_judge(s, tolerance, warmup_s=warmup)
    iid_arm = arm.family != "other" and (
        arm.traffic == 1000.0 or (arm.regression and arm.kind != "tail")
    )
    if "judge-iid" in methods and iid_arm:
        decided["judge-iid"], _ = run_judge(s, tolerance, dispersion=False, warmup_s=warmup)
    if "judge-nowarm" in methods and arm.transient:
        decided["judge-nowarm"], _ = run_judge(s, tolerance, warmup_s=0.0)
    per_metric = ALPHA / 2  # the judge's split over its two metrics
    limit = math.log(1 / per_metric)
    oracles = [("oracle-cp", "binomial")] if "oracle-cp" in methods else []
    if "oracle-cp-b" in methods and arm.clustered and arm.spell == 1:
        oracles.append(("oracle-cp-b", "bursts"))
    if "oracle-cp-q" in methods and arm.clustered:
        oracles.append(("oracle-cp-q", "quasi"))
    paths: dict[str, np.ndarray] = {}  # oracle-cp's log R, for the matched budget
    if arm.regression and "oracle" in methods:
        decided["oracle"] = oracle_sprt(arm, s, threshold_s, per_metric)
    if arm.regression:
        for name, model in oracles:
            paths[name] = shiryaev_roberts(oracle_llr(arm, s, threshold_s, model))
            decided[name] = first_crossing(paths[name], limit)
        if "oracle-ratio" in methods:
            decided["oracle-ratio"] = first_crossing(
                shiryaev_roberts(ratio_llr(arm, s, threshold_s)), limit
            )
    else:  # its own false rollbacks: tuned to the smallest regression of each metric
        for name, model in oracles:
            tuned = [
                shiryaev_roberts(oracle_llr(replace(arm, kind=kind, value=value), s,
                                            threshold_s, model))[:HOUR_S]
                for kind, value in (("errors", 0.01), ("latency", 1.2))
            ]  # fmt: skip
            paths[name] = np.maximum(*tuned)
            decided[name] = first_crossing(paths[name], limit)
    bad = None
    if arm.regression:
        bad, _, _, _ = oracle_counts(arm, s, threshold_s)
    out: dict[str, Any] = {"arm": arm_index, "run": run, "why": why}
    if "judge" in methods and arm.regression and arm.traffic == 1000.0 and arm.onset > 0:
        out["passed"] = pass_risk(arm, s)
    for method, tick in decided.items():
        served = None
        if bad is not None:
            stop = min(tick if tick is not None else arm.ticks, arm.ticks)
            served = int(bad[arm.onset : stop].sum()) if stop > arm.onset else 0
        out[method] = {"tick": tick, "bad": served}
    if "oracle-cp" in paths:  # what the matched budget needs (`matched_oracle`)
        cp = paths["oracle-cp"]
        out["oracle-cp"]["peak" if not arm.regression else "records"] = (
            float(cp.max()) if not arm.regression else records(cp)
        )
    return out


# --- summary --------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(arm: Arm, results: list[dict[str, Any]], method: str) -> dict[str, Any] | None:
    rows = [r[method] for r in results if method in r]
    if not rows:
        return None
    n = len(rows)
    out: dict[str, Any] = {"traffic": arm.traffic, "arm": arm.label, "method": method, "runs": n}
    if not arm.regression:
        k = sum(1 for r in rows if r["tick"] is not None and r["tick"] <= HOUR_S)
        out["false_rollback"] = k / n
        out["false_rollback_wilson"] = wilson(k, n)
        return out
    pre = sum(1 for r in rows if r["tick"] is not None and r["tick"] <= arm.onset)
    delays = [
        r["tick"] - arm.onset if r["tick"] is not None and r["tick"] > arm.onset else math.inf
        for r in rows
    ]
    if method == "judge":
        passed = [r["passed"] for r in results if "passed" in r]
        if passed:
            out["passed_during_regression"] = sum(passed) / len(passed)
            out["passed_wilson"] = wilson(sum(passed), len(passed))
    out["pre_onset_rollback"] = pre / n
    out["detected"] = sum(1 for d in delays if math.isfinite(d)) / n
    finite_or_inf = sorted(delays)
    out["median_s"] = _quantile(finite_or_inf, 0.5)
    out["p90_s"] = _quantile(finite_or_inf, 0.9)
    bads = sorted(r["bad"] for r in rows if r["bad"] is not None)
    out["bad_served_median"] = _quantile([float(b) for b in bads], 0.5)
    return out


MATCHED = "oracle-cp@aa"


def matched_oracle(
    arm_list: list[Arm],
    results: dict[int, list[dict[str, Any]]],
    judge_aa: tuple[int, int] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """oracle-cp at the judge's MEASURED A/A budget rather than at its nominal alpha.

    For each regression arm, the A/A arm generated like it gives the judge's false rollbacks
    k of N (or `judge_aa`, from an earlier and longer run) and oracle-cp's peak log R on each
    A/A stream (watching errors tuned to 1.0% and latency tuned to x1.2, as its own A/A row).
    The limit is set so that oracle-cp's A/A rate on those streams is the upper end of the
    judge's Wilson interval (the end that favours the oracle); the arm's runs are then
    re-read at that limit from oracle-cp's record highs. Returns summaries and notes.
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    index = {a: i for i, a in enumerate(arm_list)}
    for i, arm in enumerate(arm_list):
        runs = [r for r in results.get(i, []) if "records" in r.get("oracle-cp", {})]
        if not arm.regression or not runs:
            continue
        j = index.get(aa_twin(arm))
        aa = results.get(j, []) if j is not None else []
        peaks = sorted((r["oracle-cp"]["peak"] for r in aa if "peak" in r.get("oracle-cp", {})),
                       reverse=True)  # fmt: skip
        if judge_aa is not None:
            k, n = judge_aa
        else:
            ticks = [r["judge"]["tick"] for r in aa if "judge" in r]
            k, n = sum(1 for t in ticks if t is not None and t <= HOUR_S), len(ticks)
        if n == 0 or not peaks:
            notes.append(f"{arm.traffic:>7.0f} {arm.label}: no A/A runs of the judge and "
                         f"oracle-cp to match budgets on")  # fmt: skip
            continue
        budget = wilson(k, n)[1]
        allowed = int(budget * len(peaks))
        if allowed >= len(peaks):
            notes.append(f"{arm.traffic:>7.0f} {arm.label}: the judge's budget is above every "
                         f"oracle-cp A/A peak")  # fmt: skip
            continue
        limit = float(np.nextafter(peaks[allowed], math.inf))
        if limit < 0:
            notes.append(f"{arm.traffic:>7.0f} {arm.label}: the matched limit is below 0")
            continue
        picked = [
            {MATCHED: {"tick": next((t for t, v in r["oracle-cp"]["records"] if v >= limit),
                                    None), "bad": None}}
            for r in runs
        ]  # fmt: skip
        summary = summarise(arm, picked, MATCHED)
        if summary is not None:
            summary["limit"] = limit
            rows.append(summary)
        nominal = math.log(2 / ALPHA)
        notes.append(
            f"{arm.traffic:>7.0f} {arm.label:<26} judge A/A {k}/{n} (Wilson upper "
            f"{budget * 100:.2f}%): oracle-cp limit {limit:.2f} nats, its A/A there "
            f"{allowed}/{len(peaks)} (at its nominal {nominal:.2f}: "
            f"{sum(1 for p in peaks if p >= nominal)}/{len(peaks)})"
        )
    return rows, notes


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def _fmt_count(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f}"


def _fmt_s(x: float) -> str:
    return ">1h" if math.isinf(x) else f"{x:.0f}"


def table(summaries: list[dict[str, Any]]) -> str:
    head = (
        f"{'traffic':>7} {'arm':<26} {'method':<12} {'runs':>5} {'false RB/h [95% Wilson]':>24} "
        f"{'pre-onset':>9} {'detected':>8} {'median s':>8} {'p90 s':>6} {'bad served':>10}"
    )
    lines = [head, "-" * len(head)]
    for s in summaries:
        if "false_rollback" in s:
            lo, hi = s["false_rollback_wilson"]
            fr = f"{s['false_rollback'] * 100:5.1f}% [{lo * 100:4.1f}, {hi * 100:4.1f}]"
            rest = f"{'-':>9} {'-':>8} {'-':>8} {'-':>6} {'-':>10}"
        else:
            fr = "-"
            rest = (
                f"{s['pre_onset_rollback'] * 100:8.1f}% {s['detected'] * 100:7.0f}% "
                f"{_fmt_s(s['median_s']):>8} {_fmt_s(s['p90_s']):>6} "
                f"{_fmt_count(s['bad_served_median']):>10}"
            )
        lines.append(
            f"{s['traffic']:>7.0f} {s['arm']:<26} {s['method']:<12} {s['runs']:>5} {fr:>24} {rest}"
        )
    return "\n".join(lines)


def comparisons(summaries: list[dict[str, Any]]) -> str:
    """Per regression arm: the judge's median against the others', and the pass risk."""
    by: dict[tuple[float, str], dict[str, dict[str, Any]]] = {}
    for s in summaries:
        if "median_s" in s:
            by.setdefault((s["traffic"], s["arm"]), {})[s["method"]] = s

    def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
        if a is None or b is None:
            return "-"
        x, y = a["median_s"], b["median_s"]
        if math.isinf(x) or math.isinf(y) or y <= 0:
            return ">1h" if math.isinf(x) else "-"
        return f"{x / y:.2f}"

    head = (
        f"{'traffic':>7} {'arm':<26} {'judge/cp':>8} {'j/cp@aa':>7} {'judge/cp-b':>10} "
        f"{'judge/cp-q':>10} "
        f"{'iid/cp':>6} {'ratio/cp':>8} {'flagger/j':>9} {'kayenta/j':>9} "
        f"{'passed in regression [Wilson]':>30}"
    )
    lines = [head, "-" * len(head)]
    for (traffic, arm), m in by.items():
        j = m.get("judge")
        passed = "-"
        if j is not None and "passed_during_regression" in j:
            lo, hi = j["passed_wilson"]
            passed = (
                f"{j['passed_during_regression'] * 100:5.1f}% [{lo * 100:4.1f}, {hi * 100:4.1f}]"
            )
        lines.append(
            f"{traffic:>7.0f} {arm:<26} {ratio(j, m.get('oracle-cp')):>8} "
            f"{ratio(j, m.get(MATCHED)):>7} {ratio(j, m.get('oracle-cp-b')):>10} "
            f"{ratio(j, m.get('oracle-cp-q')):>10} "
            f"{ratio(m.get('judge-iid'), m.get('oracle-cp')):>6} "
            f"{ratio(m.get('oracle-ratio'), m.get('oracle-cp')):>8} "
            f"{ratio(m.get('flagger'), j):>9} {ratio(m.get('kayenta'), j):>9} {passed:>30}"
        )
    return "\n".join(lines)


def tasks(
    arm_list: list[Arm],
    aa_runs: int,
    reg_runs: int,
    seed: int,
    tol: float,
    methods: frozenset[str] = frozenset(METHODS),
) -> Iterator[Task]:
    for i, arm in enumerate(arm_list):
        for run in range(reg_runs if arm.regression else aa_runs):
            yield (i, run, seed, tol, arm.onset, methods)


def _finite(x: Any) -> Any:
    """JSON has no infinity: 'never within the hour' is written as null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _fraction(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    try:
        out = (int(k), int(n))
    except ValueError:
        out = (-1, 0)
    if not sep or out[0] < 0 or out[1] <= 0 or out[0] > out[1]:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give K/N with 0 <= K <= N, N > 0 (e.g. 3/1000)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a few minutes)")
    parser.add_argument("--aa-runs", type=int, default=None, help="A/A runs per traffic level")
    parser.add_argument("--runs", type=int, default=None, help="runs per regression arm")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="the judge's ratio tolerance (1.0: fail on any increase the data prove)",
    )
    parser.add_argument(
        "--onset",
        type=int,
        default=ONSET_S,
        help=f"seconds into the canary the regressions start (default {ONSET_S})",
    )
    parser.add_argument(
        "--no-aa", action="store_true", help="skip the A/A runs (they have no onset)"
    )
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--only",
        default=None,
        help="only the arm with this label, or if none has it, the arms whose label contains "
        "it (e.g. 'A/A b2-4' alone, 'b2-4' for all of them)",
    )
    parser.add_argument(
        "--family",
        choices=("independent", "clustered", "other"),
        action="append",
        default=None,
        help="only this group of arms (the original independent ones, clustered, other)",
    )
    parser.add_argument(
        "--traffic",
        type=float,
        action="append",
        default=None,
        help="only this traffic level (requests/s); may be repeated",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated methods to run (default: all); e.g. 'judge' alone for long A/A "
        "samples of one arm",
    )
    parser.add_argument(
        "--judge-aa",
        type=_fraction,
        default=None,
        metavar="K/N",
        help=f"the judge's A/A false rollbacks K of N from an earlier, longer run, for "
        f"{MATCHED} (default: this run's A/A runs of the judge)",
    )
    parser.add_argument(
        "--oracle-aa-runs",
        type=int,
        default=0,
        metavar="M",
        help=f"oracle-cp alone on M more A/A streams of each regression arm's A/A twin, so "
        f"{MATCHED}'s limit is read from more peaks (cheap: about 50 ms a stream)",
    )
    parser.add_argument("--workers", type=int, default=max(1, min(2, multiprocessing.cpu_count())))
    parser.add_argument("--json", type=Path, default=None, help="save the figures here")
    args = parser.parse_args(argv)
    aa_runs = args.aa_runs or (60 if args.quick else 1000)
    reg_runs = args.runs or (20 if args.quick else 300)
    if args.onset < 0:
        parser.error("--onset must be zero or more seconds")
    for flag, value in (("--aa-runs", args.aa_runs), ("--runs", args.runs),
                        ("--oracle-aa-runs", args.oracle_aa_runs)):  # fmt: skip
        if value is not None and value < 0:
            parser.error(f"{flag} must be zero or more runs (got {value})")
    arm_list = arms(args.onset)
    methods = frozenset(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(methods - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods: unknown {', '.join(unknown) or '(none given)'}; "
                     f"known: {', '.join(METHODS)}")  # fmt: skip
    work = list(tasks(arm_list, aa_runs, reg_runs, args.seed, args.tolerance, methods))
    if args.traffic:
        work = [t for t in work if arm_list[t[0]].traffic in args.traffic]
    if args.no_aa:
        work = [t for t in work if arm_list[t[0]].regression]
    if args.only:  # a label given whole picks that arm alone ('A/A b2-4', not 'A/A b2-4/5s')
        exact = any(a.label == args.only for a in arm_list)
        work = [
            t for t in work
            if (arm_list[t[0]].label == args.only if exact else args.only in arm_list[t[0]].label)
        ]  # fmt: skip
    if args.family:
        work = [t for t in work if arm_list[t[0]].family in args.family]
    if args.oracle_aa_runs:  # oracle-cp alone on more A/A streams of each arm's A/A twin
        index = {a: i for i, a in enumerate(arm_list)}
        twins = {
            index[twin]
            for t in work
            if arm_list[t[0]].regression and (twin := aa_twin(arm_list[t[0]])) in index
        }
        first = 0 if args.no_aa else aa_runs  # after the A/A runs' seeds, never on them
        work += [
            (i, run, args.seed, args.tolerance, arm_list[i].onset, frozenset({"oracle-cp"}))
            for i in sorted(twins)
            for run in range(first, first + args.oracle_aa_runs)
        ]
    # the long runs first, so the pool does not wait on a straggler at the end
    work.sort(key=lambda t: (arm_list[t[0]].regression, -arm_list[t[0]].traffic))
    started = time.monotonic()
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(arm_list))}
    with multiprocessing.Pool(args.workers) as pool:
        for done, r in enumerate(pool.imap_unordered(one_run, work, chunksize=4), start=1):
            results[r["arm"]].append(r)
            if done % 200 == 0:
                print(f"  {done}/{len(work)} runs, {time.monotonic() - started:.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    matched, notes = matched_oracle(arm_list, results, args.judge_aa)
    by_arm = {(m["traffic"], m["arm"]): m for m in matched}
    summaries = []
    for i, arm in enumerate(arm_list):
        if not results[i]:
            continue
        for method in METHODS:
            s = summarise(arm, results[i], method)
            if s is not None:
                summaries.append(s)
        if (arm.traffic, arm.label) in by_arm:
            summaries.append(by_arm[(arm.traffic, arm.label)])
    elapsed = time.monotonic() - started
    print(
        f"detection benchmark: alpha {ALPHA}, judge tolerance {args.tolerance:g}x, "
        f"{'no' if args.no_aa else aa_runs} A/A runs per traffic level, "
        f"{reg_runs} per regression arm, "
        f"onset {args.onset} s, seed {args.seed}, {elapsed:.0f} s"
    )
    print(table(summaries))
    print()
    print(comparisons(summaries))
    if notes:
        print()
        print(f"{MATCHED}: oracle-cp at the judge's measured A/A budget")
        print("\n".join(notes))
    if args.json is not None:
        examples = {
            arm_list[i].label + f" @{arm_list[i].traffic:g}": next(
                (r["why"] for r in rs if r["why"]), ""
            )
            for i, rs in results.items()
        }
        args.json.write_text(
            json.dumps(
                _finite(
                    {
                        "alpha": ALPHA,
                        "tolerance": args.tolerance,
                        "aa_runs": aa_runs,
                        "regression_runs": reg_runs,
                        "seed": args.seed,
                        "onset_s": args.onset,
                        "seconds": elapsed,
                        "tail_scale": TAIL_SCALE,
                        "rows": summaries,
                        "example_rollbacks": examples,
                    }
                ),
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
