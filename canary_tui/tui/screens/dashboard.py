"""The dashboard: header, plan, graphs, verdicts, SLO gauges, activity; one key per action."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.events import Key, Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from canary_tui.core.actions import ActionOutcome, Verb, why_not
from canary_tui.core.alerting import distinct_alerts
from canary_tui.core.frames import ActivityEntry, Frame
from canary_tui.core.state import Phase
from canary_tui.session.base import Session
from canary_tui.session.model import DashboardModel
from canary_tui.tui.alarms import alarms
from canary_tui.tui.keymap import ACTIONS_BY_ID, action_bindings
from canary_tui.tui.screens.dialogs import ConfirmScreen, TextScreen
from canary_tui.tui.screens.evidence import EvidenceScreen
from canary_tui.tui.widgets.activity import ActivityLog
from canary_tui.tui.widgets.compact import CompactSummary
from canary_tui.tui.widgets.footer import CanaryFooter
from canary_tui.tui.widgets.gauges import SLOGauges
from canary_tui.tui.widgets.graphs import (
    ERRORS,
    LATENCY_ALL,
    LATENCY_P99,
    REQUESTS,
    ComparisonGraph,
)
from canary_tui.tui.widgets.header import StatusHeader
from canary_tui.tui.widgets.plan_bar import PlanBar
from canary_tui.tui.widgets.verdicts import VerdictTable

MIN_WIDTH, MIN_HEIGHT = 40, 12  # below this nothing useful fits
COMPACT_WIDTH, COMPACT_HEIGHT = 60, 20  # below this: numbers and verdicts, no graphs
WIDE_WIDTH, WIDE_HEIGHT = 120, 36


class ActionDone(Message):
    """A submitted action came back from the session."""

    def __init__(self, outcome: ActionOutcome) -> None:
        super().__init__()
        self.outcome = outcome


class DashboardScreen(Screen[None]):
    BINDINGS = [*action_bindings()]

    def __init__(self, session: Session, *, ascii_only: bool = False) -> None:
        super().__init__()
        self.session = session
        self.ascii_only = ascii_only
        self.model = DashboardModel()
        self._render_pending = False
        self._new_activity: list[ActivityEntry] = []
        self._alerts: list[ActivityEntry] = []
        self._last_version = -1
        self._enabled: tuple[bool | None, ...] = ()
        self._busy = False

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield PlanBar()
        yield Static("", id="banner")
        with Horizontal(id="graphs"):
            yield ComparisonGraph(ERRORS, id="graph-errors")
            yield ComparisonGraph(LATENCY_P99, id="graph-latency")
            yield ComparisonGraph(REQUESTS, id="graph-requests")
        with Container(id="tables"):
            yield VerdictTable()
            yield SLOGauges()
        yield ActivityLog(ascii_only=self.ascii_only)
        yield CompactSummary()
        with Vertical(id="too-small"):
            yield Static("", id="too-small-text")
        yield CanaryFooter()

    def on_mount(self) -> None:
        self.query_one(StatusHeader).you = self.session.identity.name
        for widget in (self.query_one(PlanBar), self.query_one(SLOGauges),
                       self.query_one(StatusHeader), self.query_one(VerdictTable)):  # fmt: skip
            widget.ascii_only = self.ascii_only
        for graph in self.query(ComparisonGraph):
            graph.ascii_only = self.ascii_only
        if self.session.read_only:
            self.query_one(StatusHeader).mode = "REPLAY"
        self._layout_for(self.size.width, self.size.height)

    def on_resize(self, event: Resize) -> None:
        self._layout_for(event.size.width, event.size.height)

    def _layout_for(self, width: int, height: int) -> None:
        wide = width >= WIDE_WIDTH and height >= WIDE_HEIGHT
        self.set_class(wide, "-wide")
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "-too-small")
        self.set_class(not small and (width < COMPACT_WIDTH or height < COMPACT_HEIGHT), "-compact")
        if small:
            self.query_one("#too-small-text", Static).update(
                f"terminal too small: {width}x{height}\nneed at least {MIN_WIDTH}x{MIN_HEIGHT}"
                "\n\nk still kills the canary"
            )
        self.query_one("#graph-latency", ComparisonGraph).set_spec(
            LATENCY_ALL if wide else LATENCY_P99
        )

    # --- frames in -----------------------------------------------------------------------
    def on_frame(self, frame: Frame) -> None:
        """Called on the event loop for every frame; rendering is coalesced."""
        added = self.model.apply(frame)
        self._new_activity.extend(added)
        if not frame.full:  # history on attach does not ring again
            self._alerts.extend(a for a in added if a.kind == "alert")
        if frame.full:
            self._new_activity = list(self.model.activity)
            self.query_one(ActivityLog).clear()
        if not self._render_pending:
            self._render_pending = True
            self.call_later(self._render_model)

    def _render_model(self) -> None:
        self._render_pending = False
        frame = self.model.frame
        if frame is None:
            return
        self.query_one(StatusHeader).frame = frame
        compact = self.query_one(CompactSummary)
        compact.frame = frame
        if self.model.activity:
            compact.last_activity = self.model.activity[-1]
        plan_bar = self.query_one(PlanBar)
        plan_bar.show(frame, self._canary_rps())
        compact.waiting = plan_bar.waiting
        self.query_one(VerdictTable).verdicts = frame.verdicts
        for screen in self.app.screen_stack:
            if isinstance(screen, EvidenceScreen):
                screen.shown = (frame.verdicts, frame.now)
        self.query_one(SLOGauges).gauges = frame.gauges
        banner = self.query_one("#banner", Static)
        message = self._banner_text(frame)
        banner.update(message)
        banner.set_class(not message, "-empty")
        if self.model.points_changed or frame.full:
            points = list(self.model.points)
            for graph in self.query(ComparisonGraph):
                graph.show(points, frame.now)
            self.model.points_changed = False
        if self._new_activity:
            self.query_one(ActivityLog).add(self._new_activity)
            self._new_activity = []
        toasts = distinct_alerts([a.text for a in self._alerts])
        if toasts:
            self.app.bell()
        for text in toasts:
            self.notify(text, title="canary alert", severity="error", timeout=15)
        self._alerts = []
        if frame.state.version != self._last_version:
            self._last_version = frame.state.version
            enabled = tuple(self.check_action(a, ()) for a in ACTIONS_BY_ID)
            if enabled != self._enabled:  # the footer recomposes: only when it would change
                self._enabled = enabled
                self.refresh_bindings()

    def _canary_rps(self) -> float | None:
        """The canary's latest request rate (the graphs' last point), for the wait estimate."""
        for point in reversed(self.model.points):
            if point.rps_canary is not None:
                return point.rps_canary
        return None

    @staticmethod
    def _banner_text(frame: Frame) -> str:
        return " | ".join(alarms(frame))

    # --- actions out ---------------------------------------------------------------------
    def _verb_for(self, action_id: str) -> Verb | None:
        frame = self.model.frame
        action = ACTIONS_BY_ID.get(action_id)
        if action is None:
            return None
        if len(action.verbs) == 1 or frame is None:
            return action.verbs[0]
        s = frame.state
        match action_id:
            case "toggle_pause":
                return Verb.RESUME if s.phase is Phase.PAUSED else Verb.PAUSE
            case "toggle_shadow":
                return Verb.SHADOW_OFF if s.shadow else Verb.SHADOW_ON
            case "toggle_armed":
                return Verb.ARM if not s.armed else Verb.DISARM
        return action.verbs[0]

    def why_disabled(self, action_id: str) -> str | None:
        """Why the action key `action_id` is greyed out now, or None when it is available:
        a read-only session, the canary's state, or a router that cannot do it at all."""
        if action_id not in ACTIONS_BY_ID:
            return None
        if self.session.read_only:
            return f"actions are disabled: {self.session.read_only}"
        frame = self.model.frame
        if frame is None:
            return "waiting for the first frame from the loop"
        verb = self._verb_for(action_id)
        if verb is None or verb is Verb.ANNOTATE:
            return None
        return frame.info.why_unavailable(verb.value) or why_not(frame.state, verb, frame.plan)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greyed (None) while `why_disabled` has a reason; the footer and `?` show it."""
        if action not in ACTIONS_BY_ID:
            return True
        if action == "cancel_kill":  # hidden, not greyed, unless a kill is pending
            frame = self.model.frame
            if frame is None or frame.state.kill is None:
                return False
        return None if self.why_disabled(action) else True

    def on_key(self, event: Key) -> None:
        """A greyed-out action key still goes to the session, which refuses it with the
        reason and audits the refusal: the one path for every action, allowed or not."""
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if binding.action in ACTIONS_BY_ID and self.check_action(binding.action, ()) is None:
                event.stop()
                self.request_action(binding.action)
                return

    def request_action(self, action_id: str, *, from_palette: bool = False) -> None:
        """Ask for confirmation or text where the action needs it, then submit."""
        if self.session.read_only:
            self.notify(f"actions are disabled: {self.session.read_only}", severity="warning")
            return
        frame = self.model.frame
        verb = self._verb_for(action_id)
        if verb is None or frame is None:
            return
        if verb is Verb.PROMOTE and not why_not(frame.state, verb, frame.plan):
            question = (
                f"Promote {frame.info.service} {frame.info.canary_version} to 100% "
                f"(now {frame.state.weight}%)?"
            )
            self.app.push_screen(
                ConfirmScreen(question),
                lambda yes: self._submit(verb, frame.state.version) if yes else None,
            )
        elif verb is Verb.ANNOTATE:
            self.app.push_screen(
                TextScreen(
                    "Note for the audit log and the recording:", "what you see, what you decided"
                ),
                lambda text: self._submit(verb, None, text) if text else None,
            )
        elif verb is Verb.CANCEL_KILL and not why_not(frame.state, verb, frame.plan):
            version = frame.state.version
            self.app.push_screen(
                TextScreen(
                    "Why cancel the pending kill? (audited; the canary is then paused)",
                    "e.g. the alarm was the load test, INC-1234",
                ),
                lambda text: self._submit(verb, version, text) if text else None,
            )
        elif verb is Verb.DISARM and not why_not(frame.state, verb, frame.plan):
            version = frame.state.version
            self.app.push_screen(
                TextScreen(
                    "Why disarm auto-rollback? (audited)", "e.g. known-noisy metric, INC-1234"
                ),
                lambda text: self._submit(verb, version, text) if text else None,
            )
        else:
            self._submit(verb, frame.state.version)

    def _submit(self, verb: Verb, version: int | None, reason: str = "") -> None:
        self.run_worker(self._submit_worker(verb, version, reason), group="actions")

    async def _submit_worker(self, verb: Verb, version: int | None, reason: str) -> None:
        outcome = await self.session.submit(verb, expected_version=version, reason=reason)
        self.post_message(ActionDone(outcome))

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        o = message.outcome
        if not o.ok:  # a success shows in the header and the activity pane: no toast
            self.notify(o.message, title=f"{o.verb.label} refused", severity="error", timeout=6)
            self.app.bell()

    # --- bindings as actions -------------------------------------------------------------
    def action_step_forward(self) -> None:
        self.request_action("step_forward")

    def action_step_back(self) -> None:
        self.request_action("step_back")

    def action_toggle_pause(self) -> None:
        self.request_action("toggle_pause")

    def action_toggle_shadow(self) -> None:
        self.request_action("toggle_shadow")

    def action_kill(self) -> None:
        self.request_action("kill")

    def action_promote(self) -> None:
        self.request_action("promote")

    def action_annotate(self) -> None:
        self.request_action("annotate")

    def action_toggle_armed(self) -> None:
        self.request_action("toggle_armed")

    def action_cancel_kill(self) -> None:
        self.request_action("cancel_kill")


__all__ = ["MIN_HEIGHT", "MIN_WIDTH", "Binding", "DashboardScreen"]
