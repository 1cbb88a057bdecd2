"""The two protocols at the edge of the core: where metrics come from, where traffic goes.

Adapters (simulator, Prometheus, Kubernetes routers) implement these; the engine uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from canary_tui.core.metrics import Sample


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What the cluster says about the canary's traffic right now (not what was asked)."""

    weight: int
    mirror: bool = False
    mirror_percent: int = 0
    canary_ready: int | None = None
    stable_ready: int | None = None
    detail: str = ""
    #: The router's own controller's view, where it has one (Argo Rollouts): "progressing",
    #: "paused", "promoted" or "rolled_back" (core.state.Phase values); "" = no controller.
    phase: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `phase` only when a controller said one (so the records of routers
        without one stay what older versions wrote, and older readers can read them)."""
        out = asdict(self)
        if not self.phase:
            del out["phase"]
        return out


class RouterError(Exception):
    """A traffic router call failed. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Unsupported(RouterError):
    """The router cannot do this at all (e.g. shadow on plain Deployments)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class MetricSource(Protocol):
    """Counts per variant for a window. Never raises for missing data: returns no-data."""

    def fetch(self, start: float, end: float) -> Sample: ...


class TrafficRouter(Protocol):
    """Reads and changes routing. Every call is idempotent and returns the state read back."""

    def read(self) -> RoutingState: ...

    def set_weight(self, weight: int) -> RoutingState: ...

    def set_mirror(self, on: bool) -> RoutingState: ...

    def set_paused(self, paused: bool) -> RoutingState:
        """Pause or resume the router's own controller (Argo Rollouts); others just read."""
        ...

    def abort(self) -> RoutingState: ...

    def promote(self) -> RoutingState: ...

    def shadow_unsupported(self) -> str | None:
        """Why this router cannot mirror traffic, or None when it can."""
        ...


# --- optional source capabilities: a source implements those it has; mypy checks them -------
@runtime_checkable
class ReadsWindows(Protocol):
    """The source can read a span of the past as consecutive windows in one go (a Prometheus
    range query): the loop reads the baseline's windows before the canary with it, so the
    judge starts with the baseline's index of dispersion measured. Never raises."""

    def fetch_windows(self, start: float, end: float, step_s: float) -> list[Sample]:
        """Consecutive windows covering [start, end), each at least `step_s` long (a source
        that cannot resolve `step_s` uses the shortest it can); windows without data are
        left out. A failure of the whole read is one no-data Sample over [start, end) that
        says why."""
        ...


@runtime_checkable
class SmoothsTicks(Protocol):
    """The source's count for a tick covers a longer span than the tick, scaled down to it (a
    Prometheus `increase()` over `min_range`): consecutive ticks overlap, so their spread
    understates how bursty the counts are. With ReadsWindows as well, the loop then measures
    the dispersion on the source's own non-overlapping windows instead of the ticks."""

    def resolution_s(self, tick_s: float) -> float:
        """The span each tick's counts really cover, for ticks of `tick_s` seconds."""
        ...


# --- optional router capabilities: a router implements those it has; mypy checks them -------
RoutingListener = Callable[[RoutingState], None]


@runtime_checkable
class FollowsChanges(Protocol):
    """The router has a change feed (Kubernetes watches): `listener` is called from its
    thread with each new state; the returned function unsubscribes."""

    def subscribe(self, listener: RoutingListener) -> Callable[[], None]: ...


@runtime_checkable
class RecordsEvents(Protocol):
    """The router can note an action on its object (a Kubernetes Event). Never raises."""

    def record_event(self, verb: str, actor: str, message: str) -> None: ...


@runtime_checkable
class OwnsSteps(Protocol):
    """The router's own controller walks the steps (Argo Rollouts): the loop follows its
    weight instead of holding the plan when it moves."""

    owns_steps: bool


@runtime_checkable
class Closeable(Protocol):
    """The adapter holds threads or connections to release (with a bounded wait)."""

    def close(self) -> None: ...


def owns_steps(router: object) -> bool:
    return isinstance(router, OwnsSteps) and bool(router.owns_steps)
