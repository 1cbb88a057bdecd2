"""The ONE path through which every action is applied, whoever issued it (a key, a rule, a
pipeline): decide (pure) -> audit the intent (fsynced) -> call the router -> audit the result.
A kill is latched at once, without waiting for a router write in flight, and retried with
backoff until the router confirms the abort. At restart, the last run's open intent is settled
here first."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

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
from canary_tui.core.ports import RouterError, RoutingState
from canary_tui.core.state import CanaryState
from canary_tui.engine.publish import Publisher
from canary_tui.engine.records import AuditTrail
from canary_tui.engine.recovery import Recovery, kill_action_of, settle
from canary_tui.engine.shared import Shared
from canary_tui.records.audit import AuditError

log = logging.getLogger("canary_tui.engine")

KILL_BACKOFF_FIRST_S = 1.0
KILL_BACKOFF_MAX_S = 30.0

#: The verbs that add traffic: no rule issues one while the router's state is unknown.
_ADDS_TRAFFIC = (Verb.STEP_FORWARD, Verb.PROMOTE, Verb.START, Verb.RESUME)


class Actions:
    """Applies actions. Router calls run under `write_lock` only, never under `lock`."""

    def __init__(self, shared: Shared, trail: AuditTrail, publisher: Publisher) -> None:
        self.shared, self.trail, self.publisher = shared, trail, publisher
        # The pending kill's action (for its result records) and its next attempt.
        self.kill_action: Action | None = None
        self.kill_next_at = 0.0  # monotonic

    # --- every verb but kill ---------------------------------------------------------------
    def submit(self, action: Action, *, publish: bool = True) -> ActionOutcome:
        """Apply `action` (from anyone) and return what became of it."""
        if action.verb is Verb.KILL:
            return self.kill(action, publish)
        sh = self.shared
        with sh.write_lock:
            with sh.lock:
                now = sh.loop_now()
                action_id = new_action_id()
                decision = decide(sh.state, action, sh.plan, now)
                accepted = self._before_router(action, action_id, decision, publish)
                if isinstance(accepted, ActionOutcome):
                    return accepted
                sh.crash("after_intent", action.verb)
                sh.writing = True
                sh.write_gen += 1
            try:
                routing, error = self._route(action.verb, accepted), None
            except Exception as exc:  # RouterError, or an adapter bug: never crash the loop
                routing, error = None, exc
                _log_unexpected(exc, f"{action.verb.label} at the router")
            sh.crash("after_router", action.verb)
            with sh.lock:
                sh.writing = False
                sh.write_gen += 1
                if error is not None:
                    message = f"{action.verb.label} failed at the router: {error}"
                    self.trail.action(action, action_id, "result", outcome="error",
                                      message=message)  # fmt: skip
                    return self._done(action, False, message, action_id, publish)
                self._applied(action, action_id, accepted, routing, now)
                return self._done(action, True, accepted.summary, action_id, publish)

    def _before_router(
        self, action: Action, action_id: str, decision: Accepted | Refused, publish: bool
    ) -> ActionOutcome | Accepted:
        """Refuse, or audit the intent and settle a no-op: the outcome when the router is
        not to be called; the accepted decision, its intent written, when it is."""
        refusal = self._refusal(action, decision)
        if refusal is not None:
            self.trail.action(action, action_id, "refused", message=refusal)
            return self._done(action, False, refusal, action_id, publish)
        if not isinstance(decision, Accepted):  # pragma: no cover - _refusal said
            return self._done(action, False, "refused", action_id, publish)
        try:
            self.trail.action(action, action_id, "intent", planned=decision.after)
        except AuditError as exc:
            reason = f"refused: the audit log cannot be written ({exc})"
            self.publisher.note("warn", action.actor.name, reason)
            return self._done(action, False, reason, action_id, publish)
        if decision.noop:
            self.trail.action(action, action_id, "result", outcome="noop",
                              message=decision.summary)  # fmt: skip
            return self._done(action, True, decision.summary, action_id, publish)
        return decision

    def _applied(
        self,
        action: Action,
        action_id: str,
        decision: Accepted,
        routing: RoutingState | None,
        now: float,
    ) -> None:
        """The router took the action: take its state, audit the result, tell the router."""
        sh = self.shared
        before = sh.state
        # A kill may have latched while the router call ran: keep its latch.
        kill = before.kill if decision.before.kill is None else decision.after.kill
        sh.state = replace(decision.after, kill=kill,
                           version=max(decision.after.version, before.version + 1))  # fmt: skip
        if routing is not None:
            sh.routing, sh.routing_at = routing, sh.loop_now()
        if before.step_index != sh.state.step_index:
            sh.judge.start_step(sh.state.step_index, now)
        self.trail.action(action, action_id, "result", outcome="applied",
                          message=decision.summary, routing=routing)  # fmt: skip
        sh.crash("after_result", action.verb)
        self.trail.event(action, decision.summary)

    def _refusal(self, action: Action, decision: Accepted | Refused) -> str | None:
        sh = self.shared
        if isinstance(decision, Refused):
            return decision.reason
        unsupported = sh.unsupported_shadow
        if action.verb is Verb.SHADOW_ON and unsupported:
            return f"shadow is not available here: {unsupported}"
        if action.verb in _ADDS_TRAFFIC and (
            not sh.routing_fresh(sh.loop_now()) and action.actor.kind == "rule"
        ):
            return "the router's state is not known right now: no rule adds traffic blind"
        return None

    def _route(self, verb: Verb, decision: Accepted) -> RoutingState | None:
        router, after = self.shared.router, decision.after
        match verb:
            case Verb.STEP_FORWARD | Verb.STEP_BACK | Verb.START:
                return router.set_weight(after.weight)
            case Verb.PAUSE | Verb.RESUME:
                return router.set_paused(verb is Verb.PAUSE)
            case Verb.SHADOW_ON | Verb.SHADOW_OFF:
                return router.set_mirror(verb is Verb.SHADOW_ON)
            case Verb.PROMOTE:
                return router.promote()
            case _:
                return None

    def _done(
        self, action: Action, ok: bool, message: str, action_id: str, publish: bool
    ) -> ActionOutcome:
        if publish:
            self.publisher.refresh()
        return ActionOutcome(ok, action.verb, message, self.shared.state.version, action_id)

    # --- the kill --------------------------------------------------------------------------
    def kill(self, action: Action, publish: bool = True) -> ActionOutcome:
        """Accept a kill at once: audit the intent (fsynced) and latch, with no wait on a
        router write in flight; then try the router (retried with backoff until it
        confirms, by the tick)."""
        sh = self.shared
        with sh.lock:
            now = sh.loop_now()
            action_id = new_action_id()
            decision = decide(sh.state, action, sh.plan, now)
            if isinstance(decision, Refused):
                self.trail.action(action, action_id, "refused", message=decision.reason)
                return self._done(action, False, decision.reason, action_id, publish)
            already = sh.state.kill is not None
            try:
                self.trail.action(action, action_id, "intent", planned=decision.after)
            except AuditError as exc:
                self.publisher.note("warn", action.actor.name,
                                    f"audit log unwritable, killing anyway: {exc}")  # fmt: skip
            if decision.noop:
                self.trail.action(action, action_id, "result", outcome="noop",
                                  message=decision.summary)  # fmt: skip
                if not already:
                    return self._done(action, True, decision.summary, action_id, publish)
            else:
                sh.crash("after_intent", Verb.KILL)
                sh.state = latched(decision.after, action, action_id, sh.clock.now())
                self.kill_action = action
                sh.kill_attempts, sh.kill_error = 0, None
                if publish:  # everyone sees KILL PENDING before the router is even called
                    self.publisher.refresh()
        return self.attempt_kill(publish)

    def kill_due(self) -> bool:
        """Whether a pending kill's next router attempt is due (lock-free)."""
        return (
            self.shared.state.kill is not None
            and self.shared.clock.monotonic() >= self.kill_next_at
        )

    def attempt_kill(self, publish: bool = True) -> ActionOutcome:
        """One router attempt at the pending kill; on failure, schedule the next one."""
        sh = self.shared
        with sh.write_lock:
            with sh.lock:
                latch = sh.state.kill
                action = self.kill_action or kill_action_of(latch)
                if latch is None:
                    return ActionOutcome(True, Verb.KILL, "the kill is confirmed",
                                         sh.state.version, "")  # fmt: skip
                sh.kill_attempts += 1
                attempt = sh.kill_attempts
                sh.writing = True
                sh.write_gen += 1
            try:
                routing, error = sh.router.abort(), None
            except Exception as exc:  # RouterError, or an adapter bug: retried, never raised
                routing, error = None, exc
                _log_unexpected(exc, "the kill at the router")
            sh.crash("after_router", Verb.KILL)
            with sh.lock:
                sh.writing = False
                sh.write_gen += 1
                if routing is not None:
                    sh.routing, sh.routing_at = routing, sh.loop_now()
                if sh.state.kill is None:  # confirmed by a read, or cancelled, meanwhile
                    return ActionOutcome(True, Verb.KILL, "the kill is confirmed",
                                         sh.state.version, latch.action_id)  # fmt: skip
                if error is None and routing is not None and routing.weight == 0:
                    return self.confirm_kill(routing, by_read=False, publish=publish)
                why = (
                    str(error)
                    if error is not None
                    else (f"the router still reports {routing.weight if routing else '?'}%")
                )
                message = self._kill_failed(attempt, why)
                self.trail.action(action, latch.action_id, "result", outcome="error",
                                  message=message)  # fmt: skip
                if publish:
                    self.publisher.refresh()
                return ActionOutcome(False, Verb.KILL, message, sh.state.version,
                                     latch.action_id)  # fmt: skip

    def _kill_failed(self, attempt: int, why: str) -> str:
        """Schedule the next attempt after a failed one; what to record of it."""
        delay = min(KILL_BACKOFF_MAX_S, KILL_BACKOFF_FIRST_S * 2 ** (attempt - 1))
        self.kill_next_at = self.shared.clock.monotonic() + delay
        self.shared.kill_error = why
        return (f"kill attempt {attempt} failed at the router: {why} (the kill stays "
                f"pending; next attempt in {delay:.0f} s)")  # fmt: skip

    def confirm_kill(
        self, routing: RoutingState, *, by_read: bool, publish: bool = True
    ) -> ActionOutcome:
        """The router reports the abort (its answer to ours, or a read): lift the latch."""
        sh = self.shared
        latch = sh.state.kill
        action = self.kill_action or kill_action_of(latch)
        action_id = latch.action_id if latch is not None else ""
        sh.state = kill_confirmed(sh.state, sh.loop_now(), action.actor.name)
        sh.routing, sh.routing_at = routing, sh.loop_now()
        self.kill_action, sh.kill_error = None, None
        summary = "killed the canary" + (" (the router reads 0%)" if by_read else "")
        self.trail.action(action, action_id, "result", outcome="applied", message=summary,
                          routing=routing)  # fmt: skip
        sh.crash("after_result", Verb.KILL)
        self.trail.event(action, summary)
        if publish:
            self.publisher.refresh()
        return ActionOutcome(True, Verb.KILL, summary, sh.state.version, action_id)

    # --- at restart --------------------------------------------------------------------------
    def recovered(self, recovery: Recovery | None) -> CanaryState:
        """The state to start from: the last run's (times reset), with its open intent
        settled. Only reconciliation is recorded here; adoption follows."""
        sh = self.shared
        now = sh.loop_now()
        fresh = CanaryState.initial(0, now, armed=sh.state.armed)
        if recovery is not None and recovery.ended is not None:
            fresh = replace(fresh, hold=f"the last canary here was {recovery.ended}: step "
                            "forward to start a new one")  # fmt: skip
        if recovery is None or recovery.state is None:
            return fresh
        state = replace(recovery.state, step_started_at=now, started_at=now, last_change=None)
        intent = recovery.open_intent
        if intent is None:
            if state.kill is not None:
                self.kill_action = recovery.kill_action
            return state
        action = recovery.intent_action
        if action is None:
            return state
        if action.verb is Verb.KILL:
            self.kill_action = action
            if state.kill is None:
                state = latched(state, action, str(intent.get("id", "")), float(intent["time"]))
            self.publisher.note("alert", "loop", "a kill accepted before the restart is not "
                                "confirmed: finishing it before anything else")  # fmt: skip
            return state
        applied, why = settle(action.verb, intent, sh.routing)
        after = recovery.intent_after
        outcome = "reconciled: applied" if applied else "reconciled: not applied"
        if applied and after is not None:
            state = replace(after, step_started_at=now, started_at=now, last_change=None,
                            kill=state.kill)  # fmt: skip
        sh.state = state
        self.trail.action(action, str(intent.get("id", "")), "result", outcome=outcome,
                          message=f"{action.verb.label}: {why}", routing=sh.routing)  # fmt: skip
        return state


def new_action_id() -> str:
    """The id that ties an action's records together (intent, result or refusal)."""
    return uuid.uuid4().hex[:12]


def _log_unexpected(exc: Exception, what: str) -> None:
    """A RouterError is expected and audited; anything else is an adapter bug: its
    traceback goes to the log (the daemon's log file)."""
    if isinstance(exc, RouterError):
        log.warning("%s failed: %s", what, exc)
    else:
        log.error("%s failed with an unexpected error", what, exc_info=exc)
