"""`canary-tui watch KIND/NAME`: find the router (and a metrics preset) from the object.

`discover("rollout/checkout", namespace="shop")` reads the object once and returns a
`Discovered`: the router kind and settings to put in the config's `router` section, the
suggested metrics preset (istio / linkerd / generic), and for a Rollout the setWeight of its
steps (the engine's plan should follow Argo's). Kind aliases are kubectl's: rollout|ro,
virtualservice|vs, httproute, deployment|deploy (plurals accepted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.kubernetes.argo import RolloutView
from adapters.kubernetes.base import dig
from adapters.kubernetes.connection import (
    DEPLOYMENT,
    ROLLOUT,
    ConnectionSettings,
    KubeApi,
    ObjectRef,
    connect,
    gateway_httproute,
    istio_virtualservice,
)
from adapters.kubernetes.gateway import find_rule
from adapters.kubernetes.istio import Selector, find_route
from canary_tui.core.ports import RouterError

ALIASES: dict[str, str] = {
    **dict.fromkeys(("rollout", "rollouts", "ro", "rollouts.argoproj.io"), "argo-rollouts"),
    **dict.fromkeys(
        ("virtualservice", "virtualservices", "vs", "virtualservices.networking.istio.io"),
        "istio",
    ),
    **dict.fromkeys(
        ("httproute", "httproutes", "httproutes.gateway.networking.k8s.io"), "gateway-api"
    ),
    **dict.fromkeys(("deployment", "deployments", "deploy", "deployments.apps"), "deployments"),
}


class DiscoveryError(RouterError):
    """The target cannot be watched; the message says why and what to pass instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True, slots=True)
class Discovered:
    router_kind: str
    settings: dict[str, Any]
    preset: str
    summary: str
    plan_weights: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def router_section(self) -> dict[str, Any]:
        """The config's `router:` mapping (kind plus settings)."""
        return {"kind": self.router_kind, **self.settings}


def parse_target(target: str) -> tuple[str, str]:
    """`rollout/checkout` -> ("argo-rollouts", "checkout")."""
    kind, sep, name = target.strip().partition("/")
    if not sep or not name or "/" in name:
        raise DiscoveryError(
            f"expected KIND/NAME (e.g. rollout/checkout, vs/checkout), got {target!r}"
        )
    router = ALIASES.get(kind.lower())
    if router is None:
        known = "rollout|ro, virtualservice|vs, httproute, deployment|deploy"
        raise DiscoveryError(f"unknown kind {kind!r} (known: {known})")
    return router, name


def discover(
    target: str,
    *,
    namespace: str | None = None,
    context: str | None = None,
    kubeconfig: str | None = None,
    api: KubeApi | None = None,
) -> Discovered:
    """Read KIND/NAME and say how to watch it. Raises DiscoveryError or a KubeError."""
    router, name = parse_target(target)
    api = api or connect(ConnectionSettings(kubeconfig, context, namespace))
    ns = namespace or api.namespace
    base: dict[str, Any] = {"name": name, "namespace": ns}
    if context:
        base["context"] = context
    if kubeconfig:
        base["kubeconfig"] = kubeconfig
    finder = {
        "argo-rollouts": _rollout,
        "istio": _virtualservice,
        "gateway-api": _httproute,
        "deployments": _deployments,
    }[router]
    return finder(api, ns, name, base)


def _rollout(api: KubeApi, ns: str, name: str, base: dict[str, Any]) -> Discovered:
    obj = api.get(ObjectRef(ROLLOUT, ns, name))
    view = RolloutView.of(obj)
    routing = dig(obj, "spec", "strategy", "canary", "trafficRouting", default={})
    preset = "istio" if "istio" in routing else "linkerd" if "smi" in routing else "generic"
    if dig(obj, "spec", "strategy", "blueGreen"):
        raise DiscoveryError(f"Rollout {ns}/{name} uses blueGreen: only canary is supported")
    weights = tuple(int(s["setWeight"]) for s in view.steps if s.get("setWeight") is not None)
    summary = (
        f"Rollout {ns}/{name}: {view.phase}, {view.step_text}, weight {view.weight}%,"
        f" steps {list(weights)}"
    )
    return Discovered("argo-rollouts", base, preset, summary, weights)


def _virtualservice(api: KubeApi, ns: str, name: str, base: dict[str, Any]) -> Discovered:
    obj = api.get(ObjectRef(istio_virtualservice("v1beta1"), ns, name))
    http = dig(obj, "spec", "http", default=[])
    last: RouterError | None = None
    for index, route in enumerate(http):
        try:
            view = find_route({"spec": {"http": [route]}}, "", Selector(), f"VirtualService {name}")
        except RouterError as exc:
            last = exc
            continue
        settings = dict(base)
        if route.get("name"):
            settings["route"] = route["name"]
        elif len(http) > 1:
            raise DiscoveryError(f"VirtualService {ns}/{name}: route #{index} has no name")
        for role, i in (("stable", view.stable), ("canary", view.canary)):
            dest = dig(route, "route", i, "destination", default={})
            if dest.get("subset"):
                settings[f"{role}_subset"] = dest["subset"]
            else:
                settings[f"{role}_host"] = dest.get("host", "")
        summary = (
            f"VirtualService {ns}/{name} route {route.get('name', index)}: canary "
            f"{view.weight('canary')}%"
        )
        return Discovered("istio", settings, "istio", summary)
    raise DiscoveryError(
        f"VirtualService {ns}/{name}: no HTTP route with a recognisable stable and canary "
        f"destination ({last}); write the router section by hand "
        "(docs/routers/)"
    )


def _httproute(api: KubeApi, ns: str, name: str, base: dict[str, Any]) -> Discovered:
    obj = api.get(ObjectRef(gateway_httproute("v1"), ns, name))
    try:
        view = find_rule(obj, "", "", "", f"HTTPRoute {ns}/{name}")
    except RouterError as exc:
        raise DiscoveryError(f"{exc}; write the router section by hand") from exc
    settings = {
        **base,
        "rule": view.index,
        "stable_backend": dig(view.rule, "backendRefs", view.stable, "name"),
        "canary_backend": dig(view.rule, "backendRefs", view.canary, "name"),
    }
    summary = f"HTTPRoute {ns}/{name} rule {view.index}: canary {view.canary_percent}%"
    return Discovered("gateway-api", settings, "generic", summary)


def _pair_names(name: str) -> list[tuple[str, str]]:
    """Candidate (stable, canary) names for a Deployment named `name`."""
    for suffix in ("-canary", "-stable"):
        if name.endswith(suffix):
            stem = name.removesuffix(suffix)
            other = [f"{stem}-stable", stem] if suffix == "-canary" else [f"{stem}-canary"]
            if suffix == "-canary":
                return [(o, name) for o in other]
            return [(name, o) for o in other]
    return [(name, f"{name}-canary"), (f"{name}-stable", name)]


def _deployments(api: KubeApi, ns: str, name: str, base: dict[str, Any]) -> Discovered:
    from adapters.kubernetes.errors import NotFound

    api.get(ObjectRef(DEPLOYMENT, ns, name))  # the named one must exist
    tried = []
    for stable, canary in _pair_names(name):
        other = canary if stable == name else stable
        tried.append(other)
        try:
            api.get(ObjectRef(DEPLOYMENT, ns, other))
        except NotFound:
            continue
        settings = {k: v for k, v in base.items() if k != "name"}
        settings.update({"stable": stable, "canary": canary})
        return Discovered(
            "deployments", settings, "generic", f"Deployments {ns}/{stable} + {ns}/{canary}"
        )
    raise DiscoveryError(
        f"Deployment {ns}/{name} has no partner (tried {', '.join(tried)}): set router.stable"
        " and router.canary in a config file"
    )
