"""Argo Rollouts router: drive a Rollout the way `kubectl argo rollouts` does.

The Argo controller owns the steps; the console asks it to move:

- step forward (set_weight above the current weight) = `kubectl argo rollouts promote`:
  unpause `spec.paused`, and on the status subresource clear `pauseConditions` or, when not
  paused at a step, advance `currentStepIndex` by one (with the plugin's fallback to the main
  resource when the status subresource is not served). Only toward the Rollout's next
  setWeight (any other weight is refused: the plan must follow the Rollout's steps), one step
  per call and never past it, so a repeated call cannot skip ahead; the weight then follows
  the controller. Stepping back is refused: kill aborts instead.
- pause / resume = `spec.paused: true / false`
- kill = `status.abort: true` on the status subresource (fallback: the main resource)
- promote = `status.promoteFull: true` (when the canary is not already the stable)
- shadow = the Istio managed mirror route: only when the Rollout routes through Istio and
  lists `trafficRouting.managedRoutes`; the console writes that route into the VirtualService
  as Argo's `setMirrorRoute` step would (and Argo removes it on abort / full promotion).

read() reports the controller's actual weight (`status.canary.weights.canary.weight`) when it
routes traffic, else the weight of the current step, plus phase, step, pause conditions,
stable and canary revisions and images in `detail` (and in full from `status()`).

Relative writes (advancing currentStepIndex) carry the resourceVersion read, so a stale one
fails with 409 and is recomputed; absolute flag writes (paused, abort, promoteFull,
pauseConditions: null) are plain merge patches, exactly as the plugin sends them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.kubernetes.base import (
    JSON,
    RouterOptions,
    SingleObjectRouter,
    Write,
    check_settings,
    dig,
    with_rv,
)
from adapters.kubernetes.connection import (
    REPLICASET,
    ROLLOUT,
    KubeApi,
    ObjectRef,
    istio_virtualservice,
)
from adapters.kubernetes.errors import KubeError
from adapters.kubernetes.istio import RouteView, Selector, find_route, mirror_target
from canary_tui.core.ports import RouterError, RoutingState, Unsupported

KIND = "argo-rollouts"
SETTINGS = ("mirror_route", "istio_api_version")
HASH_LABEL = "rollouts-pod-template-hash"


def _images(template_spec: Any) -> str:
    containers = dig(template_spec, "containers", default=[])
    return ", ".join(str(c.get("image", "?")) for c in containers) or "?"


@dataclass(frozen=True, slots=True)
class RolloutView:
    """What a Rollout says, in the console's terms."""

    name: str
    phase: str
    message: str
    steps: tuple[JSON, ...]
    step_index: int | None
    set_weight: int
    actual_weight: int | None
    stable_hash: str
    canary_hash: str
    canary_image: str
    pause_reasons: tuple[str, ...]
    spec_paused: bool
    aborted: bool
    promote_full: bool
    ready: int
    updated: int
    stable_image: str = "?"

    @classmethod
    def of(cls, obj: JSON) -> RolloutView:
        status = obj.get("status") or {}
        steps = tuple(dig(obj, "spec", "strategy", "canary", "steps", default=[]))
        index = status.get("currentStepIndex")
        aborted = bool(status.get("abort"))
        actual = dig(status, "canary", "weights", "canary", "weight")
        return cls(
            name=str(dig(obj, "metadata", "name", default="")),
            phase=str(status.get("phase") or "Unknown"),
            message=str(status.get("message") or ""),
            steps=steps,
            step_index=None if index is None else int(index),
            set_weight=current_set_weight(steps, index, aborted),
            actual_weight=None if actual is None else int(actual),
            stable_hash=str(status.get("stableRS") or ""),
            canary_hash=str(status.get("currentPodHash") or ""),
            canary_image=_images(dig(obj, "spec", "template", "spec", default={})),
            pause_reasons=tuple(
                str(p.get("reason", "?")) for p in status.get("pauseConditions") or []
            ),
            spec_paused=bool(dig(obj, "spec", "paused", default=False)),
            aborted=aborted,
            promote_full=bool(status.get("promoteFull")),
            ready=int(status.get("readyReplicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
        )

    @property
    def weight(self) -> int:
        return self.actual_weight if self.actual_weight is not None else self.set_weight

    @property
    def in_progress(self) -> bool:
        return bool(self.canary_hash) and self.canary_hash != self.stable_hash

    @property
    def step_text(self) -> str:
        if not self.steps:
            return "no steps"
        index = self.step_index or 0
        return "done" if index >= len(self.steps) else f"step {index + 1}/{len(self.steps)}"

    def summary(self) -> str:
        paused = list(self.pause_reasons) + (["spec.paused"] if self.spec_paused else [])
        parts = [
            f"{self.phase}{' (aborted)' if self.aborted else ''}",
            self.step_text,
            f"set {self.set_weight}%"
            + (f" actual {self.actual_weight}%" if self.actual_weight is not None else ""),
        ]
        if paused:
            parts.append("paused: " + ", ".join(paused))
        if self.promote_full:
            parts.append("full promotion requested")
        parts.append(f"stable {self.stable_hash[:10] or '?'} {self.stable_image}")
        if self.in_progress:
            parts.append(f"canary {self.canary_hash[:10]} {self.canary_image}")
        return " | ".join(parts)


def current_set_weight(steps: tuple[JSON, ...], index: Any, aborted: bool) -> int:
    """Argo's GetCurrentSetWeight: the last setWeight at or before the current step."""
    if aborted:
        return 0
    if not steps:
        return 100
    i = int(index or 0)
    if i >= len(steps):
        return 100
    for step in reversed(steps[: i + 1]):
        if step.get("setWeight") is not None:
            return int(step["setWeight"])
    return 0


def target_index(steps: tuple[JSON, ...], start: int, weight: int) -> int:
    """The first step index from `start` on whose weight reaches `weight` (len: done)."""
    for i in range(start, len(steps)):
        if current_set_weight(steps, i, False) >= weight:
            return i
    return len(steps)


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    """Where the managed mirror route goes: its name, VirtualServices and their routes."""

    route_name: str
    managed: tuple[str, ...]
    services: tuple[ObjectRef, ...]
    route_names: tuple[str, ...]
    selector: Selector
    step: JSON | None  # the Rollout's setMirrorRoute step of that name, if any


def mirror_plan(obj: JSON, wanted: str, version: str) -> MirrorPlan | str:
    """The mirror route a Rollout allows, or why shadow is impossible for it."""
    canary = dig(obj, "spec", "strategy", "canary", default={})
    routing = canary.get("trafficRouting") or {}
    istio = routing.get("istio")
    if not istio:
        return (
            "this Rollout does not route through Istio: shadow needs "
            "trafficRouting.istio with a managed mirror route"
        )
    managed = tuple(str(m.get("name")) for m in routing.get("managedRoutes") or [])
    if not managed:
        return (
            "the Rollout lists no trafficRouting.managedRoutes: add one (e.g. "
            "`- name: mirror-route`) so a mirror route may be managed"
        )
    steps = [s["setMirrorRoute"] for s in canary.get("steps") or [] if s.get("setMirrorRoute")]
    if wanted and wanted not in managed:
        return f"mirror_route {wanted!r} is not in the Rollout's managedRoutes {list(managed)}"
    stepped = [s["name"] for s in steps if s.get("name") in managed]
    name = wanted or (stepped[0] if stepped else managed[0])
    entries = istio.get("virtualServices") or (
        [istio["virtualService"]] if istio.get("virtualService") else []
    )
    namespace = str(dig(obj, "metadata", "namespace", default="default"))
    refs, routes = [], []
    for entry in entries:
        vs_name, _, vs_ns = str(entry.get("name", "")).partition(".")
        refs.append(ObjectRef(istio_virtualservice(version), vs_ns or namespace, vs_name))
        routes.append(str((entry.get("routes") or [""])[0]))
    if not refs:
        return "the Rollout's trafficRouting.istio names no VirtualService"
    rule = istio.get("destinationRule") or {}
    selector = Selector(
        stable_subset=str(rule.get("stableSubsetName") or ""),
        canary_subset=str(rule.get("canarySubsetName") or ""),
        stable_host="" if rule else str(canary.get("stableService") or ""),
        canary_host="" if rule else str(canary.get("canaryService") or ""),
    )
    step = next((s for s in steps if s.get("name") == name), None)
    return MirrorPlan(name, managed, tuple(refs), tuple(routes), selector, step)


def _istio_match(step: JSON | None, primary: JSON) -> list[JSON] | None:
    """Argo's setMirrorRoute match (method/path/headers -> method/uri/headers), else the
    primary route's own match (None: all of its traffic)."""
    if step and step.get("match"):
        out = []
        for m in step["match"]:
            item = {"method": m.get("method"), "uri": m.get("path"), "headers": m.get("headers")}
            out.append({k: v for k, v in item.items() if v})
        return out
    match = primary.get("match")
    return copy.deepcopy(match) if match else None


def mirror_http(
    http: list[JSON], plan: MirrorPlan, view: RouteView, percent: int, match: list[JSON] | None
) -> list[JSON]:
    """`http` with the managed mirror route (re)placed in managedRoutes order on top."""
    rest = [r for r in http if r.get("name") != plan.route_name]
    route: JSON = {"name": plan.route_name}
    if match:
        route["match"] = match
    route["route"] = copy.deepcopy(view.route.get("route") or [])
    route["mirror"] = mirror_target(view)
    route["mirrorPercentage"] = {"value": float(percent)}
    rank = plan.managed.index(plan.route_name)
    at = 0
    while at < len(rest) and rest[at].get("name") in plan.managed[:rank]:
        at += 1
    return [*rest[:at], route, *rest[at:]]


class ArgoRolloutsRouter(SingleObjectRouter):
    """TrafficRouter over one Argo Rollout (and its Istio VirtualServices for shadow)."""

    kind = KIND
    object_kind = "Rollout"
    owns_steps = True  # the engine should follow read(), not push its own plan

    def __init__(
        self,
        api: KubeApi,
        options: RouterOptions,
        *,
        name: str,
        mirror_route: str = "",
        istio_version: str = "v1beta1",
        step_percent: bool = True,
    ) -> None:
        super().__init__(api, options)
        self.ref = ObjectRef(ROLLOUT, options.namespace, name)
        self.mirror_route = mirror_route
        self.istio_version = istio_version
        self.step_percent = step_percent  # the setMirrorRoute step's percentage may apply
        self._images: dict[str, str] = {}
        self._mirror_error: str | None = None

    # --- reading ---------------------------------------------------------------------------
    def _plan(self, rollout: JSON) -> MirrorPlan | str:
        return mirror_plan(rollout, self.mirror_route, self.istio_version)

    def _collect(self, fresh: bool) -> dict[ObjectRef, JSON]:
        rollout = self._get(self.ref, fresh=fresh)
        objs = {self.ref: rollout}
        plan = self._plan(rollout)
        self._mirror_error = None
        if isinstance(plan, MirrorPlan):
            for ref in plan.services:
                try:
                    objs[ref] = self._get(ref, fresh=fresh)
                except KubeError as exc:
                    if not exc.retryable:
                        self._mirror_error = f"mirror state unknown: {exc}"
                        continue
                    raise
        return objs

    def _stable_image(self, view: RolloutView) -> str:
        if not view.in_progress:
            return view.canary_image
        if not view.stable_hash:
            return "?"
        if view.stable_hash not in self._images:
            try:
                sets = self.api.list(
                    REPLICASET,
                    self.ref.namespace,
                    label_selector=f"{HASH_LABEL}={view.stable_hash}",
                )
                image = _images(dig(sets, 0, "spec", "template", "spec", default={}))
            except KubeError:
                image = "? (cannot list replicasets)"
            self._images[view.stable_hash] = image
        return self._images[view.stable_hash]

    def status(self, objs: Mapping[ObjectRef, JSON] | None = None) -> RolloutView:
        """The Rollout as the console understands it (phase, step, weights, revisions...)."""
        rollout = (objs or self._snapshot(fresh=False))[self.ref]
        view = RolloutView.of(rollout)
        return dataclasses.replace(view, stable_image=self._stable_image(view))

    def _mirror_state(self, objs: Mapping[ObjectRef, JSON]) -> tuple[bool, int]:
        plan = self._plan(objs[self.ref])
        if not isinstance(plan, MirrorPlan):
            return False, 0
        for ref in plan.services:
            for route in dig(objs.get(ref), "spec", "http", default=[]):
                if route.get("name") == plan.route_name and route.get("mirror"):
                    value = dig(route, "mirrorPercentage", "value", default=100.0)
                    return True, round(float(value))
        return False, 0

    def _state(self, objs: Mapping[ObjectRef, JSON]) -> RoutingState:
        view = self.status(objs)
        mirroring, percent = self._mirror_state(objs)
        canary_ready = min(view.updated, view.ready) if view.in_progress else 0
        text = f"{self.describe()}: {view.summary()}"
        if mirroring:
            text += f" | mirroring {percent}% to canary"
        if self._mirror_error:
            text += f" | {self._mirror_error}"
        return RoutingState(
            weight=view.weight,
            mirror=mirroring,
            mirror_percent=percent if mirroring else 0,
            canary_ready=canary_ready,
            stable_ready=max(0, view.ready - canary_ready),
            detail=self._detail(text),
        )

    def plan_weights(self) -> list[int]:
        """The setWeight values of the Rollout's steps, in order (for the engine's plan)."""
        view = RolloutView.of(self._snapshot(fresh=False)[self.ref])
        return [int(s["setWeight"]) for s in view.steps if s.get("setWeight") is not None]

    # --- acting ----------------------------------------------------------------------------
    def _status_write(self, rollout: JSON, body: JSON, *, precondition: bool) -> Write:
        sent = with_rv(rollout, body) if precondition else body
        unified = copy.deepcopy(sent)
        if "pauseConditions" in body.get("status", {}):
            unified["spec"] = {"paused": False}
        return Write(self.ref, sent, subresource="status", fallback=Write(self.ref, unified))

    def set_weight(self, weight: int) -> RoutingState:
        view = RolloutView.of(self._snapshot(fresh=False)[self.ref])
        if weight in (view.weight, view.set_weight):
            return self.read()
        if not view.steps:
            raise RouterError(
                f"{self.describe()} has no canary steps: Argo goes straight to 100%; promote",
                retryable=False,
            )
        if view.aborted:
            raise RouterError(
                f"{self.describe()} is aborted: `kubectl argo rollouts retry rollout "
                f"{self.ref.name}` restarts it",
                retryable=False,
            )
        if weight < view.set_weight:
            raise RouterError(
                f"Argo Rollouts cannot step back ({view.set_weight}% -> {weight}%): kill "
                "aborts to the stable version, pause holds here",
                retryable=False,
            )
        start = (view.step_index or 0, bool(view.pause_reasons))
        target = target_index(view.steps, start[0], view.set_weight + 1)
        upcoming = current_set_weight(view.steps, target, False)
        if weight != upcoming:
            # never let a plan that differs from the Rollout's steps (or the engine's first
            # set_weight at start) push Argo somewhere nobody asked for
            raise RouterError(
                f"the Rollout's next step sets {upcoming}%, not {weight}%: Argo owns the steps,"
                f" so the plan must follow them ({self.plan_weights()})",
                retryable=False,
            )

        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            rollout = objs[self.ref]
            now = RolloutView.of(rollout)
            index = now.step_index or 0
            advanced = index > start[0] or (start[1] and not now.pause_reasons)
            writes = []
            if not advanced and index < target:
                if now.pause_reasons:
                    writes.append(
                        self._status_write(
                            rollout, {"status": {"pauseConditions": None}}, precondition=False
                        )
                    )
                else:
                    body = {"status": {"pauseConditions": None, "currentStepIndex": index + 1}}
                    writes.append(self._status_write(rollout, body, precondition=True))
            if now.spec_paused:
                writes.append(Write(self.ref, {"spec": {"paused": False}}))
            return writes

        return self._converge("step forward", compute)

    def set_paused(self, paused: bool) -> RoutingState:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            if RolloutView.of(objs[self.ref]).spec_paused == paused:
                return []
            return [Write(self.ref, {"spec": {"paused": paused}})]

        return self._converge("pause" if paused else "resume", compute)

    def abort(self) -> RoutingState:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            if RolloutView.of(objs[self.ref]).aborted:
                return []
            return [
                self._status_write(objs[self.ref], {"status": {"abort": True}}, precondition=False)
            ]

        state = self._converge("kill", compute, kill=True)
        return self._mirror_off_after(state)

    def promote(self) -> RoutingState:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            view = RolloutView.of(objs[self.ref])
            if view.promote_full or view.canary_hash == view.stable_hash:
                return []
            return [
                self._status_write(
                    objs[self.ref], {"status": {"promoteFull": True}}, precondition=False
                )
            ]

        state = self._converge("promote", compute)
        return self._mirror_off_after(state)

    def _mirror_off_after(self, state: RoutingState) -> RoutingState:
        """Kill and promote end mirroring at once (Argo would remove the route later)."""
        if not state.mirror:
            return state
        try:
            return self.set_mirror(False)
        except RouterError as exc:
            return RoutingState(
                **{**state.to_dict(), "detail": f"{state.detail} | mirror still on: {exc}"}
            )

    def shadow_unsupported(self) -> str | None:
        try:
            plan = self._plan(self._snapshot(fresh=False)[self.ref])
        except RouterError as exc:
            return f"cannot read the Rollout to check ({exc})"
        return plan if isinstance(plan, str) else None

    def set_mirror(self, on: bool) -> RoutingState:
        rollout = self._snapshot(fresh=False)[self.ref]
        plan = self._plan(rollout)
        if isinstance(plan, str):
            if not on:
                return self.read()
            raise Unsupported(plan)
        percent = self.options.mirror_percent
        if self.step_percent and plan.step and plan.step.get("percentage") is not None:
            percent = int(plan.step["percentage"])

        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            writes = []
            for ref, route_name in zip(plan.services, plan.route_names, strict=True):
                vs = objs.get(ref)
                if vs is None:
                    raise RouterError(f"{self._mirror_error or ref}", retryable=False)
                http = list(dig(vs, "spec", "http", default=[]))
                if on:
                    primaries = [r for r in http if r.get("name") not in plan.managed]
                    view = find_route(
                        {"spec": {"http": primaries}},
                        route_name,
                        plan.selector,
                        f"VirtualService {ref.namespace}/{ref.name}",
                    )
                    new = mirror_http(
                        http, plan, view, percent, _istio_match(plan.step, view.route)
                    )
                else:
                    new = [r for r in http if r.get("name") != plan.route_name]
                if new != http:
                    writes.append(Write(ref, with_rv(vs, {"spec": {"http": new}})))
            return writes

        return self._converge("shadow" if on else "shadow off", compute)


def build(settings: Mapping[str, Any], api: KubeApi) -> ArgoRolloutsRouter:
    from adapters.kubernetes.istio import parse_api_version

    check_settings(KIND, settings, SETTINGS, ("name",))
    return ArgoRolloutsRouter(
        api,
        RouterOptions.from_settings(settings, api),
        name=str(settings["name"]),
        mirror_route=str(settings.get("mirror_route") or ""),
        istio_version=parse_api_version(
            settings.get("istio_api_version"), "networking.istio.io", "v1beta1"
        ),
        step_percent="mirror_percent" not in settings,
    )


__all__ = [
    "ArgoRolloutsRouter",
    "RolloutView",
    "build",
    "current_set_weight",
    "target_index",
]
