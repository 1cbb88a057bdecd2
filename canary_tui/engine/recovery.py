"""What the audit log says of the last run, for the next one: its last state (with a kill
latch, if a kill was never confirmed) and an action intent left without a result by a crash.

The engine settles that intent before anything else (see `Engine.start`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canary_tui.core.actions import Action, Actor, Source, Verb
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
    #: The last canary ended rolled back: a new one starts only when a person steps forward
    #: (no rule may undo a rollback, not even across restarts).
    rolled_back: bool = False


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
        # The last canary ended and its loop stopped cleanly: a new one may begin, but after
        # a rollback only when a person steps forward.
        return Recovery(None, clean_stop=clean, rolled_back=state.phase is Phase.ROLLED_BACK)
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
