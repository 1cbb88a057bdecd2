"""What the audit log says of the last run, for the next one: its last state (with a kill
latch, if a kill was never confirmed) and an action intent left without a result by a crash;
how such an intent is settled from the router; and the state's form in audit records.

The engine settles that intent before anything else (see `Engine.start`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.policy import AUTO_ROLLBACK
from canary_tui.core.ports import RoutingState
from canary_tui.core.state import CanaryState, KillLatch, Phase
from canary_tui.records.audit import read_records


@dataclass(frozen=True, slots=True)
class Recovery:
    """The last run's end, as its audit records tell it."""

    state: CanaryState | None  # None: nothing to resume (no log, or the canary had ended)
    open_intent: dict[str, Any] | None = None  # an intent with no result after it
    intent_action: Action | None = None
    intent_after: CanaryState | None = None  # the state that intent planned
    kill_action: Action | None = None  # the action behind the state's kill latch
    clean_stop: bool = False
    #: How the last canary ended ("rolled back", "promoted"), if it did: a new one starts only
    #: when a person steps forward (no rule may start a canary over what was decided, or
    #: over a change made outside since, not even across restarts).
    ended: str | None = None


def recover(path: Path) -> Recovery:
    """Read `path` (an audit log; missing is fine) into a Recovery. Raises AuditError when
    the file cannot be read."""
    if not path.exists():
        return Recovery(None)
    return recover_from(read_records(path))


def recover_from(records: Iterable[Mapping[str, Any]]) -> Recovery:
    last_state: dict[str, Any] | None = None
    open_intents: dict[str, dict[str, Any]] = {}
    kill_intents: dict[str, dict[str, Any]] = {}
    clean = False
    for rec in records:
        state = rec.get("state")
        if isinstance(state, dict):
            last_state = state
        kind = rec.get("type")
        clean = kind == "session" and rec.get("event") == "stop"
        rid = str(rec.get("id", ""))
        if kind == "intent":
            open_intents[rid] = dict(rec)
            if rec.get("verb") == Verb.KILL.value:
                kill_intents[rid] = dict(rec)
        elif kind in ("result", "refused"):
            open_intents.pop(rid, None)
    if last_state is None:
        return Recovery(None, clean_stop=clean)
    state = state_from_record(last_state)
    intent = list(open_intents.values())[-1] if open_intents else None
    kill_action = None
    if state.kill is not None and state.kill.action_id in kill_intents:
        kill_action = action_of(kill_intents[state.kill.action_id])
    if state.terminal and state.kill is None and intent is None and clean:
        # The last canary ended and its loop stopped cleanly: a new one may begin, when a
        # person steps forward.
        return Recovery(None, clean_stop=clean, ended=state.phase.label)
    return Recovery(
        state,
        open_intent=intent,
        intent_action=action_of(intent) if intent is not None else None,
        intent_after=(
            state_from_record(intent["after"])
            if intent is not None and isinstance(intent.get("after"), dict)
            else None
        ),
        kill_action=kill_action,
        clean_stop=clean,
    )


def state_from_record(d: Mapping[str, Any], now: float = 0.0) -> CanaryState:
    """A CanaryState from the `state` (or `after`) field of an audit record."""
    kill = d.get("kill")
    return CanaryState(
        phase=Phase(d["phase"]),
        step_index=int(d["step"]),
        weight=int(d["weight"]),
        shadow=bool(d["shadow"]),
        armed=bool(d["armed"]),
        version=int(d["version"]),
        step_started_at=now,
        started_at=now,
        kill=KillLatch.from_dict(kill) if isinstance(kill, Mapping) else None,
        hold=d.get("hold"),
    )


def action_of(rec: Mapping[str, Any]) -> Action | None:
    """The action an intent record describes (None if the record is not one)."""
    try:
        verb = Verb(str(rec.get("verb")))
        actor = Actor.from_dict(rec.get("actor") or {"name": "?"})
        source = Source(str(rec.get("source", Source.KEY.value)))
    except (ValueError, KeyError):
        return None
    expected = rec.get("expected_version")
    return Action(verb, actor, source, expected if isinstance(expected, int) else None,
                  reason=str(rec.get("reason", "")))  # fmt: skip


def state_record(state: CanaryState) -> dict[str, Any]:
    """A state as every audit record carries it (`state_from_record` reads it back)."""
    out: dict[str, Any] = {
        "phase": state.phase.value,
        "step": state.step_index,
        "weight": state.weight,
        "shadow": state.shadow,
        "armed": state.armed,
        "version": state.version,
    }
    if state.kill is not None:
        out["kill"] = state.kill.to_dict()
    if state.hold is not None:
        out["hold"] = state.hold
    return out


def kill_action_of(latch: KillLatch | None) -> Action:
    """The kill's action when only its latch survived (a restart): actor and reason."""
    name = latch.actor if latch is not None else "?"
    kind = "rule" if name == AUTO_ROLLBACK.name else "person"
    source = Source.RULE if kind == "rule" else Source.KEY
    return Action(Verb.KILL, Actor(name, kind=kind), source, None,
                  reason=latch.reason if latch is not None else "")  # fmt: skip


def settle(verb: Verb, intent: Mapping[str, Any], routing: RoutingState | None) -> tuple[bool, str]:
    """Whether an intent left without a result (a crash) took effect, from the router.

    A verb the router cannot show is settled in the safe direction: arm and pause count as
    applied, everything else as not applied."""
    if verb in (Verb.ARM, Verb.PAUSE):
        return True, "settled as applied after a restart (the safe direction)"
    after = intent.get("after") or {}
    before = intent.get("state") or {}
    if verb in (Verb.STEP_FORWARD, Verb.STEP_BACK, Verb.START, Verb.PROMOTE,
                Verb.SHADOW_ON, Verb.SHADOW_OFF):  # fmt: skip
        if routing is None:
            return False, "the router could not be read after a restart: taken as not applied"
        live = (routing.weight, routing.mirror)
        if live == (after.get("weight"), after.get("shadow")):
            return True, f"the router reads {routing.weight}% after a restart: it was applied"
        if live == (before.get("weight"), before.get("shadow")):
            return False, f"the router reads {routing.weight}% after a restart: not applied"
        return False, (f"the router reads {routing.weight}% after a restart, neither before "
                       "nor after: taken as not applied")  # fmt: skip
    return False, "cut short by a restart: taken as not applied"
