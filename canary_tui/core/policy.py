"""Automatic decisions: when the loop rolls back by itself, and when it advances the ramp."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.plan import RampPlan
from canary_tui.core.state import CanaryState, Phase
from canary_tui.core.verdict import Status, Verdict

AUTO_ROLLBACK = Actor("auto-rollback", kind="rule")
AUTO_ADVANCE = Actor("auto-advance", kind="rule")
AUTO_START = Actor("auto-start", kind="rule")


class NoDataAction(StrEnum):
    HOLD = "hold"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class Policy:
    auto_advance: bool = True
    no_data_grace_s: float = 60.0
    no_data_action: NoDataAction = NoDataAction.HOLD


def automatic_actions(
    state: CanaryState,
    plan: RampPlan,
    verdicts: tuple[Verdict, ...],
    now: float,
    no_data_since: float | None,
    policy: Policy,
    routing_fresh: bool = True,
) -> list[Action]:
    """The actions the rules issue for this tick (at most one).

    A pending kill is the engine's to retry: no rule acts beside it. Rules that add traffic
    (start, advance, promote) need a fresh read of the router and a plan that is not held;
    the rollback rule needs neither.
    """
    if state.terminal or state.kill is not None:
        return []
    failing = [v for v in verdicts if v.status is Status.FAIL]
    if failing and state.armed:
        return [
            Action(
                Verb.KILL,
                AUTO_ROLLBACK,
                Source.RULE,
                state.version,
                reason="; ".join(v.why for v in failing),
                evidence={"rule": "verdict-fail", "verdicts": [v.to_dict() for v in failing]},
            )
        ]
    may_add_traffic = (
        policy.auto_advance and routing_fresh and state.hold is None
        and state.phase is Phase.PROGRESSING
    )  # fmt: skip
    if may_add_traffic and state.weight == 0 and state.step_index == 0 and not failing:
        first = plan.step(0).weight
        if first > 0:
            return [
                Action(
                    Verb.START, AUTO_START, Source.RULE, state.version,
                    reason=f"a fresh canary at 0%: starting the plan's first step ({first}%)",
                    evidence={"rule": "fresh-start"},
                )
            ]  # fmt: skip
    if no_data_since is not None:
        silent = now - no_data_since
        if (
            silent >= policy.no_data_grace_s
            and policy.no_data_action is NoDataAction.ROLLBACK
            and state.armed
        ):
            return [
                Action(
                    Verb.KILL,
                    AUTO_ROLLBACK,
                    Source.RULE,
                    state.version,
                    reason=f"no metrics for {silent:.0f} s (grace {policy.no_data_grace_s:.0f} s)",
                    evidence={"rule": "no-data", "silent_s": silent},
                )
            ]
        return []
    if not may_add_traffic or failing:
        return []
    hold = plan.step(state.step_index).hold_s
    if state.time_in_step(now) < hold:
        return []
    if not verdicts or any(v.status is not Status.PASS for v in verdicts):
        return []
    verb = Verb.PROMOTE if state.step_index >= plan.last_index else Verb.STEP_FORWARD
    return [
        Action(
            verb,
            AUTO_ADVANCE,
            Source.RULE,
            state.version,
            reason=f"step {state.step_index + 1} held {hold:.0f} s with every metric passing",
            evidence={"rule": "step-passed", "verdicts": [v.to_dict() for v in verdicts]},
        )
    ]
