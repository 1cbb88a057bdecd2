"""The trust contract, point by point, on the real engine with fault-injecting parts; the
reproductions of the bugs that broke it are here as regression tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from canary_tui.core.actions import Verb
from canary_tui.core.policy import NoDataAction, Policy
from canary_tui.core.state import Phase
from canary_tui.core.verdict import Status
from canary_tui.engine.runner import EngineRunner
from canary_tui.records.audit import verify
from canary_tui.tui.alarms import alarms, router_text
from tests.faults.conftest import BOB, Loop
from tests.faults.parts import Crash, crash_at

MakeLoop = Callable[..., Loop]


# --- the kill latch -------------------------------------------------------------------------
def test_a_pending_kill_is_never_overridden_by_auto_advance(make_loop: MakeLoop) -> None:
    """Reproduction: a kill failing at the router stayed pending while auto-advance stepped
    5% -> 50% -> promoted, and the pending kill was dropped."""
    loop = make_loop()
    loop.tick(1, Status.PASS)
    assert loop.router.weight == 5
    loop.router.fail_writes = 1000  # the router refuses every write for a long time
    out = loop.press(Verb.KILL)
    assert not out.ok and "pending" in out.message
    loop.tick(200, Status.PASS)  # every metric passes, every hold is long over
    assert loop.engine.state.kill is not None, "the latch was dropped"
    assert loop.engine.state.phase is Phase.PROGRESSING and loop.engine.state.weight == 5
    assert loop.router.weight == 5 and all(w.verb == "abort" for w in loop.router.writes[1:])
    assert "KILL PENDING" in (loop.engine.warning or "")
    frame = loop.frames[-1]
    assert frame.kill_attempts > 5 and "injected" in (frame.kill_error or "")
    assert any(a.startswith("KILL PENDING (alice: because), attempt") for a in alarms(frame))
    for verb in (Verb.STEP_FORWARD, Verb.PROMOTE, Verb.RESUME, Verb.SHADOW_ON, Verb.STEP_BACK):
        refused = loop.press(verb, BOB)
        assert not refused.ok and "a kill is pending" in refused.message, verb
    loop.router.fail_writes = 0
    loop.tick(20)
    assert loop.engine.state.phase is Phase.ROLLED_BACK and loop.router.weight == 0
    assert loop.engine.state.kill is None
    assert verify(loop.path).ok


def test_retries_back_off_but_never_stop(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=25)
    loop.router.fail_writes = 10_000
    loop.press(Verb.KILL)
    loop.tick(1800)  # an hour of ticks of 2 s
    aborts = loop.router.calls.count("abort")
    # backoff 1, 2, 4 ... capped at 30 s: about 120 attempts in an hour, not 1800, never 0
    assert 100 < aborts < 200
    assert loop.engine.state.kill is not None
    loop.router.fail_writes = 0
    loop.tick(20)
    assert loop.engine.state.phase is Phase.ROLLED_BACK


def test_only_an_audited_cancel_lifts_the_latch(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=25)
    loop.router.fail_writes = 1000
    loop.press(Verb.KILL, BOB, reason="error spike")
    assert not loop.press(Verb.CANCEL_KILL, reason="").ok
    out = loop.press(Verb.CANCEL_KILL, reason="the spike was the load test, INC-9")
    assert out.ok and loop.engine.state.kill is None
    assert loop.engine.state.phase is Phase.PAUSED  # nothing moves until a person resumes
    cancel = [r for r in loop.records() if r.get("verb") == "cancel_kill"]
    assert [r["type"] for r in cancel] == ["refused", "intent", "result"]  # no reason: refused
    assert cancel[1]["reason"] == "the spike was the load test, INC-9"
    loop.router.fail_writes = 0
    loop.tick(30, Status.PASS)
    assert loop.router.weight == 25, "a cancelled kill is not retried"


def test_the_latch_survives_a_restart(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=25)
    loop.router.fail_writes = 1000
    loop.press(Verb.KILL, reason="fire")
    loop.tick(3, Status.PASS)
    engine = loop.restart()
    assert engine.state.kill is not None and engine.state.kill.reason == "fire"
    assert not loop.press(Verb.STEP_FORWARD).ok
    loop.router.fail_writes = 0
    loop.tick(30, Status.PASS)
    assert engine.state.phase is Phase.ROLLED_BACK and loop.router.weight == 0
    result = [r for r in loop.records() if r.get("verb") == "kill" and r.get("outcome") == "applied"]
    assert result and result[-1]["actor"]["name"] == "alice"


# --- crash anywhere ---------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["after_intent", "after_router", "after_result"])
def test_a_crash_mid_kill_never_brings_the_canary_back(make_loop: MakeLoop, point: str) -> None:
    """Reproduction: a crash after the abort landed but before its result record restored the
    state before the kill, and the next auto-advance stepped the router 0% -> 50%."""
    loop = make_loop(weight=25)
    loop.engine.crash_hook = crash_at(point, Verb.KILL)
    with pytest.raises(Crash):
        loop.press(Verb.KILL, reason="fire")
    weight_at_crash = loop.router.weight
    writes = len(loop.router.writes)
    engine = loop.restart()
    assert all(w.verb == "abort" for w in loop.router.writes[writes:])
    assert loop.router.weight <= weight_at_crash
    assert engine.state.phase is Phase.ROLLED_BACK and loop.router.weight == 0
    loop.tick(100, Status.PASS)
    assert loop.router.weight == 0 and engine.state.phase is Phase.ROLLED_BACK
    assert verify(loop.path).ok


@pytest.mark.parametrize("point", ["after_intent", "after_router", "after_result"])
def test_a_crash_mid_step_is_reconciled_from_the_router(make_loop: MakeLoop, point: str) -> None:
    loop = make_loop(weight=5)
    loop.engine.crash_hook = crash_at(point, Verb.STEP_FORWARD)
    with pytest.raises(Crash):
        loop.press(Verb.STEP_FORWARD)
    landed = loop.router.weight
    engine = loop.restart()
    assert loop.router.weight == landed, "the restart wrote to the router"
    assert engine.state.weight == landed
    step = [r for r in loop.records() if r.get("verb") == "step_forward"]
    if point == "after_result":
        assert [r["type"] for r in step] == ["intent", "result"]
    else:
        outcome = "reconciled: applied" if landed == 25 else "reconciled: not applied"
        assert step[-1]["type"] == "result" and step[-1]["outcome"] == outcome
    assert verify(loop.path).ok


def test_an_abort_outside_the_loop_is_recorded_and_never_undone(make_loop: MakeLoop) -> None:
    loop = make_loop()
    loop.tick(1, Status.PASS)
    loop.router.external(0)  # Argo's own abort, or kubectl
    loop.tick(1, Status.PASS)
    assert loop.engine.state.phase is Phase.ROLLED_BACK
    external = [r for r in loop.records() if r["type"] == "external"]
    assert external and "aborted outside this loop" in external[-1]["message"]
    loop.tick(100, Status.PASS)
    loop.restart(clean=True)
    loop.tick(100, Status.PASS)
    assert loop.router.weight == 0, "a rule undid an abort made outside the loop"
    assert "rolled back" in (loop.engine.state.hold or "")
    assert loop.press(Verb.STEP_FORWARD).ok  # a person may start a new canary
    assert loop.router.weight == 5


def test_a_weight_change_outside_the_loop_holds_the_plan(make_loop: MakeLoop) -> None:
    loop = make_loop()
    loop.tick(1, Status.PASS)
    loop.router.external(80)
    loop.tick(1, Status.PASS)  # noticed within one tick (read, then read again to confirm)
    state = loop.engine.state
    assert state.weight == 80 and state.hold is not None and "outside the loop" in state.hold
    assert "PLAN HELD" in (loop.engine.warning or "")
    loop.tick(100, Status.PASS)
    assert loop.router.weight == 80 and [w.verb for w in loop.router.writes] == ["set_weight"]
    assert loop.press(Verb.STEP_BACK).ok  # a person acts: the plan moves again
    assert loop.engine.state.hold is None


def test_a_change_after_the_rollback_is_shown_not_hidden(make_loop: MakeLoop) -> None:
    """Reproduction: kubectl set the route to 80/20 after a kill; the header showed
    'router 20%' under 'ROLLED BACK' with no warning."""
    loop = make_loop(weight=25)
    loop.press(Verb.KILL)
    loop.router.external(20)
    loop.tick(1)
    warning = loop.engine.warning or ""
    assert "20%" in warning and "changed outside the loop" in warning
    assert loop.router.weight == 20, "the loop must not undo it by itself"
    loop.router.external(0)  # someone puts it back: the warning goes, it was never stale
    loop.tick(1)
    assert loop.engine.warning is None


# --- adopt, never impose ----------------------------------------------------------------------
@pytest.mark.parametrize(("weight", "mirror"), [(30, False), (100, False), (25, True), (37, False)])
def test_starting_never_writes(make_loop: MakeLoop, weight: int, mirror: bool) -> None:
    loop = make_loop(weight=weight, mirror=mirror)
    assert loop.router.writes == []
    assert (loop.engine.state.weight, loop.engine.state.shadow) == (weight, mirror)
    loop.tick(3, Status.INCONCLUSIVE)
    assert loop.router.writes == []


def test_a_clean_stop_then_start_adopts_the_live_weight(make_loop: MakeLoop) -> None:
    """Reproduction: SIGTERM then start reset a canary at 50% to the first step's 5%."""
    loop = make_loop(weight=50)
    loop.tick(2, Status.INCONCLUSIVE)
    engine = loop.restart(clean=True)
    assert engine.state.weight == 50 and engine.state.step_index == 2
    assert loop.router.writes == []


def test_off_plan_weight_is_adopted_and_held(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=37)
    assert loop.engine.state.hold is not None and "off-plan" in loop.engine.state.hold
    loop.tick(50, Status.PASS)
    assert loop.router.writes == []


def test_a_fresh_canary_is_started_by_an_audited_rule(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=0)
    assert loop.router.writes == []
    loop.tick(1, Status.INCONCLUSIVE)
    assert loop.router.weight == 5
    start = [r for r in loop.records() if r.get("verb") == "start"]
    assert [r["type"] for r in start] == ["intent", "result"]
    assert start[0]["actor"] == {"name": "auto-start", "kind": "rule"}
    assert loop.router.writes[0].open_intent is not None


def test_no_rule_adds_traffic_while_the_router_cannot_be_read(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=0, start=False)
    loop.router.fail_reads = 1000
    loop.engine.start()
    loop.tick(30, Status.PASS)
    assert loop.router.writes == []
    frame = loop.frames[-1]
    assert frame.router_error and router_text(frame) == "router ?"
    assert any(a.startswith("ROUTER UNREACHABLE") for a in alarms(frame))
    loop.router.fail_reads = 0
    loop.tick(1, Status.PASS)
    assert loop.router.weight == 5  # adopted, then started by the rule


# --- loud failure -----------------------------------------------------------------------------
def test_stale_router_figures_are_marked_with_their_age(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=10)
    loop.tick(2)
    assert router_text(loop.frames[-1]) == "router 10%"
    loop.router.fail_reads = 1000
    loop.tick(10)
    frame = loop.frames[-1]
    assert frame.routing_stale and router_text(frame) == "router 10%? (20 s old)"
    assert "API server is unreachable" in " ".join(alarms(frame))


def test_no_data_and_failed_actions_are_loud(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=10)
    loop.source.no_data = 5
    loop.tick(1)
    assert any(a.startswith("NO DATA") for a in alarms(loop.frames[-1]))
    loop.router.fail_writes = 1
    out = loop.press(Verb.STEP_FORWARD)
    assert not out.ok
    failed = [a for f in loop.frames for a in f.activity if "failed at the router" in a.text]
    assert failed and all(a.kind == "failed" for a in failed)


def test_a_dead_loop_is_marked_and_restarted_with_backoff(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=10)
    boom = threading.Event()

    def verdicts(ctx: object) -> tuple[()]:
        if not boom.is_set():
            boom.set()
            raise RuntimeError("judge bug")
        return ()

    loop.judge.verdicts = verdicts  # type: ignore[method-assign]
    runner = EngineRunner(loop.engine, restart=True)
    runner._last_tick_end = loop.clock.monotonic()
    assert runner._tick() is False  # the failing tick, as the thread would run it
    status, detail = runner.refresh_health()
    assert status == "stopped" and "judge bug" in detail and "restart 1 in 1 s" in detail
    beat = loop.engine.heartbeat()
    assert beat is not None and beat.loop == "stopped"
    assert alarms(beat)[0].startswith("LOOP STOPPED: the loop stopped on an error")
    runner._restarted()
    assert runner._tick() is True
    assert runner.refresh_health() == ("running", "")
    loops = [r for r in loop.records() if r["type"] == "loop"]
    assert [r["event"] for r in loops] == ["error", "restart"]


def test_a_stalled_tick_is_marked(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=10)
    runner = EngineRunner(loop.engine)
    runner._tick_started = loop.clock.monotonic()
    loop.clock.advance(5.5)
    assert runner.health()[0] == "running"
    loop.clock.advance(1.0)  # 3 ticks of 2 s and more
    status, detail = runner.health()
    assert status == "stalled" and "a tick has run for" in detail


# --- time -------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [-3600.0, 3600.0])
def test_wall_clock_steps_change_no_hold_and_no_grace(make_loop: MakeLoop, step: float) -> None:
    policy = Policy(no_data_grace_s=20.0, no_data_action=NoDataAction.ROLLBACK)
    loop = make_loop(weight=5, policy=policy)
    loop.tick(2, Status.PASS)  # 4 s into a 10 s hold
    loop.clock.step_wall(step)
    loop.tick(2, Status.PASS)  # 8 s: still holding, whichever way the wall clock went
    assert loop.engine.state.weight == 5
    loop.tick(1, Status.PASS)
    assert loop.engine.state.weight == 25, "the hold ended on the monotonic clock"
    fetched = loop.source.fetches
    assert fetched > 0 and loop.engine.no_data is None  # the windows were not empty
    loop.source.no_data = 1000
    loop.tick(1)
    loop.clock.step_wall(step)
    loop.tick(9)  # 18 s of silence: within the grace
    assert loop.engine.state.kill is None and loop.engine.state.phase is not Phase.ROLLED_BACK
    loop.tick(2)
    assert loop.engine.state.phase is Phase.ROLLED_BACK


# --- nobody waits on a slow backend ------------------------------------------------------------
def test_a_kill_lands_while_a_tick_hangs_on_the_router_and_the_source(make_loop: MakeLoop) -> None:
    loop = make_loop(weight=25)
    release = threading.Event()
    entered = threading.Event()

    def slow() -> None:
        entered.set()
        release.wait()

    loop.source.delay = slow
    ticking = threading.Thread(target=loop.tick, daemon=True)
    ticking.start()
    try:
        assert entered.wait(30), "the tick never reached the metric source"
        out = loop.press(Verb.KILL, BOB, reason="fire")  # the tick is stuck in the fetch
        assert out.ok and loop.router.weight == 0 and ticking.is_alive()
        assert loop.engine.state.phase is Phase.ROLLED_BACK
        beat = loop.engine.heartbeat()
        assert beat is not None and beat.state.phase is Phase.ROLLED_BACK
    finally:
        release.set()
        ticking.join(30)
    assert not ticking.is_alive()
    assert loop.engine.state.phase is Phase.ROLLED_BACK and loop.router.weight == 0


def test_a_controllers_pause_promotion_and_abort_are_followed(make_loop: MakeLoop) -> None:
    """Reproduction: the header said PROGRESSING while Argo was paused at a pause step."""
    from tests.faults.parts import ControllerRouter

    loop = make_loop(weight=20, start=False)
    router = ControllerRouter(loop.path, 20)
    router.phase = "paused"
    loop.router = router
    loop.restart()
    assert loop.engine.state.phase is Phase.PAUSED and loop.engine.state.hold is None
    loop.tick(3, Status.PASS)
    assert router.writes == []  # paused by its controller: the loop does not push it on
    router.phase = "progressing"
    router.external(40)
    loop.tick(1, Status.INCONCLUSIVE)
    assert loop.engine.state.phase is Phase.PROGRESSING and loop.engine.state.weight == 40
    assert loop.engine.state.hold is None  # the controller's own step: followed, not held
    router.phase = "promoted"
    router.external(100)
    loop.tick(1)
    assert loop.engine.state.phase is Phase.PROMOTED
    kinds = [r["message"] for r in loop.records() if r["type"] == "external"]
    assert "the router's controller promoted the canary" in kinds
