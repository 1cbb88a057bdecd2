"""What a session publishes: frames of state, verdicts, gauges, graph points and activity.

A frame is plain data. The first frame a client receives is `full` and carries the recent
history (graph window, recent activity); later frames carry only what is new. Live, attached
and replayed sessions all produce frames, so the dashboard cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canary_tui.core.metrics import Sample
from canary_tui.core.plan import RampPlan
from canary_tui.core.ports import RoutingState
from canary_tui.core.slo import Gauge
from canary_tui.core.state import CanaryState
from canary_tui.core.verdict import Verdict


@dataclass(frozen=True, slots=True)
class CanaryInfo:
    """Who the canary is: shown in the header."""

    name: str
    service: str
    namespace: str = "default"
    stable_version: str = "stable"
    canary_version: str = "canary"
    router: str = "simulator"
    metrics: str = "simulator"


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One tick of the comparison graphs: rates per second, error ratio, latency quantiles (ms)."""

    t: float
    rps_baseline: float | None = None
    rps_canary: float | None = None
    err_baseline: float | None = None
    err_canary: float | None = None
    p50_baseline: float | None = None
    p50_canary: float | None = None
    p95_baseline: float | None = None
    p95_canary: float | None = None
    p99_baseline: float | None = None
    p99_canary: float | None = None
    no_data: bool = False

    @classmethod
    def from_sample(cls, sample: Sample) -> SeriesPoint:
        if not sample.ok or sample.baseline is None or sample.canary is None:
            return cls(t=sample.end, no_data=True)
        dt = max(sample.end - sample.start, 1e-9)
        values: dict[str, float | None] = {}
        for tag, counts in (("baseline", sample.baseline), ("canary", sample.canary)):
            values[f"rps_{tag}"] = counts.requests / dt
            values[f"err_{tag}"] = counts.errors / counts.requests if counts.requests else None
            for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                qv = counts.latency.quantile(q) if counts.latency is not None else None
                values[f"{name}_{tag}"] = qv * 1000.0 if qv is not None else None
        return cls(t=sample.end, **values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ActivityEntry:
    """One line of the activity pane: an audit record, a warning, a join or a note."""

    t: float
    kind: str  # intent | result | refused | note | warn | info | presence | verdict
    actor: str
    text: str
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything a dashboard needs to draw, at one moment."""

    now: float
    info: CanaryInfo
    plan: RampPlan
    state: CanaryState
    routing: RoutingState | None
    verdicts: tuple[Verdict, ...]
    gauges: tuple[Gauge, ...]
    no_data: str | None = None
    warning: str | None = None
    points: tuple[SeriesPoint, ...] = ()
    activity: tuple[ActivityEntry, ...] = ()
    full: bool = False
    sample: Sample | None = None
    presence: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
