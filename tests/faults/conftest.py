"""A loop built from the fault-injecting parts, in virtual time, for the trust tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from canary_tui.core.actions import Action, ActionOutcome, Actor, Source, Verb
from canary_tui.core.clock import VirtualClock
from canary_tui.core.frames import CanaryInfo, Frame
from canary_tui.core.plan import RampPlan
from canary_tui.core.policy import Policy
from canary_tui.core.verdict import Status
from canary_tui.engine.loop import Engine, EngineSettings
from canary_tui.engine.recovery import recover
from canary_tui.records.audit import AuditLog, read_records
from tests.faults.parts import FaultyRouter, ScriptedJudge, SteadySource

PLAN = RampPlan.of((5, 10), (25, 10), (50, 10))
ALICE, BOB = Actor("alice"), Actor("bob")


@dataclass
class Loop:
    """One canary's real engine and audit log on fault-injecting parts."""

    path: Path
    clock: VirtualClock
    router: FaultyRouter
    source: SteadySource
    judge: ScriptedJudge
    engine: Engine
    frames: list[Frame]
    policy: Policy

    def tick(self, n: int = 1, status: Status | None = None) -> None:
        if status is not None:
            self.judge.status = status
        for _ in range(n):
            self.clock.advance(self.engine.settings.tick_s)
            self.engine.tick()

    def press(
        self, verb: Verb, who: Actor = ALICE, reason: str = "because", version: int | None = None
    ) -> ActionOutcome:
        expected = self.engine.state.version if version is None else version
        return self.engine.submit(Action(verb, who, Source.KEY, expected, reason=reason))

    def restart(self, *, clean: bool = False) -> Engine:
        """A new process: a fresh engine on the same audit log, router and clock."""
        if clean:
            self.engine.stop("stopped")
        self.engine.audit.close()
        self.engine = build_engine(self.path, self.clock, self.router, self.source, self.judge,
                                   self.policy)  # fmt: skip
        self.frames = []
        self.engine.subscribe(self.frames.append)
        self.engine.start(recover(self.path))
        return self.engine

    def records(self) -> list[dict[str, object]]:
        return list(read_records(self.path))


def build_engine(
    path: Path,
    clock: VirtualClock,
    router: FaultyRouter,
    source: SteadySource,
    judge: ScriptedJudge,
    policy: Policy,
) -> Engine:
    return Engine(
        info=CanaryInfo("checkout", "checkout"),
        plan=PLAN,
        judge=judge,
        source=source,
        router=router,
        audit=AuditLog(path),
        clock=clock,
        settings=EngineSettings(tick_s=2.0, policy=policy),
    )


@pytest.fixture
def make_loop(tmp_path: Path) -> Callable[..., Loop]:
    def make(weight: int = 0, mirror: bool = False, policy: Policy | None = None,
             start: bool = True) -> Loop:  # fmt: skip
        path = tmp_path / "audit.jsonl"
        clock = VirtualClock()
        router = FaultyRouter(path, weight, mirror)
        source, judge = SteadySource(), ScriptedJudge()
        pol = policy or Policy()
        engine = build_engine(path, clock, router, source, judge, pol)
        frames: list[Frame] = []
        engine.subscribe(frames.append)
        if start:
            engine.start(recover(path))
        return Loop(path, clock, router, source, judge, engine, frames, pol)

    return make
