"""Actions on a canary and the pure rules that accept or refuse them.

Every action, whether a person pressed a key, a rule fired or a pipeline asked, is decided
here by `decide`, which never performs I/O: the engine applies the accepted transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from canary_tui.core.plan import RampPlan
from canary_tui.core.state import CanaryState, KillLatch, LastChange, Phase


class Verb(StrEnum):
    STEP_FORWARD = "step_forward"
    STEP_BACK = "step_back"
    PAUSE = "pause"
    RESUME = "resume"
    SHADOW_ON = "shadow_on"
    SHADOW_OFF = "shadow_off"
    KILL = "kill"
    PROMOTE = "promote"
    ANNOTATE = "annotate"
    DISARM = "disarm"
    ARM = "arm"
    CANCEL_KILL = "cancel_kill"
    START = "start"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: dict[Verb, str] = {
    Verb.STEP_FORWARD: "step forward",
    Verb.STEP_BACK: "step back",
    Verb.PAUSE: "pause",
    Verb.RESUME: "resume",
    Verb.SHADOW_ON: "shadow on",
    Verb.SHADOW_OFF: "shadow off",
    Verb.KILL: "kill",
    Verb.PROMOTE: "promote",
    Verb.ANNOTATE: "annotate",
    Verb.DISARM: "disarm auto-rollback",
    Verb.ARM: "arm auto-rollback",
    Verb.CANCEL_KILL: "cancel kill",
    Verb.START: "start at the first step",
}

#: What a pending kill blocks: everything that could send the canary more traffic.
BLOCKED_BY_KILL = frozenset(
    {Verb.STEP_FORWARD, Verb.STEP_BACK, Verb.RESUME, Verb.PROMOTE, Verb.SHADOW_ON, Verb.START}
)

#: Verbs a person's action lifts the plan's hold with (an external change holds the plan).
LIFTS_HOLD = frozenset({Verb.STEP_FORWARD, Verb.STEP_BACK, Verb.RESUME, Verb.PROMOTE})

#: Verbs that never need a fresh state version: kill is the safety key, a note changes nothing.
VERSION_FREE = frozenset({Verb.KILL, Verb.ANNOTATE})


class Source(StrEnum):
    """Where an action came from."""

    KEY = "key"
    PALETTE = "palette"
    RULE = "rule"
    PIPELINE = "pipeline"
    CLI = "cli"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who issued an action. People come from the OS; rules name themselves."""

    name: str
    kind: str = "person"  # "person" or "rule"
    host: str = ""
    ssh_client: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.host:
            out["host"] = self.host
        if self.ssh_client:
            out["ssh_client"] = self.ssh_client
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", "person")),
            host=str(data.get("host", "")),
            ssh_client=data.get("ssh_client"),
        )


@dataclass(frozen=True, slots=True)
class Action:
    """A request to change the canary, carrying the state version it was issued against."""

    verb: Verb
    actor: Actor
    source: Source
    expected_version: int | None = None
    reason: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verb": self.verb.value,
            "actor": self.actor.to_dict(),
            "source": self.source.value,
            "expected_version": self.expected_version,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.evidence:
            out["evidence"] = dict(self.evidence)
        return out


@dataclass(frozen=True, slots=True)
class Accepted:
    """The action applies: `after` is the state the cluster should be brought to."""

    before: CanaryState
    after: CanaryState
    noop: bool = False
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    """The action does not apply, and `reason` says why in words a person reads."""

    state: CanaryState
    reason: str


Decision = Accepted | Refused


def ago(seconds: float) -> str:
    """A short human duration: '3 s', '4 min', '2 h'."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


def why_not(state: CanaryState, verb: Verb, plan: RampPlan) -> str | None:
    """Why `verb` cannot apply to `state` (ignoring versions), or None if it can."""
    if verb is Verb.ANNOTATE:
        return None
    if verb is Verb.KILL:
        if state.phase is Phase.PROMOTED:
            return "the canary is already promoted; roll back with a new deploy"
        return None
    if verb is Verb.CANCEL_KILL:
        return None if state.kill is not None else "no kill is pending"
    if state.kill is not None and verb in BLOCKED_BY_KILL:
        latch = state.kill
        return (
            f"a kill is pending ({latch.actor}: {latch.reason or 'no reason given'}); "
            "nothing may add traffic until the router confirms it, or someone cancels the kill"
        )
    if state.terminal:
        return f"the canary is {state.phase.label}"
    match verb:
        case Verb.STEP_FORWARD:
            if state.step_index == 0 and state.weight < plan.step(0).weight:
                return None  # not started yet: this starts it
            if state.step_index >= plan.last_index:
                return (
                    f"already at the last step ({plan.step(plan.last_index).weight}%); "
                    "promote to go to 100%"
                )
        case Verb.STEP_BACK:
            if state.step_index <= 0:
                return "already at the first step; kill to roll back"
        case Verb.PAUSE:
            if state.phase is Phase.PAUSED:
                return "the canary is already paused"
        case Verb.RESUME:
            if state.phase is not Phase.PAUSED and state.hold is None:
                return "the canary is not paused"
        case Verb.START:
            if state.weight != 0 or state.step_index != 0:
                return f"the canary is already started (at {state.weight}%)"
            if plan.step(0).weight == 0:
                return "the first step's weight is 0%: step forward instead"
        case Verb.SHADOW_ON:
            if state.shadow:
                return "shadow is already on"
        case Verb.SHADOW_OFF:
            if not state.shadow:
                return "shadow is already off"
        case Verb.DISARM:
            if not state.armed:
                return "auto-rollback is already disarmed"
        case Verb.ARM:
            if state.armed:
                return "auto-rollback is already armed"
        case Verb.PROMOTE:
            return None
    return None


def decide(state: CanaryState, action: Action, plan: RampPlan, now: float) -> Decision:
    """Accept or refuse `action` against `state`. Pure: no I/O, no clock of its own."""
    verb = action.verb
    if (
        verb not in VERSION_FREE
        and action.expected_version is not None
        and action.expected_version != state.version
    ):
        last = state.last_change
        if last is not None:
            return Refused(state, f"refused: {last.actor} {last.did} {ago(now - last.at)} ago")
        return Refused(state, "refused: the canary changed since you looked")
    if verb is Verb.DISARM and not action.reason.strip():
        return Refused(state, "disarming auto-rollback needs a reason")
    if verb is Verb.CANCEL_KILL and not action.reason.strip():
        return Refused(state, "cancelling a kill needs a reason")
    if verb is Verb.ANNOTATE and not action.reason.strip():
        return Refused(state, "an annotation needs some text")
    problem = why_not(state, verb, plan)
    if problem is not None:
        return Refused(state, problem)

    if verb is Verb.ANNOTATE:
        return Accepted(state, state, noop=True, summary=f"note: {action.reason.strip()}")
    if verb is Verb.KILL and state.phase is Phase.ROLLED_BACK:
        return Accepted(state, state, noop=True, summary="already rolled back: nothing to do")
    if verb is Verb.KILL and state.kill is not None:
        return Accepted(state, state, noop=True, summary="a kill is already pending: retrying now")

    after, did = _transition(state, verb, plan, now)
    if action.actor.kind == "person" and verb in LIFTS_HOLD:
        after = replace(after, hold=None)
    after = after.evolve(last_change=LastChange(action.actor.name, did, now))
    return Accepted(state, after, summary=did)


def latched(state: CanaryState, action: Action, action_id: str, wall: float) -> CanaryState:
    """`state` with the kill latch of an accepted kill set (same phase and weight: only the
    router's confirmation rolls the canary back)."""
    return replace(state, kill=KillLatch(action.actor.name, action.reason, action_id, wall))


def kill_confirmed(state: CanaryState, now: float, by: str) -> CanaryState:
    """The state once the router confirms the abort: rolled back, latch lifted."""
    return state.evolve(
        phase=Phase.ROLLED_BACK, weight=0, shadow=False, kill=None, hold=None,
        last_change=LastChange(by, "killed the canary", now),
    )  # fmt: skip


def _transition(
    state: CanaryState, verb: Verb, plan: RampPlan, now: float
) -> tuple[CanaryState, str]:
    """The new state for an allowed verb, before the version bump; and what was done."""
    match verb:
        case Verb.STEP_FORWARD if state.step_index == 0 and state.weight < plan.step(0).weight:
            # A canary not started yet (0%): stepping forward starts it at the first step.
            weight = plan.step(0).weight
            new = replace(state, weight=weight, step_started_at=now)
            return new, f"started the canary at {weight}% (step 1/{len(plan)})"
        case Verb.STEP_FORWARD | Verb.STEP_BACK:
            index = state.step_index + (1 if verb is Verb.STEP_FORWARD else -1)
            weight = plan.step(index).weight
            direction = "forward" if verb is Verb.STEP_FORWARD else "back"
            new = replace(state, step_index=index, weight=weight, step_started_at=now)
            return new, f"stepped {direction} to {weight}% (step {index + 1}/{len(plan)})"
        case Verb.PAUSE:
            return replace(state, phase=Phase.PAUSED), "paused the canary"
        case Verb.RESUME:
            return replace(state, phase=Phase.PROGRESSING), "resumed the canary"
        case Verb.SHADOW_ON:
            return replace(state, shadow=True), "turned shadow on"
        case Verb.SHADOW_OFF:
            return replace(state, shadow=False), "turned shadow off"
        case Verb.KILL:  # the latch; the router's confirmation rolls it back (kill_confirmed)
            return state, "asked to kill the canary"
        case Verb.CANCEL_KILL:
            # The plan holds (paused) until a person resumes: the fire may still be burning.
            return replace(state, kill=None, phase=Phase.PAUSED), "cancelled the pending kill"
        case Verb.START:
            weight = plan.step(0).weight
            return replace(state, weight=weight, step_started_at=now), f"started at {weight}%"
        case Verb.PROMOTE:
            new = replace(state, phase=Phase.PROMOTED, weight=100, shadow=False)
            return new, "promoted the canary to 100%"
        case Verb.DISARM:
            return replace(state, armed=False), "disarmed auto-rollback"
        case Verb.ARM:
            return replace(state, armed=True), "armed auto-rollback"
        case Verb.ANNOTATE:  # pragma: no cover - handled before
            return state, "annotated"
    raise AssertionError(f"unhandled verb {verb}")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What became of a submitted action, as the person who submitted it sees it."""

    ok: bool
    verb: Verb
    message: str
    version: int
    action_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verb": self.verb.value,
            "message": self.message,
            "version": self.version,
            "action_id": self.action_id,
        }
