"""The SLO guards: the canary's own bad-event rate against each SLO's objective.

One job: per SLO, FAIL the canary when its own rate is proved above the error budget (an
anytime-valid bound, whatever the baseline does) or when the budget burns too fast over both
windows of a multi-window burn-rate rule (the SRE workbook's, `SRE_BURN_WINDOWS`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from canary_tui.core.judging.base import duration_text, pct
from canary_tui.core.judging.confseq import (
    GridSettings,
    RateSequence,
    chernoff_lower_bound,
    p_value_of,
)
from canary_tui.core.judging.dispersion import Dispersion
from canary_tui.core.judging.windows import _Counts, _Recent
from canary_tui.core.metrics import Sample
from canary_tui.core.slo import SLO
from canary_tui.core.verdict import Evidence, Status, Verdict


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
        self.tick_dispersion = True  # measured on the ticks too (not only on given windows)
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

    def learn_dispersion(self, windows: Iterable[Sample]) -> int:
        """Whole windows of the baseline (before the canary, or a source's own windows when
        its ticks overlap) into its index of dispersion."""
        used = 0
        for sample in windows:
            base = sample.baseline
            bad = self.slo.bad(base) if sample.ok and base is not None else None
            if base is not None and bad is not None:
                self.dispersion.add(bad, base.requests, max(0.0, sample.end - sample.start))
                used += 1
        return used

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
            if base is not None and base_bad is not None and self.tick_dispersion:
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
        p_value = p_value_of(log_e)
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
