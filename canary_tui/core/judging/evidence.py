"""The words and numbers of a comparison's evidence.

One job: from what a comparison decided (`Decision`) about a metric and the data it can quote
(`Subject`), write the verdict a person reads: which window's rates to quote, the effect (the
rate ratio or the difference, `Effect`) and the interval around it, the tolerance, the status,
and the notes on the threshold, on bursts and on the warm-up; with the `Evidence` record beside
the words. Nothing here changes a decision, only how it is shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from canary_tui.core.judging.base import duration_text, pct
from canary_tui.core.judging.confseq import Bound, Grid
from canary_tui.core.judging.dispersion import BURSTY_FROM, Dispersion
from canary_tui.core.judging.windows import (
    _Counts,
    _ratio,
    _Recent,
    _window_log_e,
    _window_upper,
)
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.verdict import Evidence, Status, Verdict

_BAD_EVENTS = {MetricKind.ERRORS: "errors", MetricKind.LATENCY: "slow requests"}
_WARMING_WORDS = {Status.FAIL: "would fail", Status.PASS: "within tolerance"}


class Effect(StrEnum):
    """The effect the evidence reports an interval for."""

    RATIO = "ratio"  # canary rate / baseline rate
    DIFFERENCE = "difference"  # canary rate - baseline rate


@dataclass(frozen=True, slots=True)
class _Difference:
    fail_low: float  # conservative lower bound on canary - baseline, used for FAIL
    pass_high: float  # upper bound over this step, used for PASS
    shown_low: float
    base_lo: float
    base_hi: float


@dataclass(frozen=True, slots=True)
class Decision:
    """What a comparison decided, as its evidence quotes it."""

    status: Status
    rule: str
    p_value: float
    lower: Bound  # on the ratio: over every window (what a PASS rests on for a PASS)
    upper: Bound  # on the ratio, over what a PASS rests on
    diff: _Difference | None  # bounds on the difference, when the metric needs them
    reason: str  # said after the status: ' (within tolerance; held 10 of 30 s)', or ''


@dataclass(frozen=True, slots=True)
class Subject:
    """The metric a comparison judges, and the data its evidence can quote."""

    spec: MetricSpec
    threshold_s: float | None  # the slow-request threshold counted with (latency)
    threshold_note: str  # where a learnt threshold came from ('' for none)
    effect: Effect
    phi: float  # the index of dispersion the last window's evidence was divided by
    dispersions: tuple[Dispersion, Dispersion]  # the baseline's and the canary's
    grid: Grid  # the FAIL sequence's
    upper_alpha: float  # for the upper bound on the ratio of one recent window
    total: _Counts  # since the canary started (since the warm-up ended)
    recent: _Recent  # the recent windows of `total`
    passed_on: tuple[_Counts, str]  # the counts a PASS rests on, and their label


@dataclass(frozen=True, slots=True)
class _RatioBounds:
    """The interval on the ratio to quote, and how its ends are written."""

    lo: float
    hi: float
    lo_open: bool  # below the grid: '<lo'
    hi_open: bool  # above the grid: '>hi'
    lo_beyond: bool  # every value on the grid rejected: '>lo'


@dataclass(frozen=True, slots=True)
class _Quote:
    """The effect as quoted: its words (effect, interval, tolerance) and its numbers."""

    text: str
    interval: tuple[float, float]
    tolerance: float
    effect: float | None


def render(subject: Subject, decision: Decision) -> Verdict:
    """The verdict a person reads: 'errors: canary 1.2% vs baseline 1.0%, ratio 1.20x [0.95x,
    1.52x], tolerance 1.2x: INCONCLUSIVE', with its evidence."""
    status = decision.status
    lo = _quoted_lower(subject.spec, decision)
    window, label = _display_window(subject, status, lo, decision.upper)
    bounds = _ratio_bounds(subject, decision, lo, window)
    if subject.effect is Effect.DIFFERENCE and decision.diff is not None:
        quote = _difference_quote(subject.spec, status, decision.diff, bounds.hi, window)
    else:
        quote = _ratio_quote(subject.spec, status, bounds, _ratio(window))
    why = (
        f"{_head(subject, window, label)}, {quote.text}: {status.value.upper()}{decision.reason}"
        f"{_threshold_note(subject, status)}{_dispersion_note(subject)}"
    )
    evidence = Evidence(
        rule=decision.rule,
        baseline_rate=window.baseline_rate,
        canary_rate=window.canary_rate,
        baseline_n=window.baseline_n,
        canary_n=window.canary_n,
        effect=_finite(quote.effect),
        interval=quote.interval,
        tolerance=quote.tolerance,
        p_value=decision.p_value,
        effect_kind=subject.effect.value,
    )
    return Verdict(subject.spec.name, status, why, evidence)


def warm_up_reason(status: Status, warm_left: float) -> str:
    """What is said after the status during the warm-up: what the comparison would do."""
    word = _WARMING_WORDS.get(status, "undecided")
    return f" ({word}; {duration_text(max(warm_left, 1.0))} of warm-up left)"


def warming_up(verdict: Verdict) -> Verdict:
    """A verdict of the warm-up: shown as WARMING UP, never acted on."""
    return Verdict(
        verdict.metric,
        Status.WARMING_UP,
        verdict.why.replace(f": {verdict.status.value.upper()} (", ": WARMING UP (", 1),
        replace(verdict.evidence, rule=f"warm-up ({verdict.evidence.rule})"),
    )


# --- which window to quote --------------------------------------------------------------------
def _display_window(
    subject: Subject, status: Status, lo: float, upper: Bound
) -> tuple[_Counts, str]:
    """The window whose rates the verdict quotes.

    PASS quotes this step (what passed it). FAIL quotes, of the whole canary and the last
    10, 5, 2, 1 min, 30, 15 and 5 s, the longest that holds nearly the most evidence against
    the tolerance. INCONCLUSIVE quotes the longest whose ratio lies between the bounds.
    """
    if status is Status.PASS:
        return subject.passed_on
    candidates = subject.recent.windows(subject.total)
    if status is Status.FAIL:
        return _fail_window(candidates, subject.grid, subject.phi, lo)
    return _undecided_window(candidates, lo, upper)


def _fail_window(
    candidates: list[tuple[_Counts, str]], grid: Grid, phi: float, lo: float
) -> tuple[_Counts, str]:
    """The longest window holding nearly the most evidence (within e^2) whose ratio agrees
    with the lower bound: long enough to be steady, recent enough to show it."""
    scored = [(_window_log_e(w, grid, grid.anchor_index, phi=phi), w, lab) for w, lab in candidates]
    best = max(e for e, _, _ in scored)
    for e, window, label in scored:  # longest first
        r = _ratio(window)
        if e >= best - 2.0 and r is not None and r >= lo:
            return window, label
    return max(scored, key=lambda c: c[0])[1:]


def _undecided_window(
    candidates: list[tuple[_Counts, str]], lo: float, upper: Bound
) -> tuple[_Counts, str]:
    """The longest window whose ratio lies between the bounds (else the shortest)."""
    for window, label in candidates:
        r = _ratio(window)
        if r is None or lo <= r <= upper.value or (upper.open_end and r >= lo):
            return window, label
    return candidates[-1]


# --- the interval on the ratio ----------------------------------------------------------------
def _quoted_lower(spec: MetricSpec, decision: Decision) -> float:
    """The lower bound on the ratio to quote: a FAIL's lies above the tolerance."""
    if decision.status is Status.FAIL:
        return max(decision.lower.value, spec.tolerance_ratio * (1 + 1e-9))
    return decision.lower.value


def _ratio_bounds(subject: Subject, decision: Decision, lo: float, window: _Counts) -> _RatioBounds:
    """The interval on the ratio to quote, before it is widened to hold the quoted ratio."""
    lower, upper = decision.lower, decision.upper
    failed = decision.status is Status.FAIL
    hi, hi_open = upper.value, upper.open_end and upper.index >= 0
    if hi < lo and not failed:
        # display interpolation can cross when both bounds fall between the same two grid
        # values; the conservative bounds cannot (unless the ratio moved during the step)
        lo, hi = min(lower.conservative, lo), max(upper.conservative, hi)
    if failed or hi < lo:
        # The step's upper bound speaks for the whole step; after a change within it, show
        # the upper bound of the recent window the rates are quoted for instead.
        hi, hi_open = _window_upper(window, subject.upper_alpha, subject.grid, subject.phi)
        hi = max(lo, hi)
    return _RatioBounds(
        lo,
        hi,
        lo_open=lower.open_end and lower.index == 0 and not failed,
        hi_open=hi_open,
        lo_beyond=lower.open_end and lower.index > 0,
    )


def _holding(bounds: _RatioBounds, ratio: float | None) -> _RatioBounds:
    """The bounds widened to hold the quoted ratio: never quote a ratio outside its interval."""
    if ratio is None:
        return bounds
    if math.isinf(ratio):
        return replace(bounds, hi_open=True)
    if ratio < bounds.lo and not bounds.lo_open:
        bounds = replace(bounds, lo=ratio, lo_beyond=False)
    if ratio > bounds.hi and not bounds.hi_open:
        bounds = replace(bounds, hi=ratio)
    return bounds


# --- the effect and the tolerance, in words ----------------------------------------------------
def _ratio_quote(
    spec: MetricSpec, status: Status, bounds: _RatioBounds, ratio: float | None
) -> _Quote:
    """'ratio 1.40x [>1.20x, 1.65x], tolerance 1.2x'."""
    b = _holding(bounds, ratio)
    hi_text = f">{_x(b.hi)}" if b.hi_open else _x(b.hi)
    text = (
        f"ratio {_x(ratio)} [{_lower_text(b, status, spec.tolerance_ratio)}, {hi_text}], "
        f"{_ratio_tolerance(spec)}"
    )
    interval = (0.0 if b.lo_open else b.lo, math.inf if b.hi_open else b.hi)
    return _Quote(text, interval, spec.tolerance_ratio, ratio)


def _lower_text(bounds: _RatioBounds, status: Status, tolerance: float) -> str:
    """'>1.20x' when every value below is rejected (or a FAIL's bound reads as the tolerance),
    '<0.50x' below the grid, else '0.95x'."""
    lo = _x(bounds.lo)
    if bounds.lo_beyond or (status is Status.FAIL and lo == _x(tolerance * (1 + 1e-9))):
        return f">{lo}"
    return f"<{lo}" if bounds.lo_open else lo


def _ratio_tolerance(spec: MetricSpec) -> str:
    """'tolerance 1.2x', and the absolute tolerance if the metric has one."""
    text = f"tolerance {spec.tolerance_ratio:.3g}x"
    if spec.tolerance_abs > 0:
        text += f" or {_pp(spec.tolerance_abs)}"
    return text


def _difference_quote(
    spec: MetricSpec, status: Status, diff: _Difference, ratio_hi: float, window: _Counts
) -> _Quote:
    """'difference +1.4 pp [+0.52 pp, +2.3 pp], tolerance +0.2 pp'."""
    d_lo = max(diff.shown_low, spec.tolerance_abs) if status is Status.FAIL else diff.shown_low
    d_hi = diff.pass_high if status is Status.PASS else _diff_from_ratio(ratio_hi, diff)
    estimate = _rate_difference(window)
    if estimate is not None:
        # the quoted effect always lies within the quoted interval (display bounds
        # from different data can miss it; widening them is the cautious side)
        d_lo, d_hi = min(d_lo, estimate), max(d_hi, estimate)
    text = f"difference {_pp(estimate)} [{_pp(d_lo)}, {_pp(d_hi)}], {_difference_tolerance(spec)}"
    interval = (d_lo, d_hi if math.isfinite(d_hi) else 1.0)
    return _Quote(text, interval, spec.tolerance_abs, estimate)


def _rate_difference(window: _Counts) -> float | None:
    c_rate, b_rate = window.canary_rate, window.baseline_rate
    return None if c_rate is None or b_rate is None else c_rate - b_rate


def _difference_tolerance(spec: MetricSpec) -> str:
    """'tolerance +0.2 pp', and the ratio tolerance if it allows any increase."""
    text = f"tolerance {_pp(spec.tolerance_abs)}"
    if spec.tolerance_ratio > 1.0:
        text += f" or {spec.tolerance_ratio:.3g}x"
    return text


# --- the head and the notes --------------------------------------------------------------------
def _head(subject: Subject, window: _Counts, label: str) -> str:
    """'latency >250 ms: canary 3.1% vs baseline 2.0% (last 2 min)'."""
    spec = subject.spec
    name = spec.name
    if spec.kind is MetricKind.LATENCY and subject.threshold_s is not None:
        name = f"{spec.name} >{subject.threshold_s * 1000:g} ms"
    head = f"{name}: canary {pct(window.canary_rate)} vs baseline {pct(window.baseline_rate)}"
    return f"{head} ({label})" if label else head


def _threshold_note(subject: Subject, status: Status) -> str:
    """Where a learnt slow-request threshold came from (not while undecided)."""
    if subject.threshold_note and status is not Status.INCONCLUSIVE:
        return f"; {subject.threshold_note}"
    return ""


def _dispersion_note(subject: Subject) -> str:
    """Whether the bad events come in bursts, when that scaled the evidence or holds it back."""
    if not (subject.phi >= BURSTY_FROM and subject.total.canary_n > 0):
        return ""
    what = _BAD_EVENTS.get(subject.spec.kind, "bad events")
    baseline, canary = subject.dispersions
    point = baseline.estimate or canary.estimate
    if point is None or not (baseline.ready or canary.ready):
        return f"; too soon to tell if {what} come in bursts: evidence held back"
    if (baseline if baseline.ready else canary).clustered:
        return f"; {what} arrive in bursts: dispersion {subject.phi:.1f}x, evidence scaled"
    return ""


# --- numbers ----------------------------------------------------------------------------------
def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _diff_from_ratio(rho: float, diff: _Difference) -> float:
    if math.isinf(rho):
        return math.inf
    return (diff.base_hi if rho >= 1 else diff.base_lo) * (rho - 1.0)


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
