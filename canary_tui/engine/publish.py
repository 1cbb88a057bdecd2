"""What the loop shows: the activity lines, the standing warning, and the frames sent to every
subscriber (a full one on subscribing, then one per change, and a lock-free heartbeat)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from canary_tui.core.frames import ActivityEntry, Frame, SeriesPoint
from canary_tui.core.metrics import Sample
from canary_tui.core.verdict import Status
from canary_tui.engine.shared import Shared

log = logging.getLogger("canary_tui.engine")

Subscriber = Callable[[Frame], None]


class Publisher:
    """The activity pane's lines, the graphs' history and the frames. Called under the
    shared lock, except `heartbeat`."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.subscribers: list[Subscriber] = []
        self.points: deque[SeriesPoint] = deque()
        self.activity: deque[ActivityEntry] = deque(maxlen=shared.settings.activity_keep)
        self.pending_activity: list[ActivityEntry] = []
        self.frame_seq = 0
        self.last_frame: Frame | None = None

    # --- activity and the standing warning ---------------------------------------------
    def note(self, kind: str, actor: str, text: str, seq: int | None = None) -> None:
        entry = ActivityEntry(self.shared.loop_now(), kind, actor, text, seq)
        self.activity.append(entry)
        self.pending_activity.append(entry)

    def warn(self, text: str) -> None:
        self.note("warn", "loop", text)

    def current_warning(self) -> str | None:
        sh = self.shared
        s = sh.state
        if s.kill is not None:
            return (f"KILL PENDING ({s.kill.actor}: {s.kill.reason or 'no reason'}): the router "
                    "has not confirmed the abort; retrying until it does")  # fmt: skip
        routing = sh.routing
        if s.terminal:
            if routing is not None and sh.terminal_drift is not None:
                return (f"the router reports {routing.weight}% though the canary was "
                        f"{s.phase.label}: changed outside the loop")  # fmt: skip
            return None
        failing = [v.metric for v in sh.verdicts if v.status is Status.FAIL]
        if failing and not s.armed:
            return f"FAILING ({', '.join(failing)}) but auto-rollback is DISARMED"
        if s.hold is not None:
            return f"PLAN HELD: {s.hold}"
        return None

    # --- frames --------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Send `subscriber` a full frame now and every new frame after; return unsubscribe."""
        lock = self.shared.lock
        with lock:
            self.subscribers.append(subscriber)
            subscriber(self.full_frame())

        def unsubscribe() -> None:
            with lock:
                if subscriber in self.subscribers:
                    self.subscribers.remove(subscriber)

        return unsubscribe

    def full_frame(self) -> Frame:
        with self.shared.lock:
            return self.frame(points=tuple(self.points), activity=tuple(self.activity), full=True)

    def heartbeat(self) -> Frame | None:
        """The last published frame again with the current time and loop health, and nothing
        new: lock-free, so it answers while a tick or an action is stuck."""
        last = self.last_frame
        if last is None:
            return None
        status, detail = self.shared.loop_health
        return replace(last, now=self.shared.loop_now(), points=(), activity=(), full=False,
                       sample=None, heartbeat=True, loop=status, loop_detail=detail)  # fmt: skip

    def frame(
        self,
        *,
        points: tuple[SeriesPoint, ...],
        activity: tuple[ActivityEntry, ...],
        full: bool,
        sample: Sample | None = None,
    ) -> Frame:
        sh = self.shared
        status, detail = sh.loop_health
        return Frame(
            now=sh.loop_now(),
            info=sh.info,
            plan=sh.plan,
            state=sh.state,
            routing=sh.routing,
            verdicts=sh.verdicts,
            gauges=sh.gauges,
            no_data=sh.no_data,
            warning=sh.warning,
            points=points,
            activity=activity,
            full=full,
            sample=sample,
            presence=sh.presence,
            seq=self.frame_seq,
            attended=sh.attended,
            unattended=sh.unattended,
            tick_s=sh.settings.tick_s,
            routing_at=sh.routing_at,
            router_error=sh.router_error,
            metrics_at=sh.metrics_at,
            loop=status,
            loop_detail=detail,
            kill_attempts=sh.kill_attempts if sh.state.kill is not None else 0,
            kill_error=sh.kill_error if sh.state.kill is not None else None,
        )

    def publish(self, new_point: SeriesPoint | None, sample: Sample | None = None) -> Frame:
        """Send every subscriber what changed: the activity since the last frame, and the
        graphs' new point (kept for `history_s` for clients that attach later)."""
        if new_point is not None:
            self.points.append(new_point)
            horizon = new_point.t - self.shared.settings.history_s
            while self.points and self.points[0].t < horizon:
                self.points.popleft()
        activity = tuple(self.pending_activity)
        self.pending_activity.clear()
        self.frame_seq += 1
        points = (new_point,) if new_point is not None else ()
        frame = self.frame(points=points, activity=activity, full=False, sample=sample)
        self.last_frame = frame
        for subscriber in list(self.subscribers):
            try:
                subscriber(frame)
            except Exception:  # a subscriber's bug must not stop the loop or an action
                log.exception("a frame subscriber failed")
        return frame

    def refresh(self, new_point: SeriesPoint | None = None, sample: Sample | None = None) -> Frame:
        """Recompute the standing warning, then publish what changed."""
        self.shared.warning = self.current_warning()
        return self.publish(new_point, sample)
