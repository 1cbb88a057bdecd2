"""The sequential judge: anytime-valid canary-vs-baseline analysis, looked at every tick.

One job: from each window of counts, say per metric whether the canary is worse than the
baseline by more than the metric's tolerance (FAIL), demonstrably within it (PASS), or not yet
known (INCONCLUSIVE), with the evidence, while keeping the probability of ever failing a canary
that is within tolerance below `alpha` for the whole canary, however often it is asked.

How (the mathematics is in `confseq`):
- every metric is a count of bad events out of requests: errors, requests slower than a
  threshold read from the histogram buckets (fixed before counting starts: the metric's
  `threshold_ms`, or the baseline's p95/p99 over the first minute), or a custom count;
- the comparison is a confidence sequence for the rate ratio canary/baseline, built from which
  variant each bad event hit given the requests each variant really served, so it holds when
  load rises and falls and whatever weight the router was asked for;
- FAIL when the whole interval lies above the tolerance, PASS when it lies within it after the
  step's hold and a minimum sample, INCONCLUSIVE otherwise; `alpha` is split evenly across
  the metrics and the SLO guards;
- beside the comparison, per SLO: the canary's own bad-event rate bounded above the objective
  (a FAIL even when the baseline is just as bad), and the SRE workbook's multi-window burn rate;
- no data, a broken query, or a variant without traffic is never a PASS;
- bad events that come in bursts (a client retrying, a pod failing everything for a second)
  vary more than independent requests: each window's evidence is divided by the baseline's
  index of dispersion (quasi-likelihood, see `dispersion`), and the evidence says so;
- a PASS must also hold for the recent past: when a recent window (the last 30 s to 5 min)
  reads beyond the tolerance, the step is not passed on the strength of older data;
- for `warmup_s` after the canary starts (and `step_warmup_s` after each step) comparisons
  are shown as WARMING UP, never acted on, and their data are dropped from the tests when the
  warm-up ends; the hard `ceiling` on the canary's own bad-event rate and the SLO guards fail
  at once, warm-up or not.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from canary_tui.core.judging.base import StepContext, bad_and_total, duration_text, pct
from canary_tui.core.judging.confseq import (
    Bound,
    Grid,
    GridSettings,
    RateSequence,
    RatioSequence,
    chernoff_lower_bound,
    observe_ratio,
    rate_lower_bound,
    rate_upper_bound,
)
from canary_tui.core.judging.dispersion import BURSTY_FROM, Dispersion
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.slo import SLO
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Evidence, Status, Verdict


class Effect(StrEnum):
    """The effect the evidence reports an interval for."""

    RATIO = "ratio"  # canary rate / baseline rate
    DIFFERENCE = "difference"  # canary rate - baseline rate


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """Fire when the error budget burns at `factor` times over both windows (SRE workbook)."""

    long_s: float
    short_s: float
    factor: float

    def __post_init__(self) -> None:
        if not 0 < self.short_s <= self.long_s:
            raise ValueError("burn windows need 0 < short_s <= long_s")
        if self.factor <= 0:
            raise ValueError("burn factor must be positive")


# The workbook's paging pair for a 30-day SLO: 2% of the budget in 1 h, 5% in 6 h.
SRE_BURN_WINDOWS = (BurnWindow(3600.0, 300.0, 14.4), BurnWindow(21600.0, 1800.0, 6.0))

_SNAPSHOT_EVERY_S = 5.0
_DISPLAY_LOOKBACKS_S = (600.0, 300.0, 120.0, 60.0, 30.0, 15.0, 5.0)
_RAW_WINDOWS = 12  # the last windows, one by one, for quoting a sharp change
_VETO_SPANS_S = (25.0, 330.0)  # recent windows (about 30 s to 5 min) that can veto a PASS
_CEILING_SHARE = 0.05  # of each metric's alpha, for its hard ceiling
DEFAULT_WARMUP_S = 0.0  # the config default (`judge.warmup`), see docs
DEFAULT_CEILING = 0.25
DEFAULT_PASS_VETO = 1.0


class SequentialJudge:
    """Anytime-valid sequential judge (implements the `Judge` protocol).

    Settings:
    - `specs`: the metrics; each one's tolerance is `tolerance_ratio` (canary/baseline) and,
      if positive, `tolerance_abs` (canary - baseline): the canary may be worse up to the larger
      of the two, as in `MetricSpec`.
    - `alpha`: the false-rollback budget for the whole canary, split evenly across the metrics
      and the SLO guards (0.01: at most one healthy canary in a hundred is ever rolled back).
    - `effect`: which effect the evidence reports (ratio or difference); the decision is the
      same either way.
    - `pass_alpha`: the risk of calling a step PASS while the canary is beyond tolerance.
    - `min_requests`: canary requests needed within a step before it can PASS.
    - `slos`: SLOs whose objective the canary must meet on its own (a guard verdict each).
    - `burn_windows`: multi-window burn-rate rules for those SLOs.
    - `slow_quantiles`: metric name -> baseline quantile (0.95, 0.99) whose value, read from
      the baseline over the first `calibration_s` seconds (and at least
      `calibration_min_requests` requests), replaces the metric's `threshold_ms`.
    - `snap_thresholds`: move latency thresholds up to the next histogram bucket bound, so that
      slow requests are counted, not interpolated.
    - `no_traffic_s`: a variant silent this long makes every verdict no-data.
    - `pass_scope`: what a PASS rests on: "step" (only this step's data, the default: a
      regression late in a step cannot ride on earlier good data) or "canary" (everything
      since the canary started: faster through the first, low-weight steps).
    - `grid`: the shape of the confidence sequences (grid, priors, restart scale).
    - `dispersion`: divide each window's evidence by the baseline's index of dispersion
      (bursty counts); False treats every request as independent (for comparison only).
    - `warmup_s`, `step_warmup_s`: how long after the canary's first window, and after each
      step starts, comparisons are WARMING UP (shown, never acted on, then forgotten).
    - `ceiling`: a hard limit on the canary's own bad-event rate (a share, e.g. 0.25), proved
      with 5% of each metric's alpha and failed at once, warm-up or not; None: no ceiling.
    - `pass_veto`: the e-value (one look) with which a recent window reading beyond the
      tolerance holds back a PASS.
    """

    def __init__(
        self,
        specs: tuple[MetricSpec, ...],
        alpha: float = 0.01,
        *,
        effect: Effect | str = Effect.RATIO,
        pass_alpha: float = 0.05,
        min_requests: float = 200.0,
        slos: tuple[SLO, ...] = (),
        burn_windows: tuple[BurnWindow, ...] = SRE_BURN_WINDOWS,
        slow_quantiles: Mapping[str, float] | None = None,
        calibration_s: float = 60.0,
        calibration_min_requests: float = 1000.0,
        snap_thresholds: bool = True,
        no_traffic_s: float = 30.0,
        pass_scope: str = "step",
        grid: GridSettings | None = None,
        dispersion: bool = True,
        warmup_s: float = 0.0,
        step_warmup_s: float = 0.0,
        ceiling: float | None = DEFAULT_CEILING,
        pass_veto: float = DEFAULT_PASS_VETO,
    ) -> None:
        if not 0.0 < alpha < 1.0 or not 0.0 < pass_alpha < 1.0:
            raise ValueError("alpha and pass_alpha must lie strictly between 0 and 1")
        if not specs and not slos:
            raise ValueError("the judge needs at least one metric or SLO")
        if pass_scope not in ("step", "canary"):
            raise ValueError("pass_scope must be 'step' or 'canary'")
        if not (warmup_s >= 0 and step_warmup_s >= 0):
            raise ValueError("warm-up durations must be zero or more seconds")
        if ceiling is not None and not 0.0 < ceiling < 1.0:
            raise ValueError("the ceiling must lie strictly between 0 and 1")
        if not pass_veto >= 1.0:
            raise ValueError("pass_veto must be at least 1")
        quantiles = dict(slow_quantiles or {})
        for spec in specs:
            if spec.baseline_quantile is not None:
                quantiles.setdefault(spec.name, spec.baseline_quantile)
        names = {s.name for s in specs}
        for name, q in quantiles.items():
            if name not in names:
                raise ValueError(f"slow_quantiles names an unknown metric {name!r}")
            if not 0.5 <= q < 1.0:
                raise ValueError(f"metric {name!r}: the baseline quantile must lie in [0.5, 1)")
        self.specs = specs
        self.slos = slos
        self.alpha = alpha
        self.pass_alpha = pass_alpha
        self.effect = Effect(effect)
        self.min_requests = min_requests
        self.calibration_s = calibration_s
        self.calibration_min_requests = calibration_min_requests
        self.no_traffic_s = no_traffic_s
        self.pass_scope = pass_scope
        self.use_dispersion = dispersion
        self.warmup_s = warmup_s
        self.step_warmup_s = step_warmup_s
        self.ceiling = ceiling
        self.pass_veto = pass_veto
        tests = len(specs) + len(slos)
        self.alpha_per_test = alpha / tests
        self._comparisons = [
            _Comparison(
                spec,
                self,
                alpha / tests,
                pass_alpha / max(1, len(specs)),
                quantiles.get(spec.name),
                snap_thresholds,
                grid,
            )
            for spec in specs
        ]
        self._guards = [
            _Guard(slo, alpha / tests, burn_windows, grid, dispersion) for slo in slos
        ]
        self._t0: float | None = None
        self._step_t0: float | None = None  # in the samples' time: when this step started
        self._last: Sample | None = None
        self._seen: dict[str, float] = {}  # variant -> end of the last window it had traffic

    # --- the Judge protocol ---------------------------------------------------------------
    def start_step(self, index: int, now: float) -> None:
        # the step's warm-up runs in the samples' time, from the end of the last window seen
        self._step_t0 = self._last.end if self._last is not None else None
        for comp in self._comparisons:
            comp.start_step()

    def warm_left(self, t: float) -> float:
        """Seconds of warm-up left at sample time `t` (0: comparisons count)."""
        left = 0.0
        if self._t0 is not None and self.warmup_s > 0:
            left = max(left, self._t0 + self.warmup_s - t)
        if self.step_warmup_s > 0:
            start = self._step_t0 if self._step_t0 is not None else self._t0
            if start is not None:
                left = max(left, start + self.step_warmup_s - t)
        return max(0.0, left)

    def observe(self, sample: Sample) -> None:
        sample = sample.validated()
        self._last = sample
        if self._t0 is None:
            self._t0 = sample.start
        if self._step_t0 is None:
            self._step_t0 = sample.start
        elapsed = sample.start - self._t0
        duration = max(0.0, sample.end - sample.start)
        if not sample.ok:
            for comp in self._comparisons:
                comp.idle(elapsed, duration)
            for guard in self._guards:
                guard.idle(elapsed, duration)
            return
        if sample.baseline is None or sample.canary is None:
            raise ValueError("an ok sample without both variants")
        for variant, counts in (("baseline", sample.baseline), ("canary", sample.canary)):
            if counts.requests > 0:
                self._seen[variant] = sample.end
        warming = self.warm_left(sample.start) > 0
        for comp in self._comparisons:
            comp.observe(sample, elapsed, duration, warming)
        for guard in self._guards:
            guard.observe(sample, elapsed, duration)

    def verdicts(self, ctx: StepContext) -> tuple[Verdict, ...]:
        names = [c.spec.name for c in self._comparisons] + [g.name for g in self._guards]
        last = self._last
        if last is None:
            return _all_no_data(names, "waiting for the first window", "no-data")
        if not last.ok:
            return _all_no_data(names, last.problem or "no data", "no-data")
        for variant in ("canary", "baseline"):
            seen = self._seen.get(variant)
            if seen is None:
                return _all_no_data(
                    names, f"the {variant} has served no requests yet", "no-traffic"
                )
            if last.end - seen >= self.no_traffic_s:
                silent = last.end - seen
                why = f"the {variant} served no requests for {silent:.0f} s"
                return _all_no_data(names, why, "no-traffic")
        left = self.warm_left(last.start)  # as the last window was fed: warm-up or not
        out = [comp.verdict(ctx, left) for comp in self._comparisons]
        out += [guard.verdict() for guard in self._guards]
        return tuple(out)

    # --- extras for the engine --------------------------------------------------------------
    @property
    def needs_baseline(self) -> bool:
        """True while a slow-request threshold is still to be read from the baseline."""
        return any(comp.calibrating for comp in self._comparisons)

    def calibrate(self, baseline_latency: Histogram, when: str = "") -> None:
        """Fix the slow-request thresholds now, from the baseline's latency before the canary
        (`when` says over what, for the evidence: "over the 10 min before the canary")."""
        for comp in self._comparisons:
            if comp.quantile is not None and comp.threshold_s is None:
                comp.fix_threshold(baseline_latency, when)

    def thresholds_ms(self) -> dict[str, float | None]:
        """The slow-request threshold each latency metric counts with (None: calibrating)."""
        return {
            c.spec.name: None if c.threshold_s is None else c.threshold_s * 1000.0
            for c in self._comparisons
            if c.spec.kind is MetricKind.LATENCY
        }


def _all_no_data(names: list[str], reason: str, rule: str) -> tuple[Verdict, ...]:
    return tuple(Verdict.without_data(name, reason, Evidence(rule=rule)) for name in names)


@dataclass(frozen=True, slots=True)
class _Counts:
    canary_bad: float = 0.0
    canary_n: float = 0.0
    baseline_bad: float = 0.0
    baseline_n: float = 0.0

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.canary_bad + other.canary_bad,
            self.canary_n + other.canary_n,
            self.baseline_bad + other.baseline_bad,
            self.baseline_n + other.baseline_n,
        )

    def __sub__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.canary_bad - other.canary_bad,
            self.canary_n - other.canary_n,
            self.baseline_bad - other.baseline_bad,
            self.baseline_n - other.baseline_n,
        )

    @property
    def canary_rate(self) -> float | None:
        return self.canary_bad / self.canary_n if self.canary_n > 0 else None

    @property
    def baseline_rate(self) -> float | None:
        return self.baseline_bad / self.baseline_n if self.baseline_n > 0 else None


class _Recent:
    """Running totals noted every few seconds, so a verdict can quote the rates of a recent
    window (about the last 10, 5, 2, 1 min, 30, 15 or 5 s, or since the last note) as well as
    the whole canary's; and after each of the last few windows, so that a sharp change
    between two notes can be quoted from exactly where it began."""

    def __init__(self) -> None:
        self._snaps: deque[tuple[float, _Counts]] = deque(
            maxlen=int(_DISPLAY_LOOKBACKS_S[0] / _SNAPSHOT_EVERY_S) + 2
        )
        self._raw: deque[tuple[float, _Counts]] = deque(maxlen=_RAW_WINDOWS + 1)
        self._now = 0.0

    def __len__(self) -> int:
        return len(self._snaps)

    def note(self, end: float, total: _Counts) -> None:
        self._now = end
        self._raw.append((end, total))
        if not self._snaps or end - self._snaps[-1][0] >= _SNAPSHOT_EVERY_S:
            self._snaps.append((end, total))

    def windows(self, total: _Counts) -> list[tuple[_Counts, str]]:
        """The whole canary ("") and each recent window it can tell from it, longest first,
        each labelled with the span it really covers (up to the latest count)."""
        return [(w, label) for w, label, _ in self.spans(total)]

    def spans(self, total: _Counts) -> list[tuple[_Counts, str, float]]:
        """`windows`, each with the seconds it covers (inf for the whole canary)."""
        out: list[tuple[_Counts, str, float]] = [(total, "", math.inf)]
        snaps, now = self._snaps, self._now
        used: set[float] = set()
        for lookback in (*_DISPLAY_LOOKBACKS_S, 0.0):
            # the latest note at least `lookback` old (strictly older than now for the last)
            i = bisect.bisect_right(snaps, now - lookback, key=lambda snap: snap[0]) - 1
            if lookback == 0.0 and i >= 0 and snaps[i][0] >= now:
                i -= 1
            if i < 0:
                continue
            t, snap = snaps[i]
            if t in used or snap == total:
                continue
            used.add(t)
            out.append((total - snap, f"last {_span_text(now - t)}", now - t))
        for t, snap in self._raw:
            if t in used or t >= now or snap == total:
                continue
            used.add(t)
            out.append((total - snap, f"last {_span_text(now - t)}", now - t))
        out[1:] = sorted(out[1:], key=lambda w: -w[2])  # longest first
        return out


def _span_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.2g} min"


class _Comparison:
    """One metric: the ratio's confidence sequences, counts, and the words for its verdict.

    Two sequences on the same likelihood: `fails` (restarted every window, Shiryaev-Roberts)
    gives the lower bound that decides FAIL, so a regression late in a canary is caught as fast
    as an early one; `passes` (one test from the start of the step) gives the upper bound that
    decides PASS, so only what the canary did during this step can pass it.
    """

    def __init__(
        self,
        spec: MetricSpec,
        judge: SequentialJudge,
        alpha: float,
        pass_alpha: float,
        quantile: float | None,
        snap: bool,
        grid: GridSettings | None,
    ) -> None:
        self.spec = spec
        self.judge = judge
        self.quantile = quantile
        self.snap = snap
        self.grid_settings = grid
        self.uses_abs = spec.tolerance_abs > 0
        # With an absolute tolerance too, a FAIL also needs the difference's bound, whose
        # baseline-rate part gets a quarter of the metric's alpha.
        self.alpha_ratio = alpha * (0.75 if self.uses_abs else 1.0)
        self.alpha_base = alpha * 0.25
        self.pass_alpha_ratio = pass_alpha * (0.5 if self.uses_abs else 1.0)
        self.pass_alpha_rate = pass_alpha * 0.25
        if judge.ceiling is not None:
            self.alpha_ratio *= 1.0 - _CEILING_SHARE
        self.alpha_ceiling = alpha * _CEILING_SHARE
        self.fails = RatioSequence(spec.tolerance_ratio, grid, sides="greater")
        self.passes = self._new_pass_sequence()
        # the index of dispersion of the baseline's bad events (the canary's only while the
        # baseline has had none), and the factor the last window's evidence was divided by
        self.dispersion = Dispersion()
        self.canary_dispersion = Dispersion()
        self.phi = 1.0
        self.ceiling = (
            RateSequence(judge.ceiling, grid, sides="greater")
            if judge.ceiling is not None
            else None
        )
        self.ceiling_total = _Counts()  # the canary's side only, never reset
        self._ceiling_recent = _Recent()
        self.warm = False
        self.threshold_s: float | None = None
        self.threshold_note = ""
        self._snapped = True
        if spec.kind is MetricKind.LATENCY and quantile is None:
            if spec.threshold_ms is None:
                raise ValueError(f"{spec.name}: a latency metric needs threshold_ms or a quantile")
            self.threshold_s = spec.threshold_ms / 1000.0
            self._snapped = not snap
        self.total = _Counts()
        self.step = _Counts()
        self.problem: str | None = None
        self._bound_hints: dict[str, float] = {}
        self._calibration: Histogram | None = None
        self._calibration_start: float | None = None
        self._recent = _Recent()

    def _new_pass_sequence(self) -> RatioSequence:
        return RatioSequence(
            self.spec.tolerance_ratio, self.grid_settings, sides="less", restarts=False
        )

    @property
    def calibrating(self) -> bool:
        return self.quantile is not None and self.threshold_s is None

    # --- feeding ---------------------------------------------------------------------------
    def start_step(self) -> None:
        self.step = _Counts()
        if self.judge.pass_scope == "step":
            self.passes = self._new_pass_sequence()

    def idle(self, elapsed: float, duration: float) -> None:
        self.fails.add_time(elapsed, duration)
        if self.ceiling is not None:
            self.ceiling.add_time(elapsed, duration)

    def factor(self) -> float:
        """What the next window's evidence is divided by (1 with dispersion off)."""
        if not self.judge.use_dispersion:
            return 1.0
        if self.dispersion.estimate is not None or not self.canary_dispersion.ready:
            return self.dispersion.factor
        return self.canary_dispersion.factor

    def _after_warmup(self) -> None:
        """The warm-up is over: the tests start afresh, without its data."""
        self.fails = RatioSequence(self.spec.tolerance_ratio, self.grid_settings, sides="greater")
        self.passes = self._new_pass_sequence()
        self.total = _Counts()
        self.step = _Counts()
        self._recent = _Recent()

    def observe(self, sample: Sample, elapsed: float, duration: float, warming: bool) -> None:
        if sample.baseline is None or sample.canary is None:
            raise ValueError("observe needs a sample with both variants")
        if self.warm and not warming:
            self._after_warmup()
        self.warm = warming
        if self.calibrating:
            self._calibrate(sample)
            self.idle(elapsed, duration)
            return
        if not self._snapped:
            hist = sample.baseline.latency or sample.canary.latency
            if hist is not None and self.threshold_s is not None:
                self.threshold_s = _snap(self.threshold_s, hist.bounds)
                self._snapped = True
        b, c = self._count(sample.baseline), self._count(sample.canary)
        if b is None or c is None:
            self.problem = f"{self.spec.name} cannot be counted from this source" + (
                " (no latency histogram)" if self.spec.kind is MetricKind.LATENCY else ""
            )
            self.idle(elapsed, duration)
            return
        self.problem = None
        w = _Counts(c[0], c[1], b[0], b[1])
        phi = self.factor()  # fixed before this window is seen (predictable)
        observe_ratio(
            (self.fails, self.passes),
            w.canary_bad,
            w.canary_n,
            w.baseline_bad,
            w.baseline_n,
            elapsed,
            duration,
            phi,
        )
        if w.canary_bad + w.baseline_bad > 0:  # a window without bad events is not scaled
            self.phi = phi
        if self.ceiling is not None:
            # far above the baseline's rate: the point estimate of the dispersion will do
            point = self.dispersion.estimate if self.judge.use_dispersion else None
            self.ceiling.observe(w.canary_bad, w.canary_n, elapsed, duration,
                                 max(1.0, point or 1.0))  # fmt: skip
            self.ceiling_total = self.ceiling_total + _Counts(w.canary_bad, w.canary_n)
            self._ceiling_recent.note(sample.end, self.ceiling_total)
        self.dispersion.add(w.baseline_bad, w.baseline_n, duration)
        self.canary_dispersion.add(w.canary_bad, w.canary_n, duration)
        self.total = self.total + w
        self.step = self.step + w
        self._recent.note(sample.end, self.total)

    def _count(self, counts: VariantCounts) -> tuple[float, float] | None:
        if self.spec.kind is MetricKind.LATENCY:
            if counts.latency is None or self.threshold_s is None:
                return None
            return counts.latency.count_above(self.threshold_s), counts.latency.total
        return bad_and_total(self.spec, counts)

    def _calibrate(self, sample: Sample) -> None:
        if sample.baseline is None:
            raise ValueError("calibration needs the baseline's counts")
        hist = sample.baseline.latency
        if hist is None:
            self.problem = f"{self.spec.name} cannot be counted from this source (no histogram)"
            return
        self.problem = None
        if self._calibration_start is None:
            self._calibration_start = sample.start
        if self._calibration is None or self._calibration.bounds != hist.bounds:
            self._calibration = hist
        else:
            self._calibration = self._calibration + hist
        elapsed = sample.end - self._calibration_start
        if (
            elapsed >= self.judge.calibration_s
            and self._calibration.total >= self.judge.calibration_min_requests
        ):
            self.fix_threshold(self._calibration, f"over the canary's first {elapsed:.0f} s")

    def fix_threshold(self, baseline_latency: Histogram, when: str = "") -> None:
        if self.quantile is None:
            raise ValueError(f"{self.spec.name}: no baseline quantile to fix a threshold from")
        value = baseline_latency.quantile(self.quantile)
        if value is None or value <= 0:
            return
        threshold = _snap(value, baseline_latency.bounds) if self.snap else value
        self.threshold_s = threshold
        self.threshold_note = f"baseline p{self.quantile * 100:g} was {value * 1000:.0f} ms"
        if when:
            self.threshold_note += f" {when}"
        self._calibration = None

    # --- judging ---------------------------------------------------------------------------
    def verdict(self, ctx: StepContext, warm_left: float = 0.0) -> Verdict:
        ceiling = self._ceiling_verdict()
        if ceiling is not None:
            return ceiling
        spec = self.spec
        if self.problem is not None:
            return Verdict.without_data(spec.name, self.problem)
        if self.calibrating:
            have = self._calibration.total if self._calibration is not None else 0.0
            why = (
                f"{spec.name}: learning the baseline's p{(self.quantile or 0) * 100:g} "
                f"({have:.0f} of {self.judge.calibration_min_requests:.0f} requests, "
                f"{self.judge.calibration_s:.0f} s): INCONCLUSIVE"
            )
            return Verdict(spec.name, Status.INCONCLUSIVE, why, Evidence(rule="calibrating"))
        fails, passes = self.fails.grid, self.passes.grid
        lower = fails.lower(self.alpha_ratio)
        upper = passes.upper(self.pass_alpha_ratio)
        log_fail = fails.log_e_greater(fails.anchor_index)
        log_pass = passes.log_e_less(passes.anchor_index)
        fail = log_fail >= math.log(1.0 / self.alpha_ratio)
        within = log_pass >= math.log(1.0 / self.pass_alpha_ratio)
        diff = self._difference(lower, upper) if self.uses_abs or self.effect_is_diff else None
        if self.uses_abs:
            if diff is None:
                raise ValueError("a difference interval is needed with tolerance_abs")
            fail = fail and diff.fail_low > spec.tolerance_abs
            within = within or diff.pass_high <= spec.tolerance_abs
        hold_left = ctx.hold_s - ctx.time_in_step
        enough = self.step.canary_n >= self.judge.min_requests
        reason = ""
        if fail:
            status, rule, log_e = Status.FAIL, "sequential: beyond tolerance", log_fail
        elif within and hold_left <= 0 and enough:
            status, rule, log_e = Status.PASS, "sequential: within tolerance", log_pass
        else:
            status, rule, log_e = Status.INCONCLUSIVE, "sequential: undecided", log_fail
            if within and hold_left > 0:
                reason = f" (within tolerance; held {ctx.time_in_step:.0f} of {ctx.hold_s:.0f} s)"
            elif within:
                reason = (
                    f" (within tolerance; {self.step.canary_n:.0f} of "
                    f"{self.judge.min_requests:.0f} canary requests this step)"
                )
        if status is Status.PASS:
            veto = self._recent_veto()
            if veto:
                status, rule = Status.INCONCLUSIVE, "sequential: recent veto"
                reason = f" (within tolerance this step, but {veto})"
        p_value = min(1.0, math.exp(-min(log_e, 700.0)))
        if status is Status.PASS:  # quote the interval of the data the PASS rests on
            lower = passes.lower(self.alpha_ratio)
        if self.warm:
            word = {Status.FAIL: "would fail", Status.PASS: "within tolerance"}.get(
                status, "undecided"
            )
            reason = f" ({word}; {duration_text(max(warm_left, 1.0))} of warm-up left)"
            verdict = self._render(status, rule, p_value, lower, upper, diff, reason)
            return Verdict(
                verdict.metric,
                Status.WARMING_UP,
                verdict.why.replace(f": {status.value.upper()} (", ": WARMING UP (", 1),
                replace(verdict.evidence, rule=f"warm-up ({rule})"),
            )
        return self._render(status, rule, p_value, lower, upper, diff, reason)

    def _recent_veto(self) -> str:
        """Why a recent window holds back a PASS ('' when none does): it reads beyond the
        tolerance with an e-value of at least `pass_veto` (one look at that window)."""
        spec, grid = self.spec, self.fails.grid
        limit = math.log(self.judge.pass_veto)
        u0 = math.log(spec.tolerance_ratio)
        for window, label, span in self._recent.spans(self.total):
            if not _VETO_SPANS_S[0] <= span <= _VETO_SPANS_S[1]:
                continue
            ratio = _ratio(window)
            if ratio is None or ratio <= spec.tolerance_ratio:
                continue
            c, b = window.canary_rate, window.baseline_rate
            if self.uses_abs and c is not None and b is not None and c - b <= spec.tolerance_abs:
                continue
            if _window_log_e_at(window, grid, u0, True, self.phi) >= limit:
                return f"the {label} read {_x(ratio)}"
        return ""

    def _ceiling_verdict(self) -> Verdict | None:
        """FAIL when the canary's own bad-event rate is proved above the hard ceiling."""
        seq, limit = self.ceiling, self.judge.ceiling
        if seq is None or limit is None:
            return None
        grid = seq.grid
        log_e = grid.log_e_greater(grid.anchor_index)
        if log_e < math.log(1.0 / self.alpha_ceiling):
            return None
        lower = max(grid.lower(self.alpha_ceiling).value, limit)
        windows = [(w.canary_rate, lab) for w, lab in self._ceiling_recent.windows(
            self.ceiling_total)]  # fmt: skip
        shown, label = next(
            ((r, lab) for r, lab in windows if r is not None and r >= lower),
            max(windows, key=lambda w: -1.0 if w[0] is None else w[0]),
        )
        why = (
            f"{self.spec.name}: canary {pct(shown)}{f' ({label})' if label else ''}, above the "
            f"hard ceiling of {pct(limit)} (lower bound {pct(lower)}): FAIL"
        )
        evidence = Evidence(
            rule="ceiling",
            canary_rate=shown,
            canary_n=self.ceiling_total.canary_n,
            interval=(min(lower, shown if shown is not None else lower), 1.0),
            tolerance=limit,
            p_value=min(1.0, math.exp(-min(log_e, 700.0))),
        )
        return Verdict(self.spec.name, Status.FAIL, why, evidence)

    @property
    def _pass_counts(self) -> _Counts:
        """The counts a PASS rests on: this step's, or the whole canary's."""
        return self.step if self.judge.pass_scope == "step" else self.total

    @property
    def effect_is_diff(self) -> bool:
        return self.judge.effect is Effect.DIFFERENCE

    def _difference(self, lower: Bound, upper: Bound) -> _Difference:
        """Bounds on canary - baseline = p_baseline * (rho - 1), from rho's and p_baseline's.

        FAIL side: rho's lower bound (all windows) with the baseline rate over the canary; PASS
        side: this step only, also through the canary's own rate (when there are no bad events
        a ratio says nothing, but a small canary rate still bounds the difference).
        """
        # bursty counts carry the information of counts `phi` times smaller (quasi-likelihood)
        t, s = _shrunk(self.total, self.phi), _shrunk(self._pass_counts, self.phi)
        hint = self._bound_hints
        base_lo = hint["base_lo"] = rate_lower_bound(
            t.baseline_bad, t.baseline_n, self.alpha_base, hint.get("base_lo")
        )
        base_hi = hint["base_hi"] = rate_upper_bound(
            t.baseline_bad, t.baseline_n, self.alpha_base, hint.get("base_hi")
        )
        rho_lo = lower.conservative
        fail_low = (base_lo if rho_lo >= 1 else base_hi) * (rho_lo - 1.0)
        shown_low = (base_lo if lower.value >= 1 else base_hi) * (lower.value - 1.0)
        if lower.open_end and lower.index == 0:
            shown_low = -base_hi
        step_lo = hint["step_lo"] = rate_lower_bound(
            s.baseline_bad, s.baseline_n, self.pass_alpha_rate, hint.get("step_lo")
        )
        step_hi = hint["step_hi"] = rate_upper_bound(
            s.baseline_bad, s.baseline_n, self.pass_alpha_rate, hint.get("step_hi")
        )
        rho_hi = upper.conservative
        via_ratio = (
            math.inf if math.isinf(rho_hi) else (step_hi if rho_hi >= 1 else step_lo) * (rho_hi - 1)
        )
        canary_hi = hint["canary_hi"] = rate_upper_bound(
            s.canary_bad, s.canary_n, self.pass_alpha_rate, hint.get("canary_hi")
        )
        pass_high = min(via_ratio, canary_hi - step_lo)
        return _Difference(fail_low, pass_high, shown_low, base_lo, base_hi)

    def _render(
        self,
        status: Status,
        rule: str,
        p_value: float,
        lower: Bound,
        upper: Bound,
        diff: _Difference | None,
        reason: str,
    ) -> Verdict:
        spec = self.spec
        tol = spec.tolerance_ratio
        lo = max(lower.value, tol * (1 + 1e-9)) if status is Status.FAIL else lower.value
        lo_open = lower.open_end and lower.index == 0 and status is not Status.FAIL
        lo_beyond = lower.open_end and lower.index > 0  # every value on the grid rejected
        window, label = self._display_window(status, lo, upper)
        hi, hi_open = upper.value, upper.open_end and upper.index >= 0
        if hi < lo and status is not Status.FAIL:
            # display interpolation can cross when both bounds fall between the same two grid
            # values; the conservative bounds cannot (unless the ratio moved during the step)
            lo, hi = min(lower.conservative, lo), max(upper.conservative, hi)
        if status is Status.FAIL or hi < lo:
            # The step's upper bound speaks for the whole step; after a change within it, show
            # the upper bound of the recent window the rates are quoted for instead.
            hi, hi_open = _window_upper(window, self.pass_alpha_ratio, self.fails.grid, self.phi)
            hi = max(lo, hi)
        c_rate, b_rate = window.canary_rate, window.baseline_rate
        name = spec.name
        if spec.kind is MetricKind.LATENCY and self.threshold_s is not None:
            name = f"{spec.name} >{self.threshold_s * 1000:g} ms"
        head = f"{name}: canary {pct(c_rate)} vs baseline {pct(b_rate)}"
        if label:
            head += f" ({label})"
        ratio = _ratio(window)
        if self.effect_is_diff and diff is not None:
            d_lo = (
                max(diff.shown_low, spec.tolerance_abs)
                if status is Status.FAIL
                else (diff.shown_low)
            )
            d_hi = diff.pass_high if status is Status.PASS else _diff_from_ratio(hi, diff)
            estimate = None if c_rate is None or b_rate is None else c_rate - b_rate
            if estimate is not None:
                # the quoted effect always lies within the quoted interval (display bounds
                # from different data can miss it; widening them is the cautious side)
                d_lo, d_hi = min(d_lo, estimate), max(d_hi, estimate)
            effect_text = f"difference {_pp(estimate)} [{_pp(d_lo)}, {_pp(d_hi)}]"
            tol_text = f"tolerance {_pp(spec.tolerance_abs)}"
            if tol > 1.0:
                tol_text += f" or {tol:.3g}x"
            interval = (d_lo, d_hi if math.isfinite(d_hi) else 1.0)
            shown_tol, effect = spec.tolerance_abs, estimate
        else:
            if ratio is not None and math.isinf(ratio):
                hi_open = True
            elif ratio is not None:
                if ratio < lo and not lo_open:  # as above: never quote a ratio outside
                    lo, lo_beyond = ratio, False
                if ratio > hi and not hi_open:
                    hi = ratio
            lo_text = f"<{_x(lo)}" if lo_open else _x(lo)
            if lo_beyond or (status is Status.FAIL and _x(lo) == _x(tol * (1 + 1e-9))):
                lo_text = f">{_x(lo)}"
            hi_text = f">{_x(hi)}" if hi_open else _x(hi)
            effect_text = f"ratio {_x(ratio)} [{lo_text}, {hi_text}]"
            tol_text = f"tolerance {tol:.3g}x"
            if self.uses_abs:
                tol_text += f" or {_pp(spec.tolerance_abs)}"
            interval = (0.0 if lo_open else lo, math.inf if hi_open else hi)
            shown_tol, effect = tol, ratio
        why = f"{head}, {effect_text}, {tol_text}: {status.value.upper()}{reason}"
        if self.threshold_note and status is not Status.INCONCLUSIVE:
            why += f"; {self.threshold_note}"
        if self.phi >= BURSTY_FROM and self.total.canary_n > 0:
            what = {MetricKind.ERRORS: "errors", MetricKind.LATENCY: "slow requests"}.get(
                spec.kind, "bad events"
            )
            point = self.dispersion.estimate or self.canary_dispersion.estimate
            if point is None or not (self.dispersion.ready or self.canary_dispersion.ready):
                why += f"; too soon to tell if {what} come in bursts: evidence held back"
            elif point >= BURSTY_FROM:
                why += f"; {what} arrive in bursts: dispersion {self.phi:.1f}x, evidence scaled"
        evidence = Evidence(
            rule=rule,
            baseline_rate=b_rate,
            canary_rate=c_rate,
            baseline_n=window.baseline_n,
            canary_n=window.canary_n,
            effect=effect if effect is None or math.isfinite(effect) else None,
            interval=interval,
            tolerance=shown_tol,
            p_value=p_value,
            effect_kind="difference" if self.effect_is_diff else "ratio",
        )
        return Verdict(spec.name, status, why, evidence)

    def _display_window(self, status: Status, lo: float, upper: Bound) -> tuple[_Counts, str]:
        """The window whose rates the verdict quotes.

        PASS quotes this step (what passed it). FAIL quotes, of the whole canary and the last
        10, 5, 2, 1 min, 30, 15 and 5 s, the longest that holds nearly the most evidence against
        the tolerance. INCONCLUSIVE quotes the longest whose ratio lies between the bounds.
        """
        if status is Status.PASS:
            if self.judge.pass_scope == "step":
                return self.step, "this step"
            return self.total, ""
        candidates = self._recent.windows(self.total)
        if status is Status.FAIL:
            # the longest window holding nearly the most evidence (within e^2) whose ratio
            # agrees with the lower bound: long enough to be steady, recent enough to show it
            grid = self.fails.grid
            scored = [
                (_window_log_e(w, grid, grid.anchor_index, phi=self.phi), w, lab)
                for w, lab in candidates
            ]
            best = max(e for e, _, _ in scored)
            for e, window, label in scored:  # longest first
                r = _ratio(window)
                if e >= best - 2.0 and r is not None and r >= lo:
                    return window, label
            return max(scored, key=lambda c: c[0])[1:]
        for window, label in candidates:
            r = _ratio(window)
            if r is None or lo <= r <= upper.value or (upper.open_end and r >= lo):
                return window, label
        return candidates[-1]


@dataclass(frozen=True, slots=True)
class _Difference:
    fail_low: float  # conservative lower bound on canary - baseline, used for FAIL
    pass_high: float  # upper bound over this step, used for PASS
    shown_low: float
    base_lo: float
    base_hi: float


def _shrunk(counts: _Counts, phi: float) -> _Counts:
    if phi == 1.0:
        return counts
    return _Counts(
        counts.canary_bad / phi,
        counts.canary_n / phi,
        counts.baseline_bad / phi,
        counts.baseline_n / phi,
    )


def _diff_from_ratio(rho: float, diff: _Difference) -> float:
    if math.isinf(rho):
        return math.inf
    return (diff.base_hi if rho >= 1 else diff.base_lo) * (rho - 1.0)


def _window_ll(window: _Counts, u: float) -> float:
    c, b = window.canary_bad, window.baseline_bad
    return c * u - (c + b) * math.log(math.exp(u) * window.canary_n + window.baseline_n)


def _window_log_e(
    window: _Counts, grid: Grid, index: int, up: bool = True, phi: float = 1.0
) -> float:
    """One look at one window's totals: log e-value against rho <= (or >=) nulls[index]."""
    if window.canary_bad + window.baseline_bad <= 0 or window.canary_n <= 0:
        return 0.0
    if window.baseline_n <= 0:
        return 0.0
    u0 = grid.log_nulls[index] if index < len(grid.log_nulls) else grid.log_nulls[-1]
    return _window_log_e_at(window, grid, u0, up, phi)


def _window_log_e_at(window: _Counts, grid: Grid, u0: float, up: bool, phi: float = 1.0) -> float:
    """One look at one window: the mixture's log e-value, the likelihood tempered by `phi`."""
    base = _window_ll(window, u0)
    sign = 1.0 if up else -1.0
    terms = [
        lw + (_window_ll(window, u0 + sign * k * grid.step) - base) / phi
        for k, lw in zip(grid.offsets, grid.log_weights, strict=True)
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def _window_upper(
    window: _Counts, alpha: float, grid: Grid, phi: float = 1.0
) -> tuple[float, bool]:
    """Upper bound on rho from one window's totals, and whether it lies beyond the grid.

    Display only (a single look at a window chosen after the fact).
    """
    top = grid.nulls[-1]
    if window.canary_bad + window.baseline_bad <= 0 or window.canary_n <= 0:
        return top, True
    if window.baseline_n <= 0:
        return top, True
    limit = math.log(1.0 / alpha)
    lo_u, hi_u = grid.log_nulls[0], grid.log_nulls[-1]
    if _window_log_e_at(window, grid, hi_u, False, phi) < limit:
        return top, True
    for _ in range(30):  # the e-value against rho >= e^u rises with u
        mid = 0.5 * (lo_u + hi_u)
        if _window_log_e_at(window, grid, mid, False, phi) >= limit:
            hi_u = mid
        else:
            lo_u = mid
    return math.exp(hi_u), False


def _ratio(window: _Counts) -> float | None:
    c, b = window.canary_rate, window.baseline_rate
    if c is None or b is None:
        return None
    if b <= 0:
        return None if c <= 0 else math.inf
    return c / b


def _x(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def _pp(value: float | None) -> str:
    """A difference of rates in percentage points: 0.014 -> '+1.4 pp'."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.2g} pp"


def _snap(threshold_s: float, bounds: tuple[float, ...]) -> float:
    """The smallest finite bucket bound at or above the threshold (the threshold if none)."""
    for bound in bounds:
        if math.isfinite(bound) and bound >= threshold_s * (1 - 1e-9):
            return bound
    return threshold_s


class _Sliding:
    """Sums of (bad, total) over the last `length_s` seconds, in bins of `bin_s` (bounded)."""

    def __init__(self, length_s: float, bin_s: float) -> None:
        self.length_s = length_s
        self.bin_s = bin_s
        self._bins: deque[list[float]] = deque()
        self.bad = 0.0
        self.total = 0.0

    def add(self, t: float, bad: float, total: float) -> None:
        index = math.floor(t / self.bin_s)
        if self._bins and self._bins[-1][0] == index:
            self._bins[-1][1] += bad
            self._bins[-1][2] += total
        else:
            self._bins.append([float(index), bad, total])
        self.bad += bad
        self.total += total
        oldest = index - math.ceil(self.length_s / self.bin_s)
        while self._bins and self._bins[0][0] <= oldest:
            _, b, n = self._bins.popleft()
            self.bad -= b
            self.total -= n

    @property
    def span_s(self) -> float:
        """How much time the window covers so far (less than its length early on)."""
        if not self._bins:
            return 0.0
        return min(self.length_s, (self._bins[-1][0] - self._bins[0][0] + 1) * self.bin_s)


class _Guard:
    """One SLO for the canary alone: an anytime-valid bound and the burn-rate windows."""

    def __init__(
        self,
        slo: SLO,
        alpha: float,
        burn_windows: tuple[BurnWindow, ...],
        grid: GridSettings | None,
        dispersion: bool = True,
    ) -> None:
        self.slo = slo
        self.use_dispersion = dispersion
        self.dispersion = Dispersion()  # of the baseline's bad events, as for a comparison
        self.phi = 1.0
        self.name = f"{slo.name} SLO"
        self.alpha = alpha
        self.budget = slo.budget
        self.seq = RateSequence(self.budget, grid, sides="greater")
        self.total = _Counts()  # the canary's side only
        self._recent = _Recent()
        self.problem: str | None = None
        self.burns = [
            (
                w,
                _Sliding(w.long_s, max(1.0, w.short_s / 10)),
                _Sliding(w.short_s, max(1.0, w.short_s / 10)),
            )
            for w in burn_windows
        ]

    def idle(self, elapsed: float, duration: float) -> None:
        self.seq.add_time(elapsed, duration)

    def observe(self, sample: Sample, elapsed: float, duration: float) -> None:
        if sample.canary is None:
            raise ValueError("an SLO guard needs the canary's counts")
        bad = self.slo.bad(sample.canary)
        if bad is None:
            self.problem = f"the {self.slo.name} SLO cannot be counted (no latency histogram)"
            self.seq.add_time(elapsed, duration)
            return
        self.problem = None
        n = sample.canary.requests
        phi = 1.0
        if self.use_dispersion:
            # an absolute limit, fired at once: the point estimate until the factor is ready,
            # independent while the baseline has shown no bad event at all
            point = self.dispersion.estimate
            phi = self.dispersion.factor if self.dispersion.ready else max(1.0, point or 1.0)
            base = sample.baseline
            base_bad = self.slo.bad(base) if base is not None else None
            if base is not None and base_bad is not None:
                self.dispersion.add(base_bad, base.requests, duration)
        self.phi = phi
        self.seq.observe(bad, n, elapsed, duration, phi)
        self.total = self.total + _Counts(bad, n)
        self._recent.note(sample.end, self.total)
        for _, long, short in self.burns:
            long.add(sample.end, bad, n)
            short.add(sample.end, bad, n)

    def verdict(self) -> Verdict:
        if self.problem is not None:
            return Verdict.without_data(self.name, self.problem)
        grid = self.seq.grid
        log_e = grid.log_e_greater(grid.anchor_index)
        bound_fail = log_e >= math.log(1.0 / self.alpha)
        lower = grid.lower(self.alpha)
        rate = self.total.canary_rate
        what = "errors" if self.slo.kind.value == "availability" else "slow requests"
        allowed = f"the {pct(self.budget)} the {self.slo.objective * 100:g}% objective allows"
        burning = self._burning()
        p_value = min(1.0, math.exp(-min(log_e, 700.0)))
        evidence = Evidence(
            rule="slo-bound" if bound_fail else ("burn-rate" if burning else "slo"),
            canary_rate=rate,
            canary_n=self.total.canary_n,
            interval=(lower.value if not lower.open_end or lower.index else 0.0, 1.0),
            tolerance=self.budget,
            p_value=p_value,
        )
        if bound_fail:
            lo = max(lower.value, self.budget)
            shown, label = self._window_showing(lo)
            why = (
                f"{self.name}: canary {what} {pct(shown)}{f' ({label})' if label else ''}, "
                f"above {allowed} (lower bound {lo * 100:.3g}%)"
            )
            return Verdict(self.name, Status.FAIL, f"{why}: FAIL", evidence)
        if burning:
            return Verdict(self.name, Status.FAIL, f"{self.name}: {burning}: FAIL", evidence)
        if rate is not None and rate > self.budget:
            why = f"{self.name}: canary {what} {pct(rate)}, above {allowed}, not yet certain"
            return Verdict(self.name, Status.INCONCLUSIVE, f"{why}: INCONCLUSIVE", evidence)
        why = f"{self.name}: canary {what} {pct(rate)}, within {allowed}: PASS"
        return Verdict(self.name, Status.PASS, why, evidence)

    def _window_showing(self, lower: float) -> tuple[float | None, str]:
        """The rate to quote beside a lower bound: the longest window (the whole canary, then
        ever more recent ones) whose rate is at least that bound, else the highest rate."""
        windows = [(w.canary_rate, label) for w, label in self._recent.windows(self.total)]
        for rate, label in windows:
            if rate is not None and rate >= lower:
                return rate, label
        return max(windows, key=lambda w: -1.0 if w[0] is None else w[0])

    def _burning(self) -> str:
        """Why the burn-rate rule fires ('' when it does not)."""
        for window, long, short in self.burns:
            if long.total <= 0 or short.total <= 0:
                continue
            burn_long = long.bad / long.total / self.budget
            burn_short = short.bad / short.total / self.budget
            if burn_long < window.factor or burn_short < window.factor:
                continue
            phi = self.phi
            if chernoff_lower_bound(long.bad / phi, long.total / phi, self.alpha) <= self.budget:
                continue  # too few requests to tell a burn from noise
            return (
                f"budget burning {burn_long:.1f}x over {_span(long)} and "
                f"{burn_short:.1f}x over {_span(short)}, limit {window.factor:g}x"
            )
        return ""


def _span(window: _Sliding) -> str:
    if window.span_s >= window.length_s:
        return duration_text(window.length_s)
    return f"the {duration_text(window.span_s)} so far (of {duration_text(window.length_s)})"
