"""A simple judge: canary vs baseline bad-event rates over a sliding window, with tolerances.

This is the spine's provisional judge; the sequential judge replaces it behind the same
interface. It is deliberately plain: enough requests, then compare rates.
"""

from __future__ import annotations

import math
from collections import deque

from canary_tui.core.judging.base import StepContext, bad_and_total, pct
from canary_tui.core.metrics import Sample
from canary_tui.core.specs import MetricSpec
from canary_tui.core.verdict import Evidence, Status, Verdict


class ThresholdJudge:
    """FAIL when the canary's windowed rate exceeds the baseline's by more than the tolerance."""

    def __init__(
        self,
        specs: tuple[MetricSpec, ...],
        window_s: float = 60.0,
        min_requests: float = 200.0,
        z_fail: float = 3.0,
    ) -> None:
        for spec in specs:
            if spec.baseline_quantile is not None:
                raise ValueError(
                    f"metric {spec.name!r}: a baseline_quantile threshold needs the sequential"
                    " judge; give this judge a threshold_ms"
                )
        self.z_fail = z_fail
        self.specs = specs
        self.window_s = window_s
        self.min_requests = min_requests
        self._samples: deque[Sample] = deque()
        self._last: Sample | None = None

    def start_step(self, index: int, now: float) -> None:
        self._samples.clear()

    def observe(self, sample: Sample) -> None:
        self._last = sample
        if sample.ok:
            self._samples.append(sample)
        while self._samples and self._samples[0].end < sample.end - self.window_s:
            self._samples.popleft()

    def verdicts(self, ctx: StepContext) -> tuple[Verdict, ...]:
        return tuple(self._judge(spec) for spec in self.specs)

    def _judge(self, spec: MetricSpec) -> Verdict:
        last = self._last
        if last is None or not last.ok:
            reason = "waiting for the first window" if last is None else (last.problem or "no data")
            return Verdict.without_data(spec.name, reason)
        b_bad = b_n = c_bad = c_n = 0.0
        for s in self._samples:
            if s.baseline is None or s.canary is None:  # only whole samples are kept
                continue
            b = bad_and_total(spec, s.baseline)
            c = bad_and_total(spec, s.canary)
            if b is None or c is None:
                return Verdict.without_data(
                    spec.name, f"{spec.name} cannot be counted from this source"
                )
            b_bad, b_n, c_bad, c_n = b_bad + b[0], b_n + b[1], c_bad + c[0], c_n + c[1]
        if c_n <= 0 or b_n <= 0:
            who = "canary" if c_n <= 0 else "baseline"
            return Verdict.without_data(
                spec.name,
                f"the {who} served no requests",
                Evidence(rule="no-traffic", baseline_n=b_n, canary_n=c_n),
            )
        b_rate, c_rate = b_bad / b_n, c_bad / c_n
        limit = max(b_rate * spec.tolerance_ratio, b_rate + spec.tolerance_abs)
        ratio = c_rate / b_rate if b_rate > 0 else None
        evidence = Evidence(
            rule="threshold",
            baseline_rate=b_rate,
            canary_rate=c_rate,
            baseline_n=b_n,
            canary_n=c_n,
            effect=ratio,
            tolerance=spec.tolerance_ratio,
        )
        head = f"{spec.name}: canary {pct(c_rate)} vs baseline {pct(b_rate)}"
        if ratio is not None:
            head += f", ratio {ratio:.1f}x"
        if min(c_n, b_n) < self.min_requests:
            return Verdict(
                spec.name,
                Status.INCONCLUSIVE,
                f"{head}: {min(c_n, b_n):.0f} of {self.min_requests:.0f} requests needed",
                evidence,
            )
        # Exceeding the limit must also be unlikely to be noise in EITHER variant: a one-sided
        # z-score of the canary's rate against the limit, with both rates' sampling variance.
        ratio_used = (
            spec.tolerance_ratio
            if b_rate * spec.tolerance_ratio >= b_rate + spec.tolerance_abs
            else 1.0
        )
        var = c_rate * (1 - c_rate) / c_n + ratio_used**2 * b_rate * (1 - b_rate) / b_n
        z = (c_rate - limit) / math.sqrt(max(var, 1e-12))
        status = Status.FAIL if c_rate > limit and z > self.z_fail else Status.PASS
        return Verdict(
            spec.name, status, f"{head}, limit {pct(limit)}: {status.value.upper()}", evidence
        )
