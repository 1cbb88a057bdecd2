"""Failures, for real: 409 from a second writer, 403 from RBAC, 404, and (through the fault
proxy) 500s and slow answers; the documented minimal Roles are enough; bad connections and
settings are clear configuration errors."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.kubernetes import build_router
from adapters.kubernetes.base import KubeRouter
from adapters.kubernetes.errors import Conflict, Forbidden, NotFound, Unavailable
from adapters.registry import AdapterConfigError, AdapterContext
from canary_tui.core.clock import VirtualClock
from tests.kube.conftest import Apply, doc_roles, grant, patches
from tests.kube.test_argo import play_controller, rollout
from tests.kube.test_deployments import deployment
from tests.kube.test_istio import VS, subset_vs, weights
from tests.support.fault_proxy import FaultProxy, Seen
from tests.support.kube_cluster import NOBODY_USER, KubeCluster

pytestmark = pytest.mark.kube


_edits = itertools.count(3)


def second_writer(co: Any, ns: str) -> Callable[[Seen], None]:
    """Before the console's PATCH lands, someone else edits the VirtualService."""

    def write(_seen: Seen) -> None:
        vs = co.get_namespaced_custom_object(*VS, ns, "virtualservices", "checkout")
        vs["spec"]["http"][0]["timeout"] = f"{next(_edits)}s"  # a real change every time
        co.replace_namespaced_custom_object(*VS, ns, "virtualservices", "checkout", vs)

    return write


def test_409_from_a_second_writer_is_reread_and_retried(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(subset_vs())
    router = make_router("istio", name="checkout")
    router.read()
    faults.add_rule(method="PATCH", path="/virtualservices/checkout", before=second_writer(co, ns))
    state = router.set_weight(30)
    sent = faults.seen("PATCH", "/virtualservices/checkout")
    assert [s.status for s in sent] == [409, 200]
    rvs = [s.json()["metadata"]["resourceVersion"] for s in sent]
    assert rvs[0] != rvs[1]  # the retry was computed from a fresh read
    assert state.weight == 30 and weights(co, ns) == [70, 30]
    got = co.get_namespaced_custom_object(*VS, ns, "virtualservices", "checkout")
    assert got["spec"]["http"][0]["timeout"].endswith("s")  # the other writer's change survived


def test_a_stale_write_is_refused_and_endless_conflicts_give_up(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    from kubernetes.client.exceptions import ApiException

    apply(subset_vs())
    stale = co.get_namespaced_custom_object(*VS, ns, "virtualservices", "checkout")
    second_writer(co, ns)(Seen(0, "", "", b""))
    with pytest.raises(ApiException) as excinfo:  # what the console relies on
        co.patch_namespaced_custom_object(
            *VS,
            ns,
            "virtualservices",
            "checkout",
            {
                "metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]},
                "spec": {"hosts": ["x"]},
            },
        )
    assert excinfo.value.status == 409
    router = make_router("istio", name="checkout", retry_budget_s=1)
    faults.add_rule(method="PATCH", before=second_writer(co, ns), times=100)
    with pytest.raises(Conflict, match="changed by someone else") as conflict:
        router.set_weight(10)
    assert conflict.value.retryable


def test_403_names_verb_resource_and_namespace(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: KubeCluster, ns: str
) -> None:
    apply(subset_vs(), rollout())
    with pytest.raises(Forbidden) as excinfo:
        make_router("istio", user=NOBODY_USER, name="checkout", watch=False).read()
    text = str(excinfo.value)
    assert 'user "nobody" may not get virtualservices' in text
    assert "networking.istio.io" in text and f'namespace "{ns}"' in text
    assert not excinfo.value.retryable
    # may read the Rollout but not write its status: the kill names rollouts/status
    grant(
        kube,
        ns,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "read-only"},
            "rules": [
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["rollouts"],
                    "verbs": ["get", "watch", "patch"],
                }
            ],
        },
    )
    router = make_router("argo-rollouts", user=NOBODY_USER, name="checkout", events=False)
    assert router.read().weight == 20
    with pytest.raises(Forbidden, match=r"may not patch rollouts/status \(API group argoproj.io\)"):
        router.abort()


def test_404_says_what_is_missing(make_router: Callable[..., KubeRouter], ns: str) -> None:
    with pytest.raises(NotFound, match=f"not found: VirtualService {ns}/nope"):
        make_router("istio", name="nope").read()
    with pytest.raises(NotFound, match="not served by this cluster"):
        make_router("gateway-api", name="r", api_version="v1alpha1").read()


def test_500s_are_retried_with_backoff(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(subset_vs())
    router = make_router("istio", name="checkout")
    router.read()
    faults.add_rule(method="PATCH", status=500, times=2)
    assert router.set_weight(40).weight == 40
    assert [s.status for s in faults.seen("PATCH")] == [500, 500, 200]
    faults.add_rule(method="PATCH", status=503, times=100)
    with pytest.raises(Unavailable, match="gave up") as excinfo:
        make_router("istio", name="checkout", retry_budget_s=0.5).set_weight(50)
    assert excinfo.value.retryable and weights(co, ns) == [60, 40]


def test_slow_answers_time_out_and_the_retry_finds_the_write_applied(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(subset_vs())
    router = make_router("istio", name="checkout", timeout_s=0.4)
    router.read()
    faults.add_rule(method="PATCH", delay_response_s=1.0)  # applied, but answered too late
    assert router.set_weight(15).weight == 15
    assert len(faults.seen("PATCH")) == 1  # the re-read showed it landed: no second write
    faults.add_rule(method="GET", path="/virtualservices/checkout", delay_s=1.0)
    assert router._read_back().weight == 15  # a slow GET is retried too


def test_kill_keeps_retrying_through_an_outage(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(rollout())
    play_controller(co, ns, {"currentStepIndex": 1})
    router = make_router("argo-rollouts", name="checkout", kill_retry_s=5)
    router.read()
    faults.add_rule(method="PATCH", status=503, times=4)
    assert router.abort().weight == 0
    assert [s.status for s in faults.seen("PATCH")] == [503] * 4 + [200]
    assert patches(faults)[-1] == {"status": {"abort": True}}


WATCH_DOCS = Path(__file__).resolve().parents[2] / "docs" / "routers" / "watch.md"


def watch_role() -> dict[str, Any]:
    """The Role documented for `watch` (docs/routers/watch.md)."""
    import yaml

    text = WATCH_DOCS.read_text(encoding="utf-8")
    for block in text.split("```yaml")[1:]:
        for doc in yaml.safe_load_all(block.split("```", 1)[0]):
            if isinstance(doc, dict) and doc.get("kind") == "Role":
                return dict(doc)
    raise AssertionError(f"no Role in {WATCH_DOCS}")


@pytest.mark.parametrize(
    ("role", "kind", "settings"),
    [
        ("canary-tui-istio", "istio", {"name": "checkout"}),
        ("canary-tui-argo-rollouts", "argo-rollouts", {"name": "checkout"}),
        (
            "canary-tui-gateway-api",
            "gateway-api",
            {"name": "foo-route", "stable_backend": "foo-v1", "canary_backend": "foo-v2"},
        ),
        (
            "canary-tui-deployments",
            "deployments",
            {"stable": "checkout", "canary": "checkout-canary"},
        ),
    ],
)
def test_the_documented_minimal_roles_are_enough(
    role: str,
    kind: str,
    settings: dict[str, Any],
    apply: Apply,
    make_router: Callable[..., KubeRouter],
    kube: KubeCluster,
    ns: str,
    co: Any,
    kubeconfigs: dict[str, Path],
) -> None:
    from tests.kube.test_gateway import SPLIT

    apply(
        subset_vs(), rollout(), SPLIT, deployment("checkout", 4), deployment("checkout-canary", 0)
    )
    play_controller(
        co,
        ns,
        {
            "currentStepIndex": 1,
            "stableRS": "a",
            "currentPodHash": "b",
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}],
        },
    )
    grant(kube, ns, doc_roles()[role])
    grant(kube, ns, watch_role())
    router = make_router(kind, user=NOBODY_USER, **settings)
    router.read()
    if kind == "argo-rollouts":
        router.set_weight(40)
        router.set_paused(True)
        router.set_paused(False)
    else:
        router.set_weight(50)
        if router.shadow_unsupported() is None:
            router.set_mirror(True)
            router.set_mirror(False)
    router.promote()
    router.abort()
    router.record_event("kill", "alice", "killed")
    assert router.events.flush(5)
    assert router.events.sent == 1 and router.notes() == []
    # `watch` reads what the object points at with the router's Role and the watch page's
    from adapters.kubernetes.connection import ConnectionSettings, connect
    from adapters.kubernetes.discover import discover

    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs[NOBODY_USER]), namespace=ns))
    target = {
        "argo-rollouts": "rollout/checkout",
        "istio": "vs/checkout",
        "gateway-api": "httproute/foo-route",
        "deployments": "deploy/checkout",
    }[kind]
    found = discover(target, namespace=ns, api=api)
    assert not [n for n in found.notes if "RBAC" in n], found.notes


def test_connection_and_settings_errors_are_config_errors(tmp_path: Path) -> None:
    ctx = AdapterContext(clock=VirtualClock())
    with pytest.raises(AdapterConfigError, match="no kubeconfig found"):
        build_router("istio", {"name": "x", "kubeconfig": str(tmp_path / "none")}, ctx)
    cfg = tmp_path / "config"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://x'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: prod, context: {cluster: c, user: u}}]\ncurrent-context: prod\n"
    )
    with pytest.raises(AdapterConfigError, match=r"context 'staging' is not in .*known: prod"):
        build_router("istio", {"name": "x", "kubeconfig": str(cfg), "context": "staging"}, ctx)
    with pytest.raises(
        AdapterConfigError,
        match=r"^router\.wieght: unknown istio router setting \(known: api_version, .*, watch\)$",
    ):
        build_router("istio", {"name": "x", "kubeconfig": str(cfg), "wieght": 3}, ctx)
    with pytest.raises(
        AdapterConfigError, match=r"^router\.name: is required by the argo-rollouts router$"
    ):
        build_router("argo-rollouts", {"kubeconfig": str(cfg)}, ctx)
    with pytest.raises(
        AdapterConfigError,
        match=r"^router\.mirror_percent: Input should be greater than or equal to 1$",
    ):
        build_router("istio", {"name": "x", "kubeconfig": str(cfg), "mirror_percent": 0}, ctx)
    router = build_router("istio", {"name": "x", "kubeconfig": str(cfg)}, ctx)
    assert router.options.namespace == "default"  # the context's namespace, else default
    assert ctx.shared["kube-routers"] == [router]


def test_in_cluster_configuration(
    apply: Apply, kube: KubeCluster, ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kubeconfig anywhere, a service account mounted: connect as a pod would."""
    from urllib.parse import urlsplit

    from adapters.kubernetes import connection

    apply(subset_vs())
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(kube.admin_token)
    (account / "ca.crt").write_bytes(Path(str(kube.ca_file)).read_bytes())
    (account / "namespace").write_text(ns)
    server = urlsplit(kube.server_url)
    monkeypatch.setattr(connection, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(server.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
    router = build_router("istio", {"name": "checkout"}, AdapterContext(clock=VirtualClock()))
    try:
        assert router.options.namespace == ns and router.api.where == "in-cluster service account"
        assert router.set_weight(10).weight == 10
    finally:
        router.close()
