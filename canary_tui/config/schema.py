"""The configuration file's schema (pydantic), with durations like '30s', '2m', '1h'.

Every number is finite (no .inf or .nan) and every duration lies within sane bounds, so a
config that validates cannot make the loop spin or wait forever. `source:` and `router:` are
unions on `kind` of the adapters' own settings models, built from adapters/registry.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from adapters.registry import ROUTERS, SOURCES, Adapter
from adapters.settings_types import (
    DAY,
    AdapterSettings,
    Duration,
    FieldProblem,
    bounded,
    bounded_duration,
    is_duration,
)
from adapters.simulator import SimulatorSettings

__all__ = ["DAY", "Config", "Duration", "FieldProblem", "bounded_duration", "is_duration"]

_QUANTILE = re.compile(r"^\s*p(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)


def _quantile(value: Any) -> Any:
    """'p95' -> 0.95, 'p99.9' -> 0.999; a number stays as it is."""
    if isinstance(value, str):
        m = _QUANTILE.match(value)
        if not m:
            raise ValueError(f"{value!r} is not a quantile (use e.g. p95, p99 or 0.95)")
        return float(m.group(1)) / 100.0
    return value


Quantile = Annotated[float, BeforeValidator(_quantile), Field(ge=0.5, lt=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CanarySection(Strict):
    # it names files and the daemon's socket (108 bytes with its directory): a DNS label's 63
    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    service: str | None = None
    namespace: str = "default"
    stable_version: str = "stable"
    canary_version: str = "canary"


class StepSection(Strict):
    weight: int = Field(ge=0, le=100)
    hold: Duration = 60.0
    analysis_window: Duration = 60.0


class MetricSection(Strict):
    name: str = Field(min_length=1)
    kind: Literal["errors", "latency", "custom"]
    threshold_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    baseline_quantile: Quantile | None = None  # latency: slow = above the baseline's p95/p99
    tolerance_ratio: float = Field(default=1.5, ge=1.0)
    tolerance_abs: float = Field(default=0.0, ge=0.0, le=1.0)
    numerator: str | None = None
    denominator: str | None = None

    @model_validator(mode="after")
    def _check(self) -> MetricSection:
        if self.kind == "latency":
            if self.threshold_ms is None and self.baseline_quantile is None:
                raise FieldProblem(
                    "a latency metric needs threshold_ms, or baseline_quantile (e.g. p95:"
                    " slow means slower than the baseline's p95 before the canary)"
                )
            if self.threshold_ms is not None and self.baseline_quantile is not None:
                raise FieldProblem("threshold_ms or baseline_quantile, not both", "threshold_ms")
        elif self.baseline_quantile is not None:
            why = "only a latency metric has a baseline_quantile"
            raise FieldProblem(why, "baseline_quantile")
        if self.kind == "custom" and not self.numerator:
            raise ValueError("a custom metric needs a numerator")
        return self


class SLOSection(Strict):
    name: str = Field(min_length=1)
    kind: Literal["availability", "latency"]
    objective: float = Field(gt=0.0, lt=1.0)
    threshold_ms: float | None = Field(default=None, gt=0, le=3_600_000)

    @model_validator(mode="after")
    def _check(self) -> SLOSection:
        if self.kind == "latency" and self.threshold_ms is None:
            raise ValueError("a latency SLO needs threshold_ms")
        return self


class JudgeSection(Strict):
    kind: Literal["threshold", "sequential"] = "sequential"
    window: Annotated[float, bounded(0.0, DAY, above=True)] = 60.0
    min_requests: float = Field(default=200.0, ge=0, le=1e12)
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5)  # sequential: false-rollback budget
    pass_alpha: float = Field(default=0.05, gt=0.0, lt=0.5)  # sequential: risk of a wrong PASS
    # sequential: the effect the evidence quotes, canary/baseline or canary - baseline
    effect: Literal["ratio", "difference"] = "ratio"
    # how far back before the canary starts the baseline's latency quantiles are read
    baseline_window: Annotated[float, bounded(0.0, 7 * DAY)] = 600.0
    # sequential: comparisons shown as WARMING UP, never acted on, for this long after the
    # canary's first window (and `step_warmup` after each step); the SLO guards and the
    # hard `ceiling` on the canary's own bad-event rate still fail at once
    warmup: Annotated[float, bounded(0.0, DAY)] = 0.0
    step_warmup: Annotated[float, bounded(0.0, DAY)] = 0.0
    ceiling: float | None = Field(default=0.25, gt=0.0, lt=1.0)


class NoDataSection(Strict):
    grace: Annotated[float, bounded(0.0, DAY)] = 60.0
    action: Literal["hold", "rollback"] = "hold"


#: The loop's tick: at least 100 ms (faster only burns CPU and queries), at most an hour.
Tick = Annotated[float, bounded(0.1, 3600.0)]


class LoopSection(Strict):
    tick: Tick = 5.0
    auto_advance: bool = True
    auto_rollback: Literal["armed", "disarmed"] = "armed"
    no_data: NoDataSection = NoDataSection()
    unattended: Literal["hold", "follow"] = "hold"


class SessionSection(Strict):
    """Who may act through the session daemon; everyone else who can connect only watches."""

    operators: list[str] = Field(default_factory=list)  # user names, or @group
    group: str | None = None  # share the socket with this group (0770) for pairing


class WebhookSection(Strict):
    url: str | None = None
    url_env: str | None = None  # read the URL (which often holds a token) from this variable
    timeout: Annotated[float, bounded(0.0, 300.0, above=True)] = 5.0
    attempts: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _check(self) -> WebhookSection:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of url or url_env")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("a webhook url must start with http:// or https://")
        return self


class AlertsSection(Strict):
    webhooks: list[WebhookSection] = Field(default_factory=list)


class AuditSection(Strict):
    path: str | None = None


def _kind(value: Any) -> str:
    """The union's tag: the section's `kind` (default simulator; a section that is not a
    mapping goes to the simulator's model, which says it should be one)."""
    if isinstance(value, AdapterSettings):
        return value.kind
    if isinstance(value, Mapping):
        kind = value.get("kind", "simulator")
        return kind if isinstance(kind, str) else repr(kind)
    return "simulator"


def _adapters(registry: Mapping[str, Adapter[Any]]) -> Any:
    """`kind: X` picks X's settings model, for every X in the registry."""
    members = tuple(Annotated[a.settings, Tag(kind)] for kind, a in registry.items())
    return Annotated[Union[members], Discriminator(_kind)]  # noqa: UP007


#: The adapters the registry knows, by `kind` (the loader names them in its messages).
SOURCE_KINDS: dict[str, type[AdapterSettings]] = {k: a.settings for k, a in SOURCES.items()}
ROUTER_KINDS: dict[str, type[AdapterSettings]] = {k: a.settings for k, a in ROUTERS.items()}
if TYPE_CHECKING:
    SourceSection = AdapterSettings
    RouterSection = AdapterSettings
else:
    SourceSection = _adapters(SOURCES)
    RouterSection = _adapters(ROUTERS)


def _default_plan() -> list[StepSection]:
    return [
        StepSection(weight=w, hold=h)
        for w, h in ((5, 60), (10, 60), (25, 120), (50, 120), (75, 120))
    ]


def _default_metrics() -> list[MetricSection]:
    return [
        MetricSection(name="errors", kind="errors", tolerance_ratio=1.5, tolerance_abs=0.002),
        MetricSection(
            name="latency",
            kind="latency",
            threshold_ms=250,
            tolerance_ratio=1.5,
            tolerance_abs=0.005,
        ),
    ]


def _default_slos() -> list[SLOSection]:
    return [
        SLOSection(name="availability", kind="availability", objective=0.99),
        SLOSection(name="latency", kind="latency", objective=0.95, threshold_ms=300),
    ]


class Config(Strict):
    canary: CanarySection
    plan: list[StepSection] = Field(default_factory=_default_plan, min_length=1)
    metrics: list[MetricSection] = Field(default_factory=_default_metrics, min_length=1)
    slos: list[SLOSection] = Field(default_factory=_default_slos)
    judge: JudgeSection = JudgeSection()
    loop: LoopSection = LoopSection()
    audit: AuditSection = AuditSection()
    session: SessionSection = SessionSection()
    alerts: AlertsSection = AlertsSection()
    keys: dict[str, str] = Field(default_factory=dict)  # binding id -> key(s), e.g. kill: K
    source: SourceSection = SimulatorSettings()
    router: RouterSection = SimulatorSettings()

    @model_validator(mode="before")
    @classmethod
    def _canary_defaults(cls, data: Any) -> Any:
        """Settings of the source that default to the canary section (Prometheus': namespace,
        service, versions) are filled in where the source does not give them."""
        if not isinstance(data, Mapping):
            return data
        source, canary = data.get("source"), data.get("canary")
        if not isinstance(source, Mapping) or not isinstance(canary, Mapping):
            return data
        model = SOURCE_KINDS.get(_kind(source))
        defaults = model.canary_defaults(canary) if model is not None else {}
        if not defaults:
            return data
        return {**data, "source": {**defaults, **source}}

    @model_validator(mode="after")
    def _check(self) -> Config:
        weights = [s.weight for s in self.plan]
        for i in range(1, len(weights)):
            if weights[i] < weights[i - 1]:
                raise FieldProblem(
                    f"plan weights must not decrease (step {i + 1} is {weights[i]}%, after"
                    f" {weights[i - 1]}%)",
                    "plan", i, "weight",
                )  # fmt: skip
        seen: set[str] = set()
        for i, metric in enumerate(self.metrics):
            if metric.name in seen:
                why = f"metric names must be unique: {metric.name!r} is used twice"
                raise FieldProblem(why, "metrics", i, "name")
            seen.add(metric.name)
        learnt = [i for i, m in enumerate(self.metrics) if m.baseline_quantile is not None]
        if learnt and self.judge.kind != "sequential":
            raise FieldProblem(
                f"metric {self.metrics[learnt[0]].name!r}: baseline_quantile needs judge.kind:"
                " sequential (the threshold judge counts slow requests from a fixed threshold_ms)",
                "metrics", learnt[0], "baseline_quantile",
            )  # fmt: skip
        if learnt and self.judge.baseline_window <= 0:
            why = "judge.baseline_window must be positive"
            raise FieldProblem(why, "judge", "baseline_window")
        return self
