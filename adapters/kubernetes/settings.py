"""The settings every Kubernetes router shares (namespace, watch, Events, retry budgets,
mirror percentage) and the checks that name an unknown or missing one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.kubernetes.connection import CONNECTION_KEYS, KubeApi
from adapters.kubernetes.errors import RetryPolicy

COMMON_KEYS = CONNECTION_KEYS | {
    "name",
    "watch",
    "events",
    "retry_budget_s",
    "kill_retry_s",
    "mirror_percent",
}


def config_error(message: str) -> Exception:
    from adapters.registry import AdapterConfigError

    return AdapterConfigError(message)


def check_settings(
    kind: str, settings: Mapping[str, Any], extra: Iterable[str], required: Iterable[str]
) -> None:
    """Unknown or missing settings are configuration errors that name them."""
    known = COMMON_KEYS | set(extra)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise config_error(
            f"unknown {kind} router setting(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    missing = [k for k in required if not settings.get(k)]
    if missing:
        raise config_error(f"{kind} router needs: {', '.join(missing)}")


def _as_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise config_error(f"router.{name} must be true or false, got {value!r}")


@dataclass(frozen=True, slots=True)
class RouterOptions:
    namespace: str
    watch: bool = True
    events: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    kill_retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(budget_s=5.0))
    mirror_percent: int = 100

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], api: KubeApi) -> RouterOptions:
        try:
            budget = float(settings.get("retry_budget_s", 3.0))
            kill_budget = float(settings.get("kill_retry_s", 5.0))
            percent = int(settings.get("mirror_percent", 100))
        except (TypeError, ValueError) as exc:
            raise config_error(f"router: {exc}") from exc
        if not 1 <= percent <= 100:
            raise config_error(f"router.mirror_percent must be 1..100, got {percent}")
        return cls(
            namespace=str(settings.get("namespace") or api.namespace),
            watch=_as_bool(settings.get("watch", True), "watch"),
            events=_as_bool(settings.get("events", True), "events"),
            retry=RetryPolicy(budget_s=budget),
            kill_retry=RetryPolicy(budget_s=kill_budget, max_conflicts=1000),
            mirror_percent=percent,
        )
