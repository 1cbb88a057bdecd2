"""Istio VirtualService router against the real API server: every action, read-back,
optimistic concurrency on the wire, watch-driven refresh, Events, discovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from adapters.kubernetes.base import KubeRouter
from adapters.kubernetes.connection import ConnectionSettings, connect
from adapters.kubernetes.discover import discover
from canary_tui.core.ports import RouterError
from tests.kube.conftest import Apply, patches
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.kube

VS = ("networking.istio.io", "v1beta1")


def subset_vs(name: str = "checkout", weights: tuple[int, int] = (100, 0)) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {
            "hosts": ["checkout"],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {
                            "destination": {"host": "checkout", "subset": "stable"},
                            "weight": weights[0],
                        },
                        {
                            "destination": {
                                "host": "checkout",
                                "subset": "canary",
                                "port": {"number": 8080},
                            },
                            "weight": weights[1],
                        },
                    ],
                }
            ],
        },
    }


def host_vs() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "split"},
        "spec": {
            "hosts": ["split.example"],
            "http": [
                {
                    "name": "health",
                    "match": [{"uri": {"prefix": "/healthz"}}],
                    "route": [{"destination": {"host": "split-stable"}}],
                },
                {
                    "name": "primary",
                    "route": [
                        {
                            "destination": {"host": "split-stable.shop.svc.cluster.local"},
                            "weight": 90,
                        },
                        {
                            "destination": {"host": "split-canary.shop.svc.cluster.local"},
                            "weight": 10,
                        },
                    ],
                },
            ],
        },
    }


def weights(co: Any, ns: str, name: str = "checkout", index: int = 0) -> list[int]:
    vs = co.get_namespaced_custom_object(*VS, ns, "virtualservices", name)
    return [d.get("weight") for d in vs["spec"]["http"][index]["route"]]


def route(co: Any, ns: str, name: str = "checkout", index: int = 0) -> dict[str, Any]:
    vs = co.get_namespaced_custom_object(*VS, ns, "virtualservices", name)
    return dict(vs["spec"]["http"][index])


def test_read_set_weight_and_read_back(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(subset_vs())
    router = make_router("istio", name="checkout", route="primary")
    assert router.read().weight == 0
    state = router.set_weight(20)
    assert state.weight == 20 and not state.mirror
    assert weights(co, ns) == [80, 20]
    (body,) = patches(faults, "/virtualservices/checkout")
    assert body["metadata"]["resourceVersion"]  # optimistic concurrency on the wire
    assert "route primary: stable 80% canary 20%" in state.detail
    # idempotent: asking again writes nothing
    assert router.set_weight(20).weight == 20
    assert len(patches(faults, "/virtualservices/checkout")) == 1
    with pytest.raises(RouterError):
        router.set_weight(101)


def test_shadow_on_off_kill_promote(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(subset_vs(weights=(90, 10)))
    router = make_router("istio", name="checkout", mirror_percent=25)
    assert router.shadow_unsupported() is None
    on = router.set_mirror(True)
    assert (on.mirror, on.mirror_percent, on.weight) == (True, 25, 10)
    got = route(co, ns)
    assert got["mirror"] == {"host": "checkout", "subset": "canary", "port": {"number": 8080}}
    assert got["mirrorPercentage"] == {"value": 25.0}
    off = router.set_mirror(False)
    assert not off.mirror and "mirror" not in route(co, ns)
    router.set_mirror(True)
    killed = router.abort()
    assert (killed.weight, killed.mirror) == (0, False)
    assert weights(co, ns) == [100, 0] and "mirrorPercentage" not in route(co, ns)
    promoted = router.promote()
    assert promoted.weight == 100 and weights(co, ns) == [0, 100]
    assert router.set_paused(True).weight == 100  # nothing to pause: just reads


def test_host_split_recognised_by_name(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(host_vs())
    router = make_router("istio", name="split", route="primary", api_version="v1alpha3")
    assert router.read().weight == 10
    router.set_weight(50)
    assert weights(co, ns, "split", 1) == [50, 50]
    assert route(co, ns, "split", 0)["route"] == [{"destination": {"host": "split-stable"}}]
    with pytest.raises(RouterError, match="set router.route"):
        make_router("istio", name="split").read()
    with pytest.raises(RouterError, match="cannot tell stable from canary"):
        make_router("istio", name="split", route="health").read()


def test_watch_driven_refresh(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(subset_vs())
    router = make_router("istio", name="checkout")
    seen: list[int] = []
    changed = threading.Event()

    def listener(state: Any) -> None:
        seen.append(state.weight)
        if state.weight == 35:
            changed.set()

    router.subscribe(listener)
    router.read()
    deadline = time.monotonic() + 5
    while not all(w.live for w in router._watchers.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    # someone else shifts traffic, straight to the API server
    vs = co.get_namespaced_custom_object(*VS, ns, "virtualservices", "checkout")
    vs["spec"]["http"][0]["route"][0]["weight"] = 65
    vs["spec"]["http"][0]["route"][1]["weight"] = 35
    co.replace_namespaced_custom_object(*VS, ns, "virtualservices", "checkout", vs)
    assert changed.wait(5), f"no watch event reached the listener (saw {seen})"
    gets_before = len(faults.seen("GET", "/virtualservices/checkout"))
    assert router.read().weight == 35  # served from the watch cache
    assert len(faults.seen("GET", "/virtualservices/checkout")) == gets_before


def test_events_name_the_actor(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: Any, ns: str
) -> None:
    from kubernetes import client

    apply(subset_vs())
    router = make_router("istio", name="checkout")
    router.set_weight(5)
    router.record_event("step_forward", "alice", "step forward to 5%")
    router.abort()
    router.record_event("kill", "auto-rollback", "killed: errors 5.1% vs 0.4%")
    assert router.events.flush(5)
    events = client.CoreV1Api(kube.api_client()).list_namespaced_event(ns).items
    by_reason = {e.reason: e for e in events}
    step, kill = by_reason["CanaryStepForward"], by_reason["CanaryKill"]
    # the person, and the Kubernetes identity the console acts as (the proxy kubeconfig's
    # user "user" in its context "proxied"), so `kubectl describe` shows both
    assert step.message == "alice (as user, context proxied): step forward to 5%"
    assert step.type == "Normal"
    assert kill.type == "Warning"
    assert kill.message.startswith("auto-rollback (as user, context proxied): killed")
    assert step.metadata.annotations["canary-tui/kube-user"] == "user"
    assert step.metadata.annotations["canary-tui/kube-context"] == "proxied"
    assert kill.involved_object.kind == "VirtualService"
    assert kill.involved_object.name == "checkout" and kill.involved_object.uid
    assert kill.source.component == "canary-tui"
    assert kill.metadata.annotations["canary-tui/actor"] == "auto-rollback"


def test_discover_virtualservice(apply: Apply, kubeconfigs: dict[str, Any], ns: str) -> None:
    apply(subset_vs(), host_vs())
    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))
    found = discover("vs/checkout", namespace=ns, api=api)
    assert found.router_kind == "istio" and found.preset == "istio"
    assert found.settings == {
        "name": "checkout",
        "namespace": ns,
        "route": "primary",
        "stable_subset": "stable",
        "canary_subset": "canary",
    }
    split = discover("virtualservice/split", namespace=ns, api=api)
    assert split.settings["route"] == "primary"
    assert split.settings["canary_host"] == "split-canary.shop.svc.cluster.local"


def test_the_engine_drives_a_virtualservice_through_the_registry(
    apply: Apply,
    kubeconfigs: dict[str, Any],
    co: Any,
    ns: str,
    tmp_path: Any,
) -> None:
    """One path for every action: a key press goes engine -> router -> PATCH -> read-back."""
    from adapters import registry
    from adapters.kubernetes import ROUTER_BUILDERS
    from canary_tui.config.build import build_engine
    from canary_tui.config.demo import demo_config
    from canary_tui.config.schema import Config
    from canary_tui.core.actions import Action, Actor, Source, Verb
    from canary_tui.core.clock import VirtualClock

    for kind, builder in ROUTER_BUILDERS.items():  # the registry lines (adapters/registry.py)
        assert registry.ROUTERS[kind].build is builder
    apply(subset_vs())
    data = demo_config().model_dump()
    data["router"] = {
        "kind": "istio",
        "name": "checkout",
        "namespace": ns,
        "kubeconfig": str(kubeconfigs["admin"]),
    }
    built = build_engine(
        Config.model_validate(data), VirtualClock(), audit_path=tmp_path / "audit.jsonl"
    )
    engine = built.engine
    try:
        engine.start()  # adopts the live 100/0: writes nothing
        assert weights(co, ns) == [100, 0]
        engine.clock.advance(engine.settings.tick_s)  # type: ignore[attr-defined]
        engine.tick()  # a fresh canary at 0%: the audited auto-start sets the first step
        assert weights(co, ns) == [95, 5]
        alice = Actor("alice")
        out = engine.submit(Action(Verb.STEP_FORWARD, alice, Source.KEY, engine.state.version))
        assert out.ok, out.message
        assert weights(co, ns) == [90, 10] and engine.routing is not None
        assert engine.routing.weight == 10
        out = engine.submit(Action(Verb.KILL, alice, Source.KEY, engine.state.version))
        assert out.ok and weights(co, ns) == [100, 0]
    finally:
        for router in built.context.shared.get("kube-routers", []):
            router.close()
