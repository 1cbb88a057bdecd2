"""Crash anywhere, with real processes: a session daemon (`canary-tui serve`) kills itself
with SIGKILL at a named point of the action path (CANARY_TUI_CRASH_AT), a new daemon starts
on the same audit log and simulated cluster, and the contract holds: a kill is finished, a
step is reconciled from the router, nothing is raised, the audit chain verifies.

Also over the real socket: the daemon's watchdog marks a dead loop on every client within
2 s, a timed-out action is reported as "outcome unknown", and a client that leaves out
expected_version for anything but kill is refused.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from pathlib import Path

import pytest

from canary_tui.cli import CRASH_ENV
from canary_tui.core.actions import Verb
from canary_tui.core.state import Phase
from canary_tui.records.audit import read_records, verify
from tests.session.conftest import Watcher, make_daemon

POINTS = ["after_intent", "after_router", "after_result"]


def cluster_weight(tmp: Path) -> int:
    return int(json.loads((tmp / "cluster.json").read_text())["weight"])


async def started(w: Watcher) -> None:
    await w.until(lambda: w.last.state.weight > 0, "the audited start at the first step")


@pytest.mark.parametrize("point", POINTS)
async def test_a_daemon_killed_mid_kill_finishes_the_kill_when_restarted(
    tmp_path: Path, point: str
) -> None:
    d = make_daemon(tmp_path)
    d.env[CRASH_ENV] = f"{point}:kill"
    d.start()
    try:
        w = await Watcher(d.socket).attach()
        await started(w)
        before = cluster_weight(tmp_path)
        outcome = await w.session.submit(Verb.KILL, expected_version=None, reason="fire")
        assert not outcome.ok  # the daemon died under it: never reported as done
        assert d.proc is not None and d.proc.wait(15) == -signal.SIGKILL
        await w.session.detach()
        crashed_at = cluster_weight(tmp_path)
        assert crashed_at in (0, before)
        del d.env[CRASH_ENV]
        d.start()
        w2 = await Watcher(d.socket).attach()
        await w2.until(lambda: w2.last.state.phase is Phase.ROLLED_BACK, "the kill finished")
        assert cluster_weight(tmp_path) == 0
        records = list(read_records(d.audit))
        kills = [r for r in records if r.get("verb") == "kill"]
        assert kills[0]["type"] == "intent" and kills[-1]["outcome"] == "applied"
        assert kills[-1]["actor"]["name"] == kills[0]["actor"]["name"]
        assert verify(d.audit).ok
        await w2.session.detach()
    finally:
        d.stop()


@pytest.mark.parametrize("point", POINTS)
async def test_a_daemon_killed_mid_step_reconciles_it_from_the_router(
    tmp_path: Path, point: str
) -> None:
    d = make_daemon(tmp_path)
    d.env[CRASH_ENV] = f"{point}:step_forward"
    d.start()
    try:
        w = await Watcher(d.socket).attach()
        await started(w)
        await w.session.submit(Verb.STEP_FORWARD, expected_version=w.last.state.version)
        assert d.proc is not None and d.proc.wait(15) == -signal.SIGKILL
        await w.session.detach()
        landed = cluster_weight(tmp_path)
        del d.env[CRASH_ENV]
        d.start()
        w2 = await Watcher(d.socket).attach()
        assert w2.last.state.weight == landed and cluster_weight(tmp_path) == landed
        steps = [r for r in read_records(d.audit) if r.get("verb") == "step_forward"]
        assert steps[-1]["type"] == "result"
        if point != "after_result":
            assert steps[-1]["outcome"] in ("reconciled: applied", "reconciled: not applied")
            assert (steps[-1]["outcome"] == "reconciled: applied") == (landed == 10)
        assert verify(d.audit).ok
        await w2.session.detach()
    finally:
        d.stop()


async def test_a_client_must_say_which_version_it_acts_on(tmp_path: Path) -> None:
    d = make_daemon(tmp_path)
    d.start()
    try:
        w = await Watcher(d.socket).attach()
        outcome = await w.session.submit(Verb.PAUSE, expected_version=None)
        assert not outcome.ok
        assert w.session.closed_reason is not None
        assert "needs expected_version" in w.session.closed_reason
        w2 = await Watcher(d.socket).attach()
        kill = await w2.session.submit(Verb.KILL, expected_version=None, reason="k needs none")
        assert kill.ok
        await w2.session.detach()
    finally:
        d.stop()


async def test_a_timed_out_action_is_reported_as_outcome_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: a client's timeout was reported as "not sent" though the action was
    sent and may have applied. A daemon that never answers shows it."""
    import canary_tui.session.client as client_mod
    from canary_tui.session.protocol import PROTOCOL_VERSION, encode

    path = tmp_path / "mute.sock"
    got: list[bytes] = []
    refreshed = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(encode({"type": "welcome", "protocol": PROTOCOL_VERSION,
                             "you": {"name": "me"}, "operator": True, "read_only": None,
                             "canary": "checkout"}))  # fmt: skip
        await writer.drain()
        while line := await reader.readline():
            got.append(line)
            if json.loads(line)["type"] == "refresh":
                refreshed.set()

    server = await asyncio.start_unix_server(mute, path=str(path))
    monkeypatch.setattr(client_mod, "ACTION_TIMEOUT_S", 0.5)
    try:
        session = client_mod.SocketSession(path)
        await session.attach(lambda frame: None)
        outcome = await session.submit(Verb.STEP_FORWARD, expected_version=3)
        assert not outcome.ok and outcome.message.startswith("outcome unknown:")
        assert "it may have applied" in outcome.message
        await asyncio.wait_for(refreshed.wait(), 30)  # the client asks for the state again
        kinds = [json.loads(line)["type"] for line in got]
        assert kinds[:2] == ["action", "refresh"]
        await session.detach()
    finally:
        server.close()
        await server.wait_closed()


async def test_every_client_sees_a_dead_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's watchdog, over a real socket, with a loop whose judge fails: a heartbeat
    every second carries LOOP STOPPED to every client, and the failure is audited."""
    import canary_tui.engine.runner as runner_mod
    from canary_tui.core.policy import Policy
    from canary_tui.engine.clocks import WallClock
    from canary_tui.session.daemon import SessionDaemon
    from tests.faults.conftest import build_engine
    from tests.faults.parts import FaultyRouter, ScriptedJudge, SteadySource

    monkeypatch.setattr(runner_mod, "RESTART_FIRST_S", 600.0)  # stays stopped: no flapping
    audit = tmp_path / "audit.jsonl"
    judge = ScriptedJudge()
    engine = build_engine(audit, WallClock(), FaultyRouter(audit, 10), SteadySource(), judge,
                          Policy())  # type: ignore[arg-type]  # fmt: skip
    failing = threading.Event()

    def verdicts(ctx):  # type: ignore[no-untyped-def]
        if failing.is_set():
            raise RuntimeError("judge bug")
        return ()

    judge.verdicts = verdicts  # type: ignore[method-assign]
    runtime = tmp_path / "run"
    daemon = SessionDaemon(engine, socket_path=runtime / "checkout.sock",
                           lock_path=runtime / "checkout.lock")  # fmt: skip
    serving = threading.Thread(target=lambda: asyncio.run(daemon.serve()), daemon=True)
    serving.start()
    try:
        w1, w2 = Watcher(daemon.socket_path), Watcher(daemon.socket_path)
        for _ in range(400):
            if daemon.socket_path.exists():
                break
            await asyncio.sleep(0.05)
        await w1.attach()
        await w2.attach()
        assert w1.last.loop == "running"
        failing.set()
        for w in (w1, w2):
            await w.until(lambda w=w: w.last.loop == "stopped", "LOOP STOPPED", timeout=30)
            assert "judge bug" in w.last.loop_detail
        loops = [r for r in read_records(audit) if r["type"] == "loop"]
        assert loops and loops[0]["event"] == "error" and "judge bug" in loops[0]["message"]
        status = daemon.status()
        assert status["loop"] == "stopped"
        await w1.session.detach()
        await w2.session.detach()
    finally:
        daemon.request_stop("test over")
        serving.join(15)
    assert not serving.is_alive()
    assert not (runtime / "checkout.lock").exists(), "the lock file was left behind"
