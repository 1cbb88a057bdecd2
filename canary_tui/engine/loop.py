"""One canary's loop: its parts wired together, its lifecycle (start, tick, stop) and the
Engine's public face.

`tick()` retries a pending kill when due, reads the router (`observe`) and the metric
source (`metrics`), updates the judge, issues the rules' actions on the one path
(`actions`) and publishes a frame (`publish`). `submit()` applies an action from anyone (a
key, a rule, a pipeline). The parts share one `Shared` state and its locks: `shared` says
how they are held.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar, overload

from canary_tui.core.actions import Action, ActionOutcome, Verb
from canary_tui.core.clock import Clock
from canary_tui.core.frames import ActivityEntry, CanaryInfo, Frame
from canary_tui.core.judging.base import Judge, StepContext
from canary_tui.core.metrics import Sample
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import Policy, automatic_actions
from canary_tui.core.ports import (
    Closeable,
    FollowsChanges,
    MetricSource,
    RoutingState,
    TrafficRouter,
    owns_steps,
)
from canary_tui.core.slo import SLO, Gauge
from canary_tui.core.state import CanaryState
from canary_tui.core.verdict import Status, Verdict
from canary_tui.engine.actions import Actions, new_action_id
from canary_tui.engine.metrics import Metrics
from canary_tui.engine.observe import Observer
from canary_tui.engine.publish import Publisher, Subscriber
from canary_tui.engine.records import AuditTrail
from canary_tui.engine.recovery import Recovery
from canary_tui.engine.shared import CrashHook, EngineSettings, Shared
from canary_tui.records.audit import AuditLog

__all__ = ["ActionOutcome", "CrashHook", "Engine", "EngineSettings", "Subscriber", "router_limits"]

log = logging.getLogger("canary_tui.engine")

T = TypeVar("T")


class _FromShared(Generic[T]):
    """An Engine attribute that is the shared state's attribute of the same name."""

    def __set_name__(self, owner: type[Engine], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, engine: None, owner: type[Engine]) -> _FromShared[T]: ...
    @overload
    def __get__(self, engine: Engine, owner: type[Engine]) -> T: ...
    def __get__(self, engine: Engine | None, owner: type[Engine]) -> T | _FromShared[T]:
        if engine is None:
            return self
        value: T = getattr(engine._shared, self.name)
        return value

    def __set__(self, engine: Engine, value: T) -> None:
        setattr(engine._shared, self.name, value)


class Engine:
    """One canary's loop. Thread-safe: ticks and submits may come from any thread."""

    # The adapters and settings (replaceable before start) and what the loop knows: the
    # shared state's, read and written through the Engine as before the parts were split.
    info: _FromShared[CanaryInfo] = _FromShared()
    plan: _FromShared[RampPlan] = _FromShared()
    judge: _FromShared[Judge] = _FromShared()
    source: _FromShared[MetricSource] = _FromShared()
    router: _FromShared[TrafficRouter] = _FromShared()
    audit: _FromShared[AuditLog] = _FromShared()
    clock: _FromShared[Clock] = _FromShared()
    slos: _FromShared[tuple[SLO, ...]] = _FromShared()
    settings: _FromShared[EngineSettings] = _FromShared()
    crash_hook: _FromShared[CrashHook | None] = _FromShared()
    state: _FromShared[CanaryState] = _FromShared()
    routing: _FromShared[RoutingState | None] = _FromShared()
    routing_at: _FromShared[float | None] = _FromShared()
    router_error: _FromShared[str | None] = _FromShared()
    router_error_since: _FromShared[float | None] = _FromShared()
    metrics_at: _FromShared[float | None] = _FromShared()
    verdicts: _FromShared[tuple[Verdict, ...]] = _FromShared()
    gauges: _FromShared[tuple[Gauge, ...]] = _FromShared()
    no_data: _FromShared[str | None] = _FromShared()
    no_data_since: _FromShared[float | None] = _FromShared()
    warning: _FromShared[str | None] = _FromShared()
    presence: _FromShared[tuple[str, ...]] = _FromShared()
    loop_health: _FromShared[tuple[str, str]] = _FromShared()
    attended: _FromShared[bool] = _FromShared()
    unattended: _FromShared[str] = _FromShared()

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
        self._shared = sh = Shared(
            info=info, plan=plan, judge=judge, source=source, router=router, audit=audit,
            clock=clock, slos=slos, settings=settings or EngineSettings(), armed=armed,
            unattended=unattended,
        )  # fmt: skip
        self._publisher = Publisher(sh)
        self._trail = AuditTrail(sh, self._publisher)
        self._actions = Actions(sh, self._trail, self._publisher)
        self._metrics = Metrics(sh, self._publisher, self._trail)
        self._observer = Observer(sh, self._publisher, self._trail, self._actions)
        sh.unsupported_shadow = router.shadow_unsupported()
        sh.info = replace(info, unavailable=router_limits(router, sh.unsupported_shadow))

    # The publisher's activity window and subscribers, for tests that reach in.
    @property
    def _activity(self) -> deque[ActivityEntry]:
        return self._publisher.activity

    @_activity.setter
    def _activity(self, activity: deque[ActivityEntry]) -> None:
        self._publisher.activity = activity

    @property
    def _subscribers(self) -> list[Subscriber]:
        return self._publisher.subscribers

    # --- time ----------------------------------------------------------------------------
    def loop_now(self) -> float:
        """The loop's time: the wall clock at start, then monotonic (never steps)."""
        return self._shared.loop_now()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, recovery: Recovery | None = None) -> None:
        """Adopt the live routing state and audit the start. Never writes to the router,
        except to finish a kill that an earlier run accepted and the router never confirmed.

        With `recovery` (what the audit log says of the last run), an intent left without a
        result is settled first: a kill is re-issued until it lands; anything else is
        reconciled from the router's read-back and recorded as applied or not applied.
        """
        sh, observer = self._shared, self._observer
        gen = sh.write_gen
        routing, error = observer.read_router()
        baseline = self._metrics.read_baseline()
        with sh.lock:
            observer.observe_error(routing, error)
            if routing is not None:
                sh.routing, sh.routing_at = routing, sh.loop_now()
            sh.state = self._actions.recovered(recovery)
            what = "resumed" if recovery is not None and recovery.state is not None else "started"
            observer.resumed = what == "resumed"
            if routing is not None and gen == sh.write_gen:
                observer.adopt(routing, resumed=observer.resumed)
                observer.follow_controller(routing)
            self._trail.plain(
                "session", "start", f"loop {what} for {sh.info.name}: {self._where()}"
            )
            self._metrics.calibrate(baseline, self._before_what())
            self._publisher.refresh()
        if sh.state.kill is not None:
            self._actions.attempt_kill()
        self.watch_router()

    def _before_what(self) -> str:
        """The baseline's calibration window, as its record names it."""
        if self._observer.resumed:
            return "before the loop resumed"
        if self._shared.state.weight == 0:
            return "before the canary"
        return "before the loop started"

    def _where(self) -> str:
        sh = self._shared
        s = sh.state
        router = "unreadable" if sh.routing is None else f"{sh.routing.weight}%"
        where = f"{s.phase.label}, step {s.step_index + 1}/{len(sh.plan)}, router {router}"
        if s.kill is not None:
            where += ", kill pending"
        if s.hold is not None:
            where += f"; {s.hold}"
        return where

    def watch_router(self) -> None:
        """Follow the router's own change feed (Kubernetes watches), where it has one."""
        router = self._shared.router
        if isinstance(router, FollowsChanges):
            router.subscribe(self._on_routing)

    def _on_routing(self, routing: RoutingState) -> None:
        sh = self._shared
        gen = sh.write_gen
        with sh.lock:
            if routing != sh.routing or sh.suspect is not None:
                self._observer.observe(routing, gen)
                self._publisher.refresh()

    def close(self) -> None:
        """Release what the adapters hold (watch threads, Event senders, connections)."""
        for thing in (self._shared.router, self._shared.source):
            if isinstance(thing, Closeable):
                try:
                    thing.close()
                except Exception as exc:
                    log.exception("closing %s", type(thing).__name__)
                    self._publisher.warn(f"closing {type(thing).__name__}: {exc}")

    def set_attended(self, attended: bool) -> None:
        """Whether anyone is watching; unattended, the loop follows `unattended` policy."""
        sh = self._shared
        with sh.lock:
            if attended != sh.attended:
                sh.attended = attended
                if not attended:
                    text = (
                        f"nobody attached: unattended policy is '{sh.unattended}' "
                        "(auto-rollback stays armed)"
                    )
                    self._publisher.note("info", "loop", text)
                self._publisher.publish(new_point=None)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Send `subscriber` a full frame now and every new frame after; return unsubscribe.

        Subscribers are called with the state lock held, in order: they must not block
        (hand the frame to a queue or an event loop)."""
        return self._publisher.subscribe(subscriber)

    def full_frame(self) -> Frame:
        return self._publisher.full_frame()

    def heartbeat(self) -> Frame | None:
        """The last published frame again with the current time and loop health, and nothing
        new: lock-free, so it answers while a tick or an action is stuck."""
        return self._publisher.heartbeat()

    def stop(self, reason: str = "loop stopped") -> None:
        with self._shared.lock:
            self._trail.plain("session", "stop", reason)
            self._publisher.publish(new_point=None)

    # --- the tick ------------------------------------------------------------------------
    def tick(self) -> Frame:
        if self._actions.kill_due():
            self._actions.attempt_kill()
        gen = self._shared.write_gen
        routing, error = self._observer.read_router()
        sample = self._metrics.fetch()
        windows = self._metrics.read_windows(sample.end)
        self._observer.take(routing, error, gen)
        with self._shared.lock:
            actions = self._judge(sample, windows)
        for action in actions:
            self.submit(action, publish=False)
        with self._shared.lock:
            return self._publisher.refresh(self._metrics.graph_point(sample), sample)

    def _judge(self, sample: Sample, windows: list[Sample] | None = None) -> list[Action]:
        """Take the tick's sample (and the source's windows, if read), update the verdicts,
        and say what the rules do now."""
        sh = self._shared
        now = sh.loop_now()
        sh.judge.observe(sample)
        self._metrics.learn_windows(windows)
        self._metrics.account(sample, now)
        ctx = StepContext(
            sh.state.step_index,
            sh.state.time_in_step(now),
            sh.plan.step(sh.state.step_index).hold_s,
            now,
        )
        previous = {v.metric: v.status for v in sh.verdicts}
        sh.verdicts = sh.judge.verdicts(ctx)
        for v in sh.verdicts:
            if v.status is Status.FAIL and previous.get(v.metric) is not Status.FAIL:
                self._publisher.note("alert", "judge", f"verdict FAIL: {v.why}")
        return automatic_actions(
            sh.state, sh.plan, sh.verdicts, now, sh.no_data_since, self._policy(),
            routing_fresh=sh.routing_fresh(now),
        )  # fmt: skip

    def _policy(self) -> Policy:
        """The rules' policy now: with nobody attached and `unattended: hold`, no advance."""
        sh = self._shared
        if not sh.attended and sh.unattended == "hold":
            return replace(sh.settings.policy, auto_advance=False)
        return sh.settings.policy

    # --- the one path for actions --------------------------------------------------------
    def submit(self, action: Action, *, publish: bool = True) -> ActionOutcome:
        """Apply `action` (from anyone) and return what became of it."""
        return self._actions.submit(action, publish=publish)

    def audit_refusal(self, action: Action, reason: str) -> None:
        """Audit and show an action refused before it reached the state machine (a viewer's)."""
        with self._shared.lock:
            self._trail.action(action, new_action_id(), "refused", message=reason)
            self._publisher.publish(new_point=None)

    # --- the loop's own health, as its runner reports it ---------------------------------
    def record_loop(self, event: str, message: str) -> None:
        """Audit what happened to the loop itself (stopped on an error, restarted)."""
        with self._shared.lock:
            self._trail.plain("loop", event, message, note="alert")
            self._publisher.publish(new_point=None)

    # --- activity ------------------------------------------------------------------------
    def note(self, text: str) -> None:
        """An informational line in the activity pane (not an audit record)."""
        with self._shared.lock:
            self._publisher.note("info", "loop", text)

    def note_presence(self, who: str, joined: bool, present: tuple[str, ...]) -> None:
        """Record that someone attached or left, and publish it."""
        with self._shared.lock:
            self._shared.presence = present
            self._publisher.note("presence", who, f"{who} {'joined' if joined else 'left'}")
            self._publisher.publish(new_point=None)


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
