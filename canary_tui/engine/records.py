"""The records the loop writes: audit records (an action's intent, result or refusal; a
change made outside the loop; the loop's own events), each with its activity line, and the
router's Events that anchor the audit chain's head."""

from __future__ import annotations

from typing import Any

from canary_tui.core.actions import Action, Verb
from canary_tui.core.ports import RecordsEvents, RoutingState
from canary_tui.core.state import CanaryState
from canary_tui.engine.publish import Publisher
from canary_tui.engine.recovery import state_record
from canary_tui.engine.shared import Shared
from canary_tui.records.audit import AuditError

OUTSIDE = "outside the loop"

#: The result outcomes shown as done (anything else is shown as failed).
_DONE = ("applied", "noop", "reconciled: applied")


class AuditTrail:
    """Writes audit records in order, under the shared lock, and notes each one."""

    def __init__(self, shared: Shared, publisher: Publisher) -> None:
        self.shared, self.publisher = shared, publisher

    def action(
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
        """An action's record: `kind` is "intent" (raises AuditError when it cannot be
        written), "result" (with its `outcome`) or "refused"."""
        rec: dict[str, Any] = {
            "time": self.shared.clock.now(),
            "type": kind,
            "id": action_id,
            "canary": self.shared.info.name,
            "verb": action.verb.value,
            "actor": action.actor.to_dict(),
            "source": action.source.value,
            "expected_version": action.expected_version,
            "state": state_record(self.shared.state),
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
        written = self.append(rec)
        self._note_action(action, kind, outcome, message, written.get("seq"))

    def _note_action(
        self, action: Action, kind: str, outcome: str | None, message: str, seq: int | None
    ) -> None:
        note, who = self.publisher.note, action.actor.name
        if kind == "intent":
            note("intent", who, action.verb.label + (f": {action.reason}" if action.reason else ""),
                 seq)  # fmt: skip
        elif kind == "refused":
            note("refused", who, f"{action.verb.label} refused: {message}", seq)
        elif outcome in _DONE:
            label = "" if outcome == "applied" else f" [{outcome}]"
            note("result", who, f"{message or action.verb.label}{label}", seq)
            if action.verb is Verb.KILL and outcome == "applied" and action.actor.kind == "rule":
                note("alert", who, f"ROLLED BACK automatically: {action.reason}")
        else:
            note("failed", who, f"{message or action.verb.label} [{outcome}]", seq)

    def plain(self, kind: str, event: str, message: str, note: str = "info") -> None:
        """A record of the loop's own (start, stop, thresholds, loop health)."""
        rec = {
            "time": self.shared.clock.now(),
            "type": kind,
            "event": event,
            "canary": self.shared.info.name,
            "message": message,
            "state": state_record(self.shared.state),
        }
        written = self.append(rec)
        self.publisher.note(note, "loop", message, written.get("seq"))

    def external(self, routing: RoutingState, text: str) -> None:
        """A change made outside the loop, as the router reports it."""
        rec = {
            "time": self.shared.clock.now(),
            "type": "external",
            "event": "change",
            "canary": self.shared.info.name,
            "message": text,
            "routing": routing.to_dict(),
            "state": state_record(self.shared.state),
        }
        written = self.append(rec)
        self.publisher.note("warn", OUTSIDE, text, written.get("seq"))

    def append(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Append to the audit log. Only an intent's failure stops an action (it raises);
        any other record that cannot be written becomes a loud warning, never a crash."""
        try:
            return self.shared.audit.append(rec)
        except AuditError as exc:
            if rec.get("type") == "intent":
                raise
            self.publisher.warn(f"AUDIT LOG NOT WRITTEN ({rec.get('type')}): {exc}")
            return {}

    def event(self, action: Action, summary: str) -> None:
        """Tell the router's object what was done (e.g. a Kubernetes Event: never raises)."""
        router = self.shared.router
        if isinstance(router, RecordsEvents):
            why = f": {action.reason}" if action.reason else ""
            # The audit chain's head, anchored on the object: `audit verify --against SEQ:HASH`
            head = self.shared.audit.head()
            router.record_event(action.verb.value, action.actor.name,
                                f"{summary}{why} [audit head {head}]")  # fmt: skip
