"""The canary state machine: transitions, refusals, and invariants under any action sequence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary_tui.core.actions import (
    BLOCKED_BY_KILL,
    Accepted,
    Action,
    Actor,
    Refused,
    Source,
    Verb,
    decide,
    kill_confirmed,
    latched,
    why_not,
)
from canary_tui.core.plan import RampPlan, RampStep
from canary_tui.core.state import CanaryState, Phase

PLAN = RampPlan.of((5, 60), (25, 60), (50, 60))
ALICE, BOB = Actor("alice"), Actor("bob")


def fresh(now: float = 0.0) -> CanaryState:
    return CanaryState.initial(PLAN.step(0).weight, now)


def act(
    state: CanaryState,
    verb: Verb,
    *,
    actor: Actor = ALICE,
    version: int | None = None,
    reason: str = "",
    now: float = 10.0,
) -> Accepted | Refused:
    v = state.version if version is None else version
    return decide(state, Action(verb, actor, Source.KEY, v, reason=reason), PLAN, now)


def test_step_forward_moves_to_next_weight_and_bumps_version() -> None:
    d = act(fresh(), Verb.STEP_FORWARD)
    assert isinstance(d, Accepted)
    assert (d.after.step_index, d.after.weight, d.after.version) == (1, 25, 2)
    assert d.after.step_started_at == 10.0
    assert d.after.last_change is not None and d.after.last_change.actor == "alice"


def test_step_forward_at_last_step_is_refused_with_a_hint_to_promote() -> None:
    s = fresh()
    for _ in range(2):
        d = act(s, Verb.STEP_FORWARD)
        assert isinstance(d, Accepted)
        s = d.after
    d = act(s, Verb.STEP_FORWARD)
    assert isinstance(d, Refused) and "promote" in d.reason


def test_step_back_at_first_step_is_refused() -> None:
    d = act(fresh(), Verb.STEP_BACK)
    assert isinstance(d, Refused) and "first step" in d.reason


def test_pause_resume_and_shadow_toggle() -> None:
    d = act(fresh(), Verb.PAUSE)
    assert isinstance(d, Accepted) and d.after.phase is Phase.PAUSED
    assert isinstance(act(d.after, Verb.PAUSE), Refused)
    d2 = act(d.after, Verb.RESUME)
    assert isinstance(d2, Accepted) and d2.after.phase is Phase.PROGRESSING
    d3 = act(d2.after, Verb.SHADOW_ON)
    assert isinstance(d3, Accepted) and d3.after.shadow
    assert isinstance(act(d3.after, Verb.SHADOW_ON), Refused)


def test_kill_latches_and_only_the_router_confirmation_rolls_back() -> None:
    s = fresh()
    d = act(s, Verb.KILL)
    # Accepted, but nothing is rolled back until the router confirms: the engine latches it.
    assert isinstance(d, Accepted) and d.after.phase is s.phase and d.after.weight == s.weight
    pending = latched(d.after, Action(Verb.KILL, ALICE, Source.KEY, None, reason="fire"), "k1", 0.0)
    assert pending.kill is not None and pending.kill.actor == "alice"
    again = act(pending, Verb.KILL)
    assert isinstance(again, Accepted) and again.noop and "pending" in again.summary
    done = kill_confirmed(pending, 5.0, "alice")
    assert done.phase is Phase.ROLLED_BACK and done.weight == 0 and done.kill is None
    assert done.version == pending.version + 1
    assert isinstance(act(done, Verb.KILL), Accepted) and act(done, Verb.KILL).noop  # type: ignore[union-attr]


@pytest.mark.parametrize("verb", sorted(BLOCKED_BY_KILL))
def test_a_pending_kill_blocks_everything_that_adds_traffic(verb: Verb) -> None:
    pending = latched(fresh(), Action(Verb.KILL, BOB, Source.KEY, None, reason="fire"), "k1", 0.0)
    d = act(pending, verb, version=pending.version)
    assert isinstance(d, Refused) and "a kill is pending (bob: fire)" in d.reason


def test_cancel_kill_needs_a_pending_kill_and_a_reason_and_leaves_the_canary_paused() -> None:
    assert isinstance(act(fresh(), Verb.CANCEL_KILL, reason="false alarm"), Refused)
    pending = latched(fresh(), Action(Verb.KILL, BOB, Source.KEY, None), "k1", 0.0)
    assert isinstance(act(pending, Verb.CANCEL_KILL, reason=" "), Refused)
    d = act(pending, Verb.CANCEL_KILL, reason="false alarm, INC-7")
    assert isinstance(d, Accepted) and d.after.kill is None and d.after.phase is Phase.PAUSED


def test_disarm_and_pause_stay_possible_under_a_pending_kill() -> None:
    pending = latched(fresh(), Action(Verb.KILL, BOB, Source.KEY, None), "k1", 0.0)
    assert isinstance(act(pending, Verb.PAUSE), Accepted)
    assert isinstance(act(pending, Verb.DISARM, reason="flapping"), Accepted)


def test_promote_goes_to_100_and_is_terminal() -> None:
    d = act(fresh(), Verb.PROMOTE)
    assert isinstance(d, Accepted) and d.after.weight == 100 and d.after.terminal
    assert isinstance(act(d.after, Verb.KILL), Refused)
    assert isinstance(act(d.after, Verb.STEP_BACK), Refused)


def test_disarm_needs_a_reason_and_arm_restores() -> None:
    assert isinstance(act(fresh(), Verb.DISARM, reason="  "), Refused)
    d = act(fresh(), Verb.DISARM, reason="noisy metric, INC-42")
    assert isinstance(d, Accepted) and not d.after.armed
    d2 = act(d.after, Verb.ARM)
    assert isinstance(d2, Accepted) and d2.after.armed


def test_annotation_changes_nothing_and_needs_text() -> None:
    s = fresh()
    d = act(s, Verb.ANNOTATE, reason="looks fine to me", version=999)
    assert isinstance(d, Accepted) and d.noop and d.after == s
    assert isinstance(act(s, Verb.ANNOTATE, reason=""), Refused)


def test_stale_action_is_refused_naming_who_acted_and_when() -> None:
    s0 = fresh()
    d = act(s0, Verb.PAUSE, actor=BOB, now=7.0)
    assert isinstance(d, Accepted)
    refused = act(d.after, Verb.STEP_FORWARD, version=s0.version, now=10.0)
    assert isinstance(refused, Refused)
    assert refused.reason == "refused: bob paused the canary 3 s ago"


def test_stale_kill_still_applies() -> None:
    s0 = fresh()
    d = act(s0, Verb.STEP_FORWARD, actor=BOB)
    assert isinstance(d, Accepted)
    kill = act(d.after, Verb.KILL, version=s0.version)
    assert isinstance(kill, Accepted) and not kill.noop


def test_plan_validation() -> None:
    with pytest.raises(ValueError, match="decrease"):
        RampPlan.of((50, 1), (10, 1))
    with pytest.raises(ValueError, match="0..100"):
        RampStep(101, 1)
    with pytest.raises(ValueError, match="at least one"):
        RampPlan(())


verbs = st.sampled_from(list(Verb))
plans = st.lists(st.integers(0, 100), min_size=1, max_size=6).map(
    lambda ws: RampPlan(tuple(RampStep(w, 1.0) for w in sorted(ws)))
)


@settings(max_examples=300, deadline=None)
@given(
    plan=plans, steps=st.lists(st.tuples(verbs, st.booleans(), st.text(max_size=3)), max_size=40)
)
def test_invariants_under_any_sequence(plan: RampPlan, steps: list[tuple[Verb, bool, str]]) -> None:
    state = CanaryState.initial(plan.step(0).weight, 0.0)
    for t, (verb, stale, reason) in enumerate(steps, start=1):
        version = state.version - 1 if stale else state.version
        d = decide(state, Action(verb, ALICE, Source.KEY, version, reason=reason), plan, float(t))
        if state.phase is not Phase.PROMOTED and verb is Verb.KILL:
            assert isinstance(d, Accepted), "kill is accepted from every non-terminal state"
        if stale and verb not in (Verb.KILL, Verb.ANNOTATE):
            assert isinstance(d, Refused), "a stale action is refused"
        if isinstance(d, Accepted):
            if state.terminal:
                assert d.after == state, "promoted and rolled back are terminal"
            assert d.after.version in (state.version, state.version + 1)
            assert (d.after.version == state.version) == d.noop
            state = d.after
        assert 0 <= state.weight <= 100
        assert 0 <= state.step_index <= plan.last_index
        if not state.terminal:
            assert state.weight == plan.step(state.step_index).weight


@given(verb=verbs)
def test_why_not_agrees_with_decide(verb: Verb) -> None:
    s = fresh()
    d = act(s, verb, reason="r")
    assert (why_not(s, verb, PLAN) is None) == isinstance(d, Accepted)
