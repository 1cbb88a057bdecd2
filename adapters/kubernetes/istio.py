"""Istio VirtualService router: the weights of one named HTTP route's stable and canary
destinations.

- weight: `http[route].route[canary].weight` (stable gets the rest of 100)
- shadow: `mirror` (the canary destination) plus `mirrorPercentage.value` on that route
- kill: canary weight 0, stable 100, mirror removed; promote: canary 100, stable 0, no mirror

Destinations are told apart by DestinationRule subset (`canary_subset`/`stable_subset`) or by
host (`canary_host`/`stable_host`); without settings, subsets or hosts named `canary`/`stable`
(or ending in `-canary`/`-stable`) are recognised. Every write replaces `spec.http` with a
merge patch that carries the resourceVersion it was computed from (409 -> re-read, retry).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.kubernetes.base import (
    JSON,
    Compute,
    Mirror,
    RouterOptions,
    SingleObjectRouter,
    Write,
    dig,
    with_rv,
)
from adapters.kubernetes.connection import KubeApi, ObjectRef, istio_virtualservice
from adapters.kubernetes.settings import IstioSettings
from canary_tui.core.ports import RouterError, RoutingState

KIND = "istio"


def short_host(host: str) -> str:
    """`checkout-canary.prod.svc.cluster.local` -> `checkout-canary` (as Argo compares)."""
    return host.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Selector:
    """How to recognise the stable and the canary destination of a route."""

    stable_subset: str = ""
    canary_subset: str = ""
    stable_host: str = ""
    canary_host: str = ""

    def role(self, destination: Mapping[str, Any]) -> str | None:
        """ "stable", "canary" or None for one `route[]` entry."""
        dest = destination.get("destination") or {}
        host, subset = short_host(str(dest.get("host", ""))), str(dest.get("subset", ""))
        for role, want_subset, want_host in (
            ("canary", self.canary_subset, self.canary_host),
            ("stable", self.stable_subset, self.stable_host),
        ):
            if want_subset and subset == want_subset:
                if not want_host or host == short_host(want_host):
                    return role
            elif want_host and not want_subset and host == short_host(want_host):
                return role
        if self.configured:
            return None
        for role in ("canary", "stable"):
            if subset == role or (not subset and (host == role or host.endswith(f"-{role}"))):
                return role
        return None

    @property
    def configured(self) -> bool:
        return any((self.stable_subset, self.canary_subset, self.stable_host, self.canary_host))


@dataclass(frozen=True, slots=True)
class RouteView:
    index: int
    route: JSON
    stable: int  # index into route["route"]
    canary: int

    def weight(self, which: str) -> int:
        i = self.canary if which == "canary" else self.stable
        return int(dig(self.route, "route", i, "weight", default=0))

    @property
    def canary_destination(self) -> JSON:
        return dict(dig(self.route, "route", self.canary, "destination", default={}))

    @property
    def mirror(self) -> tuple[bool, int]:
        """(mirroring?, percent) from `mirror`/`mirrorPercentage` or newer `mirrors`."""
        if self.route.get("mirror"):
            value = dig(self.route, "mirrorPercentage", "value", default=100.0)
            return True, round(float(value))
        for entry in self.route.get("mirrors") or []:
            return True, round(float(dig(entry, "percentage", "value", default=100.0)))
        return False, 0


def find_route(vs: JSON, route_name: str, selector: Selector, what: str) -> RouteView:
    """The named HTTP route (or the only one) with its stable and canary destinations."""
    http = dig(vs, "spec", "http", default=[])
    if not http:
        raise RouterError(f"{what} has no spec.http routes", retryable=False)
    if route_name:
        matches = [i for i, r in enumerate(http) if r.get("name") == route_name]
        if not matches:
            names = [r.get("name", "<unnamed>") for r in http]
            raise RouterError(
                f"{what} has no HTTP route named {route_name!r} (routes: {', '.join(names)})",
                retryable=False,
            )
        index = matches[0]
    elif len(http) == 1:
        index = 0
    else:
        names = [r.get("name", "<unnamed>") for r in http]
        raise RouterError(
            f"{what} has {len(http)} HTTP routes ({', '.join(names)}): set router.route",
            retryable=False,
        )
    route = http[index]
    roles = [selector.role(d) for d in route.get("route") or []]
    if roles.count("canary") != 1 or roles.count("stable") != 1:
        raise RouterError(
            f"cannot tell stable from canary in {what} route {route.get('name', index)!r} "
            f"(found {roles}): set router.canary_subset/stable_subset or "
            "canary_host/stable_host",
            retryable=False,
        )
    return RouteView(index, route, roles.index("stable"), roles.index("canary"))


def mirror_target(view: RouteView) -> JSON:
    """Istio `mirror` destination for the canary: host, subset and port as routed."""
    dest = view.canary_destination
    return {k: copy.deepcopy(dest[k]) for k in ("host", "subset", "port") if k in dest}


def reshape(
    route: JSON, view: RouteView, *, weight: int | None = None, mirror: int | bool | None = None
) -> JSON:
    """A copy of `route` with the canary weight set and/or mirroring set.

    `mirror`: None leaves it, False removes it, an int mirrors that percent to the canary.
    """
    out = copy.deepcopy(route)
    if weight is not None:
        others = sum(
            int(d.get("weight", 0))
            for i, d in enumerate(out.get("route") or [])
            if i not in (view.stable, view.canary)
        )
        out["route"][view.canary]["weight"] = weight
        out["route"][view.stable]["weight"] = max(0, 100 - weight - others)
    if mirror is False:
        out.pop("mirror", None)
        out.pop("mirrorPercentage", None)
        out.pop("mirrors", None)
    elif mirror is not None and mirror is not True:
        out["mirror"] = mirror_target(view)
        out["mirrorPercentage"] = {"value": float(mirror)}
    return out


class IstioRouter(SingleObjectRouter):
    """TrafficRouter over one Istio VirtualService route."""

    kind = KIND
    object_kind = "VirtualService"

    def __init__(
        self,
        api: KubeApi,
        options: RouterOptions,
        *,
        name: str,
        route: str = "",
        selector: Selector | None = None,
        version: str = "v1beta1",
    ) -> None:
        super().__init__(api, options)
        self.ref = ObjectRef(istio_virtualservice(version), options.namespace, name)
        self.route_name = route
        self.selector = selector or Selector()

    def _view(self, vs: JSON) -> RouteView:
        return find_route(vs, self.route_name, self.selector, self.describe())

    def _state(self, objs: Mapping[ObjectRef, JSON]) -> RoutingState:
        view = self._view(objs[self.ref])
        mirroring, percent = view.mirror
        name = view.route.get("name", f"#{view.index}")
        text = (
            f"{self.describe()} route {name}: stable {view.weight('stable')}%"
            f" canary {view.weight('canary')}%"
            + (f", mirroring {percent}% to canary" if mirroring else "")
        )
        return RoutingState(
            weight=view.weight("canary"),
            mirror=mirroring,
            mirror_percent=percent if mirroring else 0,
            detail=self._detail(text),
        )

    def _writes_for(self, *, weight: int | None = None, mirror: Mirror = None) -> Compute:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            vs = objs[self.ref]
            view = self._view(vs)
            new_route = reshape(view.route, view, weight=weight, mirror=mirror)
            if new_route == view.route:
                return []
            http = list(dig(vs, "spec", "http", default=[]))
            http[view.index] = new_route
            return [Write(self.ref, with_rv(vs, {"spec": {"http": http}}))]

        return compute

    def shadow_unsupported(self) -> str | None:
        return None


def build(settings: IstioSettings, api: KubeApi) -> IstioRouter:
    return IstioRouter(
        api,
        settings.options(api),
        name=settings.name,
        route=settings.route,
        selector=Selector(
            stable_subset=settings.stable_subset,
            canary_subset=settings.canary_subset,
            stable_host=settings.stable_host,
            canary_host=settings.canary_host,
        ),
        version=settings.api_version or "v1beta1",
    )
