"""Plain-Deployments router against the real API server (no controllers: tests write the
Deployments' status themselves, as the deployment controller would)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.kubernetes.base import KubeRouter
from adapters.kubernetes.connection import ConnectionSettings, connect
from adapters.kubernetes.deployments import canary_replicas
from adapters.kubernetes.discover import DiscoveryError, discover
from canary_tui.core.ports import Unsupported
from tests.kube.conftest import Apply
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.kube


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout", "track": name}},
            "template": {
                "metadata": {"labels": {"app": "checkout", "track": name}},
                "spec": {"containers": [{"name": "app", "image": f"shop/{name}:1"}]},
            },
        },
    }


def replicas(kube: Any, ns: str) -> tuple[int, int]:
    from kubernetes import client

    apps = client.AppsV1Api(kube.api_client())
    return (
        apps.read_namespaced_deployment("checkout", ns).spec.replicas,
        apps.read_namespaced_deployment("checkout-canary", ns).spec.replicas,
    )


def set_ready(kube: Any, ns: str, name: str, ready: int) -> None:
    from kubernetes import client

    client.AppsV1Api(kube.api_client()).patch_namespaced_deployment_status(
        name, ns, {"status": {"replicas": ready, "readyReplicas": ready}}
    )


def test_canary_replicas() -> None:
    assert [canary_replicas(10, w) for w in (0, 1, 5, 25, 50, 99, 100)] == [0, 1, 1, 2, 5, 9, 10]
    assert [canary_replicas(1, w) for w in (0, 30, 50, 100)] == [0, 0, 1, 1]


def test_scaling_order_and_every_action(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: Any, ns: str, faults: FaultProxy
) -> None:
    apply(deployment("checkout", 10), deployment("checkout-canary", 0))
    router = make_router("deployments", stable="checkout", canary="checkout-canary")
    assert router.read().weight == 0
    up = router.set_weight(20)
    assert replicas(kube, ns) == (8, 2) and up.weight == 20
    assert "no ready pods yet" in up.detail
    order = [s.path.split("?")[0].rsplit("/", 1)[-1] for s in faults.seen("PATCH")]
    assert order == ["checkout-canary", "checkout"]  # scale up first
    assert all(s.json()["metadata"]["resourceVersion"] for s in faults.seen("PATCH"))
    faults.clear()
    router.set_weight(5)
    assert replicas(kube, ns) == (9, 1)
    order = [s.path.split("?")[0].rsplit("/", 1)[-1] for s in faults.seen("PATCH")]
    assert order == ["checkout", "checkout-canary"]  # stable grows before the canary shrinks
    killed = router.abort()
    assert replicas(kube, ns) == (10, 0) and killed.weight == 0
    assert router.promote().weight == 100 and replicas(kube, ns) == (0, 10)
    assert router.set_paused(True).weight == 100


def test_weight_is_the_share_of_ready_replicas(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: Any, ns: str
) -> None:
    apply(deployment("checkout", 7), deployment("checkout-canary", 3))
    set_ready(kube, ns, "checkout", 8)
    set_ready(kube, ns, "checkout-canary", 2)
    state = make_router("deployments", stable="checkout", canary="checkout-canary").read()
    assert (state.weight, state.canary_ready, state.stable_ready) == (20, 2, 8)
    assert "share of ready replicas" in state.detail


def test_shadow_is_disabled_with_reason(
    apply: Apply, make_router: Callable[..., KubeRouter]
) -> None:
    apply(deployment("checkout", 4), deployment("checkout-canary", 1))
    router = make_router("deployments", stable="checkout", canary="checkout-canary", replicas=5)
    reason = router.shadow_unsupported()
    assert reason is not None and "Deployments" in reason
    with pytest.raises(Unsupported, match="shadow needs"):
        router.set_mirror(True)
    assert router.set_mirror(False).weight == 20


def test_events_on_the_canary_and_discovery(
    apply: Apply,
    make_router: Callable[..., KubeRouter],
    kube: Any,
    ns: str,
    kubeconfigs: dict[str, Any],
) -> None:
    from kubernetes import client

    apply(deployment("checkout", 4), deployment("checkout-canary", 1), deployment("lonely", 1))
    router = make_router("deployments", stable="checkout", canary="checkout-canary")
    router.promote()
    router.record_event("promote", "carol", "promoted to 100%")
    assert router.events.flush(5)
    (event,) = client.CoreV1Api(kube.api_client()).list_namespaced_event(ns).items
    assert (event.reason, event.involved_object.name) == ("CanaryPromote", "checkout-canary")
    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))
    for target in ("deploy/checkout-canary", "deployment/checkout"):
        found = discover(target, namespace=ns, api=api)
        assert found.router_section() == {
            "kind": "deployments",
            "namespace": ns,
            "stable": "checkout",
            "canary": "checkout-canary",
        }
    with pytest.raises(DiscoveryError, match="no partner"):
        discover("deploy/lonely", namespace=ns, api=api)
