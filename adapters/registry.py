"""Which adapter a config's `kind` names. Adding a backend is one line here (and its module):
its settings model (which the config's `source:` or `router:` union is built from) and its
builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from adapters.kubernetes import ROUTER_BUILDERS as _KUBE_ROUTERS  # imports kubernetes lazily
from adapters.kubernetes.settings import ROUTER_SETTINGS as _KUBE_SETTINGS
from adapters.prometheus.settings import PrometheusSettings
from adapters.settings_types import AdapterConfigError, AdapterSettings
from adapters.simulator import SimulatorSettings
from canary_tui.core.clock import Clock
from canary_tui.core.ports import MetricSource, TrafficRouter

__all__ = ["AdapterConfigError", "AdapterContext", "build_router", "build_source"]

#: What a builder is given: the validated settings model, or a mapping it validates itself.
Settings = Mapping[str, Any] | AdapterSettings
P = TypeVar("P")


@dataclass
class AdapterContext:
    """What builders share: the clock, and objects one adapter builds for another."""

    clock: Clock
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Adapter(Generic[P]):
    """One backend: its settings model and its builder."""

    settings: type[AdapterSettings]
    build: Callable[[Settings, AdapterContext], P]


def _simulator(settings: Settings, ctx: AdapterContext, section: str) -> Any:
    from adapters.simulator import SimulatedService

    if "simulator" not in ctx.shared:
        checked = SimulatorSettings.parse(settings, section)
        try:
            ctx.shared["simulator"] = SimulatedService(ctx.clock, checked)
        except AdapterConfigError as exc:
            exc.section = exc.section or section
            raise
    return ctx.shared["simulator"]


def _simulator_source(settings: Settings, ctx: AdapterContext) -> MetricSource:
    source: MetricSource = _simulator(settings, ctx, "source").metrics
    return source


def _simulator_router(settings: Settings, ctx: AdapterContext) -> TrafficRouter:
    router: TrafficRouter = _simulator(settings, ctx, "router").router
    return router


def _prometheus_source(settings: Settings, ctx: AdapterContext) -> MetricSource:
    from adapters.prometheus import build_prometheus_source

    return build_prometheus_source(settings, ctx)


SOURCES: dict[str, Adapter[MetricSource]] = {
    "simulator": Adapter(SimulatorSettings, _simulator_source),
    "prometheus": Adapter(PrometheusSettings, _prometheus_source),
}

ROUTERS: dict[str, Adapter[TrafficRouter]] = {
    "simulator": Adapter(SimulatorSettings, _simulator_router),
    # argo-rollouts, istio, gateway-api, deployments
    **{kind: Adapter(_KUBE_SETTINGS[kind], build) for kind, build in _KUBE_ROUTERS.items()},
}


def build_source(kind: str, settings: Settings, ctx: AdapterContext) -> MetricSource:
    if kind not in SOURCES:
        raise AdapterConfigError(
            f"unknown metric source {kind!r} (known: {', '.join(sorted(SOURCES))})",
            "kind",
            section="source",
        )
    return SOURCES[kind].build(settings, ctx)


def build_router(kind: str, settings: Settings, ctx: AdapterContext) -> TrafficRouter:
    if kind not in ROUTERS:
        raise AdapterConfigError(
            f"unknown traffic router {kind!r} (known: {', '.join(sorted(ROUTERS))})",
            "kind",
            section="router",
        )
    return ROUTERS[kind].build(settings, ctx)
