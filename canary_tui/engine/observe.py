"""What the loop sees: it reads the router and the metric source, adopts the live routing
state, notices changes made outside the loop (a difference counts once a second read agrees),
follows a router's own controller (Argo Rollouts), and keeps the metric totals, SLO gauges
and graph points. It never writes to the router."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace

from canary_tui.core.actions import kill_confirmed
from canary_tui.core.frames import SeriesPoint
from canary_tui.core.judging.base import LearnsBaseline, duration_text
from canary_tui.core.metrics import EMPTY, Sample, VariantCounts
from canary_tui.core.ports import RoutingState, owns_steps
from canary_tui.core.slo import gauge
from canary_tui.core.state import CanaryState, LastChange, Phase
from canary_tui.engine.actions import Actions
from canary_tui.engine.publish import Publisher
from canary_tui.engine.records import OUTSIDE, AuditTrail
from canary_tui.engine.shared import Shared

log = logging.getLogger("canary_tui.engine")

CLOCK_STEP_TOLERANCE_S = 2.0


class Observer:
    """Reads run with no lock held; what they say is taken in under the shared lock."""

    def __init__(
        self, shared: Shared, publisher: Publisher, trail: AuditTrail, actions: Actions
    ) -> None:
        self.shared, self.publisher, self.trail, self.actions = shared, publisher, trail, actions
        clock = shared.clock
        self.resumed = False  # the loop resumed the last run's state (set by its start)
        self._last_fetch = (clock.now(), clock.monotonic())
        self._source_failing = False
        self._total_canary: VariantCounts = EMPTY
        self._recent: deque[tuple[float, VariantCounts]] = deque()
        self._smooth: deque[Sample] = deque()

    # --- reads (no lock held) ----------------------------------------------------------------
    def read_tick(self) -> Sample:
        """A tick's reads: the router, and again at once when it differs from the state (to
        confirm the difference this tick), and the metrics since the last tick's window."""
        sh = self.shared
        gen = sh.write_gen
        routing, error = self.read_router()
        sample = self._fetch()
        with sh.lock:
            self.observe_error(routing, error)
            if routing is not None:
                self.observe(routing, gen)
            confirm = sh.suspect is not None
        if confirm:  # a difference seen once: read again at once to confirm it this tick
            gen = sh.write_gen
            routing, error = self.read_router()
            with sh.lock:
                if routing is not None:
                    self.observe(routing, gen)
        return sample

    def read_router(self) -> tuple[RoutingState | None, str | None]:
        try:
            return self.shared.router.read(), None
        except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
            if self.shared.router_error is None:  # the traceback once per outage, not every tick
                log.warning("cannot read the router", exc_info=True)
            return None, str(exc) or type(exc).__name__

    def read_baseline(self) -> Sample | None:
        judge = self.shared.judge
        if not isinstance(judge, LearnsBaseline) or not judge.needs_baseline:
            return None
        end = self.shared.clock.now()
        return self._read(end - self.shared.settings.baseline_window_s, end)

    def _fetch(self) -> Sample:
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

    # --- the router (under the lock) ---------------------------------------------------------
    def observe_error(self, routing: RoutingState | None, error: str | None) -> None:
        sh = self.shared
        now = sh.loop_now()
        if routing is None:
            if sh.router_error is None:
                sh.router_error_since = now
                self.publisher.note("alert", "loop", f"cannot read the router: {error}")
            sh.router_error = error
        elif sh.router_error is not None:
            since = sh.router_error_since if sh.router_error_since is not None else now
            self.publisher.note(
                "info", "loop", f"the router answers again after {now - since:.0f} s"
            )
            sh.router_error = sh.router_error_since = None

    def observe(self, routing: RoutingState, gen: int) -> None:
        """A read of the router (tick or watch). Notice changes made outside the loop: a
        difference is acted on once a second read, with no write of ours in between, agrees."""
        sh = self.shared
        if sh.writing or gen != sh.write_gen:
            return  # it overlapped a write of ours: it says nothing about anyone else
        sh.routing, sh.routing_at = routing, sh.loop_now()
        if not sh.adopted:
            self.adopt(routing, resumed=self.resumed)
            return
        s = sh.state
        if s.kill is not None:
            if routing.weight == 0 and not routing.mirror:
                self.actions.confirm_kill(routing, by_read=True, publish=False)
            return
        if s.terminal:
            self._after_end(routing, s)
        elif not self.follow_controller(routing) and self._confirmed(routing, s):
            self._changed_outside(routing, s)

    def _after_end(self, routing: RoutingState, s: CanaryState) -> None:
        """The canary ended: a router not as it left it is recorded once, never undone."""
        sh = self.shared
        live = (routing.weight, routing.mirror)
        expected = (0, False) if s.phase is Phase.ROLLED_BACK else (100, False)
        if live == expected:
            sh.terminal_drift = None  # back as it ended: nothing to show
        elif live != sh.terminal_drift:
            sh.terminal_drift = live
            self.trail.external(
                routing, f"the router now reports {routing.weight}%"
                + (" with mirroring" if routing.mirror else "")
                + f" though the canary was {s.phase.label}: changed outside the loop",
            )  # fmt: skip

    def _confirmed(self, routing: RoutingState, s: CanaryState) -> bool:
        """Whether the router differs from `s` as it did at the last read (a difference seen
        once is remembered, to confirm; no difference forgets it)."""
        sh = self.shared
        live = (routing.weight, routing.mirror)
        if live == (s.weight, s.shadow):
            sh.suspect = None
            return False
        if sh.suspect != live:
            sh.suspect = live
            return False
        sh.suspect = None
        return True

    def _changed_outside(self, routing: RoutingState, s: CanaryState) -> None:
        """A confirmed change made outside the loop: take it, record it, and hold the plan
        (unless the router's own controller walks the steps)."""
        sh = self.shared
        if routing.weight == 0 and s.weight > 0:
            self._external(routing, f"the router reports 0% (the loop had {s.weight}%): "
                           "aborted outside this loop")  # fmt: skip
            return
        parts = []
        if routing.weight != s.weight:
            parts.append(f"weight {s.weight}% -> {routing.weight}%")
        if routing.mirror != s.shadow:
            parts.append(f"mirroring {'on' if routing.mirror else 'off'}")
        index, hold = self.place(routing.weight, s.step_index)
        if owns_steps(sh.router):
            text = f"the router's controller moved: {', '.join(parts)}"
        else:
            hold = (
                f"changed outside the loop ({', '.join(parts)}): the plan holds until a person acts"
            )
            text = hold
        sh.state = replace(s, step_index=index, weight=routing.weight, shadow=routing.mirror,
                           hold=hold or s.hold).evolve(
            last_change=LastChange(OUTSIDE, f"changed the router ({', '.join(parts)})",
                                   sh.loop_now()))  # fmt: skip
        if index != s.step_index:
            sh.judge.start_step(index, sh.loop_now())
        self.trail.external(routing, text)

    def adopt(self, routing: RoutingState, *, resumed: bool) -> None:
        """Take the router's weight and mirror as the truth (no write)."""
        sh = self.shared
        sh.adopted = True
        s = sh.state
        if s.terminal:
            return
        if routing.weight == 0 and s.weight > 0 and s.kill is None and resumed:
            self._external(routing, f"the router reports 0% (it was {s.weight}%): "
                           "aborted outside this loop while it was down")  # fmt: skip
            return
        index, hold = self.place(routing.weight, s.step_index)
        if s.kill is not None:
            hold = s.hold
        elif (
            resumed
            and (routing.weight, routing.mirror) != (s.weight, s.shadow)
            and not owns_steps(sh.router)
        ):
            was = f"{s.weight}%" + (" with mirroring" if s.shadow else "")
            now = f"{routing.weight}%" + (" with mirroring" if routing.mirror else "")
            hold = (f"the router was changed from {was} to {now} while the loop was down: "
                    "the plan holds until a person acts")  # fmt: skip
            self.trail.external(routing, hold)
        new = replace(s, step_index=index, weight=routing.weight, shadow=routing.mirror,
                      hold=hold if hold is not None else s.hold)  # fmt: skip
        if new != s:
            sh.state = new.evolve()

    def place(self, weight: int, near: int) -> tuple[int, str | None]:
        """The plan's step for a live weight, and why the plan holds if it is not on it."""
        steps = self.shared.plan.steps
        exact = [i for i, st in enumerate(steps) if st.weight == weight]
        if exact:
            return min(exact, key=lambda i: abs(i - near)), None
        if weight == 0:
            return 0, None
        below = [i for i, st in enumerate(steps) if st.weight < weight]
        index = below[-1] if below else 0
        if owns_steps(self.shared.router):
            return index, None
        return index, (f"off-plan: the router is at {weight}%, which is not a step of the plan; "
                       "the plan holds until a person steps")  # fmt: skip

    def follow_controller(self, routing: RoutingState) -> bool:
        """A router whose own controller walks the steps (Argo Rollouts) says its phase:
        the loop follows it (paused at a pause step, resumed, promoted, aborted) and records
        each change. True when the state ended or changed phase here."""
        sh = self.shared
        s = sh.state
        phase = routing.phase
        if not owns_steps(sh.router) or s.terminal or s.kill is not None or not phase:
            return False
        if phase == Phase.ROLLED_BACK.value:
            self._external(routing, "the router's controller aborted the canary")
            return True
        if phase == Phase.PROMOTED.value:
            sh.state = s.evolve(phase=Phase.PROMOTED, weight=routing.weight,
                                shadow=routing.mirror, last_change=LastChange(
                                    OUTSIDE, "promoted the canary", sh.loop_now()))  # fmt: skip
            self.trail.external(routing, "the router's controller promoted the canary")
            return True
        want = {Phase.PAUSED.value: Phase.PAUSED, Phase.PROGRESSING.value: Phase.PROGRESSING}
        target = want.get(phase)
        if target is None or target is s.phase:
            return False
        did = "paused the canary" if target is Phase.PAUSED else "resumed the canary"
        sh.state = s.evolve(phase=target,
                            last_change=LastChange(OUTSIDE, did, sh.loop_now()))  # fmt: skip
        self.trail.external(routing, f"the router's controller {did}")
        return False

    def _external(self, routing: RoutingState, text: str) -> None:
        """The canary was aborted outside the loop: it ends rolled back, nothing is undone."""
        sh = self.shared
        sh.state = kill_confirmed(sh.state, sh.loop_now(), OUTSIDE)
        self.trail.external(routing, text)
        self.publisher.note("alert", "loop", f"ROLLED BACK outside the loop: {text}")

    # --- the metrics (under the lock) --------------------------------------------------------
    def calibrate(self, sample: Sample | None, when: str) -> None:
        """Fix the judge's slow-request thresholds (the baseline's p95/p99) from the baseline's
        latency over the window before now, and audit them; with too little to read, say so:
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
