"""Traffic routers on Kubernetes, through the official client.

Four router kinds (config `router.kind`), each a TrafficRouter:

- `argo-rollouts`  an Argo Rollout: the Argo controller owns the steps (adapters/kubernetes/argo.py)
- `istio`          an Istio VirtualService route's weights and mirror (istio.py)
- `gateway-api`    a Gateway API HTTPRoute rule's backendRefs weights and RequestMirror (gateway.py)
- `deployments`    two plain Deployments, weight = the canary's share of replicas (deployments.py)

`ROUTER_BUILDERS` maps those kinds to `builder(settings, ctx)` for adapters/registry.py.
Besides the protocol, every router has `record_event(verb, actor, message)` (a Kubernetes
Event on its object), `subscribe(listener)` (watch-driven refresh) and `close()`.
`discover()` (discover.py) turns `KIND/NAME` into a router section for `canary-tui watch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.kubernetes.base import KubeRouter
    from adapters.registry import AdapterContext
    from canary_tui.core.ports import TrafficRouter

KINDS = ("argo-rollouts", "istio", "gateway-api", "deployments")


def build_router(kind: str, settings: Mapping[str, Any], ctx: AdapterContext) -> KubeRouter:
    """Build the `kind` router from its settings; the connection is shared via ctx.shared.

    Reads only local files (kubeconfig); bad settings and connection problems raise
    AdapterConfigError naming the setting or the file.
    """
    from adapters.kubernetes import argo, deployments, gateway, istio
    from adapters.kubernetes.connection import KubeConfigError, shared_api
    from adapters.registry import AdapterConfigError

    modules = {
        "argo-rollouts": argo.build,
        "istio": istio.build,
        "gateway-api": gateway.build,
        "deployments": deployments.build,
    }
    if kind not in modules:
        raise AdapterConfigError(f"unknown Kubernetes router {kind!r} (known: {', '.join(KINDS)})")
    try:
        timeout = float(settings.get("timeout_s", 5.0))
    except (TypeError, ValueError) as exc:
        raise AdapterConfigError(f"router.timeout_s: {exc}") from exc
    if timeout <= 0:
        raise AdapterConfigError("router.timeout_s must be positive")
    try:
        api = shared_api(settings, ctx.shared)
    except KubeConfigError as exc:
        raise AdapterConfigError(f"router ({kind}): {exc}") from exc
    router = modules[kind](settings, api)
    ctx.shared.setdefault("kube-routers", []).append(router)
    return router


def _builder(kind: str) -> Callable[[Mapping[str, Any], AdapterContext], TrafficRouter]:
    def build(settings: Mapping[str, Any], ctx: AdapterContext) -> TrafficRouter:
        return build_router(kind, settings, ctx)

    build.__name__ = f"build_{kind.replace('-', '_')}_router"
    return build


ROUTER_BUILDERS: dict[str, Callable[[Mapping[str, Any], AdapterContext], TrafficRouter]] = {
    kind: _builder(kind) for kind in KINDS
}

__all__ = ["KINDS", "ROUTER_BUILDERS", "build_router"]
