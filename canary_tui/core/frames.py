"""What a session publishes: frames of state, verdicts, gauges, graph points and activity.

A frame is plain data. The first frame a client receives is `full` and carries the recent
history (graph window, recent activity); later frames carry only what is new. Live, attached
and replayed sessions all produce frames, so the dashboard cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
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
    #: What the router cannot do at all, as (verb value, why) pairs, e.g.
    #: ("shadow_on", "plain Deployments cannot mirror traffic"). The dashboard greys those
    #: keys and gives the reason in `?` and the palette. Empty (the default, and what older
    #: recordings and daemons send): every verb is possible as far as the router goes.
    unavailable: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # From JSON the pairs come back as lists (or a mapping): store them as tuples, so a
        # frame read back equals the one written.
        raw: Any = self.unavailable
        items = raw.items() if isinstance(raw, Mapping) else raw
        pairs = tuple((str(verb), str(why)) for verb, why in items)
        object.__setattr__(self, "unavailable", pairs)

    def why_unavailable(self, verb: str) -> str | None:
        """Why the router cannot do `verb` (a Verb value), or None when it can."""
        for name, why in self.unavailable:
            if name == verb:
                return why
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `unavailable` only when there is something in it (so recordings of
        routers that can do everything stay byte-for-byte what older versions wrote)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.unavailable:
            out["unavailable"] = [list(pair) for pair in self.unavailable]
        else:
            del out["unavailable"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryInfo:
        """Back from `to_dict` (or `asdict`); keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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
    seq: int = -1  # the engine's frame counter: a client drops frames older than its full one
    attended: bool = True
    unattended: str = "hold"  # what the loop does while nobody is attached
    tick_s: float = 5.0
    #: Loop time of the last successful router read / metric fetch: a figure older than two
    #: ticks is drawn as stale, never as live (None: never read).
    routing_at: float | None = None
    router_error: str | None = None  # why the last router read failed, while it fails
    metrics_at: float | None = None
    #: "running", "stalled" (a tick overran) or "stopped" (the loop thread failed); filled in
    #: by the session's watchdog, which does not need the engine to answer.
    loop: str = "running"
    loop_detail: str = ""
    kill_attempts: int = 0  # router attempts of the pending kill so far
    kill_error: str | None = None  # the last attempt's failure
    #: A heartbeat repeats the last frame with a new `now` and loop health, nothing new.
    heartbeat: bool = False

    def age(self, at: float | None) -> float | None:
        """How old a figure read at loop time `at` is now (None: never read)."""
        return None if at is None else max(0.0, self.now - at)

    @property
    def stale_after(self) -> float:
        """A figure older than this is stale: two ticks, and never under 2 s."""
        return max(2.0, 2.0 * self.tick_s)

    @property
    def routing_stale(self) -> bool:
        age = self.age(self.routing_at)
        return self.routing is None or age is None or age > self.stale_after

    @property
    def metrics_stale(self) -> bool:
        age = self.age(self.metrics_at)
        return age is None or age > self.stale_after
