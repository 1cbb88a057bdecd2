"""Plain Deployments (no mesh): the canary's weight is its share of ready replicas.

Two Deployments behind one Service: `stable` and `canary`. Setting weight w scales the
canary to round(total * w / 100) replicas (at least 1 above 0%, at most total-1 below 100%)
and the stable to the rest, so the Service spreads requests in that ratio. `total` is
`replicas` from the settings, or the sum of both Deployments' spec.replicas as read.

The scale-up is written before the scale-down, so capacity never dips. read() reports the
share of *ready* replicas (what the Service really balances over), falling back to the
desired replicas while none are ready. Shadow is impossible without a proxy: refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.kubernetes.base import (
    JSON,
    Compute,
    KubeRouter,
    Mirror,
    RouterOptions,
    Write,
    dig,
    with_rv,
)
from adapters.kubernetes.connection import DEPLOYMENT, KubeApi, ObjectRef
from adapters.kubernetes.settings import DeploymentsSettings
from canary_tui.core.ports import RouterError, RoutingState, Unsupported

KIND = "deployments"
NO_SHADOW = (
    "plain Deployments have no proxy that could copy requests; shadow needs the istio or "
    "gateway-api router, or argo-rollouts with an Istio managed mirror route"
)


def canary_replicas(total: int, weight: int) -> int:
    """How many of `total` replicas the canary gets at `weight` percent."""
    if weight <= 0 or total <= 0:
        return 0
    if weight >= 100:
        return total
    if total == 1:
        return 1 if weight >= 50 else 0
    return max(1, min(total - 1, round(total * weight / 100)))


def _replicas(obj: JSON) -> int:
    return int(dig(obj, "spec", "replicas", default=1))


def _ready(obj: JSON) -> int:
    return int(dig(obj, "status", "readyReplicas", default=0))


class DeploymentsRouter(KubeRouter):
    """TrafficRouter over a stable and a canary Deployment."""

    kind = KIND

    def __init__(
        self,
        api: KubeApi,
        options: RouterOptions,
        *,
        stable: str,
        canary: str,
        replicas: int | None = None,
    ) -> None:
        super().__init__(api, options)
        self.stable = ObjectRef(DEPLOYMENT, options.namespace, stable)
        self.canary = ObjectRef(DEPLOYMENT, options.namespace, canary)
        self.total = replicas

    def describe(self) -> str:
        return f"Deployments {self.stable.namespace}/{{{self.stable.name},{self.canary.name}}}"

    def event_ref(self) -> ObjectRef:
        return self.canary

    def _collect(self, fresh: bool) -> dict[ObjectRef, JSON]:
        return {ref: self._get(ref, fresh=fresh) for ref in (self.stable, self.canary)}

    def _state(self, objs: Mapping[ObjectRef, JSON]) -> RoutingState:
        stable, canary = objs[self.stable], objs[self.canary]
        s_ready, c_ready = _ready(stable), _ready(canary)
        s_want, c_want = _replicas(stable), _replicas(canary)
        if s_ready + c_ready > 0:
            weight = round(100 * c_ready / (s_ready + c_ready))
            basis = "share of ready replicas"
        else:
            weight = round(100 * c_want / (s_want + c_want)) if s_want + c_want else 0
            basis = "no ready pods yet: share of desired replicas"
        text = (
            f"{self.describe()}: stable {s_ready}/{s_want} ready, canary {c_ready}/{c_want}"
            f" ready ({basis})"
        )
        return RoutingState(
            weight=weight, canary_ready=c_ready, stable_ready=s_ready, detail=self._detail(text)
        )

    def _writes_for(self, *, weight: int | None = None, mirror: Mirror = None) -> Compute:
        if weight is None:  # no mirroring here: set_mirror never gets this far
            raise RouterError("a Deployment split cannot mirror traffic")
        return self._scale(weight)

    def _scale(self, weight: int) -> Compute:
        def compute(objs: Mapping[ObjectRef, JSON]) -> list[Write]:
            stable, canary = objs[self.stable], objs[self.canary]
            total = self.total or (_replicas(stable) + _replicas(canary))
            if total <= 0:
                raise RouterError(
                    f"{self.describe()} both have 0 replicas: set router.replicas (the total)",
                    retryable=False,
                )
            want_c = canary_replicas(total, weight)
            want = {self.canary: want_c, self.stable: total - want_c}
            up_first = sorted(
                (self.canary, self.stable), key=lambda r: want[r] <= _replicas(objs[r])
            )
            return [
                Write(ref, with_rv(objs[ref], {"spec": {"replicas": want[ref]}}))
                for ref in up_first
                if _replicas(objs[ref]) != want[ref]
            ]

        return compute

    def set_mirror(self, on: bool) -> RoutingState:
        if not on:
            return self.read()
        raise Unsupported(NO_SHADOW)

    def shadow_unsupported(self) -> str | None:
        return NO_SHADOW


def build(settings: DeploymentsSettings, api: KubeApi) -> DeploymentsRouter:
    return DeploymentsRouter(
        api,
        settings.options(api),
        stable=settings.stable,
        canary=settings.canary,
        replicas=settings.replicas,
    )
