"""One metric's comparison of the canary with the baseline, tick by tick.

One job: for one metric, feed each window's counts into the confidence sequences for the rate
ratio canary/baseline (`fails` for FAIL, `passes` for PASS), learn its slow-request threshold
from the baseline when it has none, keep the hard ceiling on the canary's own rate and the
recent windows that can veto a PASS, and decide the metric's verdict (`evidence` writes its
words).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from canary_tui.core.judging.base import StepContext, bad_and_total, pct
from canary_tui.core.judging.confseq import (
    Bound,
    GridSettings,
    RateSequence,
    RatioSequence,
    observe_ratio,
    p_value_of,
    rate_lower_bound,
    rate_upper_bound,
)
from canary_tui.core.judging.dispersion import Dispersion
from canary_tui.core.judging.evidence import (
    Decision,
    Effect,
    Subject,
    _Difference,
    _x,
    render,
    warm_up_reason,
    warming_up,
)
from canary_tui.core.judging.windows import (
    _Counts,
    _ratio,
    _Recent,
    _shrunk,
    _window_log_e_at,
)
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Evidence, Status, Verdict

_VETO_SPANS_S = (25.0, 330.0)  # recent windows (about 30 s to 5 min) that can veto a PASS
_CEILING_SHARE = 0.05  # of each metric's alpha, for its hard ceiling


class JudgeSettings(Protocol):
    """The settings of the judge (`SequentialJudge`) that a comparison reads, as it reads them."""

    @property
    def effect(self) -> Effect: ...
    @property
    def pass_scope(self) -> str: ...
    @property
    def min_requests(self) -> float: ...
    @property
    def calibration_s(self) -> float: ...
    @property
    def calibration_min_requests(self) -> float: ...
    @property
    def use_dispersion(self) -> bool: ...
    @property
    def tick_dispersion(self) -> bool: ...
    @property
    def ceiling(self) -> float | None: ...
    @property
    def pass_veto(self) -> float: ...


class _Comparison:
    """One metric: the ratio's confidence sequences, counts and decision (worded by `evidence`).

    Two sequences on the same likelihood: `fails` (restarted every window, Shiryaev-Roberts)
    gives the lower bound that decides FAIL, so a regression late in a canary is caught as fast
    as an early one; `passes` (one test from the start of the step) gives the upper bound that
    decides PASS, so only what the canary did during this step can pass it.
    """

    def __init__(
        self,
        spec: MetricSpec,
        judge: JudgeSettings,
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
            self._snap_threshold(sample.baseline, sample.canary)
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
        self._observe_ceiling(w, sample.end, elapsed, duration)  # before the dispersion learns w
        if self.judge.tick_dispersion:
            self.dispersion.add(w.baseline_bad, w.baseline_n, duration)
            self.canary_dispersion.add(w.canary_bad, w.canary_n, duration)
        self.total = self.total + w
        self.step = self.step + w
        self._recent.note(sample.end, self.total)

    def learn_dispersion(self, windows: Iterable[Sample]) -> int:
        """Feed whole windows to the indexes of dispersion: the baseline's before the canary,
        so the first comparison divides by a measured factor instead of the young estimate's
        ceiling, or a source's own windows when its ticks overlap (both variants' counts);
        how many windows counted (none while a slow-request threshold is unknown)."""
        if self.calibrating:
            return 0
        used = 0
        for sample in windows:
            if not sample.ok or sample.baseline is None:
                continue
            if not self._snapped:
                self._snap_threshold(sample.baseline, sample.baseline)
            counts = self._count(sample.baseline)
            if counts is None:
                continue
            duration = max(0.0, sample.end - sample.start)
            self.dispersion.add(counts[0], counts[1], duration)
            canary = self._count(sample.canary) if sample.canary is not None else None
            if canary is not None and canary[1] > 0:
                self.canary_dispersion.add(canary[0], canary[1], duration)
            used += 1
        return used

    def _snap_threshold(self, baseline: VariantCounts, canary: VariantCounts) -> None:
        """Move a latency threshold set by hand up to the next bucket bound, once the buckets
        are known."""
        hist = baseline.latency or canary.latency
        if hist is not None and self.threshold_s is not None:
            self.threshold_s = _snap(self.threshold_s, hist.bounds)
            self._snapped = True

    def _observe_ceiling(self, w: _Counts, end: float, elapsed: float, duration: float) -> None:
        """Feed the canary's side of a window to the hard ceiling, if there is one."""
        if self.ceiling is None:
            return
        if elapsed + duration < CEILING_SETTLE_S:
            # one burst can be most of the canary's first seconds (a burst of 20 slow requests
            # among its first 50): the ceiling starts once the canary has a few seconds behind
            # it, still in time to roll a catastrophic canary back within 10 s
            self.ceiling.add_time(elapsed, duration)
            return
        # far above the baseline's rate: the point estimate of the dispersion will do
        point = self.dispersion.estimate if self.judge.use_dispersion else None
        self.ceiling.observe(w.canary_bad, w.canary_n, elapsed, duration,
                             max(1.0, point or 1.0))  # fmt: skip
        self.ceiling_total = self.ceiling_total + _Counts(w.canary_bad, w.canary_n)
        self._ceiling_recent.note(end, self.ceiling_total)

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
        if self.problem is not None:
            return Verdict.without_data(self.spec.name, self.problem)
        if self.calibrating:
            return self._calibrating_verdict()
        decision = self._decide(ctx)
        if self.warm:
            reason = warm_up_reason(decision.status, warm_left)
            return warming_up(render(self._subject(), replace(decision, reason=reason)))
        return render(self._subject(), decision)

    def _calibrating_verdict(self) -> Verdict:
        have = self._calibration.total if self._calibration is not None else 0.0
        why = (
            f"{self.spec.name}: learning the baseline's p{(self.quantile or 0) * 100:g} "
            f"({have:.0f} of {self.judge.calibration_min_requests:.0f} requests, "
            f"{self.judge.calibration_s:.0f} s): INCONCLUSIVE"
        )
        return Verdict(self.spec.name, Status.INCONCLUSIVE, why, Evidence(rule="calibrating"))

    def _decide(self, ctx: StepContext) -> Decision:
        """FAIL when the ratio (and the difference, with an absolute tolerance) is proved
        beyond the tolerance; PASS when proved within it after the hold, with enough requests
        and no recent window against it; INCONCLUSIVE otherwise."""
        spec = self.spec
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
        if fail:
            status, rule, log_e, reason = Status.FAIL, "sequential: beyond tolerance", log_fail, ""
        else:
            status, rule, log_e, reason = self._unfailed(ctx, within, log_fail, log_pass)
        p_value = p_value_of(log_e)
        if status is Status.PASS:  # quote the interval of the data the PASS rests on
            lower = passes.lower(self.alpha_ratio)
        return Decision(status, rule, p_value, lower, upper, diff, reason)

    def _unfailed(
        self, ctx: StepContext, within: bool, log_fail: float, log_pass: float
    ) -> tuple[Status, str, float, str]:
        """PASS or INCONCLUSIVE when not failed: status, rule, log e-value, reason."""
        hold_left = ctx.hold_s - ctx.time_in_step
        enough = self.step.canary_n >= self.judge.min_requests
        if within and hold_left <= 0 and enough:
            veto = self._recent_veto()
            if veto:
                reason = f" (within tolerance this step, but {veto})"
                return Status.INCONCLUSIVE, "sequential: recent veto", log_pass, reason
            return Status.PASS, "sequential: within tolerance", log_pass, ""
        reason = ""
        if within and hold_left > 0:
            reason = f" (within tolerance; held {ctx.time_in_step:.0f} of {ctx.hold_s:.0f} s)"
        elif within:
            reason = (
                f" (within tolerance; {self.step.canary_n:.0f} of "
                f"{self.judge.min_requests:.0f} canary requests this step)"
            )
        return Status.INCONCLUSIVE, "sequential: undecided", log_fail, reason

    def _subject(self) -> Subject:
        """What the evidence may quote of this metric and its data."""
        step_scope = self.judge.pass_scope == "step"
        return Subject(
            spec=self.spec,
            threshold_s=self.threshold_s,
            threshold_note=self.threshold_note,
            effect=self.judge.effect,
            phi=self.phi,
            dispersions=(self.dispersion, self.canary_dispersion),
            grid=self.fails.grid,
            upper_alpha=self.pass_alpha_ratio,
            total=self.total,
            recent=self._recent,
            passed_on=(self.step, "this step") if step_scope else (self.total, ""),
        )

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
            p_value=p_value_of(log_e),
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
        if t.baseline_bad <= 0 < rho_lo - 1.0:
            # a baseline without a single bad event bounds the difference by nothing through
            # the ratio (its rate's lower bound is 0): bound it by the canary's own rate. Both
            # bounds guard the same case (the ratio beyond tolerance, the difference not), so
            # together they stay within the difference's share of alpha twice, below the
            # ratio's; found with a canary going 0 -> 6% slow at 100k requests/s, never failed
            canary_lo = hint["canary_lo"] = rate_lower_bound(
                t.canary_bad, t.canary_n, self.alpha_base, hint.get("canary_lo")
            )
            fail_low = max(fail_low, canary_lo - base_hi)
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


#: The canary's first seconds the hard ceiling does not count (see `_observe_ceiling`).
CEILING_SETTLE_S = 5.0


def _snap(threshold_s: float, bounds: tuple[float, ...]) -> float:
    """The smallest finite bucket bound at or above the threshold (the threshold if none)."""
    for bound in bounds:
        if math.isfinite(bound) and bound >= threshold_s * (1 - 1e-9):
            return bound
    return threshold_s
