"""The trust contract, proven over interleavings: a hypothesis state machine drives the real
Engine, audit log and recovery with two operators' keys, passing and failing verdicts,
router and metric faults, changes made outside the loop, crashes at every point of the
action path with restarts, and wall-clock steps; after every step it checks the contract.

Invariants checked after every step:
- every router write had an intent before it (an open intent, or the kill latch it retries);
- no write under a kill latch adds traffic (only aborts), and a latch is never dropped
  except by the router's confirmation or an audited cancel;
- a restart writes nothing but the abort of a pending kill, and never raises the weight;
- a change made outside the loop is never undone by a rule (only a person lifts the hold);
- a rolled-back canary is never written to again by the loop;
- the audit chain verifies.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.clock import VirtualClock
from canary_tui.core.frames import CanaryInfo
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import NoDataAction, Policy
from canary_tui.core.state import Phase
from canary_tui.core.verdict import Status
from canary_tui.engine.loop import Engine, EngineSettings
from canary_tui.engine.recovery import recover
from canary_tui.records.audit import AuditLog, read_records, verify
from tests.faults.parts import Crash, FaultyRouter, ScriptedJudge, SteadySource, crash_at

PLAN = RampPlan.of((5, 6), (25, 6), (50, 6))
PEOPLE = (Actor("alice"), Actor("bob"))
PERSON_VERBS = [v for v in Verb if v is not Verb.START] + [Verb.KILL] * 3  # kills often
POINTS = ("after_intent", "after_router", "after_result")
ADDS_TRAFFIC = {"set_weight", "promote", "set_mirror"}
PERSON_MOVES = {"step_forward", "step_back", "resume", "promote"}

#: What the machine exercised over the whole run (printed by the test for the closing note).
EXERCISED: Counter[str] = Counter()


class TrustMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="trust-"))
        self.path = self.dir / "audit.jsonl"
        self.clock = VirtualClock()
        self.source = SteadySource()
        self.judge = ScriptedJudge()
        self.router = FaultyRouter(self.path)
        self.engine: Engine | None = None
        self.checked = 0  # router writes already checked
        self.outside_marker: int | None = None  # writes index when someone changed the route
        self.before_outside: tuple[int, bool] | None = None  # the route before that change
        self.ended_at: int | None = None  # writes index when the canary was rolled back

    # --- building and restarting the loop --------------------------------------------------
    def _new_engine(self) -> Engine:
        policy = Policy(no_data_grace_s=8.0, no_data_action=NoDataAction.ROLLBACK)
        return Engine(
            info=CanaryInfo("checkout", "checkout"),
            plan=PLAN,
            judge=self.judge,
            source=self.source,
            router=self.router,
            audit=AuditLog(self.path, fsync=False),
            clock=self.clock,
            settings=EngineSettings(tick_s=2.0, policy=policy),
        )

    @initialize(weight=st.sampled_from([0, 0, 5, 30, 70]), mirror=st.booleans())
    def start(self, weight: int, mirror: bool) -> None:
        self.router.weight, self.router.mirror = weight, mirror
        self._boot()
        assert self.router.writes == [] or all(w.verb == "abort" for w in self.router.writes)
        assert (self.router.weight, self.router.mirror) == (weight, mirror), "start imposed"

    def _boot(self) -> None:
        engine = self._new_engine()
        self.engine = engine
        before = len(self.router.writes)
        weight = self.router.weight
        try:
            engine.start(recover(self.path))
        except Crash:
            EXERCISED["crash during start"] += 1
            self._restart(crashed=True)
            return
        new = self.router.writes[before:]
        assert all(w.verb == "abort" for w in new), f"a (re)start wrote {new}"
        assert self.router.weight <= weight, "a (re)start raised the weight"

    def _restart(self, *, crashed: bool) -> None:
        engine = self.engine
        assert engine is not None
        latched = engine.state.kill is not None
        open_kill = _open_kill(self.path)
        if not crashed:
            engine.stop("clean restart")
        engine.audit.close()
        self._boot()
        assert self.engine is not None
        if latched or open_kill:
            state = self.engine.state
            assert state.kill is not None or state.phase is Phase.ROLLED_BACK, (
                "a pending kill did not survive the restart"
            )

    def _guard(self, step: str, action: object) -> None:
        """Run one step; a Crash there ends the process: restart from the records."""
        EXERCISED[step] += 1
        try:
            action()  # type: ignore[operator]
        except Crash as crash:
            EXERCISED[f"crash {crash}"] += 1
            self._restart(crashed=True)

    @property
    def e(self) -> Engine:
        assert self.engine is not None
        return self.engine

    # --- the world ------------------------------------------------------------------------
    @rule(status=st.sampled_from([Status.PASS, Status.PASS, Status.INCONCLUSIVE, Status.FAIL]))
    def tick(self, status: Status) -> None:
        self.judge.status = status
        self.clock.advance(2.0)
        self._guard(f"tick {status.value}", self.e.tick)

    @rule(n=st.integers(1, 30))
    def ticks(self, n: int) -> None:
        for _ in range(n):
            self.clock.advance(2.0)
            self._guard("tick", self.e.tick)

    @rule(
        who=st.sampled_from(PEOPLE),
        verb=st.sampled_from(PERSON_VERBS),
        stale=st.booleans(),
    )
    def press(self, who: Actor, verb: Verb, stale: bool) -> None:
        engine = self.e
        version = engine.state.version - (1 if stale else 0)
        action = Action(verb, who, Source.KEY, version, reason="because")

        def submit() -> None:
            outcome = engine.submit(action)
            if outcome.ok and verb in (Verb.STEP_FORWARD, Verb.STEP_BACK, Verb.RESUME,
                                       Verb.PROMOTE):  # fmt: skip
                self.outside_marker = None  # a person acted: the plan may move again

        self._guard(f"press {verb.value}", submit)

    @rule(
        kind=st.sampled_from(["fail_writes", "fail_after_apply", "fail_reads", "source_fail",
                              "no_data"]),
        n=st.integers(1, 6),
    )  # fmt: skip
    def fault(self, kind: str, n: int) -> None:
        EXERCISED[f"fault {kind}"] += 1
        if kind == "source_fail":
            self.source.fail += n
        elif kind == "no_data":
            self.source.no_data += n
        else:
            setattr(self.router, kind, getattr(self.router, kind) + n)

    @rule(weight=st.sampled_from([0, 5, 25, 37, 80, 100]), mirror=st.booleans())
    def outside_change(self, weight: int, mirror: bool) -> None:
        EXERCISED["outside change"] += 1
        if (weight, mirror) == (self.router.weight, self.router.mirror):
            return
        if self.outside_marker is None or len(self.router.writes) > self.outside_marker:
            self.before_outside = (self.router.weight, self.router.mirror)
        self.router.external(weight, mirror)
        self.outside_marker = len(self.router.writes)
        if (weight, mirror) == self.before_outside:
            # changed and changed back before the loop wrote again (A-B-A): nothing outside
            # is left for a rule to undo
            self.outside_marker = None

    @rule(
        point=st.sampled_from(POINTS),
        verb=st.sampled_from(
            [None, None, Verb.KILL, Verb.KILL, Verb.STEP_FORWARD, Verb.START, Verb.PROMOTE]
        ),
    )
    def arm_crash(self, point: str, verb: Verb | None) -> None:  # fmt: skip
        EXERCISED[f"crash armed {point}"] += 1
        self.e.crash_hook = crash_at(point, verb)

    @rule()
    def crash_between_ticks(self) -> None:
        EXERCISED["crash between ticks"] += 1
        self._restart(crashed=True)

    @rule()
    def clean_restart(self) -> None:
        EXERCISED["clean restart"] += 1
        self._restart(crashed=False)

    @rule(delta=st.sampled_from([-3600.0, -60.0, 3600.0, 86400.0]))
    def clock_step(self, delta: float) -> None:
        EXERCISED["clock step"] += 1
        self.clock.step_wall(delta)

    @precondition(lambda self: self.engine is not None and self.engine.state.kill is not None)
    @rule()
    def cancel_kill(self) -> None:
        engine = self.e
        action = Action(Verb.CANCEL_KILL, PEOPLE[0], Source.KEY, engine.state.version,
                        reason="false alarm")  # fmt: skip
        self._guard("cancel kill", lambda: engine.submit(action))

    # --- the contract ---------------------------------------------------------------------
    @invariant()
    def writes_keep_the_contract(self) -> None:
        writes = self.router.writes
        for index in range(self.checked, len(writes)):
            w = writes[index]
            assert w.open_intent is not None or w.latched, f"a write with no intent: {w}"
            if w.latched:
                # DESIGN.md: the latch blocks every weight increase, step, resume and promote;
                # turning mirroring off only takes traffic away
                removes = w.verb == "set_mirror" and not w.after[1] and w.after[0] <= w.before[0]
                assert w.verb == "abort" or removes, f"a write under a kill latch: {w}"
            intent = w.open_intent or {}
            by_rule = (intent.get("actor") or {}).get("kind") == "rule"
            if (
                self.outside_marker is not None
                and index >= self.outside_marker
                and by_rule
                and w.verb in ADDS_TRAFFIC
            ):
                raise AssertionError(f"a rule undid a change made outside the loop: {w}")
            if self.ended_at is not None and index >= self.ended_at and by_rule:
                assert w.verb == "abort", f"the loop wrote to a rolled-back canary: {w}"
            if not by_rule and intent.get("verb") in PERSON_MOVES:
                # a person moved the canary (seen here too when the process died before
                # `press` could see its outcome): the plan may move again
                self.outside_marker = None
        self.checked = len(writes)

    @invariant()
    def rolled_back_stays_rolled_back(self) -> None:
        if self.engine is not None and self.engine.state.phase is Phase.ROLLED_BACK:
            if self.ended_at is None:
                self.ended_at = len(self.router.writes)
        else:
            self.ended_at = None

    @invariant()
    def latch_blocks_traffic(self) -> None:
        if self.engine is not None and self.engine.state.kill is not None:
            assert self.engine.state.phase is not Phase.PROMOTED

    @invariant()
    def audit_verifies(self) -> None:
        if self.path.exists():
            result = verify(self.path)
            assert result.ok, result

    def teardown(self) -> None:
        if self.engine is not None:
            self.engine.audit.close()
        EXERCISED["records"] += sum(1 for _ in read_records(self.path)) if self.path.exists() else 0
        shutil.rmtree(self.dir, ignore_errors=True)


def _open_kill(path: Path) -> bool:
    from tests.faults.parts import audit_view

    intent, latched = audit_view(path)
    return latched or (intent is not None and intent.get("verb") == "kill")


TrustMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("CANARY_TRUST_EXAMPLES", "250")),
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # the same examples every run, so that a landing cannot hinge on luck; explore new ones
    # with CANARY_TRUST_RANDOM=1 (and more with CANARY_TRUST_EXAMPLES) when changing the loop
    derandomize=not __import__("os").environ.get("CANARY_TRUST_RANDOM"),
)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_trust_contract_holds_under_any_interleaving(capsys: pytest.CaptureFixture[str]) -> None:
    EXERCISED.clear()
    TrustMachine.TestCase().runTest()
    steps = sum(v for k, v in EXERCISED.items() if k.startswith(("tick", "press", "cancel")))
    crashes = sum(v for k, v in EXERCISED.items() if k.startswith("crash "))
    faults = sum(v for k, v in EXERCISED.items() if k.startswith(("fault", "outside", "clock")))
    with capsys.disabled():
        print(f"\ntrust machine: {steps} loop steps, {crashes} crashes, {faults} faults injected")
        for key, count in sorted(EXERCISED.items()):
            print(f"  {key}: {count}")
    assert crashes > 0 and faults > 0 and steps > 1000, EXERCISED
