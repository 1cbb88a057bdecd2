"""Gateway API HTTPRoute router: `backendRefs[].weight` of one rule's stable and canary.

- weight: the canary's share of the rule's backend weights (written as canary w, stable 100-w)
- shadow: a `RequestMirror` filter on the rule pointing at the canary backend, with
  `requestMirror.percent` when `mirror_percent` < 100 and the installed HTTPRoute API has that
  field (Gateway API v1.2+, GEP-3171). Where it does not, a partial mirror is refused rather
  than silently mirroring every request.
- kill: canary 0, stable 100, mirror filter removed; promote: canary 100, stable 0, no mirror

Writes replace `spec.rules` with a merge patch carrying the resourceVersion read.
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
from adapters.kubernetes.connection import CRD, KubeApi, ObjectRef, gateway_httproute
from adapters.kubernetes.errors import KubeError
from adapters.kubernetes.settings import GatewayApiSettings
from canary_tui.core.ports import RouterError, RoutingState

KIND = "gateway-api"
GROUP = "gateway.networking.k8s.io"
MIRROR = "RequestMirror"
PERCENT_PATH = ("spec", "rules", "[]", "filters", "[]", "requestMirror", "percent")


def schema_has(schema: Any, path: tuple[str, ...]) -> bool | None:
    """Does an OpenAPI v3 schema accept `path` ("[]" = array items)? None if it keeps unknown
    fields there (cannot tell), True/False when the schema says."""
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return False
        if key == "[]":
            node = node.get("items")
            continue
        props = node.get("properties") or {}
        if key in props:
            node = props[key]
        elif node.get("x-kubernetes-preserve-unknown-fields"):
            return None
        else:
            return False
    return True


@dataclass(frozen=True, slots=True)
class RuleView:
    index: int
    rule: JSON
    stable: int
    canary: int

    def raw(self, i: int) -> int:
        return int(dig(self.rule, "backendRefs", i, "weight", default=1))

    @property
    def total(self) -> int:
        return sum(self.raw(i) for i in range(len(self.rule.get("backendRefs") or [])))

    @property
    def canary_percent(self) -> int:
        total = self.total
        return round(100 * self.raw(self.canary) / total) if total else 0

    @property
    def canary_ref(self) -> JSON:
        return dict(dig(self.rule, "backendRefs", self.canary, default={}))

    def mirror(self) -> tuple[bool, int]:
        name = self.canary_ref.get("name")
        for f in self.rule.get("filters") or []:
            if f.get("type") == MIRROR and dig(f, "requestMirror", "backendRef", "name") == name:
                spec = f.get("requestMirror") or {}
                if "percent" in spec:
                    return True, int(spec["percent"])
                frac = spec.get("fraction")
                if isinstance(frac, dict) and frac.get("numerator") is not None:
                    denominator = int(frac.get("denominator") or 100) or 100
                    return True, round(100 * int(frac["numerator"]) / denominator)
                return True, 100
        return False, 0


def _role(ref: Mapping[str, Any], stable: str, canary: str) -> str | None:
    name = str(ref.get("name", ""))
    if canary or stable:
        return "canary" if name == canary else "stable" if name == stable else None
    for role in ("canary", "stable"):
        if name == role or name.endswith(f"-{role}"):
            return role
    return None


def find_rule(route: JSON, rule: str, stable: str, canary: str, what: str) -> RuleView:
    rules = dig(route, "spec", "rules", default=[])
    if not rules:
        raise RouterError(f"{what} has no spec.rules", retryable=False)
    candidates = list(range(len(rules)))
    if rule != "":
        if rule.isdigit():
            candidates = [int(rule)] if int(rule) < len(rules) else []
        else:
            candidates = [i for i, r in enumerate(rules) if r.get("name") == rule]
        if not candidates:
            raise RouterError(f"{what} has no rule {rule!r} ({len(rules)} rules)", retryable=False)
    for i in candidates:
        roles = [_role(b, stable, canary) for b in rules[i].get("backendRefs") or []]
        if roles.count("canary") == 1 and roles.count("stable") == 1:
            return RuleView(i, rules[i], roles.index("stable"), roles.index("canary"))
    raise RouterError(
        f"no rule of {what} has exactly one stable and one canary backendRef: set"
        " router.stable_backend and router.canary_backend (and router.rule)",
        retryable=False,
    )


def reshape(view: RuleView, *, weight: int | None, mirror: int | bool | None) -> JSON:
    out = copy.deepcopy(view.rule)
    refs = out["backendRefs"]
    if weight is not None:
        others = sum(view.raw(i) for i in range(len(refs)) if i not in (view.stable, view.canary))
        refs[view.canary]["weight"] = weight
        refs[view.stable]["weight"] = max(0, 100 - weight - others)
    if mirror is not None:
        name = view.canary_ref.get("name")
        filters = [
            f
            for f in out.get("filters") or []
            if not (
                f.get("type") == MIRROR and dig(f, "requestMirror", "backendRef", "name") == name
            )
        ]
        if mirror is not False:
            target = {
                k: view.canary_ref[k]
                for k in ("group", "kind", "name", "namespace", "port")
                if k in view.canary_ref
            }
            spec: JSON = {"backendRef": target}
            if int(mirror) < 100:
                spec["percent"] = int(mirror)
            filters.append({"type": MIRROR, "requestMirror": spec})
        if filters:
            out["filters"] = filters
        else:
            out.pop("filters", None)
    return out


class GatewayRouter(SingleObjectRouter):
    """TrafficRouter over one HTTPRoute rule."""

    kind = KIND
    object_kind = "HTTPRoute"

    def __init__(
        self,
        api: KubeApi,
        options: RouterOptions,
        *,
        name: str,
        rule: str = "",
        stable_backend: str = "",
        canary_backend: str = "",
        version: str = "v1",
    ) -> None:
        super().__init__(api, options)
        self.ref = ObjectRef(gateway_httproute(version), options.namespace, name)
        self.rule, self.stable_backend, self.canary_backend = rule, stable_backend, canary_backend
        self._percent_known: bool | None = None
        self._percent_checked = False

    def _view(self, route: JSON) -> RuleView:
        return find_rule(
            route, self.rule, self.stable_backend, self.canary_backend, self.describe()
        )

    def _state(self, objs: Mapping[ObjectRef, JSON]) -> RoutingState:
        view = self._view(objs[self.ref])
        mirroring, percent = view.mirror()
        text = (
            f"{self.describe()} rule {view.rule.get('name', view.index)}: backend weights "
            f"stable {view.raw(view.stable)} canary {view.raw(view.canary)}"
            + (f", mirroring {percent}% to {view.canary_ref.get('name')}" if mirroring else "")
        )
        return RoutingState(
            weight=view.canary_percent,
            mirror=mirroring,
            mirror_percent=percent if mirroring else 0,
            detail=self._detail(text),
        )

    def _writes_for(self, *, weight: int | None = None, mirror: Mirror = None) -> Compute:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            route = objs[self.ref]
            view = self._view(route)
            new_rule = reshape(view, weight=weight, mirror=mirror)
            if new_rule == view.rule:
                return []
            rules = list(dig(route, "spec", "rules", default=[]))
            rules[view.index] = new_rule
            return [Write(self.ref, with_rv(route, {"spec": {"rules": rules}}))]

        return compute

    def percent_supported(self) -> bool | None:
        """Whether the installed HTTPRoute API has requestMirror.percent (None: unknown).

        Read from the CRD's schema when RBAC lets us read CRDs; asked once."""
        if not self._percent_checked:
            self._percent_checked = True
            try:
                crd = self.api.get_cluster_object(CRD, f"httproutes.{GROUP}")
            except KubeError:
                return None
            for version in dig(crd, "spec", "versions", default=[]):
                if version.get("name") == self.ref.resource.version:
                    schema = dig(version, "schema", "openAPIV3Schema", default={})
                    self._percent_known = schema_has(schema, PERCENT_PATH)
        return self._percent_known

    def _no_percent(self) -> RouterError:
        return RouterError(
            f"the HTTPRoute API here ({self.ref.resource.api_version}) has no "
            f"requestMirror.percent, so mirroring {self.options.mirror_percent}% is impossible;"
            " set router.mirror_percent: 100 to mirror every request",
            retryable=False,
        )

    def set_mirror(self, on: bool) -> RoutingState:
        percent = self.options.mirror_percent
        if on and percent < 100 and self.percent_supported() is False:
            raise self._no_percent()
        state = super().set_mirror(on)
        if on and percent < 100 and state.mirror and state.mirror_percent != percent:
            # the API server pruned the field: never leave a 100% mirror nobody asked for
            self._converge("shadow off", self._writes_for(mirror=False))
            raise self._no_percent()
        return state

    def shadow_unsupported(self) -> str | None:
        return None


def build(settings: GatewayApiSettings, api: KubeApi) -> GatewayRouter:
    return GatewayRouter(
        api,
        settings.options(api),
        name=settings.name,
        rule=settings.rule,
        stable_backend=settings.stable_backend,
        canary_backend=settings.canary_backend,
        version=settings.api_version or "v1",
    )
