"""The engine: one canary's loop and the ONE path through which every action is applied.

`tick()` retries a pending kill when due, reads the router and the metric source, updates
the judge, notices changes made outside the loop, issues the rules' actions and publishes a
frame. `submit()` applies an action from anyone (a key, a rule, a pipeline): decide (pure)
-> audit the intent (fsynced) -> call the router -> audit the result -> publish.

Locks. `_lock` guards the state, the audit order and publishing, and is only ever held for
short, local work: no metric fetch and no router call runs under it, so a slow backend
never makes anyone wait for the state. `_write_lock` lets one router write run at a time. A
kill does not queue for it to take effect: it is audited and latched under `_lock` at once
(every later step, resume or promote is then refused), and its router call follows as soon
as the write in flight, if any, returns.

Time. Scheduling, holds, graces, retries and staleness run on the loop's time: the wall
clock at start, then the monotonic clock (`loop_now`). Wall time is only for the metric
source's query windows and for the records' timestamps.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from canary_tui.core.actions import (
    Accepted,
    Action,
    ActionOutcome,
    Refused,
    Verb,
    decide,
    kill_confirmed,
    latched,
)
from canary_tui.core.clock import Clock
from canary_tui.core.frames import ActivityEntry, CanaryInfo, Frame, SeriesPoint
from canary_tui.core.judging.base import Judge, LearnsBaseline, StepContext, duration_text
from canary_tui.core.metrics import EMPTY, Sample, VariantCounts
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import Policy, automatic_actions
from canary_tui.core.ports import (
    Closeable,
    FollowsChanges,
    MetricSource,
    RecordsEvents,
    RouterError,
    RoutingState,
    TrafficRouter,
    owns_steps,
)
from canary_tui.core.slo import SLO, Gauge, gauge
from canary_tui.core.state import CanaryState, LastChange, Phase
from canary_tui.core.verdict import Status, Verdict
from canary_tui.engine.recovery import Recovery, kill_action_of, settle, state_record
from canary_tui.records.audit import AuditError, AuditLog

log = logging.getLogger("canary_tui.engine")

Subscriber = Callable[[Frame], None]
#: Called at named points of the action path ("after_intent", "after_router",
#: "after_result") with the verb: the fault-injection harness crashes the process there.
CrashHook = Callable[[str, Verb], None]

OUTSIDE = "outside the loop"
KILL_BACKOFF_FIRST_S = 1.0
KILL_BACKOFF_MAX_S = 30.0
CLOCK_STEP_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class EngineSettings:
    tick_s: float = 5.0
    history_s: float = 600.0  # how much graph history a newly attached client receives
    smooth_s: float = 30.0  # graph points are rates over this trailing window, like rate[30s]
    activity_keep: int = 200
    burn_window_s: float = 300.0
    baseline_window_s: float = 600.0  # read the baseline's latency quantiles over this, first
    policy: Policy = field(default_factory=Policy)


class Engine:
    """One canary's loop. Thread-safe: ticks and submits may come from any thread."""

    def __init__(
        self,
        *,
        info: CanaryInfo,
        plan: RampPlan,
        judge: Judge,
        source: MetricSource,
        router: TrafficRouter,
        audit: AuditLog,
        clock: Clock,
        slos: tuple[SLO, ...] = (),
        settings: EngineSettings | None = None,
        armed: bool = True,
        unattended: str = "hold",
    ) -> None:
        self.info, self.plan, self.judge = info, plan, judge
        self.source, self.router, self.audit, self.clock = source, router, audit, clock
        self.slos = slos
        self.settings = settings or EngineSettings()
        self.crash_hook: CrashHook | None = None
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._t0_wall, self._t0_mono = clock.now(), clock.monotonic()
        now = self.loop_now()
        self.state = CanaryState.initial(0, now, armed=armed)
        self.routing: RoutingState | None = None
        self.routing_at: float | None = None
        self.router_error: str | None = None
        self.router_error_since: float | None = None
        self.metrics_at: float | None = None
        self.verdicts: tuple[Verdict, ...] = ()
        self.gauges: tuple[Gauge, ...] = ()
        self.no_data: str | None = None
        self.no_data_since: float | None = None
        self.warning: str | None = None
        self.presence: tuple[str, ...] = ()
        self.loop_health: tuple[str, str] = ("running", "")
        self._last_fetch = (clock.now(), clock.monotonic())
        self._points: deque[SeriesPoint] = deque()
        self._activity: deque[ActivityEntry] = deque(maxlen=self.settings.activity_keep)
        self._pending_activity: list[ActivityEntry] = []
        self._total_canary: VariantCounts = EMPTY
        self._recent: deque[tuple[float, VariantCounts]] = deque()
        self._smooth: deque[Sample] = deque()
        # The pending kill's action (for its result records), attempts and schedule.
        self._kill_action: Action | None = None
        self._kill_attempts = 0
        self._kill_error: str | None = None
        self._kill_next_at = 0.0  # monotonic
        # Router writes: a read that overlapped one says nothing about changes made outside.
        self._write_gen = 0
        self._writing = False
        self._suspect: tuple[int, bool] | None = None  # a difference seen once, to confirm
        self._reported_terminal_drift: tuple[int, bool] | None = None
        self._adopted = False
        self._source_failing = False
        self._resumed = False
        self._unsupported_shadow = router.shadow_unsupported()
        limits = router_limits(router, self._unsupported_shadow)
        self.info = replace(info, unavailable=limits)
        self.attended = True
        self.unattended = unattended
        self._frame_seq = 0
        self._last_frame: Frame | None = None

    # --- time ----------------------------------------------------------------------------
    def loop_now(self) -> float:
        """The loop's time: the wall clock at start, then monotonic (never steps)."""
        return self._t0_wall + (self.clock.monotonic() - self._t0_mono)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, recovery: Recovery | None = None) -> None:
        """Adopt the live routing state and audit the start. Never writes to the router,
        except to finish a kill that an earlier run accepted and the router never confirmed.

        With `recovery` (what the audit log says of the last run), an intent left without a
        result is settled first: a kill is re-issued until it lands; anything else is
        reconciled from the router's read-back and recorded as applied or not applied.
        """
        gen = self._write_gen
        routing, error = self._read_router()
        baseline = self._read_baseline()
        with self._lock:
            self._observe_error(routing, error)
            if routing is not None:
                self.routing, self.routing_at = routing, self.loop_now()
            base = self._recovered(recovery)
            self.state = base
            what = "resumed" if recovery is not None and recovery.state is not None else "started"
            self._resumed = what == "resumed"
            if routing is not None and gen == self._write_gen:
                self._adopt(routing, resumed=self._resumed)
                self._follow_controller(routing)
            self._record_plain(
                "session", "start",
                f"loop {what} for {self.info.name}: {self._where()}",
            )  # fmt: skip
            if self._resumed:
                when = "before the loop resumed"
            elif self.state.weight == 0:
                when = "before the canary"
            else:
                when = "before the loop started"
            self._calibrate(baseline, when)
            self.warning = self._current_warning()
            self._publish(new_point=None)
        if self.state.kill is not None:
            self._attempt_kill()
        self.watch_router()

    def _recovered(self, recovery: Recovery | None) -> CanaryState:
        """The state to start from: the last run's (times reset), with its open intent
        settled. Only reconciliation is recorded here; adoption follows."""
        now = self.loop_now()
        fresh = CanaryState.initial(0, now, armed=self.state.armed)
        if recovery is not None and recovery.ended is not None:
            fresh = replace(fresh, hold=f"the last canary here was {recovery.ended}: step "
                            "forward to start a new one")  # fmt: skip
        if recovery is None or recovery.state is None:
            return fresh
        state = replace(recovery.state, step_started_at=now, started_at=now, last_change=None)
        intent = recovery.open_intent
        if intent is None:
            if state.kill is not None:
                self._kill_action = recovery.kill_action
            return state
        action = recovery.intent_action
        if action is None:
            return state
        if action.verb is Verb.KILL:
            self._kill_action = action
            if state.kill is None:
                state = latched(state, action, str(intent.get("id", "")), float(intent["time"]))
            self._note("alert", "loop", "a kill accepted before the restart is not confirmed: "
                       "finishing it before anything else")  # fmt: skip
            return state
        applied, why = settle(action.verb, intent, self.routing)
        after = recovery.intent_after
        outcome = "reconciled: applied" if applied else "reconciled: not applied"
        if applied and after is not None:
            state = replace(after, step_started_at=now, started_at=now, last_change=None,
                            kill=state.kill)  # fmt: skip
        self.state = state
        self._record(action, str(intent.get("id", "")), "result", outcome=outcome,
                     message=f"{action.verb.label}: {why}", routing=self.routing)  # fmt: skip
        return state

    def _adopt(self, routing: RoutingState, *, resumed: bool) -> None:
        """Take the router's weight and mirror as the truth (no write)."""
        self._adopted = True
        s = self.state
        if s.terminal:
            return
        if routing.weight == 0 and s.weight > 0 and s.kill is None and resumed:
            self._external(routing, f"the router reports 0% (it was {s.weight}%): "
                           "aborted outside this loop while it was down")  # fmt: skip
            return
        index, hold = self._place(routing.weight, s.step_index)
        if s.kill is not None:
            hold = s.hold
        elif (
            resumed
            and (routing.weight, routing.mirror) != (s.weight, s.shadow)
            and not owns_steps(self.router)
        ):
            was = f"{s.weight}%" + (" with mirroring" if s.shadow else "")
            now = f"{routing.weight}%" + (" with mirroring" if routing.mirror else "")
            hold = (f"the router was changed from {was} to {now} while the loop was down: "
                    "the plan holds until a person acts")  # fmt: skip
            self._record_external(routing, hold)
        new = replace(s, step_index=index, weight=routing.weight, shadow=routing.mirror,
                      hold=hold if hold is not None else s.hold)  # fmt: skip
        if new != s:
            self.state = new.evolve()

    def _place(self, weight: int, near: int) -> tuple[int, str | None]:
        """The plan's step for a live weight, and why the plan holds if it is not on it."""
        steps = self.plan.steps
        exact = [i for i, st in enumerate(steps) if st.weight == weight]
        if exact:
            return min(exact, key=lambda i: abs(i - near)), None
        if weight == 0:
            return 0, None
        below = [i for i, st in enumerate(steps) if st.weight < weight]
        index = below[-1] if below else 0
        if owns_steps(self.router):
            return index, None
        return index, (f"off-plan: the router is at {weight}%, which is not a step of the plan; "
                       "the plan holds until a person steps")  # fmt: skip

    def _read_baseline(self) -> Sample | None:
        judge = self.judge
        if not isinstance(judge, LearnsBaseline) or not judge.needs_baseline:
            return None
        end = self.clock.now()
        return self._read(end - self.settings.baseline_window_s, end)

    def _calibrate(self, sample: Sample | None, when: str) -> None:
        """Fix the judge's slow-request thresholds (the baseline's p95/p99) from the baseline's
        latency over the window before now, and audit them; with too little to read, say so:
        the judge then learns them from the canary's first minute."""
        judge = self.judge
        if sample is None or not isinstance(judge, LearnsBaseline):
            return
        span = duration_text(self.settings.baseline_window_s)
        latency = sample.baseline.latency if sample.ok and sample.baseline is not None else None
        if latency is None or latency.total < judge.calibration_min_requests:
            if not sample.ok:
                why = sample.problem or "no data"
            elif latency is None:
                why = "the source has no latency histogram"
            else:
                why = f"only {latency.total:.0f} baseline requests"
            self._note(
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
        self._record_plain(
            "judge", "thresholds",
            f"slow-request thresholds from the baseline's latency over the {span} {when} "
            f"({latency.total:.0f} requests): {fixed}",
        )  # fmt: skip

    def watch_router(self) -> None:
        """Follow the router's own change feed (Kubernetes watches), where it has one."""
        if isinstance(self.router, FollowsChanges):
            self.router.subscribe(self._on_routing)

    def _on_routing(self, routing: RoutingState) -> None:
        gen = self._write_gen
        with self._lock:
            if routing != self.routing or self._suspect is not None:
                self._observe(routing, gen)
                self.warning = self._current_warning()
                self._publish(new_point=None)

    def close(self) -> None:
        """Release what the adapters hold (watch threads, Event senders, connections)."""
        for thing in (self.router, self.source):
            if isinstance(thing, Closeable):
                try:
                    thing.close()
                except Exception as exc:
                    log.exception("closing %s", type(thing).__name__)
                    self._warn(f"closing {type(thing).__name__}: {exc}")

    def set_attended(self, attended: bool) -> None:
        """Whether anyone is watching; unattended, the loop follows `unattended` policy."""
        with self._lock:
            if attended != self.attended:
                self.attended = attended
                if not attended:
                    text = (
                        f"nobody attached: unattended policy is '{self.unattended}' "
                        "(auto-rollback stays armed)"
                    )
                    self._note("info", "loop", text)
                self._publish(new_point=None)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Send `subscriber` a full frame now and every new frame after; return unsubscribe.

        Subscribers are called with the state lock held, in order: they must not block
        (hand the frame to a queue or an event loop)."""
        with self._lock:
            self._subscribers.append(subscriber)
            subscriber(self.full_frame())

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def full_frame(self) -> Frame:
        with self._lock:
            return self._frame(
                points=tuple(self._points), activity=tuple(self._activity), full=True
            )

    def heartbeat(self) -> Frame | None:
        """The last published frame again with the current time and loop health, and nothing
        new: lock-free, so it answers while a tick or an action is stuck."""
        last = self._last_frame
        if last is None:
            return None
        status, detail = self.loop_health
        return replace(last, now=self.loop_now(), points=(), activity=(), full=False,
                       sample=None, heartbeat=True, loop=status, loop_detail=detail)  # fmt: skip

    # --- the tick ------------------------------------------------------------------------
    def tick(self) -> Frame:
        if self.state.kill is not None and self.clock.monotonic() >= self._kill_next_at:
            self._attempt_kill()
        gen = self._write_gen
        routing, error = self._read_router()
        sample = self._fetch()
        with self._lock:
            self._observe_error(routing, error)
            if routing is not None:
                self._observe(routing, gen)
            confirm = self._suspect is not None
        if confirm:  # a difference seen once: read again at once to confirm it this tick
            gen = self._write_gen
            routing, error = self._read_router()
            with self._lock:
                if routing is not None:
                    self._observe(routing, gen)
        with self._lock:
            now = self.loop_now()
            self.judge.observe(sample)
            self._account(sample, now)
            ctx = StepContext(
                self.state.step_index,
                self.state.time_in_step(now),
                self.plan.step(self.state.step_index).hold_s,
                now,
            )
            previous = {v.metric: v.status for v in self.verdicts}
            self.verdicts = self.judge.verdicts(ctx)
            for v in self.verdicts:
                if v.status is Status.FAIL and previous.get(v.metric) is not Status.FAIL:
                    self._note("alert", "judge", f"verdict FAIL: {v.why}")
            policy = self.settings.policy
            if not self.attended and self.unattended == "hold":
                policy = replace(policy, auto_advance=False)
            actions = automatic_actions(
                self.state, self.plan, self.verdicts, now, self.no_data_since, policy,
                routing_fresh=self._routing_fresh(now),
            )  # fmt: skip
        for action in actions:
            self.submit(action, publish=False)
        with self._lock:
            self.warning = self._current_warning()
            return self._publish(new_point=self._graph_point(sample), sample=sample)

    def _routing_fresh(self, now: float) -> bool:
        """Whether the loop knows the router's state well enough for a rule to add traffic:
        read within two ticks, and no unconfirmed difference outstanding."""
        return (
            self._adopted
            and self._suspect is None
            and self.routing is not None
            and self.routing_at is not None
            and now - self.routing_at <= max(2.0, 2 * self.settings.tick_s)
        )

    def _fetch(self) -> Sample:
        """The window since the last tick's. Its length follows the monotonic clock, so a
        wall-clock step neither empties nor doubles it."""
        wall, mono = self.clock.now(), self.clock.monotonic()
        with self._lock:
            last_wall, last_mono = self._last_fetch
            elapsed = max(0.0, mono - last_mono)
            start = last_wall
            drift = (wall - last_wall) - elapsed
            if abs(drift) > CLOCK_STEP_TOLERANCE_S:
                self._warn(f"the wall clock stepped by {drift:+.0f} s; the loop's schedule "
                           "follows the monotonic clock, the query window moves with the wall")
                start = wall - elapsed
            self._last_fetch = (wall, mono)
        return self._read(start, wall)

    def _read(self, start: float, end: float) -> Sample:
        """The source's counts for [start, end), checked; its failures become no-data."""
        try:
            sample = self.source.fetch(start, end)
        except Exception as exc:  # an adapter bug must not stop the loop
            if not self._source_failing:  # the traceback once per outage, not every tick
                log.exception("the metric source failed")
            self._source_failing = True
            return Sample.no_data(start, end, f"metric source failed: {exc}").validated()
        self._source_failing = False
        return sample.validated()

    def _read_router(self) -> tuple[RoutingState | None, str | None]:
        try:
            return self.router.read(), None
        except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
            if self.router_error is None:  # the traceback once per outage, not every tick
                log.warning("cannot read the router", exc_info=True)
            return None, str(exc) or type(exc).__name__

    def _observe_error(self, routing: RoutingState | None, error: str | None) -> None:
        now = self.loop_now()
        if routing is None:
            if self.router_error is None:
                self.router_error_since = now
                self._note("alert", "loop", f"cannot read the router: {error}")
            self.router_error = error
        elif self.router_error is not None:
            since = self.router_error_since if self.router_error_since is not None else now
            self._note("info", "loop", f"the router answers again after {now - since:.0f} s")
            self.router_error = self.router_error_since = None

    def _observe(self, routing: RoutingState, gen: int) -> None:
        """A read of the router (tick or watch). Notice changes made outside the loop: a
        difference is acted on once a second read, with no write of ours in between, agrees."""
        if self._writing or gen != self._write_gen:
            return  # it overlapped a write of ours: it says nothing about anyone else
        self.routing, self.routing_at = routing, self.loop_now()
        if not self._adopted:
            self._adopt(routing, resumed=self._resumed)
            return
        s = self.state
        live = (routing.weight, routing.mirror)
        if s.kill is not None:
            if routing.weight == 0 and not routing.mirror:
                self._confirm_kill(routing, by_read=True, publish=False)
            return
        if s.terminal:
            expected = (0, False) if s.phase is Phase.ROLLED_BACK else (100, False)
            if live == expected:
                self._reported_terminal_drift = None  # back as it ended: nothing to show
            elif live != self._reported_terminal_drift:
                self._reported_terminal_drift = live
                self._record_external(
                    routing, f"the router now reports {routing.weight}%"
                    + (" with mirroring" if routing.mirror else "")
                    + f" though the canary was {s.phase.label}: changed outside the loop",
                )  # fmt: skip
            return
        if self._follow_controller(routing):
            return
        if live == (s.weight, s.shadow):
            self._suspect = None
            return
        if self._suspect != live:
            self._suspect = live
            return
        self._suspect = None
        if routing.weight == 0 and s.weight > 0:
            self._external(routing, f"the router reports 0% (the loop had {s.weight}%): "
                           "aborted outside this loop")  # fmt: skip
            return
        parts = []
        if routing.weight != s.weight:
            parts.append(f"weight {s.weight}% -> {routing.weight}%")
        if routing.mirror != s.shadow:
            parts.append(f"mirroring {'on' if routing.mirror else 'off'}")
        index, hold = self._place(routing.weight, s.step_index)
        if owns_steps(self.router):
            text = f"the router's controller moved: {', '.join(parts)}"
        else:
            hold = (f"changed outside the loop ({', '.join(parts)}): the plan holds until a "
                    "person acts")
            text = hold
        self.state = replace(s, step_index=index, weight=routing.weight, shadow=routing.mirror,
                             hold=hold or s.hold).evolve(
            last_change=LastChange(OUTSIDE, f"changed the router ({', '.join(parts)})",
                                   self.loop_now()))  # fmt: skip
        if index != s.step_index:
            self.judge.start_step(index, self.loop_now())
        self._record_external(routing, text)

    def _follow_controller(self, routing: RoutingState) -> bool:
        """A router whose own controller walks the steps (Argo Rollouts) says its phase:
        the loop follows it (paused at a pause step, resumed, promoted, aborted) and records
        each change. True when the state ended or changed phase here."""
        s = self.state
        phase = routing.phase
        if not owns_steps(self.router) or s.terminal or s.kill is not None or not phase:
            return False
        if phase == Phase.ROLLED_BACK.value:
            self._external(routing, "the router's controller aborted the canary")
            return True
        if phase == Phase.PROMOTED.value:
            self.state = s.evolve(phase=Phase.PROMOTED, weight=routing.weight,
                                  shadow=routing.mirror, last_change=LastChange(
                                      OUTSIDE, "promoted the canary", self.loop_now()))  # fmt: skip
            self._record_external(routing, "the router's controller promoted the canary")
            return True
        want = {Phase.PAUSED.value: Phase.PAUSED, Phase.PROGRESSING.value: Phase.PROGRESSING}
        target = want.get(phase)
        if target is None or target is s.phase:
            return False
        did = "paused the canary" if target is Phase.PAUSED else "resumed the canary"
        self.state = s.evolve(phase=target,
                              last_change=LastChange(OUTSIDE, did, self.loop_now()))  # fmt: skip
        self._record_external(routing, f"the router's controller {did}")
        return False

    def _external(self, routing: RoutingState, text: str) -> None:
        """The canary was aborted outside the loop: it ends rolled back, nothing is undone."""
        self.state = kill_confirmed(self.state, self.loop_now(), OUTSIDE)
        self._record_external(routing, text)
        self._note("alert", "loop", f"ROLLED BACK outside the loop: {text}")

    def _record_external(self, routing: RoutingState, text: str) -> None:
        rec = {
            "time": self.clock.now(),
            "type": "external",
            "event": "change",
            "canary": self.info.name,
            "message": text,
            "routing": routing.to_dict(),
            "state": state_record(self.state),
        }
        written = self._append(rec)
        self._note("warn", OUTSIDE, text, written.get("seq"))

    def _account(self, sample: Sample, now: float) -> None:
        if sample.ok and sample.canary is not None:
            self.metrics_at = now
            if self.no_data_since is not None:
                self._note(
                    "info", "loop", f"metrics are back after {now - self.no_data_since:.0f} s"
                )
            self.no_data, self.no_data_since = None, None
            try:
                self._total_canary = self._total_canary + sample.canary
            except ValueError as exc:  # e.g. the source changed its histogram buckets
                self._warn(f"SLO totals restarted: {exc}")
                self._total_canary = sample.canary
                self._recent.clear()
            self._recent.append((now, sample.canary))
        else:
            if self.no_data_since is None:
                self.no_data_since = now
                self._note("alert", "loop", f"metrics went silent: {sample.problem}")
            self.no_data = sample.problem
        while self._recent and self._recent[0][0] < now - self.settings.burn_window_s:
            self._recent.popleft()
        recent = EMPTY
        for _, counts in self._recent:
            try:
                recent = recent + counts
            except ValueError:
                recent = counts
        self.gauges = tuple(gauge(slo, self._total_canary, recent) for slo in self.slos)

    def _graph_point(self, sample: Sample) -> SeriesPoint:
        """A point for the graphs: counts summed over the trailing `smooth_s` window, so a
        canary at 5% reads as a rate rather than as noise. No data stays a visible gap."""
        if not sample.ok:
            return SeriesPoint.from_sample(sample)
        self._smooth.append(sample)
        while self._smooth and self._smooth[0].start < sample.end - self.settings.smooth_s - 1e-9:
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

    def _current_warning(self) -> str | None:
        s = self.state
        if s.kill is not None:
            return (f"KILL PENDING ({s.kill.actor}: {s.kill.reason or 'no reason'}): the router "
                    "has not confirmed the abort; retrying until it does")  # fmt: skip
        routing = self.routing
        if s.terminal:
            if routing is not None and self._reported_terminal_drift is not None:
                return (f"the router reports {routing.weight}% though the canary was "
                        f"{s.phase.label}: changed outside the loop")  # fmt: skip
            return None
        failing = [v.metric for v in self.verdicts if v.status is Status.FAIL]
        if failing and not s.armed:
            return f"FAILING ({', '.join(failing)}) but auto-rollback is DISARMED"
        if s.hold is not None:
            return f"PLAN HELD: {s.hold}"
        return None

    def _where(self) -> str:
        s = self.state
        router = "unreadable" if self.routing is None else f"{self.routing.weight}%"
        where = f"{s.phase.label}, step {s.step_index + 1}/{len(self.plan)}, router {router}"
        if s.kill is not None:
            where += ", kill pending"
        if s.hold is not None:
            where += f"; {s.hold}"
        return where

    # --- the one path for actions --------------------------------------------------------
    def submit(self, action: Action, *, publish: bool = True) -> ActionOutcome:
        """Apply `action` (from anyone) and return what became of it."""
        if action.verb is Verb.KILL:
            return self._kill(action, publish)
        with self._write_lock:
            with self._lock:
                now = self.loop_now()
                action_id = uuid.uuid4().hex[:12]
                decision = decide(self.state, action, self.plan, now)
                refusal = self._refusal(action, decision)
                if refusal is not None:
                    self._record(action, action_id, "refused", message=refusal)
                    return self._done(action, False, refusal, action_id, publish)
                if not isinstance(decision, Accepted):  # pragma: no cover - _refusal said
                    return self._done(action, False, "refused", action_id, publish)
                try:
                    self._record(action, action_id, "intent", planned=decision.after)
                except AuditError as exc:
                    reason = f"refused: the audit log cannot be written ({exc})"
                    self._note("warn", action.actor.name, reason)
                    return self._done(action, False, reason, action_id, publish)
                if decision.noop:
                    self._record(action, action_id, "result", outcome="noop",
                                 message=decision.summary)  # fmt: skip
                    return self._done(action, True, decision.summary, action_id, publish)
                self._crash("after_intent", action.verb)
                self._writing = True
                self._write_gen += 1
            try:
                routing, error = self._route(action.verb, decision), None
            except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
                routing, error = None, exc
                _log_unexpected(exc, f"{action.verb.label} at the router")
            self._crash("after_router", action.verb)
            with self._lock:
                self._writing = False
                self._write_gen += 1
                if error is not None:
                    message = f"{action.verb.label} failed at the router: {error}"
                    self._record(action, action_id, "result", outcome="error", message=message)
                    return self._done(action, False, message, action_id, publish)
                before = self.state
                # A kill may have latched while the router call ran: keep its latch.
                kill = before.kill if decision.before.kill is None else decision.after.kill
                self.state = replace(decision.after, kill=kill,
                                     version=max(decision.after.version, before.version + 1))
                if routing is not None:
                    self.routing, self.routing_at = routing, self.loop_now()
                if before.step_index != self.state.step_index:
                    self.judge.start_step(self.state.step_index, now)
                self._record(action, action_id, "result", outcome="applied",
                             message=decision.summary, routing=routing)  # fmt: skip
                self._crash("after_result", action.verb)
                self._event(action, decision.summary)
                return self._done(action, True, decision.summary, action_id, publish)

    def _refusal(self, action: Action, decision: Accepted | Refused) -> str | None:
        if isinstance(decision, Refused):
            return decision.reason
        if action.verb is Verb.SHADOW_ON and self._unsupported_shadow:
            return f"shadow is not available here: {self._unsupported_shadow}"
        if action.verb in (Verb.STEP_FORWARD, Verb.PROMOTE, Verb.START, Verb.RESUME) and (
            not self._routing_fresh(self.loop_now()) and action.actor.kind == "rule"
        ):
            return "the router's state is not known right now: no rule adds traffic blind"
        return None

    def _done(self, action: Action, ok: bool, message: str, action_id: str,
              publish: bool) -> ActionOutcome:  # fmt: skip
        if publish:
            self.warning = self._current_warning()
            self._publish(new_point=None)
        return ActionOutcome(ok, action.verb, message, self.state.version, action_id)

    def _kill(self, action: Action, publish: bool = True) -> ActionOutcome:
        """Accept a kill at once: audit the intent (fsynced) and latch, with no wait on a
        router write in flight; then try the router (retried with backoff until it
        confirms, by `tick`)."""
        with self._lock:
            now = self.loop_now()
            action_id = uuid.uuid4().hex[:12]
            decision = decide(self.state, action, self.plan, now)
            if isinstance(decision, Refused):
                self._record(action, action_id, "refused", message=decision.reason)
                return self._done(action, False, decision.reason, action_id, publish)
            already = self.state.kill is not None
            try:
                self._record(action, action_id, "intent", planned=decision.after)
            except AuditError as exc:
                self._note("warn", action.actor.name,
                           f"audit log unwritable, killing anyway: {exc}")  # fmt: skip
            if decision.noop:
                self._record(action, action_id, "result", outcome="noop", message=decision.summary)
                if not already:
                    return self._done(action, True, decision.summary, action_id, publish)
            else:
                self._crash("after_intent", Verb.KILL)
                self.state = latched(decision.after, action, action_id, self.clock.now())
                self._kill_action = action
                self._kill_attempts, self._kill_error = 0, None
                if publish:  # everyone sees KILL PENDING before the router is even called
                    self.warning = self._current_warning()
                    self._publish(new_point=None)
        return self._attempt_kill(publish)

    def _attempt_kill(self, publish: bool = True) -> ActionOutcome:
        """One router attempt at the pending kill; on failure, schedule the next one."""
        with self._write_lock:
            with self._lock:
                latch = self.state.kill
                action = self._kill_action or kill_action_of(latch)
                if latch is None:
                    return ActionOutcome(True, Verb.KILL, "the kill is confirmed",
                                         self.state.version, "")  # fmt: skip
                self._kill_attempts += 1
                attempt = self._kill_attempts
                self._writing = True
                self._write_gen += 1
            try:
                routing, error = self.router.abort(), None
            except Exception as exc:  # RouterError, or an adapter bug: retried, never raised
                routing, error = None, exc
                _log_unexpected(exc, "the kill at the router")
            self._crash("after_router", Verb.KILL)
            with self._lock:
                self._writing = False
                self._write_gen += 1
                if routing is not None:
                    self.routing, self.routing_at = routing, self.loop_now()
                if self.state.kill is None:  # confirmed by a read, or cancelled, meanwhile
                    return ActionOutcome(True, Verb.KILL, "the kill is confirmed",
                                         self.state.version, latch.action_id)  # fmt: skip
                if error is None and routing is not None and routing.weight == 0:
                    return self._confirm_kill(routing, by_read=False, publish=publish)
                why = str(error) if error is not None else (
                    f"the router still reports {routing.weight if routing else '?'}%")
                delay = min(KILL_BACKOFF_MAX_S, KILL_BACKOFF_FIRST_S * 2 ** (attempt - 1))
                self._kill_next_at = self.clock.monotonic() + delay
                self._kill_error = why
                message = (f"kill attempt {attempt} failed at the router: {why} (the kill stays "
                           f"pending; next attempt in {delay:.0f} s)")  # fmt: skip
                self._record(action, latch.action_id, "result", outcome="error", message=message)
                if publish:
                    self.warning = self._current_warning()
                    self._publish(new_point=None)
                return ActionOutcome(False, Verb.KILL, message, self.state.version,
                                     latch.action_id)  # fmt: skip

    def _confirm_kill(
        self, routing: RoutingState, *, by_read: bool, publish: bool = True
    ) -> ActionOutcome:
        latch = self.state.kill
        action = self._kill_action or kill_action_of(latch)
        action_id = latch.action_id if latch is not None else ""
        self.state = kill_confirmed(self.state, self.loop_now(), action.actor.name)
        self.routing, self.routing_at = routing, self.loop_now()
        self._kill_action, self._kill_error = None, None
        summary = "killed the canary" + (" (the router reads 0%)" if by_read else "")
        self._record(action, action_id, "result", outcome="applied", message=summary,
                     routing=routing)  # fmt: skip
        self._crash("after_result", Verb.KILL)
        self._event(action, summary)
        if publish:
            self.warning = self._current_warning()
            self._publish(new_point=None)
        return ActionOutcome(True, Verb.KILL, summary, self.state.version, action_id)

    def _event(self, action: Action, summary: str) -> None:
        if isinstance(self.router, RecordsEvents):  # e.g. a Kubernetes Event: never raises
            why = f": {action.reason}" if action.reason else ""
            # The audit chain's head, anchored on the object: `audit verify --against SEQ:HASH`
            head = self.audit.head()
            self.router.record_event(action.verb.value, action.actor.name,
                                     f"{summary}{why} [audit head {head}]")  # fmt: skip

    def _route(self, verb: Verb, decision: Accepted) -> RoutingState | None:
        after = decision.after
        match verb:
            case Verb.STEP_FORWARD | Verb.STEP_BACK | Verb.START:
                return self.router.set_weight(after.weight)
            case Verb.PAUSE | Verb.RESUME:
                return self.router.set_paused(verb is Verb.PAUSE)
            case Verb.SHADOW_ON | Verb.SHADOW_OFF:
                return self.router.set_mirror(verb is Verb.SHADOW_ON)
            case Verb.PROMOTE:
                return self.router.promote()
            case _:
                return None

    def _crash(self, point: str, verb: Verb) -> None:
        if self.crash_hook is not None:
            self.crash_hook(point, verb)

    def audit_refusal(self, action: Action, reason: str) -> None:
        """Audit and show an action refused before it reached the state machine (a viewer's)."""
        with self._lock:
            self._record(action, uuid.uuid4().hex[:12], "refused", message=reason)
            self._publish(new_point=None)

    # --- the loop's own health, as its runner reports it ---------------------------------
    def record_loop(self, event: str, message: str) -> None:
        """Audit what happened to the loop itself (stopped on an error, restarted)."""
        with self._lock:
            self._record_plain("loop", event, message, note="alert")
            self._publish(new_point=None)

    # --- audit and activity --------------------------------------------------------------
    def _record(
        self,
        action: Action,
        action_id: str,
        kind: str,
        *,
        planned: CanaryState | None = None,
        outcome: str | None = None,
        message: str = "",
        routing: RoutingState | None = None,
    ) -> None:
        rec: dict[str, Any] = {
            "time": self.clock.now(),
            "type": kind,
            "id": action_id,
            "canary": self.info.name,
            "verb": action.verb.value,
            "actor": action.actor.to_dict(),
            "source": action.source.value,
            "expected_version": action.expected_version,
            "state": state_record(self.state),
        }
        if action.reason:
            rec["reason"] = action.reason
        if kind == "intent":
            if action.evidence:
                rec["evidence"] = dict(action.evidence)
            if planned is not None:
                rec["after"] = state_record(planned)
        if outcome is not None:
            rec["outcome"] = outcome
        if message:
            rec["message"] = message
        if routing is not None:
            rec["routing"] = routing.to_dict()
        written = self._append(rec)
        who = action.actor.name
        if kind == "intent":
            text = f"{action.verb.label}" + (f": {action.reason}" if action.reason else "")
            self._note("intent", who, text, written.get("seq"))
        elif kind == "refused":
            self._note(
                "refused", who, f"{action.verb.label} refused: {message}", written.get("seq")
            )
        elif outcome in ("applied", "noop", "reconciled: applied"):
            label = "" if outcome == "applied" else f" [{outcome}]"
            self._note("result", who, f"{message or action.verb.label}{label}", written.get("seq"))
            if action.verb is Verb.KILL and outcome == "applied" and action.actor.kind == "rule":
                self._note("alert", who, f"ROLLED BACK automatically: {action.reason}")
        else:
            self._note("failed", who, f"{message or action.verb.label} [{outcome}]",
                       written.get("seq"))  # fmt: skip

    def _record_plain(self, kind: str, event: str, message: str, note: str = "info") -> None:
        rec = {
            "time": self.clock.now(),
            "type": kind,
            "event": event,
            "canary": self.info.name,
            "message": message,
            "state": state_record(self.state),
        }
        written = self._append(rec)
        self._note(note, "loop", message, written.get("seq"))

    def _append(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Append to the audit log. Only an intent's failure stops an action (it raises);
        any other record that cannot be written becomes a loud warning, never a crash."""
        try:
            return self.audit.append(rec)
        except AuditError as exc:
            if rec.get("type") == "intent":
                raise
            self._warn(f"AUDIT LOG NOT WRITTEN ({rec.get('type')}): {exc}")
            return {}

    def _warn(self, text: str) -> None:
        self._note("warn", "loop", text)

    def _note(self, kind: str, actor: str, text: str, seq: int | None = None) -> None:
        entry = ActivityEntry(self.loop_now(), kind, actor, text, seq)
        self._activity.append(entry)
        self._pending_activity.append(entry)

    def note(self, text: str) -> None:
        """An informational line in the activity pane (not an audit record)."""
        with self._lock:
            self._note("info", "loop", text)

    def note_presence(self, who: str, joined: bool, present: tuple[str, ...]) -> None:
        """Record that someone attached or left, and publish it."""
        with self._lock:
            self.presence = present
            self._note("presence", who, f"{who} {'joined' if joined else 'left'}")
            self._publish(new_point=None)

    # --- publishing ----------------------------------------------------------------------
    def _frame(
        self,
        *,
        points: tuple[SeriesPoint, ...],
        activity: tuple[ActivityEntry, ...],
        full: bool,
        sample: Sample | None = None,
    ) -> Frame:
        status, detail = self.loop_health
        return Frame(
            now=self.loop_now(),
            info=self.info,
            plan=self.plan,
            state=self.state,
            routing=self.routing,
            verdicts=self.verdicts,
            gauges=self.gauges,
            no_data=self.no_data,
            warning=self.warning,
            points=points,
            activity=activity,
            full=full,
            sample=sample,
            presence=self.presence,
            seq=self._frame_seq,
            attended=self.attended,
            unattended=self.unattended,
            tick_s=self.settings.tick_s,
            routing_at=self.routing_at,
            router_error=self.router_error,
            metrics_at=self.metrics_at,
            loop=status,
            loop_detail=detail,
            kill_attempts=self._kill_attempts if self.state.kill is not None else 0,
            kill_error=self._kill_error if self.state.kill is not None else None,
        )

    def _publish(self, new_point: SeriesPoint | None, sample: Sample | None = None) -> Frame:
        if new_point is not None:
            self._points.append(new_point)
            horizon = new_point.t - self.settings.history_s
            while self._points and self._points[0].t < horizon:
                self._points.popleft()
        activity = tuple(self._pending_activity)
        self._pending_activity.clear()
        self._frame_seq += 1
        points = (new_point,) if new_point is not None else ()
        frame = self._frame(points=points, activity=activity, full=False, sample=sample)
        self._last_frame = frame
        for subscriber in list(self._subscribers):
            try:
                subscriber(frame)
            except Exception:  # a subscriber's bug must not stop the loop or an action
                log.exception("a frame subscriber failed")
        return frame

    def stop(self, reason: str = "loop stopped") -> None:
        with self._lock:
            self._record_plain("session", "stop", reason)
            self._publish(new_point=None)


def _log_unexpected(exc: Exception, what: str) -> None:
    """A RouterError is expected and audited; anything else is an adapter bug: its
    traceback goes to the log (the daemon's log file)."""
    if isinstance(exc, RouterError):
        log.warning("%s failed: %s", what, exc)
    else:
        log.error("%s failed with an unexpected error", what, exc_info=exc)


def router_limits(router: TrafficRouter, no_shadow: str | None) -> tuple[tuple[str, str], ...]:
    """What `router` can never do, as (verb, why) pairs for the frame's CanaryInfo: the
    dashboard greys those keys with the reason (the engine still refuses them if sent)."""
    out = []
    if no_shadow:
        out.append((Verb.SHADOW_ON.value, f"shadow is not available here: {no_shadow}"))
    if owns_steps(router):
        why = ("the router's own controller owns the steps and cannot step back (Argo "
               "Rollouts): kill aborts to the stable version, pause holds here")  # fmt: skip
        out.append((Verb.STEP_BACK.value, why))
    return tuple(out)
