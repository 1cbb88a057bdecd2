"""The sequential judge: anytime-valid canary-vs-baseline analysis, looked at every tick.

One job: from each window of counts, say per metric whether the canary is worse than the
baseline by more than the metric's tolerance (FAIL), demonstrably within it (PASS), or not yet
known (INCONCLUSIVE), with the evidence, while keeping the probability of ever failing a canary
that is within tolerance below `alpha` for the whole canary, however often it is asked.

How (the mathematics is in `confseq`; one metric's comparison in `comparison`, its words in
`evidence`, the SLO guards in `slo_guard`, window statistics in `windows`):
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

from collections.abc import Mapping, Sequence

from canary_tui.core.judging.base import StepContext
from canary_tui.core.judging.comparison import _Comparison
from canary_tui.core.judging.confseq import GridSettings
from canary_tui.core.judging.evidence import Effect as Effect
from canary_tui.core.judging.slo_guard import SRE_BURN_WINDOWS as SRE_BURN_WINDOWS
from canary_tui.core.judging.slo_guard import BurnWindow as BurnWindow
from canary_tui.core.judging.slo_guard import _Guard as _Guard
from canary_tui.core.metrics import Histogram, Sample
from canary_tui.core.slo import SLO
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Evidence, Verdict

DEFAULT_WARMUP_S = 0.0  # the config default (`judge.warmup`), see docs
DEFAULT_CEILING = 0.25
#: A recent window whose point estimate reads beyond the tolerance holds back a PASS unless the
#: window argues against that reading at odds of 10 to 1 or more (one-look e-value < 0.1).
#: Measured (benchmarks/detection.py, errors 0.5% -> 1.0% against a 1.5x tolerance, the hold
#: ending 60 s into the regression, 60 runs): 7 steps passed at 1, 5 at 0.5, 3 at 0.25, 2 at
#: 0.1; healthy canaries passed as soon at every level (median 229 s, p90 512 s of 40).
DEFAULT_PASS_VETO = 0.1
#: With the dispersion measured only on a source's own long windows (its ticks overlap), the
#: estimate rests on few windows (10 at start, one a minute), so the factor is an upper bound
#: one standard deviation up. Measured (benchmarks/overlapping_ticks.py, 5 s ticks over a
#: 60 s range, 40 A/A runs per arm): bursts of 1-10, 10-20 and 2-4 over 5 s rolled back
#: 1, 2 and 1 healthy canaries with the point estimate, none with the bound; errors
#: 0.5% -> 1.0% were detected in 210 s instead of 180 s.
WINDOWS_ONLY_Z = 1.0


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
    - `pass_veto`: a recent window (30 s to 5 min) whose rates read beyond the tolerance holds
      back a PASS when its one-look e-value for "beyond the tolerance" is at least this (0.1:
      unless that window argues against it at odds of 10 to 1).
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
        _check_settings(pass_scope, warmup_s, step_warmup_s, ceiling, pass_veto)
        quantiles = _slow_quantiles(specs, slow_quantiles)
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
        self.tick_dispersion = True  # False: measured only on windows given to learn_dispersion
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
        self._guards = [_Guard(slo, alpha / tests, burn_windows, grid, dispersion) for slo in slos]
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

    def learn_dispersion(self, windows: Sequence[Sample]) -> dict[str, float]:
        """Measure each comparison's index of dispersion on the baseline's windows before the
        canary (after `calibrate`, so slow requests can be counted), so the first comparison
        is scaled by a measured factor instead of waiting a minute for one; later, the
        source's own windows when its ticks overlap (`dispersion_on_windows_only`). Returns
        the factor each metric has now (a metric whose counts could not be read is left out).
        The windows must be over: data the judge has not observed yet would make the factor
        of its windows depend on them."""
        windows = [w.validated() for w in windows]
        out: dict[str, float] = {}
        for comp in self._comparisons:
            if comp.learn_dispersion(windows) and comp.dispersion.ready:
                out[comp.spec.name] = comp.dispersion.factor
        for guard in self._guards:
            if guard.learn_dispersion(windows) and guard.dispersion.ready:
                out[guard.name] = guard.dispersion.factor
        return out

    def dispersion_on_windows_only(self) -> None:
        """The ticks' counts overlap (a source that scales a longer range down to the tick):
        their spread understates the dispersion, so it is measured only on the windows given
        to `learn_dispersion` from now on, and, resting on few of them, taken as an upper
        bound (`WINDOWS_ONLY_Z`)."""
        self.tick_dispersion = False
        for comp in self._comparisons:
            comp.dispersion.z = comp.canary_dispersion.z = WINDOWS_ONLY_Z
        for guard in self._guards:
            guard.tick_dispersion = False
            guard.dispersion.z = WINDOWS_ONLY_Z

    def thresholds_ms(self) -> dict[str, float | None]:
        """The slow-request threshold each latency metric counts with (None: calibrating)."""
        return {
            c.spec.name: None if c.threshold_s is None else c.threshold_s * 1000.0
            for c in self._comparisons
            if c.spec.kind is MetricKind.LATENCY
        }


def _check_settings(
    pass_scope: str, warmup_s: float, step_warmup_s: float, ceiling: float | None, pass_veto: float
) -> None:
    if pass_scope not in ("step", "canary"):
        raise ValueError("pass_scope must be 'step' or 'canary'")
    if not (warmup_s >= 0 and step_warmup_s >= 0):
        raise ValueError("warm-up durations must be zero or more seconds")
    if ceiling is not None and not 0.0 < ceiling < 1.0:
        raise ValueError("the ceiling must lie strictly between 0 and 1")
    if not 0.0 < pass_veto <= 1.0:
        raise ValueError("pass_veto must lie within (0, 1]")


def _slow_quantiles(
    specs: tuple[MetricSpec, ...], slow_quantiles: Mapping[str, float] | None
) -> dict[str, float]:
    """Metric name -> the baseline quantile its slow-request threshold is read from: the
    judge's `slow_quantiles`, else each metric's own `baseline_quantile` (checked)."""
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
    return quantiles


def _all_no_data(names: list[str], reason: str, rule: str) -> tuple[Verdict, ...]:
    return tuple(Verdict.without_data(name, reason, Evidence(rule=rule)) for name in names)
