"""The engine: one canary's loop and the ONE path through which every action is applied.

`tick()` reads the counts since the last tick, updates the judge, issues the rules'
actions, and publishes a frame. `submit()` applies an action from anyone (a key, a rule,
a pipeline): decide (pure) -> audit the intent (fsynced) -> call the router -> audit the
result -> publish. A lock serialises ticks and actions, so the audit order is the order of
application.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from canary_tui.core.actions import Accepted, Action, ActionOutcome, Refused, Verb, decide
from canary_tui.core.clock import Clock
from canary_tui.core.frames import ActivityEntry, CanaryInfo, Frame, SeriesPoint
from canary_tui.core.judging.base import Judge, LearnsBaseline, StepContext, duration_text
from canary_tui.core.metrics import EMPTY, Sample, VariantCounts
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import Policy, automatic_actions
from canary_tui.core.ports import MetricSource, RouterError, RoutingState, TrafficRouter
from canary_tui.core.slo import SLO, Gauge, gauge
from canary_tui.core.state import CanaryState
from canary_tui.core.verdict import Status, Verdict
from canary_tui.records.audit import AuditError, AuditLog

Subscriber = Callable[[Frame], None]


@dataclass(frozen=True, slots=True)
class EngineSettings:
    tick_s: float = 5.0
    history_s: float = 600.0  # how much graph history a newly attached client receives
    smooth_s: float = 30.0  # graph points are rates over this trailing window, like rate[30s]
    activity_keep: int = 200
    burn_window_s: float = 300.0
    kill_attempts: int = 3
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
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        now = clock.now()
        self.state = CanaryState.initial(plan.step(0).weight, now, armed=armed)
        self.routing: RoutingState | None = None
        self.verdicts: tuple[Verdict, ...] = ()
        self.gauges: tuple[Gauge, ...] = ()
        self.no_data: str | None = None
        self.no_data_since: float | None = None
        self.warning: str | None = None
        self.presence: tuple[str, ...] = ()
        self._last_fetch = now
        self._points: deque[SeriesPoint] = deque()
        self._activity: deque[ActivityEntry] = deque(maxlen=self.settings.activity_keep)
        self._pending_activity: list[ActivityEntry] = []
        self._total_canary: VariantCounts = EMPTY
        self._recent: deque[tuple[float, VariantCounts]] = deque()
        self._smooth: deque[Sample] = deque()
        self._pending_kill: Action | None = None
        self._ticks = itertools.count(1)
        self._router_unsupported_shadow = router.shadow_unsupported()
        limits = router_limits(router, self._router_unsupported_shadow)
        self.info = replace(info, unavailable=limits)
        self.attended = True
        self.unattended = unattended
        self._frame_seq = 0

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, resume: CanaryState | None = None) -> None:
        """Read the live routing state back and audit the start.

        A fresh canary is set to the first step's weight. With `resume` (the last state the
        audit log knows, after a crash), the router's read-back decides the step: the cluster
        is the truth, not this process's memory.
        """
        with self._lock:
            try:
                self.routing = self.router.read()
            except Exception as exc:  # an adapter bug must not stop the loop
                self._warn(f"cannot read the router: {exc}")
            if resume is not None:
                self.state = self._reconcile(resume)
                self._record_plain(
                    "session", "start",
                    f"loop resumed for {self.info.name} at {self.state.phase.label}, "
                    f"step {self.state.step_index + 1}, router {self._router_weight()}",
                )  # fmt: skip
                self._learn_baseline("before the loop resumed")
            elif getattr(self.router, "owns_steps", False):
                # The router's own controller (Argo Rollouts) owns the steps: adopt its weight.
                self._record_plain("session", "start", f"loop started for {self.info.name}")
                self._learn_baseline("before the loop started")
                if self.routing is not None:
                    self.state = self._reconcile(self.state)
            else:
                self._record_plain("session", "start", f"loop started for {self.info.name}")
                self._learn_baseline("before the canary")
                if self.routing is None or self.routing.weight != self.state.weight:
                    try:
                        self.routing = self.router.set_weight(self.state.weight)
                    except Exception as exc:
                        self._warn(f"cannot set the first step's weight: {exc}")
            self._publish(new_point=None)
        self.watch_router()

    def _learn_baseline(self, when: str) -> None:
        """Fix the judge's slow-request thresholds (the baseline's p95/p99) from the baseline's
        latency over the window before now, and audit them; with too little to read, say so:
        the judge then learns them from the canary's first minute."""
        judge = self.judge
        if not isinstance(judge, LearnsBaseline) or not judge.needs_baseline:
            return
        window = self.settings.baseline_window_s
        now = self.clock.now()
        sample = self._read(now - window, now)
        latency = sample.baseline.latency if sample.ok and sample.baseline is not None else None
        span = duration_text(window)
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
        subscribe = getattr(self.router, "subscribe", None)
        if callable(subscribe):
            subscribe(self._on_routing)

    def _on_routing(self, routing: RoutingState) -> None:
        with self._lock:
            if routing != self.routing:
                self.routing = routing
                self.warning = self._current_warning()
                self._publish(new_point=None)

    def close(self) -> None:
        """Release what the adapters hold (watch threads, connections)."""
        for thing in (self.router, self.source):
            close = getattr(thing, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:
                    self._warn(f"closing {type(thing).__name__}: {exc}")

    def _router_weight(self) -> str:
        return "unknown" if self.routing is None else f"{self.routing.weight}%"

    def _reconcile(self, last: CanaryState) -> CanaryState:
        now = self.clock.now()
        state = replace(last, step_started_at=now)
        if state.terminal or self.routing is None:
            return state
        matching = [i for i, st in enumerate(self.plan.steps) if st.weight == self.routing.weight]
        if matching:
            index = min(matching, key=lambda i: abs(i - state.step_index))
            state = replace(state, step_index=index, weight=self.plan.step(index).weight)
        if self.routing.weight == 0 and last.weight > 0:
            self._warn("the router reports 0%: the canary was aborted outside this loop")
        state = replace(state, shadow=self.routing.mirror)
        return state

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
        """Send `subscriber` a full frame now and every new frame after; return unsubscribe."""
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

    # --- the tick ------------------------------------------------------------------------
    def tick(self) -> Frame:
        with self._lock:
            now = self.clock.now()
            sample = self._fetch(now)
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
            self._refresh_routing()
            if self._pending_kill is not None and not self.state.terminal:
                self._apply(self._pending_kill)
            policy = self.settings.policy
            if not self.attended and self.unattended == "hold":
                policy = replace(policy, auto_advance=False)
            for action in automatic_actions(
                self.state, self.plan, self.verdicts, now, self.no_data_since, policy
            ):
                self._apply(action)
            self.warning = self._current_warning()
            return self._publish(new_point=self._graph_point(sample), sample=sample)

    def _fetch(self, now: float) -> Sample:
        """The window since the last tick's."""
        start, self._last_fetch = self._last_fetch, now
        return self._read(start, now)

    def _read(self, start: float, end: float) -> Sample:
        """The source's counts for [start, end), checked; its failures become no-data."""
        try:
            sample = self.source.fetch(start, end)
        except Exception as exc:  # an adapter bug must not stop the loop
            sample = Sample.no_data(start, end, f"metric source failed: {exc}")
        return sample.validated()

    def _account(self, sample: Sample, now: float) -> None:
        if sample.ok:
            assert sample.canary is not None
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
                self.no_data_since = sample.start
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
                assert s.baseline is not None and s.canary is not None
                baseline, canary = baseline + s.baseline, canary + s.canary
        except ValueError:  # histogram layout changed: start the window again
            self._smooth.clear()
            self._smooth.append(sample)
            return SeriesPoint.from_sample(sample)
        start = self._smooth[0].start
        return replace(SeriesPoint.from_sample(Sample(start, sample.end, baseline, canary)),
                       t=sample.end)  # fmt: skip

    def _refresh_routing(self) -> None:
        try:
            self.routing = self.router.read()
        except Exception as exc:  # an adapter bug must not stop the loop
            self._warn(f"cannot read the router: {exc}")

    def _current_warning(self) -> str | None:
        if self.state.terminal:
            return None
        failing = [v.metric for v in self.verdicts if v.status is Status.FAIL]
        if failing and not self.state.armed:
            return f"FAILING ({', '.join(failing)}) but auto-rollback is DISARMED"
        if self._pending_kill is not None:
            return "KILL PENDING: the router has not confirmed the abort; retrying every tick"
        if self.routing is not None and self.routing.weight != self.state.weight:
            return f"router reports {self.routing.weight}% where the plan says {self.state.weight}%"
        return None

    # --- the one path for actions --------------------------------------------------------
    def submit(self, action: Action) -> ActionOutcome:
        with self._lock:
            outcome = self._apply(action)
            self.warning = self._current_warning()
            self._publish(new_point=None)
            return outcome

    def audit_refusal(self, action: Action, reason: str) -> None:
        """Audit and show an action refused before it reached the state machine (a viewer's)."""
        with self._lock:
            self._record(action, uuid.uuid4().hex[:12], "refused", message=reason)
            self._publish(new_point=None)

    def _apply(self, action: Action) -> ActionOutcome:
        now = self.clock.now()
        action_id = uuid.uuid4().hex[:12]
        decision = decide(self.state, action, self.plan, now)
        if isinstance(decision, Refused):
            self._record(action, action_id, "refused", message=decision.reason)
            return ActionOutcome(False, action.verb, decision.reason, self.state.version, action_id)
        if action.verb is Verb.SHADOW_ON and self._router_unsupported_shadow:
            reason = f"shadow is not available here: {self._router_unsupported_shadow}"
            self._record(action, action_id, "refused", message=reason)
            return ActionOutcome(False, action.verb, reason, self.state.version, action_id)
        assert isinstance(decision, Accepted)
        try:
            self._record(action, action_id, "intent", planned=decision.after)
        except AuditError as exc:
            if action.verb is not Verb.KILL:
                reason = f"refused: the audit log cannot be written ({exc})"
                self._note("warn", action.actor.name, reason)
                return ActionOutcome(False, action.verb, reason, self.state.version, action_id)
            self._note("warn", action.actor.name, f"audit log unwritable, killing anyway: {exc}")
        if decision.noop:
            self._record(action, action_id, "result", outcome="noop", message=decision.summary)
            return ActionOutcome(True, action.verb, decision.summary, self.state.version, action_id)
        try:
            routing = self._route(action.verb, decision)
        except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
            message = f"{action.verb.label} failed at the router: {exc}"
            if action.verb is Verb.KILL:
                self._pending_kill = action
                message += " (kill stays pending and is retried every tick)"
            self._record(action, action_id, "result", outcome="error", message=message)
            return ActionOutcome(False, action.verb, message, self.state.version, action_id)
        if action.verb is Verb.KILL:
            self._pending_kill = None
        before = self.state
        self.state = decision.after
        self.routing = routing
        if before.step_index != self.state.step_index:
            self.judge.start_step(self.state.step_index, now)
        self._record(
            action,
            action_id,
            "result",
            outcome="applied",
            message=decision.summary,
            routing=routing,
        )
        record_event = getattr(self.router, "record_event", None)
        if callable(record_event):  # e.g. a Kubernetes Event on the object: never raises
            why = f": {action.reason}" if action.reason else ""
            record_event(action.verb.value, action.actor.name, decision.summary + why)
        return ActionOutcome(True, action.verb, decision.summary, self.state.version, action_id)

    def _route(self, verb: Verb, decision: Accepted) -> RoutingState | None:
        after = decision.after
        match verb:
            case Verb.STEP_FORWARD | Verb.STEP_BACK:
                return self.router.set_weight(after.weight)
            case Verb.PAUSE | Verb.RESUME:
                return self.router.set_paused(verb is Verb.PAUSE)
            case Verb.SHADOW_ON | Verb.SHADOW_OFF:
                return self.router.set_mirror(verb is Verb.SHADOW_ON)
            case Verb.PROMOTE:
                return self.router.promote()
            case Verb.KILL:
                last: RouterError | None = None
                attempts = 1 if getattr(self.router, "retries_kill", False) else (
                    max(1, self.settings.kill_attempts))  # fmt: skip
                for _ in range(attempts):
                    try:
                        return self.router.abort()
                    except RouterError as exc:
                        last = exc
                        if not exc.retryable:
                            break
                assert last is not None
                raise last
            case _:
                return self.routing

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
            "state": _state_dict(self.state),
        }
        if action.reason:
            rec["reason"] = action.reason
        if kind == "intent":
            if action.evidence:
                rec["evidence"] = dict(action.evidence)
            if planned is not None:
                rec["after"] = _state_dict(planned)
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
        else:
            label = "" if outcome == "applied" else f" [{outcome}]"
            self._note("result", who, f"{message or action.verb.label}{label}", written.get("seq"))
            if action.verb is Verb.KILL and outcome == "applied" and action.actor.kind == "rule":
                self._note("alert", who, f"ROLLED BACK automatically: {action.reason}")

    def _record_plain(self, kind: str, event: str, message: str) -> None:
        rec = {
            "time": self.clock.now(),
            "type": kind,
            "event": event,
            "canary": self.info.name,
            "message": message,
            "state": _state_dict(self.state),
        }
        written = self._append(rec)
        self._note("info", "loop", message, written.get("seq"))

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
        entry = ActivityEntry(self.clock.now(), kind, actor, text, seq)
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
        return Frame(
            now=self.clock.now(),
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
            extra={
                "seq": self._frame_seq,
                "attended": self.attended,
                "unattended": self.unattended,
            },
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
        for subscriber in list(self._subscribers):
            subscriber(frame)
        return frame

    def stop(self, reason: str = "loop stopped") -> None:
        with self._lock:
            self._record_plain("session", "stop", reason)
            self._publish(new_point=None)


def router_limits(router: TrafficRouter, no_shadow: str | None) -> tuple[tuple[str, str], ...]:
    """What `router` can never do, as (verb, why) pairs for the frame's CanaryInfo: the
    dashboard greys those keys with the reason (the engine still refuses them if sent)."""
    out = []
    if no_shadow:
        out.append((Verb.SHADOW_ON.value, f"shadow is not available here: {no_shadow}"))
    if getattr(router, "owns_steps", False):
        why = ("the router's own controller owns the steps and cannot step back (Argo "
               "Rollouts): kill aborts to the stable version, pause holds here")  # fmt: skip
        out.append((Verb.STEP_BACK.value, why))
    return tuple(out)


def _state_dict(state: CanaryState) -> dict[str, Any]:
    return {
        "phase": state.phase.value,
        "step": state.step_index,
        "weight": state.weight,
        "shadow": state.shadow,
        "armed": state.armed,
        "version": state.version,
    }


def state_from_audit(record_state: dict[str, Any], now: float) -> CanaryState:
    """Rebuild a CanaryState from the `state` field of an audit record."""
    from canary_tui.core.state import Phase

    return CanaryState(
        phase=Phase(record_state["phase"]),
        step_index=int(record_state["step"]),
        weight=int(record_state["weight"]),
        shadow=bool(record_state["shadow"]),
        armed=bool(record_state["armed"]),
        version=int(record_state["version"]),
        step_started_at=now,
        started_at=now,
    )
