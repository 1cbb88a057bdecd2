"""One real kube-apiserver (+ etcd) per test session, with the CRDs the routers use, and a
fault proxy in front of it that every router talks through (its request log shows exactly
what was sent). Each test gets a fresh namespace.

When the control plane cannot start: in CI (CI=true) the suite FAILS; elsewhere it skips
with the reason.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.kubernetes import build_router
from adapters.kubernetes.base import KubeRouter
from adapters.registry import AdapterContext
from canary_tui.core.clock import VirtualClock
from tests.support.fault_proxy import FaultProxy
from tests.support.kube_cluster import NOBODY_USER, KubeCluster, KubeClusterError

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CANARY_SHARED_DIR") or REPO.parent / "shared")
EXAMPLES = SHARED / "k8s-examples"
ROLLOUT_CRD = EXAMPLES / "argo-rollouts" / "rollout-crd.yaml"
CRDS = sorted((REPO / "tests" / "support" / "k8s_crds").glob("*.yaml"))
ROUTER_DOCS = REPO / "docs" / "routers"
_counter = itertools.count(1)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    cluster = KubeCluster()
    try:
        if not ROLLOUT_CRD.is_file():
            raise KubeClusterError(f"Argo Rollouts CRD not found at {ROLLOUT_CRD}")
        cluster.start()
        cluster.apply_manifest(ROLLOUT_CRD)
        for crd in CRDS:
            cluster.apply_manifest(crd)
    except (KubeClusterError, OSError) as exc:
        cluster.stop()
        if _in_ci():
            pytest.fail(f"the real kube-apiserver could not start in CI: {exc}", pytrace=False)
        pytest.skip(f"no real kube-apiserver here ({exc}); CI fails instead of skipping")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def proxy(kube: KubeCluster) -> Iterator[FaultProxy]:
    assert kube.ca_file is not None
    with FaultProxy(kube.server_url, kube.ca_file) as p:
        yield p


@pytest.fixture(scope="session")
def kubeconfigs(
    kube: KubeCluster, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Kubeconfigs through the proxy: `admin` may do all, `nobody` only what a test grants."""
    base = tmp_path_factory.mktemp("kubeconfigs")
    return {
        "admin": proxy.write_kubeconfig(base / "admin.yaml", kube.admin_token),
        NOBODY_USER: proxy.write_kubeconfig(base / "nobody.yaml", kube.nobody_token),
    }


@pytest.fixture
def faults(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy with no rules and an empty log; cleared again after the test."""
    proxy.clear()
    yield proxy
    proxy.clear()


@pytest.fixture
def ns(kube: KubeCluster) -> str:
    """A fresh namespace per test (never deleted: there is no namespace controller)."""
    from kubernetes import client

    name = f"t{next(_counter)}-{secrets.token_hex(3)}"
    client.CoreV1Api(kube.api_client()).create_namespace({"metadata": {"name": name}})
    return name


class Apply:
    """Create objects from dicts (or YAML) as admin, directly (not through the proxy)."""

    def __init__(self, kube: KubeCluster, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace

    def __call__(self, *docs: dict[str, Any] | str | Path) -> list[Any]:
        out: list[Any] = []
        for doc in docs:
            text = doc if isinstance(doc, str | Path) else yaml.safe_dump(doc)
            out.extend(self.kube.apply_manifest(text, namespace=self.namespace))
        return out


@pytest.fixture
def apply(kube: KubeCluster, ns: str) -> Apply:
    return Apply(kube, ns)


@pytest.fixture
def co(kube: KubeCluster) -> Any:
    """CustomObjectsApi as admin, straight to the apiserver (the 'second writer')."""
    from kubernetes import client

    return client.CustomObjectsApi(kube.api_client())


@pytest.fixture
def make_router(
    kubeconfigs: dict[str, Path], ns: str, faults: FaultProxy
) -> Iterator[Callable[..., KubeRouter]]:
    """make_router(kind, user="admin", **settings): a router through the fault proxy."""
    made: list[KubeRouter] = []

    def make(kind: str, user: str = "admin", **settings: Any) -> KubeRouter:
        ctx = AdapterContext(clock=VirtualClock())
        full = {"kubeconfig": str(kubeconfigs[user]), "namespace": ns, **settings}
        router = build_router(kind, full, ctx)
        made.append(router)
        return router

    yield make
    for router in made:
        router.close()


def doc_roles() -> dict[str, dict[str, Any]]:
    """The RBAC Roles documented on the routers' pages (docs/routers/), by metadata.name."""
    roles: dict[str, dict[str, Any]] = {}
    for page in sorted(ROUTER_DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for block in text.split("```yaml")[1:]:
            for doc in yaml.safe_load_all(block.split("```", 1)[0]):
                if isinstance(doc, dict) and doc.get("kind") == "Role":
                    roles[doc["metadata"]["name"]] = doc
    return roles


def grant(kube: KubeCluster, namespace: str, role: dict[str, Any], user: str = NOBODY_USER) -> None:
    """Create `role` in `namespace` and bind it to `user`."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube.api_client())
    body = {**role, "metadata": {**role["metadata"], "namespace": namespace}}
    rbac.create_namespaced_role(namespace, body)
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{role['metadata']['name']}-{user}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role["metadata"]["name"],
            },
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


def patches(proxy: FaultProxy, fragment: str = "") -> list[Any]:
    """The JSON bodies of the PATCH requests whose path contains `fragment`."""
    return [s.json() for s in proxy.seen("PATCH", fragment)]
