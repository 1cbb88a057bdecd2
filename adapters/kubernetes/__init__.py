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
    from adapters.kubernetes.connection import KubeApi
    from adapters.registry import AdapterContext
    from adapters.settings_types import AdapterSettings
    from canary_tui.core.ports import TrafficRouter

KINDS = ("argo-rollouts", "istio", "gateway-api", "deployments")


def build_router(
    kind: str, settings: Mapping[str, Any] | AdapterSettings, ctx: AdapterContext
) -> KubeRouter:
    """Build the `kind` router from its settings (validated by its model in settings.py, when
    they are not that model already); the connection is shared via ctx.shared.

    Reads only local files (kubeconfig); bad settings and connection problems raise
    AdapterConfigError naming the setting or the file.
    """
    from adapters.kubernetes import argo, deployments, gateway, istio
    from adapters.kubernetes.connection import KubeConfigError, shared_api
    from adapters.kubernetes.settings import (
        ROUTER_SETTINGS,
        ArgoRolloutsSettings,
        DeploymentsSettings,
        GatewayApiSettings,
        IstioSettings,
    )
    from adapters.settings_types import AdapterConfigError

    if kind not in ROUTER_SETTINGS:
        raise AdapterConfigError(f"unknown Kubernetes router {kind!r} (known: {', '.join(KINDS)})")
    checked = ROUTER_SETTINGS[kind].parse(settings, "router")
    builders: dict[type[AdapterSettings], Callable[[Any, KubeApi], KubeRouter]] = {
        ArgoRolloutsSettings: argo.build,
        IstioSettings: istio.build,
        GatewayApiSettings: gateway.build,
        DeploymentsSettings: deployments.build,
    }
    try:
        api = shared_api(checked.connection(), ctx.shared)
    except KubeConfigError as exc:
        raise AdapterConfigError(f"router ({kind}): {exc}") from exc
    router = builders[type(checked)](checked, api)
    ctx.shared.setdefault("kube-routers", []).append(router)
    return router


def _builder(
    kind: str,
) -> Callable[[Mapping[str, Any] | AdapterSettings, AdapterContext], TrafficRouter]:
    def build(settings: Mapping[str, Any] | AdapterSettings, ctx: AdapterContext) -> TrafficRouter:
        return build_router(kind, settings, ctx)

    build.__name__ = f"build_{kind.replace('-', '_')}_router"
    return build


ROUTER_BUILDERS: dict[
    str, Callable[[Mapping[str, Any] | AdapterSettings, AdapterContext], TrafficRouter]
] = {kind: _builder(kind) for kind in KINDS}

__all__ = ["KINDS", "ROUTER_BUILDERS", "build_router"]
