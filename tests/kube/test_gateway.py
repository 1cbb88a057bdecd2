"""Gateway API HTTPRoute router against the real API server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.kubernetes.base import KubeRouter
from adapters.kubernetes.connection import ConnectionSettings, connect
from adapters.kubernetes.discover import discover
from adapters.kubernetes.gateway import PERCENT_PATH, GatewayRouter, schema_has
from canary_tui.core.ports import RouterError
from tests.kube.conftest import EXAMPLES, Apply, patches
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.kube

GW = ("gateway.networking.k8s.io", "v1")
SPLIT = EXAMPLES / "gateway-api" / "traffic-split.yaml"
MIRRORING = EXAMPLES / "gateway-api" / "request-mirroring.yaml"


def rule(co: Any, ns: str, name: str = "foo-route") -> dict[str, Any]:
    return dict(co.get_namespaced_custom_object(*GW, ns, "httproutes", name)["spec"]["rules"][0])


def test_weights_and_every_action(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(SPLIT)
    router = make_router(
        "gateway-api", name="foo-route", stable_backend="foo-v1", canary_backend="foo-v2"
    )
    assert router.read().weight == 10
    state = router.set_weight(25)
    assert state.weight == 25
    assert [b["weight"] for b in rule(co, ns)["backendRefs"]] == [75, 25]
    assert patches(faults, "/httproutes/foo-route")[0]["metadata"]["resourceVersion"]
    on = router.set_mirror(True)
    assert (on.mirror, on.mirror_percent) == (True, 100)
    assert rule(co, ns)["filters"] == [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "foo-v2", "port": 8080}}}
    ]
    assert router.set_mirror(False).mirror is False and "filters" not in rule(co, ns)
    router.set_mirror(True)
    killed = router.abort()
    assert (killed.weight, killed.mirror) == (0, False)
    assert [b["weight"] for b in rule(co, ns)["backendRefs"]] == [100, 0]
    assert router.promote().weight == 100
    assert router.set_paused(True).weight == 100


def test_partial_mirror_uses_percent(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(MIRRORING, SPLIT)
    existing = make_router(
        "gateway-api", name="http-filter-mirror", stable_backend="foo-v1", canary_backend="foo-v2"
    )
    # the upstream example mirrors to foo-v2 with no backendRef to it: no canary to weigh
    with pytest.raises(RouterError, match="exactly one stable and one canary"):
        existing.read()
    router = make_router(
        "gateway-api",
        name="foo-route",
        stable_backend="foo-v1",
        canary_backend="foo-v2",
        mirror_percent=30,
    )
    state = router.set_mirror(True)
    assert (state.mirror, state.mirror_percent) == (True, 30)
    assert rule(co, ns)["filters"][0]["requestMirror"]["percent"] == 30


def test_partial_mirror_refused_where_the_api_has_no_percent(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(SPLIT)
    router = make_router(
        "gateway-api",
        name="foo-route",
        stable_backend="foo-v1",
        canary_backend="foo-v2",
        mirror_percent=30,
    )
    assert isinstance(router, GatewayRouter)
    router._percent_checked, router._percent_known = True, False  # as a v1.0 CRD would say
    with pytest.raises(RouterError, match="no requestMirror.percent") as excinfo:
        router.set_mirror(True)
    assert not excinfo.value.retryable and "filters" not in rule(co, ns)


def test_schema_has_percent() -> None:
    def schema(mirror_props: dict[str, Any]) -> dict[str, Any]:
        filt = {"properties": {"requestMirror": {"properties": mirror_props}}}
        rules = {"properties": {"filters": {"items": filt}}}
        return {"properties": {"spec": {"properties": {"rules": {"items": rules}}}}}

    assert schema_has(schema({"backendRef": {}, "percent": {}}), PERCENT_PATH) is True
    assert schema_has(schema({"backendRef": {}}), PERCENT_PATH) is False
    loose = {"properties": {"spec": {"x-kubernetes-preserve-unknown-fields": True}}}
    assert schema_has(loose, PERCENT_PATH) is None


def test_auto_detected_backends_and_discovery(
    apply: Apply,
    make_router: Callable[..., KubeRouter],
    co: Any,
    ns: str,
    kubeconfigs: dict[str, Any],
) -> None:
    apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "HTTPRoute",
            "metadata": {"name": "checkout"},
            "spec": {
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                        "backendRefs": [{"name": "admin", "port": 80}],
                    },
                    {
                        "backendRefs": [
                            {"name": "checkout-stable", "port": 80},
                            {"name": "checkout-canary", "port": 80, "weight": 0},
                        ]
                    },
                ]
            },
        }
    )
    router = make_router("gateway-api", name="checkout", api_version="v1beta1")
    assert router.read().weight == 0  # stable's weight defaults to 1, canary 0
    router.set_weight(10)
    got = co.get_namespaced_custom_object(*GW, ns, "httproutes", "checkout")["spec"]["rules"]
    assert [b["weight"] for b in got[1]["backendRefs"]] == [90, 10]
    assert "weight" not in got[0]["backendRefs"][0]
    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))
    found = discover("httproute/checkout", namespace=ns, api=api)
    assert found.router_section() == {
        "kind": "gateway-api",
        "name": "checkout",
        "namespace": ns,
        "rule": 1,
        "stable_backend": "checkout-stable",
        "canary_backend": "checkout-canary",
    }
