"""Make the sample recordings in recordings/ from seeded simulator scenarios, in virtual time.

    python scripts/make_recordings.py            # rewrite recordings/*.ctrec
    python scripts/make_recordings.py --out DIR

auto-rollback.ctrec   error regression: the loop rolls the canary back by itself
manual-kill.ctrec     latency regression: alice sees the p99 climb, notes it and kills the canary
pair-promotion.ctrec  healthy canary watched by alice and bob: notes, a manual step, a stale
                      (refused) step, and alice's promotion at the last step
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from canary_tui.config.build import build_engine
from canary_tui.config.demo import demo_config
from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.clock import VirtualClock
from canary_tui.core.state import Phase
from canary_tui.engine.loop import Engine
from canary_tui.records.recording import Recorder, RecorderOptions

START = datetime(2025, 3, 14, 9, 30, tzinfo=UTC).timestamp()
ALICE = Actor("alice", host="bastion-1", ssh_client="203.0.113.7")
BOB = Actor("bob", host="bastion-2", ssh_client="198.51.100.23")
ROOT = Path(__file__).resolve().parents[1]

Script = Callable[[Engine, VirtualClock], None]


def act(engine: Engine, verb: Verb, who: Actor, reason: str = "", *, stale: int = 0) -> None:
    version = engine.state.version - stale
    engine.submit(Action(verb, who, Source.KEY, version, reason=reason))


def tick(engine: Engine, clock: VirtualClock, n: int = 1) -> None:
    for _ in range(n):
        clock.advance(engine.settings.tick_s)
        engine.tick()


def auto_rollback(engine: Engine, clock: VirtualClock) -> None:
    for _ in range(300):
        tick(engine, clock)
        if engine.state.terminal:
            break
    tick(engine, clock, 10)


def manual_kill(engine: Engine, clock: VirtualClock) -> None:
    engine.note_presence("alice", True, ("alice",))
    for _ in range(300):
        tick(engine, clock)
        assert not engine.state.terminal, "the loop acted before alice: change the script"
        p = engine.full_frame().points[-1]
        if p.p99_canary and p.p99_baseline and p.p99_canary > 1.3 * p.p99_baseline:
            act(engine, Verb.ANNOTATE, ALICE, "canary p99 climbing, baseline flat")
            clock.advance(1.0)
            act(engine, Verb.KILL, ALICE, "p99 regression on the canary (INC-4711)")
            break
    tick(engine, clock, 10)
    engine.note_presence("alice", False, ())


def pair_promotion(engine: Engine, clock: VirtualClock) -> None:
    engine.note_presence("alice", True, ("alice",))
    tick(engine, clock, 3)
    engine.note_presence("bob", True, ("alice", "bob"))
    act(engine, Verb.ANNOTATE, ALICE, "bob and I are watching checkout v1.42.0")
    tick(engine, clock, 5)
    act(engine, Verb.STEP_FORWARD, BOB, "dashboards look clean, moving on")
    act(engine, Verb.STEP_FORWARD, ALICE, stale=1)  # pressed at the same moment: refused
    for _ in range(300):
        tick(engine, clock)
        if engine.state.step_index == engine.plan.last_index:
            break
    tick(engine, clock, 5)
    act(engine, Verb.PROMOTE, ALICE, "all steps passed; promoting")
    assert engine.state.phase is Phase.PROMOTED
    tick(engine, clock, 5)
    engine.note_presence("bob", False, ("alice",))
    engine.note_presence("alice", False, ())


SCENARIOS: dict[str, tuple[str, int, Script]] = {
    "auto-rollback": ("error-regression", 1, auto_rollback),
    "manual-kill": ("latency-regression", 2, manual_kill),
    "pair-promotion": ("healthy", 3, pair_promotion),
}


def make(name: str, out: Path) -> Path:
    scenario, seed, script = SCENARIOS[name]
    config = demo_config(scenario, seed)
    clock = VirtualClock(start=START)
    path = out / f"{name}.ctrec"
    path.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = build_engine(config, clock, audit_path=Path(tmp) / "audit.jsonl")
        engine = built.engine
        s = engine.settings
        recorder = Recorder.create(
            None,
            engine.info,
            engine.plan,
            config.model_dump(mode="json"),
            path=path,
            started_at=clock.now(),
            host="sim",
            history_s=s.history_s,
            activity_keep=s.activity_keep,
            tick_s=s.tick_s,
            options=RecorderOptions(chunk_frames=32),
            threaded=False,
        )
        engine.subscribe(recorder.on_frame)
        engine.start()
        script(engine, clock)
        engine.stop("recording finished")
        recorder.close()
        built.engine.audit.close()
    if recorder.error:
        raise SystemExit(recorder.error)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "recordings")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in SCENARIOS:
        path = make(name, args.out)
        print(f"{path}  {path.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
