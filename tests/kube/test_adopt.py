"""The trust contract against the real kube-apiserver: starting adopts and writes nothing,
an unreachable API server is marked and a kill lands once it answers again, and a daemon
SIGKILLed at each point of a kill finishes it at restart on a real VirtualService."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary_tui.cli import CRASH_ENV
from canary_tui.config.build import build_engine
from canary_tui.config.demo import demo_config
from canary_tui.config.schema import Config
from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.clock import VirtualClock
from canary_tui.core.state import Phase
from canary_tui.engine.loop import Engine
from canary_tui.records.audit import read_records, verify
from canary_tui.session.client import SessionUnavailable
from canary_tui.tui.alarms import alarms, router_text
from tests.kube.conftest import Apply
from tests.kube.test_istio import VS, subset_vs, weights
from tests.support.fault_proxy import FaultProxy
from tests.support.processes import child_setup

pytestmark = pytest.mark.kube
REPO = Path(__file__).resolve().parents[2]


def istio_config(ns: str, kubeconfig: Path, audit: Path) -> dict[str, Any]:
    data = demo_config().model_dump(mode="json")
    data["router"] = {"kind": "istio", "name": "checkout", "namespace": ns,
                      "kubeconfig": str(kubeconfig)}  # fmt: skip
    data["audit"] = {"path": str(audit)}
    return data


def engine_on(ns: str, kubeconfig: Path, tmp_path: Path, **router: Any) -> Engine:
    from adapters import registry
    from adapters.kubernetes import ROUTER_BUILDERS

    for kind, builder in ROUTER_BUILDERS.items():
        registry.ROUTERS.setdefault(kind, builder)
    data = istio_config(ns, kubeconfig, tmp_path / "audit.jsonl")
    data["router"].update(router)
    config = Config.model_validate(data)
    return build_engine(config, VirtualClock(), audit_path=tmp_path / "audit.jsonl").engine


def resource_version(co: Any, ns: str) -> str:
    return str(co.get_namespaced_custom_object(*VS, ns, "virtualservices", "checkout")
               ["metadata"]["resourceVersion"])  # fmt: skip


@pytest.mark.parametrize("split", [(70, 30), (0, 100), (100, 0)])
def test_starting_on_a_live_split_writes_nothing(
    apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path,
    split: tuple[int, int],
) -> None:  # fmt: skip
    apply(subset_vs(weights=split))
    before = resource_version(co, ns)
    engine = engine_on(ns, kubeconfigs["admin"], tmp_path)
    try:
        engine.start()
        assert resource_version(co, ns) == before, "starting wrote to the VirtualService"
        assert engine.state.weight == split[1]
        if split[1] != 0:  # a split canary is adopted as it is: ticks write nothing either
            for _ in range(5):
                engine.clock.advance(engine.settings.tick_s)  # type: ignore[attr-defined]
                engine.tick()
            assert resource_version(co, ns) == before
            assert engine.state.hold is not None  # 30% and 100% are not steps of the plan
        assert weights(co, ns) == list(split)
    finally:
        engine.close()


def test_an_unreachable_api_server_is_marked_and_the_kill_lands_after(
    apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path,
    faults: FaultProxy,
) -> None:  # fmt: skip
    apply(subset_vs(weights=(75, 25)))
    # No watch: a watch stream opened before the outage would keep serving its cache, which
    # a real outage breaks; here every read must go to the (failing) API server.
    engine = engine_on(ns, kubeconfigs["admin"], tmp_path, watch=False)
    frames: list[Any] = []
    engine.subscribe(frames.append)
    try:
        engine.start()
        faults.add_rule(status=503, times=100_000)  # the API server stops answering
        for _ in range(4):
            engine.clock.advance(engine.settings.tick_s)  # type: ignore[attr-defined]
            engine.tick()
        frame = frames[-1]
        assert frame.router_error is not None and frame.routing_stale
        assert router_text(frame).startswith("router 25%?")
        assert any(a.startswith("ROUTER UNREACHABLE") for a in alarms(frame))
        out = engine.submit(Action(Verb.KILL, Actor("alice"), Source.KEY, None, reason="fire"))
        assert not out.ok and engine.state.kill is not None
        assert weights(co, ns) == [75, 25]
        faults.clear()  # it answers again
        for _ in range(30):
            engine.clock.advance(engine.settings.tick_s)  # type: ignore[attr-defined]
            engine.tick()
            if engine.state.phase is Phase.ROLLED_BACK:
                break
        assert engine.state.phase is Phase.ROLLED_BACK and weights(co, ns) == [100, 0]
        assert frames[-1].router_error is None
    finally:
        engine.close()


@pytest.mark.parametrize("point", ["after_intent", "after_router", "after_result"])
def test_a_daemon_killed_mid_kill_on_a_real_virtualservice(
    apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path, point: str
) -> None:
    from tests.session.conftest import Watcher

    apply(subset_vs(weights=(75, 25)))
    config = tmp_path / "canary.yaml"
    data = istio_config(ns, kubeconfigs["admin"], tmp_path / "audit.jsonl")
    data["loop"] = {"tick": "1s"}
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_STATE_HOME": str(tmp_path / "state"), CRASH_ENV: f"{point}:kill"}  # fmt: skip
    socket_path = tmp_path / "run" / f"{data['canary']['name']}.sock"

    def serve() -> subprocess.Popen[bytes]:
        log = (tmp_path / "daemon.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "canary_tui.cli", "serve", "--config",
                                 str(config)], cwd=REPO, env=env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=child_setup)  # fmt: skip

    async def scenario() -> None:
        proc = serve()
        try:
            w = await _attach(Watcher, socket_path, proc)
            await w.session.submit(Verb.KILL, expected_version=None, reason="fire")
            assert proc.wait(30) == -signal.SIGKILL
            await w.session.detach()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert weights(co, ns) in ([75, 25], [100, 0])
        del env[CRASH_ENV]
        proc = serve()
        try:
            w2 = await _attach(Watcher, socket_path, proc)
            await w2.until(lambda: w2.last.state.phase is Phase.ROLLED_BACK, "the kill finished",
                           timeout=30)  # fmt: skip
            assert weights(co, ns) == [100, 0]
            await w2.session.detach()
        finally:
            proc.terminate()
            proc.wait(15)

    asyncio.run(scenario())
    kills = [r for r in read_records(tmp_path / "audit.jsonl") if r.get("verb") == "kill"]
    assert kills[0]["type"] == "intent" and kills[-1]["outcome"] == "applied"
    assert verify(tmp_path / "audit.jsonl").ok


async def _attach(watcher: Any, path: Path, proc: subprocess.Popen[bytes]) -> Any:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {proc.returncode}")
        if path.exists():
            try:
                return await watcher(path).attach()
            except (OSError, ConnectionError, SessionUnavailable):
                pass  # the dead daemon's socket, until the new one replaces it
        await asyncio.sleep(0.05)
    raise AssertionError("the daemon did not come up")
