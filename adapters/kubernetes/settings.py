"""Each Kubernetes router's settings as a pydantic model: the connection and the settings every
router shares (namespace, watch, Events, retry budgets, mirror percentage), then each kind's own.
`ROUTER_SETTINGS` maps a `router.kind` to its model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from adapters.kubernetes.errors import RetryPolicy
from adapters.settings_types import AdapterConfigError, AdapterSettings, seconds

if TYPE_CHECKING:
    from adapters.kubernetes.connection import ConnectionSettings, KubeApi


def config_error(message: str) -> Exception:
    return AdapterConfigError(message)


def _api_version(group: str) -> BeforeValidator:
    """`v1` or `group/v1` (another group is refused) as the version alone."""

    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"must be a version such as {group}/v1, got {value!r}")
        got_group, slash, version = value.partition("/")
        if slash and got_group != group:
            raise ValueError(f"must be in {group}, got {value!r}")
        return version if slash else value

    return BeforeValidator(check)


def _index_or_name(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Name = Annotated[str, Field(min_length=1)]
ISTIO = "networking.istio.io"
GATEWAY = "gateway.networking.k8s.io"


class KubeRouterSettings(AdapterSettings):
    """What every Kubernetes router shares: where to connect, and how to act."""

    kubeconfig: str | None = Field(
        default=None,
        description="The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`).",
    )
    context: str | None = Field(
        default=None, description="The kubeconfig context (default: current)."
    )
    namespace: str | None = Field(
        default=None, description="The object's namespace (default: the context's, else `default`)."
    )
    in_cluster: bool | Literal["auto"] | None = Field(
        default=None,
        description="Use the pod's service account (`auto`/none: only when no kubeconfig is "
        "found).",
    )
    timeout_s: Annotated[float, seconds(0.0, 300.0, above=True)] = Field(
        default=5.0, description="Seconds for one API request."
    )
    name: str | None = Field(default=None, description="The object's name.")
    watch: bool = Field(default=True, description="Refresh from a watch (else: poll each tick).")
    events: bool = Field(default=True, description="Record each action as a Kubernetes Event.")
    retry_budget_s: Annotated[float, seconds(0.0, 3600.0)] = Field(
        default=3.0, description="Seconds an action's retries (conflicts, timeouts) may take."
    )
    kill_retry_s: Annotated[float, seconds(0.0, 3600.0)] = Field(
        default=5.0, description="Seconds a kill's retries may take within one attempt."
    )
    mirror_percent: int = Field(
        default=100,
        ge=1,
        le=100,
        description="Shadow: the share of requests mirrored to the canary.",
    )

    @classmethod
    def noun(cls) -> str:
        return f"{super().noun()} router"

    def connection(self) -> ConnectionSettings:
        from adapters.kubernetes.connection import ConnectionSettings

        return ConnectionSettings(
            kubeconfig=self.kubeconfig or None,
            context=self.context or None,
            namespace=self.namespace or None,
            in_cluster=None if self.in_cluster in (None, "auto") else bool(self.in_cluster),
            timeout_s=self.timeout_s,
        )

    def options(self, api: KubeApi) -> RouterOptions:
        return RouterOptions(
            namespace=self.namespace or api.namespace,
            watch=self.watch,
            events=self.events,
            retry=RetryPolicy(budget_s=self.retry_budget_s),
            kill_retry=RetryPolicy(budget_s=self.kill_retry_s, max_conflicts=1000),
            mirror_percent=self.mirror_percent,
        )


class ArgoRolloutsSettings(KubeRouterSettings):
    kind: Literal["argo-rollouts"] = "argo-rollouts"
    name: Name = Field(description="The Rollout's name.")
    mirror_route: str = Field(
        default="", description="Shadow: the Istio VirtualService route the Rollout mirrors on."
    )
    istio_api_version: Annotated[str | None, _api_version(ISTIO)] = Field(
        default=None, description=f"The `{ISTIO}` version to use (default: `v1beta1`)."
    )


class IstioSettings(KubeRouterSettings):
    kind: Literal["istio"] = "istio"
    name: Name = Field(description="The VirtualService's name.")
    route: str = Field(default="", description="The http route's name (default: the only one).")
    stable_subset: str = Field(default="", description="The stable destination's subset.")
    canary_subset: str = Field(default="", description="The canary destination's subset.")
    stable_host: str = Field(default="", description="The stable destination's host.")
    canary_host: str = Field(default="", description="The canary destination's host.")
    api_version: Annotated[str | None, _api_version(ISTIO)] = Field(
        default=None, description=f"The `{ISTIO}` version to use (default: `v1beta1`)."
    )


class GatewayApiSettings(KubeRouterSettings):
    kind: Literal["gateway-api"] = "gateway-api"
    name: Name = Field(description="The HTTPRoute's name.")
    rule: Annotated[str, BeforeValidator(_index_or_name)] = Field(
        default="", description="The rule's index or name (default: the rule with both backends)."
    )
    stable_backend: str = Field(default="", description="The stable backendRef's name.")
    canary_backend: str = Field(default="", description="The canary backendRef's name.")
    api_version: Annotated[str | None, _api_version(GATEWAY)] = Field(
        default=None, description=f"The `{GATEWAY}` version to use (default: `v1`)."
    )


class DeploymentsSettings(KubeRouterSettings):
    kind: Literal["deployments"] = "deployments"
    stable: Name = Field(description="The stable Deployment's name.")
    canary: Name = Field(description="The canary Deployment's name.")
    name: str | None = Field(
        default=None, description="Not used: the Deployments are `stable` and `canary`."
    )
    replicas: int | None = Field(
        default=None,
        ge=1,
        description="The total of both (default: the sum of both Deployments' `spec.replicas`).",
    )


ROUTER_SETTINGS: dict[str, type[KubeRouterSettings]] = {
    "argo-rollouts": ArgoRolloutsSettings,
    "istio": IstioSettings,
    "gateway-api": GatewayApiSettings,
    "deployments": DeploymentsSettings,
}


@dataclass(frozen=True, slots=True)
class RouterOptions:
    namespace: str
    watch: bool = True
    events: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    kill_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(budget_s=5.0))
    mirror_percent: int = 100
