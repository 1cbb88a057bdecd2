"""What the loop reads of the metrics: the window since the last tick (on the monotonic
clock), the baseline before the canary (its latency fixes the judge's slow-request thresholds,
its windows the index of dispersion), and what is kept of them: the no-data watch, the SLO
gauges and the graphs' points."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace

from canary_tui.core.frames import SeriesPoint
from canary_tui.core.judging.base import LearnsBaseline, LearnsDispersion, duration_text
from canary_tui.core.metrics import EMPTY, Sample, VariantCounts
from canary_tui.core.ports import ReadsWindows, SmoothsTicks
from canary_tui.core.slo import gauge
from canary_tui.engine.publish import Publisher
from canary_tui.engine.records import AuditTrail
from canary_tui.engine.shared import Shared

log = logging.getLogger("canary_tui.engine")

CLOCK_STEP_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class BaselineRead:
    """The baseline before the canary: one window for the thresholds (None: none needed) and
    its consecutive windows for the dispersion (None: the judge or the source cannot)."""

    total: Sample | None
    windows: list[Sample] | None
    end: float


class Metrics:
    """Fetches run with no lock held; what they say is taken in under the shared lock."""

    def __init__(self, shared: Shared, publisher: Publisher, trail: AuditTrail) -> None:
        self.shared, self.publisher, self.trail = shared, publisher, trail
        clock = shared.clock
        self._last_fetch = (clock.now(), clock.monotonic())
        self._source_failing = False
        self._total_canary: VariantCounts = EMPTY
        self._recent: deque[tuple[float, VariantCounts]] = deque()
        self._smooth: deque[Sample] = deque()
        # a source whose ticks overlap (SmoothsTicks): the dispersion is learnt on its own
        # windows, read from `_windows_from` on, at most once per `_resolution` seconds
        self._windows_from: float | None = None
        self._windows_next = 0.0
        self._resolution = 0.0

    # --- reads (no lock held) ----------------------------------------------------------------
    def read_baseline(self) -> BaselineRead:
        sh = self.shared
        judge, source = sh.judge, sh.source
        end = sh.clock.now()
        start = end - sh.settings.baseline_window_s
        total = None
        if isinstance(judge, LearnsBaseline) and judge.needs_baseline:
            total = self._read(start, end)
        windows = None
        if isinstance(judge, LearnsDispersion) and isinstance(source, ReadsWindows):
            windows = self._read_windows(source, start, end)
        return BaselineRead(total, windows, end)

    def read_windows(self, until: float) -> list[Sample] | None:
        """The source's own windows since the last ones learnt, up to `until` (the end of
        the tick's sample, so the judge has observed all they hold), once per resolution;
        None when not due (or the source's ticks do not overlap)."""
        source = self.shared.source
        start = self._windows_from
        if start is None or until < self._windows_next or not isinstance(source, ReadsWindows):
            return None
        self._windows_next = until + self._resolution  # failed or not: not every tick
        return self._read_windows(source, start, until)

    def _read_windows(self, source: ReadsWindows, start: float, end: float) -> list[Sample]:
        try:
            return source.fetch_windows(start, end, self.shared.settings.tick_s)
        except Exception as exc:  # an adapter bug must not stop the loop
            log.exception("the metric source failed to read past windows")
            return [Sample.no_data(start, end, f"metric source failed: {exc}")]

    def fetch(self) -> Sample:
        """The window since the last tick's. Its length follows the monotonic clock, so a
        wall-clock step neither empties nor doubles it."""
        sh = self.shared
        wall, mono = sh.clock.now(), sh.clock.monotonic()
        with sh.lock:
            last_wall, last_mono = self._last_fetch
            elapsed = max(0.0, mono - last_mono)
            start = last_wall
            drift = (wall - last_wall) - elapsed
            if abs(drift) > CLOCK_STEP_TOLERANCE_S:
                self.publisher.warn(f"the wall clock stepped by {drift:+.0f} s; the loop's "
                                    "schedule follows the monotonic clock, the query window "
                                    "moves with the wall")  # fmt: skip
                start = wall - elapsed
            self._last_fetch = (wall, mono)
        return self._read(start, wall)

    def _read(self, start: float, end: float) -> Sample:
        """The source's counts for [start, end), checked; its failures become no-data."""
        try:
            sample = self.shared.source.fetch(start, end)
        except Exception as exc:  # an adapter bug must not stop the loop
            if not self._source_failing:  # the traceback once per outage, not every tick
                log.exception("the metric source failed")
            self._source_failing = True
            return Sample.no_data(start, end, f"metric source failed: {exc}").validated()
        self._source_failing = False
        return sample.validated()

    # --- what is kept (under the lock) --------------------------------------------------------
    def calibrate(self, read: BaselineRead, when: str) -> None:
        """Fix the judge's slow-request thresholds, then measure its index of dispersion, from
        the baseline before now; audit both, and say what could not be read."""
        self._thresholds(read.total, when)
        self._dispersion(read.windows, when)
        self._follow_windows(read)

    def _thresholds(self, sample: Sample | None, when: str) -> None:
        """The baseline's p95/p99 over the window before now; with too little to read, say so:
        the judge then learns them from the canary's first minute."""
        judge = self.shared.judge
        if sample is None or not isinstance(judge, LearnsBaseline):
            return
        span = duration_text(self.shared.settings.baseline_window_s)
        latency = sample.baseline.latency if sample.ok and sample.baseline is not None else None
        if latency is None or latency.total < judge.calibration_min_requests:
            if not sample.ok:
                why = sample.problem or "no data"
            elif latency is None:
                why = "the source has no latency histogram"
            else:
                why = f"only {latency.total:.0f} baseline requests"
            self.publisher.note(
                "info", "judge",
                f"slow-request thresholds: nothing to read over the {span} {when} ({why}); "
                "learning the baseline's quantiles from the canary's first minute instead",
            )  # fmt: skip
            return
        judge.calibrate(latency, f"over the {span} {when}")
        fixed = ", ".join(
            f"{name}: slow above {ms:g} ms"
            for name, ms in judge.thresholds_ms().items()
            if ms is not None
        )
        self.trail.plain(
            "judge", "thresholds",
            f"slow-request thresholds from the baseline's latency over the {span} {when} "
            f"({latency.total:.0f} requests): {fixed}",
        )  # fmt: skip

    def _dispersion(self, windows: list[Sample] | None, when: str) -> None:
        """The baseline's index of dispersion over its windows before now, so the judge's
        first comparisons are scaled by a measured factor; what could not be read is said
        (the judge then measures it during the canary)."""
        judge = self.shared.judge
        if windows is None or not isinstance(judge, LearnsDispersion):
            return
        span = duration_text(self.shared.settings.baseline_window_s)
        usable = _with_baseline_traffic(windows)
        factors = judge.learn_dispersion(usable) if usable else {}
        if not factors:
            failed = next((w.problem for w in windows if not w.ok and w.problem), None)
            why = failed or (
                f"{len(usable)} windows with traffic, too few bad events in them"
                if usable
                else "no baseline traffic"
            )
            self.publisher.note(
                "info", "judge",
                f"index of dispersion: nothing to read over the {span} {when} ({why}); "
                "measuring it during the canary instead (comparisons wait for it)",
            )  # fmt: skip
            return
        measured = ", ".join(f"{name} {factor:.1f}x" for name, factor in factors.items())
        self.trail.plain(
            "judge", "dispersion",
            f"index of dispersion of the baseline's bad events over the {span} {when} "
            f"({len(usable)} windows): {measured}",
        )  # fmt: skip

    def _follow_windows(self, read: BaselineRead) -> None:
        """When each tick's counts cover a longer span than the tick (consecutive ticks
        overlap, and their spread understates how bursty the counts are), measure the
        dispersion on the source's own windows from now on."""
        sh = self.shared
        judge, source = sh.judge, sh.source
        if not (
            isinstance(judge, LearnsDispersion)
            and isinstance(source, ReadsWindows)
            and isinstance(source, SmoothsTicks)
        ):
            return
        resolution = source.resolution_s(sh.settings.tick_s)
        if not resolution > sh.settings.tick_s:
            return
        judge.dispersion_on_windows_only()
        ends = [w.end for w in read.windows or () if w.ok]
        self._windows_from = max(ends) if ends else read.end
        self._resolution = resolution
        self._windows_next = self._windows_from + resolution
        span = duration_text(resolution)
        self.publisher.note(
            "info", "judge",
            f"each tick's counts cover the source's last {span}: the index of dispersion is "
            f"measured on the source's own {span} windows, read every {span}",
        )  # fmt: skip

    def learn_windows(self, windows: list[Sample] | None) -> None:
        """Take the source's windows read this tick into the judge's dispersion (after the
        tick's sample was observed)."""
        judge = self.shared.judge
        if not windows or not isinstance(judge, LearnsDispersion):
            return
        read = [w for w in windows if w.ok]
        if not read:
            return  # the read failed: the same span is read again next time
        self._windows_from = max(w.end for w in read)
        usable = _with_baseline_traffic(read)
        if usable:
            judge.learn_dispersion(usable)

    def account(self, sample: Sample, now: float) -> None:
        """Take a tick's sample into the no-data watch and the SLO gauges."""
        sh = self.shared
        if sample.ok and sample.canary is not None:
            self._counted(sample.canary, now)
        else:
            if sh.no_data_since is None:
                sh.no_data_since = now
                self.publisher.note("alert", "loop", f"metrics went silent: {sample.problem}")
            sh.no_data = sample.problem
        while self._recent and self._recent[0][0] < now - sh.settings.burn_window_s:
            self._recent.popleft()
        recent = EMPTY
        for _, counts in self._recent:
            try:
                recent = recent + counts
            except ValueError:
                recent = counts
        sh.gauges = tuple(gauge(slo, self._total_canary, recent) for slo in sh.slos)

    def _counted(self, canary: VariantCounts, now: float) -> None:
        sh = self.shared
        sh.metrics_at = now
        if sh.no_data_since is not None:
            self.publisher.note(
                "info", "loop", f"metrics are back after {now - sh.no_data_since:.0f} s"
            )
        sh.no_data, sh.no_data_since = None, None
        try:
            self._total_canary = self._total_canary + canary
        except ValueError as exc:  # e.g. the source changed its histogram buckets
            self.publisher.warn(f"SLO totals restarted: {exc}")
            self._total_canary = canary
            self._recent.clear()
        self._recent.append((now, canary))

    def graph_point(self, sample: Sample) -> SeriesPoint:
        """A point for the graphs: counts summed over the trailing `smooth_s` window, so a
        canary at 5% reads as a rate rather than as noise. No data stays a visible gap."""
        if not sample.ok:
            return SeriesPoint.from_sample(sample)
        smooth_s = self.shared.settings.smooth_s
        self._smooth.append(sample)
        while self._smooth and self._smooth[0].start < sample.end - smooth_s - 1e-9:
            self._smooth.popleft()
        try:
            baseline = canary = EMPTY
            for s in self._smooth:
                if s.baseline is None or s.canary is None:
                    continue
                baseline, canary = baseline + s.baseline, canary + s.canary
        except ValueError:  # histogram layout changed: start the window again
            self._smooth.clear()
            self._smooth.append(sample)
            return SeriesPoint.from_sample(sample)
        start = self._smooth[0].start
        return replace(SeriesPoint.from_sample(Sample(start, sample.end, baseline, canary)),
                       t=sample.end)  # fmt: skip


def _with_baseline_traffic(windows: list[Sample]) -> list[Sample]:
    """The windows with data in which the baseline served requests (the ones worth learning
    a dispersion from)."""
    return [w for w in windows if w.ok and w.baseline is not None and w.baseline.requests]
