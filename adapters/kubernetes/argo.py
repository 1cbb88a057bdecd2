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
routes traffic, else the weight of the current step; once fully promoted (the canary's
ReplicaSet is the stable one) 100%, as Argo's own GetCurrentSetWeight says. `phase` is the
Rollout's state in the console's terms (progressing, paused at a pause step or by
spec.paused, promoted, rolled_back), and `detail` has one line per fact: the phase with the
current step of the plan, weights, pause conditions, revisions and images; the Rollout's
message; and one line per AnalysisRun of the current step or background analysis with each
metric's result and last measurement (the runs are watched, so their results arrive live).

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
    dig,
    with_rv,
)
from adapters.kubernetes.connection import (
    ANALYSISRUN,
    REPLICASET,
    ROLLOUT,
    KubeApi,
    ObjectRef,
    istio_virtualservice,
)
from adapters.kubernetes.errors import KubeError
from adapters.kubernetes.istio import RouteView, Selector, find_route, mirror_target
from adapters.kubernetes.settings import ArgoRolloutsSettings
from canary_tui.core.ports import RouterError, RoutingState, Unsupported

KIND = "argo-rollouts"
HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"


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
    revision: str = ""
    stable_revision: str = ""
    analysis: tuple[tuple[str, str, str, str], ...] = ()  # (kind, name, status, message)

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
            revision=str(dig(obj, "metadata", "annotations", REVISION, default="")),
            analysis=_analysis_of(status),
        )

    @property
    def weight(self) -> int:
        if self.aborted:
            return 0
        if self.fully_promoted:
            # Argo routes 0% to "canary" once the canary *is* the stable: every request goes
            # to the new version, which the console calls 100%
            return 100
        return self.actual_weight if self.actual_weight is not None else self.set_weight

    @property
    def in_progress(self) -> bool:
        return bool(self.canary_hash) and self.canary_hash != self.stable_hash

    @property
    def fully_promoted(self) -> bool:
        """The current pod template is the stable one: nothing is being canaried."""
        return bool(self.canary_hash) and self.canary_hash == self.stable_hash

    @property
    def paused(self) -> bool:
        return bool(self.pause_reasons) or self.spec_paused or self.phase == "Paused"

    @property
    def console_phase(self) -> str:
        """progressing, paused, promoted or rolled_back (core.state.Phase values)."""
        if self.aborted:
            return "rolled_back"
        if self.fully_promoted:
            return "promoted"
        return "paused" if self.paused else "progressing"

    @property
    def current_step(self) -> str:
        """`step 2/5: pause (until resumed)`: where the plan is and what that step does."""
        if not self.steps:
            return "no steps"
        index = self.step_index or 0
        if self.fully_promoted or index >= len(self.steps):
            return f"done ({len(self.steps)} steps)"
        return f"step {index + 1}/{len(self.steps)}: {step_label(self.steps[index])}"

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
            self.current_step,
            f"set {self.set_weight}%"
            + (f" actual {self.actual_weight}%" if self.actual_weight is not None else ""),
        ]
        if paused:
            parts.append("paused: " + ", ".join(paused))
        if self.promote_full:
            parts.append("full promotion requested")
        stable_rev = f" rev {self.stable_revision}" if self.stable_revision else ""
        parts.append(f"stable {self.stable_hash[:10] or '?'}{stable_rev} {self.stable_image}")
        if self.in_progress:
            rev = f" rev {self.revision}" if self.revision else ""
            parts.append(f"canary {self.canary_hash[:10]}{rev} {self.canary_image}")
        return " | ".join(parts)


def _analysis_of(status: JSON) -> tuple[tuple[str, str, str, str], ...]:
    """(kind, name, status, message) of the runs the Rollout's status names."""
    out = []
    for kind, key in (
        ("step", "currentStepAnalysisRunStatus"),
        ("background", "currentBackgroundAnalysisRunStatus"),
    ):
        run = dig(status, "canary", key)
        if isinstance(run, dict) and run.get("name"):
            out.append(
                (kind, str(run["name"]), str(run.get("status") or "?"),
                 str(run.get("message") or ""))
            )  # fmt: skip
    return tuple(out)


def step_label(step: JSON) -> str:
    """What one canary step does, as `kubectl argo rollouts get` would say it."""
    if step.get("setWeight") is not None:
        return f"setWeight {step['setWeight']}"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration not in (None, "") else "pause (until resumed)"
    if "analysis" in step:
        names = [str(t.get("templateName", "?")) for t in dig(step, "analysis", "templates",
                                                               default=[])]  # fmt: skip
        return "analysis " + (", ".join(names) or "?")
    for key in ("experiment", "setCanaryScale", "setHeaderRoute", "setMirrorRoute", "plugin"):
        if key in step:
            name = dig(step, key, "name", default="")
            return f"{key} {name}".strip()
    return ", ".join(sorted(step)) or "?"


def rollout_plan(steps: tuple[JSON, ...]) -> tuple[int, ...]:
    """The weights a Rollout's steps go through below 100%, in order, without repeats: the
    console's plan for it. A Rollout with no setWeight step holds the canary at 0% until it is
    fully promoted, so its plan is (0,) (never an empty plan the default would replace)."""
    out: list[int] = []
    for i in range(len(steps)):
        weight = current_set_weight(steps, i, False)
        if weight < 100 and (not out or weight > out[-1]):
            out.append(weight)
    return tuple(out) or (0,)


def analysis_line(kind: str, name: str, status: str, message: str, run: JSON | None) -> str:
    """One AnalysisRun: its phase and message, then each metric's result and last value."""
    phase = str(dig(run, "status", "phase", default="")) or status
    text = f"analysis {name} ({kind}): {phase}"
    msg = str(dig(run, "status", "message", default="")) or message
    if msg:
        text += f" ({msg})"
    for m in dig(run, "status", "metricResults", default=[]):
        counts = ", ".join(
            f"{m[k]} {k}" for k in ("successful", "failed", "inconclusive", "error") if m.get(k)
        )
        part = f"{m.get('name', '?')} {m.get('phase', '?')}"
        if counts:
            part += f" ({counts} of {m.get('count', '?')})"
        last = (m.get("measurements") or [{}])[-1]
        if last.get("value") not in (None, ""):
            part += f" last {last['value']}"
        note = m.get("message") or last.get("message")
        if note:
            part += f": {note}"
        text += " | " + part
    return text


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
    istio: JSON = routing.get("istio") or {}
    managed = tuple(str(m.get("name")) for m in routing.get("managedRoutes") or [])
    why = _why_no_mirror(istio, managed, wanted)
    if why is not None:
        return why
    namespace = str(dig(obj, "metadata", "namespace", default="default"))
    refs, routes = _virtual_services(istio, namespace, version)
    if not refs:
        return "the Rollout's trafficRouting.istio names no VirtualService"
    steps = [s["setMirrorRoute"] for s in canary.get("steps") or [] if s.get("setMirrorRoute")]
    stepped = [s["name"] for s in steps if s.get("name") in managed]
    name = wanted or (stepped[0] if stepped else managed[0])
    step = next((s for s in steps if s.get("name") == name), None)
    return MirrorPlan(name, managed, refs, routes, _selector(istio, canary), step)


def _why_no_mirror(istio: JSON, managed: tuple[str, ...], wanted: str) -> str | None:
    """Why a Rollout cannot mirror: no Istio routing, no managed route, or not this one."""
    if not istio:
        return (
            "this Rollout does not route through Istio: shadow needs "
            "trafficRouting.istio with a managed mirror route"
        )
    if not managed:
        return (
            "the Rollout lists no trafficRouting.managedRoutes: add one (e.g. "
            "`- name: mirror-route`) so a mirror route may be managed"
        )
    if wanted and wanted not in managed:
        return f"mirror_route {wanted!r} is not in the Rollout's managedRoutes {list(managed)}"
    return None


def _virtual_services(
    istio: JSON, namespace: str, version: str
) -> tuple[tuple[ObjectRef, ...], tuple[str, ...]]:
    """The VirtualServices (`name.namespace` or `name`) the Rollout routes through, each with
    its first named route ("" for all)."""
    entries = istio.get("virtualServices") or (
        [istio["virtualService"]] if istio.get("virtualService") else []
    )
    refs, routes = [], []
    for entry in entries:
        vs_name, _, vs_ns = str(entry.get("name", "")).partition(".")
        refs.append(ObjectRef(istio_virtualservice(version), vs_ns or namespace, vs_name))
        routes.append(str((entry.get("routes") or [""])[0]))
    return tuple(refs), tuple(routes)


def _selector(istio: JSON, canary: JSON) -> Selector:
    """How the VirtualService tells the variants apart: DestinationRule subsets, or hosts."""
    rule = istio.get("destinationRule") or {}
    return Selector(
        stable_subset=str(rule.get("stableSubsetName") or ""),
        canary_subset=str(rule.get("canarySubsetName") or ""),
        stable_host="" if rule else str(canary.get("stableService") or ""),
        canary_host="" if rule else str(canary.get("canaryService") or ""),
    )


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
        self._images: dict[str, tuple[str, str]] = {}  # stable hash -> (image, revision)
        self._mirror_error: str | None = None
        self._analysis_errors: dict[str, str] = {}

    # --- reading ---------------------------------------------------------------------------
    def _plan(self, rollout: JSON) -> MirrorPlan | str:
        return mirror_plan(rollout, self.mirror_route, self.istio_version)

    def _analysis_refs(self, rollout: JSON) -> list[ObjectRef]:
        view = RolloutView.of(rollout)
        ns = self.ref.namespace
        return [ObjectRef(ANALYSISRUN, ns, name) for _k, name, _s, _m in view.analysis]

    def _collect(self, fresh: bool) -> dict[ObjectRef, JSON]:
        rollout = self._get(self.ref, fresh=fresh)
        objs = {self.ref: rollout}
        self._analysis_errors = {}
        runs = self._analysis_refs(rollout)
        self._drop_stale_runs(runs)
        for ref in runs:
            # the runs are watched like the Rollout, so their results reach subscribers live;
            # one that cannot be read is shown from the Rollout's own summary of it
            try:
                objs[ref] = self._get(ref, fresh=fresh)
            except KubeError as exc:
                self._analysis_errors[ref.name] = f"cannot read the run: {exc}"
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

    def _drop_stale_runs(self, current: list[ObjectRef]) -> None:
        """Stop watching AnalysisRuns the Rollout no longer names (one per step otherwise)."""
        with self._lock:
            stale = [r for r in self._watchers if r.resource == ANALYSISRUN and r not in current]
            dropped = [(r, self._watchers.pop(r)) for r in stale]
        for ref, watcher in dropped:
            watcher.stop()
            self.cache.forget(ref)

    def _stable_image(self, view: RolloutView) -> tuple[str, str]:
        """(image, revision) of the stable ReplicaSet (listed once per stable hash)."""
        if not view.in_progress:
            return view.canary_image, view.revision
        if not view.stable_hash:
            return "?", ""
        if view.stable_hash not in self._images:
            try:
                sets = self.api.list(
                    REPLICASET,
                    self.ref.namespace,
                    label_selector=f"{HASH_LABEL}={view.stable_hash}",
                )
                image = _images(dig(sets, 0, "spec", "template", "spec", default={}))
                revision = str(dig(sets, 0, "metadata", "annotations", REVISION, default=""))
            except KubeError:
                image, revision = "? (cannot list replicasets)", ""
            self._images[view.stable_hash] = (image, revision)
        return self._images[view.stable_hash]

    def status(self, objs: Mapping[ObjectRef, JSON] | None = None) -> RolloutView:
        """The Rollout as the console understands it (phase, step, weights, revisions...)."""
        rollout = (objs or self._snapshot(fresh=False))[self.ref]
        view = RolloutView.of(rollout)
        image, revision = self._stable_image(view)
        return dataclasses.replace(view, stable_image=image, stable_revision=revision)

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
        lines = [self._detail(text)]
        if view.message:
            lines.append(f"message: {view.message}")
        for kind, name, status, message in view.analysis:
            run = objs.get(ObjectRef(ANALYSISRUN, self.ref.namespace, name))
            line = analysis_line(kind, name, status, message, run)
            if run is None and name in self._analysis_errors:
                line += f" ({self._analysis_errors[name]})"
            lines.append(line)
        return RoutingState(
            weight=view.weight,
            mirror=mirroring,
            mirror_percent=percent if mirroring else 0,
            canary_ready=canary_ready,
            stable_ready=max(0, view.ready - canary_ready),
            detail="\n".join(lines),
            phase=view.console_phase,
        )

    def plan_weights(self) -> list[int]:
        """The weights the Rollout's steps go through, in order (for the engine's plan)."""
        view = RolloutView.of(self._snapshot(fresh=False)[self.ref])
        return list(rollout_plan(view.steps))

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


def build(settings: ArgoRolloutsSettings, api: KubeApi) -> ArgoRolloutsRouter:
    return ArgoRolloutsRouter(
        api,
        settings.options(api),
        name=settings.name,
        mirror_route=settings.mirror_route,
        istio_version=settings.istio_api_version or "v1beta1",
        step_percent="mirror_percent" not in settings.model_fields_set,
    )


__all__ = [
    "ArgoRolloutsRouter",
    "RolloutView",
    "analysis_line",
    "build",
    "current_set_weight",
    "rollout_plan",
    "step_label",
    "target_index",
]
