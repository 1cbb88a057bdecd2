"""Which adapter a config's `kind` names. Adding a backend is one line here (and its module)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from adapters.kubernetes import ROUTER_BUILDERS as _KUBE_ROUTERS  # imports kubernetes lazily
from canary_tui.core.clock import Clock
from canary_tui.core.ports import MetricSource, TrafficRouter


class AdapterConfigError(ValueError):
    """An adapter's settings are wrong; the message names the setting."""


@dataclass
class AdapterContext:
    """What builders share: the clock, and objects one adapter builds for another."""

    clock: Clock
    shared: dict[str, Any] = field(default_factory=dict)


def _simulator(settings: Mapping[str, Any], ctx: AdapterContext) -> Any:
    from adapters.simulator import SimulatedService, SimulatorSettings

    if "simulator" not in ctx.shared:
        known = {f.name for f in fields(SimulatorSettings)} - {"buckets"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise AdapterConfigError(
                f"unknown simulator setting(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        try:
            ctx.shared["simulator"] = SimulatedService(ctx.clock, SimulatorSettings(**settings))
        except (TypeError, ValueError) as exc:
            raise AdapterConfigError(f"simulator: {exc}") from exc
    return ctx.shared["simulator"]


def _simulator_source(settings: Mapping[str, Any], ctx: AdapterContext) -> MetricSource:
    source: MetricSource = _simulator(settings, ctx).metrics
    return source


def _simulator_router(settings: Mapping[str, Any], ctx: AdapterContext) -> TrafficRouter:
    router: TrafficRouter = _simulator(settings, ctx).router
    return router


def _prometheus_source(settings: Mapping[str, Any], ctx: AdapterContext) -> MetricSource:
    from adapters.prometheus import build_prometheus_source

    return build_prometheus_source(settings, ctx)


SOURCES: dict[str, Callable[[Mapping[str, Any], AdapterContext], MetricSource]] = {
    "simulator": _simulator_source,
    "prometheus": _prometheus_source,
}

ROUTERS: dict[str, Callable[[Mapping[str, Any], AdapterContext], TrafficRouter]] = {
    "simulator": _simulator_router,
    **_KUBE_ROUTERS,  # argo-rollouts, istio, gateway-api, deployments
}


def build_source(kind: str, settings: Mapping[str, Any], ctx: AdapterContext) -> MetricSource:
    if kind not in SOURCES:
        raise AdapterConfigError(
            f"unknown metric source {kind!r} (known: {', '.join(sorted(SOURCES))})"
        )
    return SOURCES[kind](settings, ctx)


def build_router(kind: str, settings: Mapping[str, Any], ctx: AdapterContext) -> TrafficRouter:
    if kind not in ROUTERS:
        raise AdapterConfigError(
            f"unknown traffic router {kind!r} (known: {', '.join(sorted(ROUTERS))})"
        )
    return ROUTERS[kind](settings, ctx)
