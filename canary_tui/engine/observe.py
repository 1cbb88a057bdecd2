"""What the loop sees of the router: it adopts the live routing state, notices changes made
outside the loop (a difference counts once a second read agrees), and follows a router's own
controller (Argo Rollouts). It only reads the router, never writes to it."""

from __future__ import annotations

import logging
from dataclasses import replace

from canary_tui.core.actions import kill_confirmed
from canary_tui.core.ports import RoutingState, owns_steps
from canary_tui.core.state import CanaryState, LastChange, Phase
from canary_tui.engine.actions import Actions
from canary_tui.engine.publish import Publisher
from canary_tui.engine.records import OUTSIDE, AuditTrail
from canary_tui.engine.shared import Shared

log = logging.getLogger("canary_tui.engine")


class Observer:
    """Reads run with no lock held; what they say is taken in under the shared lock."""

    def __init__(
        self, shared: Shared, publisher: Publisher, trail: AuditTrail, actions: Actions
    ) -> None:
        self.shared, self.publisher, self.trail, self.actions = shared, publisher, trail, actions
        self.resumed = False  # the loop resumed the last run's state (set by its start)

    # --- reads: called with no lock held (they take it to take a read in) -------------------
    def read_router(self) -> tuple[RoutingState | None, str | None]:
        try:
            return self.shared.router.read(), None
        except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
            if self.shared.router_error is None:  # the traceback once per outage, not every tick
                log.warning("cannot read the router", exc_info=True)
            return None, str(exc) or type(exc).__name__

    def take(self, routing: RoutingState | None, error: str | None, gen: int) -> None:
        """Take in a tick's read of the router (made when the write generation was `gen`);
        when it differs from the state, read again at once to confirm the difference."""
        sh = self.shared
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

    # --- what a read says: called under the shared lock -----------------------------------
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
        elif not self.follow_controller(routing):
            s = sh.state  # as the controller's phase left it
            if self._confirmed(routing, s):
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
