"""Smoke test of the real control plane (tests/support/kube_cluster.py): CRDs, a Rollout, its
status subresource, RBAC denial, and Istio / Gateway API routes from the shared examples.

The first run builds kube-apiserver from Debian's kubernetes source (~7 min, needs root for
apt-get); later runs reuse the cached binary and the cluster starts in a few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.support.kube_cluster import NOBODY_USER, KubeCluster

pytestmark = pytest.mark.kube

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CANARY_SHARED_DIR") or REPO_ROOT.parent / "shared")
EXAMPLES = SHARED / "k8s-examples"
CRDS = Path(__file__).resolve().parent / "support" / "k8s_crds"
NS = "default"


def as_dict(obj: object) -> dict[str, Any]:
    """CustomObjectsApi returns plain dicts (typed as object)."""
    assert isinstance(obj, dict)
    return cast(dict[str, Any], obj)


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeCluster]:
    if not (EXAMPLES / "argo-rollouts" / "rollout-crd.yaml").is_file():
        pytest.skip(f"shared Kubernetes examples not found under {EXAMPLES}")
    with KubeCluster() as k:
        k.apply_manifest(EXAMPLES / "argo-rollouts" / "rollout-crd.yaml")
        for crd in sorted(CRDS.glob("*.yaml")):
            k.apply_manifest(crd)
        yield k


def test_rollout_status_subresource_and_rbac(kube: KubeCluster) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    (rollout,) = kube.apply_manifest(EXAMPLES / "argo-rollouts" / "rollout-canary.yaml")
    assert rollout.metadata.name == "rollout-canary"
    assert rollout.spec.strategy.canary.steps[0].setWeight == 20

    co = client.CustomObjectsApi(kube.api_client())
    args = ("argoproj.io", "v1alpha1", NS, "rollouts", "rollout-canary")

    # status is a subresource: the main endpoint ignores it, /status sets it.
    co.patch_namespaced_custom_object(*args, {"status": {"abort": True}})
    assert "abort" not in as_dict(co.get_namespaced_custom_object(*args)).get("status", {})
    co.patch_namespaced_custom_object_status(*args, {"status": {"abort": True}})
    got = as_dict(co.get_namespaced_custom_object(*args))
    assert got["status"]["abort"] is True
    assert got["spec"]["replicas"] == 5

    # "nobody" is authenticated but has no grants.
    denied = client.CustomObjectsApi(kube.api_client(NOBODY_USER))
    with pytest.raises(ApiException) as excinfo:
        denied.get_namespaced_custom_object(*args)
    assert excinfo.value.status == 403
    with pytest.raises(ApiException) as excinfo:
        denied.patch_namespaced_custom_object_status(*args, {"status": {"abort": False}})
    assert excinfo.value.status == 403


def test_istio_and_gateway_api_routes(kube: KubeCluster) -> None:
    from kubernetes import client

    objs = kube.apply_manifest(EXAMPLES / "argo-rollouts" / "istio-subset-split.yaml")
    assert [o.kind for o in objs] == ["Service", "VirtualService", "DestinationRule", "Rollout"]
    kube.apply_manifest(EXAMPLES / "gateway-api" / "traffic-split.yaml")

    co = client.CustomObjectsApi(kube.api_client())
    # every served version reads the same object (no conversion webhook needed)
    for version in ("v1alpha3", "v1beta1", "v1"):
        vs = as_dict(
            co.get_namespaced_custom_object(
                "networking.istio.io", version, NS, "virtualservices", "istio-subset-split-vsvc"
            )
        )
        weights = [d["weight"] for d in vs["spec"]["http"][0]["route"]]
        assert weights == [100, 0]

    # the router's write: shift weight 100/0 -> 80/20 and read it back
    vs["spec"]["http"][0]["route"][0]["weight"] = 80
    vs["spec"]["http"][0]["route"][1]["weight"] = 20
    co.replace_namespaced_custom_object(
        "networking.istio.io", "v1", NS, "virtualservices", "istio-subset-split-vsvc", vs
    )
    vs = as_dict(
        co.get_namespaced_custom_object(
            "networking.istio.io", "v1alpha3", NS, "virtualservices", "istio-subset-split-vsvc"
        )
    )
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [80, 20]

    for version in ("v1beta1", "v1"):
        route = as_dict(
            co.get_namespaced_custom_object(
                "gateway.networking.k8s.io", version, NS, "httproutes", "foo-route"
            )
        )
        assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [90, 10]
