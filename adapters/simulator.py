"""The embedded simulator: a synthetic service with stable and canary traffic.

It implements both edge protocols (MetricSource and TrafficRouter) over one shared, seeded
model: Poisson arrivals split by the router's weight (plus mirrored copies in shadow mode),
per-variant error probability, and lognormal latency reported as Prometheus-style cumulative
histogram buckets. Time comes from an injectable clock, so tests run in virtual time.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import numpy as np
from pydantic import BeforeValidator, Field

from adapters.settings_types import AdapterConfigError, AdapterSettings, shown, within
from canary_tui.core.clock import Clock
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.ports import RouterError, RoutingState

#: Prometheus-style latency buckets (seconds); fine around typical SLO thresholds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
    math.inf,
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the canary behaves once the regression starts (at `onset_s` into the session)."""

    name: str
    description: str
    canary_error_rate: float | None = None  # None: same as baseline
    latency_scale: float = 1.0  # canary latency multiplied by this
    tail_fraction: float = 0.0  # share of canary requests slowed by tail_factor
    tail_factor: float = 1.0
    outage_s: float = 0.0  # the metric source answers nothing for this long


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "the canary behaves exactly like the baseline"),
        Scenario(
            "error-regression",
            "the canary's error rate rises from 0.5% to 5%",
            canary_error_rate=0.05,
        ),
        Scenario("latency-regression", "every canary request is 1.8x slower", latency_scale=1.8),
        Scenario(
            "tail-latency",
            "10% of canary requests are 4x slower",
            tail_fraction=0.10,
            tail_factor=4.0,
        ),
        Scenario("metrics-outage", "the metrics backend answers nothing for 120 s", outage_s=120.0),
    )
}


@dataclass(slots=True)
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    buckets: list[float] = field(default_factory=list)

    def counts(self, bounds: tuple[float, ...]) -> VariantCounts:
        cumulative = tuple(float(c) for c in np.cumsum(self.buckets))
        return VariantCounts(self.requests, self.errors, Histogram(bounds, cumulative))


def _number(low: float, high: float, *, above: bool = False) -> BeforeValidator:
    """A finite number from `low` (exclusive when `above`) to `high`."""

    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {shown(value)}")
        number = float(value)
        if not math.isfinite(number) or number > high or number < low or (above and number == low):
            least = f"more than {low:g}" if above else f"at least {low:g}"
            raise ValueError(f"must be {least} and at most {high:g}, got {value!r}")
        return number

    return within(check, low, high, above=above)


def _whole(low: int, high: int, shown_high: str) -> BeforeValidator:
    """A whole number (not a bool, not 1.5) from `low` to `high`."""

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {shown(value)}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {shown_high}, got {value}")
        return value

    return within(check, low, high)


def _scenario(value: object) -> str:
    if not isinstance(value, str) or value not in SCENARIOS:
        raise ValueError(f"unknown scenario {shown(value)} (known: {', '.join(sorted(SCENARIOS))})")
    return value


def _path(value: object) -> str | None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        raise ValueError(f"must be a file path, got {shown(value)}")
    return value


DAY_S = 86400.0
HISTORY_SLICE_S = 10.0  # the history before the session is served (and read back) in these


class SimulatorSettings(AdapterSettings):
    """The simulator's settings (`kind: simulator`, as a source, a router, or both)."""

    kind: Literal["simulator"] = "simulator"
    scenario: Annotated[str, BeforeValidator(_scenario)] = Field(
        default="healthy",
        description="How the canary behaves once the regression starts: "
        + ", ".join(f"`{name}` ({s.description})" for name, s in SCENARIOS.items())
        + ".",
    )
    seed: Annotated[int, _whole(0, 2**64 - 1, "2^64-1")] = Field(
        default=0, description="Seeds the random traffic: the same seed gives the same session."
    )
    rate: Annotated[float, _number(0.0, 1e6, above=True)] = Field(
        default=200.0, description="Requests per second, both variants together."
    )
    onset_s: Annotated[float, _number(0.0, 30 * DAY_S)] = Field(
        default=60.0, description="Seconds after the start when the scenario's regression begins."
    )
    baseline_error_rate: Annotated[float, _number(0.0, 1.0)] = Field(
        default=0.005, description="The baseline's share of failed requests (a fraction)."
    )
    median_ms: Annotated[float, _number(0.0, 600_000.0, above=True)] = Field(
        default=100.0, description="The baseline's median latency, in milliseconds (lognormal)."
    )
    sigma: Annotated[float, _number(0.0, 5.0, above=True)] = Field(
        default=0.5, description="The spread of the lognormal latency."
    )
    replicas: Annotated[int, _whole(1, 10_000, "10000")] = Field(
        default=10, description="Replicas of each variant, as the router reports them."
    )
    state_file: Annotated[str | None, BeforeValidator(_path)] = Field(
        default=None,
        description="Keep the routing state (weight, mirror, paused) in this file, like a "
        "cluster that outlives the session. None: in memory only.",
    )
    history_s: Annotated[float, _number(0.0, DAY_S)] = Field(
        default=600.0,
        description="Seconds of baseline-only traffic already served before the start.",
    )


class SimulatedService:
    """The synthetic service. `.metrics` and `.router` are the two protocol faces."""

    SLICE_S = 1.0

    def __init__(self, clock: Clock, settings: SimulatorSettings | None = None) -> None:
        self.clock = clock
        self.settings = settings or SimulatorSettings()
        self.buckets = DEFAULT_BUCKETS
        self.scenario = SCENARIOS[self.settings.scenario]
        self._rng = np.random.default_rng(self.settings.seed)
        self._lock = threading.RLock()
        self.started_at = clock.now()
        self._t = self.started_at
        self.weight = 0
        self.mirror = False
        self.mirror_percent = 100
        self.paused = False
        nb = len(self.buckets)
        self.totals = {
            "baseline": _Totals(buckets=[0.0] * nb),
            "canary": _Totals(buckets=[0.0] * nb),
        }
        self._checkpoints: deque[tuple[float, VariantCounts, VariantCounts]] = deque(maxlen=4096)
        self._serve_history()
        self._checkpoint()
        self._router_failures = 0
        self.router_calls: list[str] = []
        self._load_routing()
        self.metrics = SimulatorMetrics(self)
        self.router = SimulatorRouter(self)

    # --- the model -------------------------------------------------------------------------
    def regressed(self, t: float) -> bool:
        return t - self.started_at >= self.settings.onset_s

    def in_outage(self, t: float) -> bool:
        since = t - self.started_at - self.settings.onset_s
        return self.scenario.outage_s > 0 and 0 <= since < self.scenario.outage_s

    def _bucket_probs(self, scale: float, tail_fraction: float, tail_factor: float) -> np.ndarray:
        mu = math.log(self.settings.median_ms / 1000.0 * scale)
        sigma = self.settings.sigma

        def cdf(x: float, m: float) -> float:
            if math.isinf(x):
                return 1.0
            return 0.5 * (1.0 + math.erf((math.log(x) - m) / (sigma * math.sqrt(2.0))))

        tail_mu = mu + math.log(tail_factor) if tail_factor > 0 else mu
        cum = [
            (1 - tail_fraction) * cdf(b, mu) + tail_fraction * cdf(b, tail_mu) for b in self.buckets
        ]
        probs = np.diff(np.array([0.0, *cum]))
        probs = np.clip(probs, 0.0, None)
        return np.asarray(probs / probs.sum())

    def _serve_history(self) -> None:
        """The baseline's traffic before the session (all of it: no canary yet), in 10 s
        slices, from a generator of its own: the session's stream is what the seed makes it."""
        s = self.settings
        if s.history_s <= 0:
            return
        rng = np.random.default_rng([s.seed, 1])
        probs = self._bucket_probs(1.0, 0.0, 1.0)
        self._t = self.started_at - s.history_s
        self._checkpoint()
        while self._t < self.started_at - 1e-9:
            dt = min(HISTORY_SLICE_S, self.started_at - self._t)
            n = int(rng.poisson(s.rate * dt))
            self._serve("baseline", n, s.baseline_error_rate, probs, rng)
            self._t += dt
            self._checkpoint()
        self._t = self.started_at

    def _serve(
        self,
        variant: str,
        n: int,
        error_rate: float,
        probs: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> None:
        if n <= 0:
            return
        rng = rng or self._rng
        tot = self.totals[variant]
        tot.requests += n
        tot.errors += float(rng.binomial(n, error_rate))
        for i, c in enumerate(rng.multinomial(n, probs)):
            tot.buckets[i] += float(c)

    def _advance_to(self, t: float) -> None:
        with self._lock:
            while self._t < t - 1e-9:
                dt = min(self.SLICE_S, t - self._t)
                mid = self._t + dt / 2
                s, sc = self.settings, self.scenario
                n = int(self._rng.poisson(s.rate * dt))
                n_canary = int(self._rng.binomial(n, self.weight / 100.0))
                n_base = n - n_canary
                n_mirror = (
                    int(self._rng.binomial(n_base, self.mirror_percent / 100.0))
                    if self.mirror
                    else 0
                )
                bad = self.regressed(mid)
                base_probs = self._bucket_probs(1.0, 0.0, 1.0)
                if bad:
                    c_err = (
                        sc.canary_error_rate
                        if sc.canary_error_rate is not None
                        else s.baseline_error_rate
                    )
                    c_probs = self._bucket_probs(sc.latency_scale, sc.tail_fraction, sc.tail_factor)
                else:
                    c_err, c_probs = s.baseline_error_rate, base_probs
                self._serve("baseline", n_base, s.baseline_error_rate, base_probs)
                self._serve("canary", n_canary + n_mirror, c_err, c_probs)
                self._t += dt
            self._checkpoint()

    def _checkpoint(self) -> None:
        b = self.totals["baseline"].counts(self.buckets)
        c = self.totals["canary"].counts(self.buckets)
        if self._checkpoints and self._checkpoints[-1][0] == self._t:
            self._checkpoints.pop()
        self._checkpoints.append((self._t, b, c))

    def counts_at(self, t: float) -> tuple[VariantCounts, VariantCounts]:
        """Cumulative counts at the last checkpoint at or before `t`."""
        times = [cp[0] for cp in self._checkpoints]
        i = bisect.bisect_right(times, t + 1e-9) - 1
        _, b, c = self._checkpoints[max(i, 0)]
        return b, c

    # --- router side ---------------------------------------------------------------------
    def fail_next_router_calls(self, n: int) -> None:
        """Make the next `n` router calls fail (for tests of retries and pending kills)."""
        self._router_failures = n

    def _router_call(self, name: str) -> None:
        self._advance_to(self.clock.now())
        self.router_calls.append(name)
        if self._router_failures > 0:
            self._router_failures -= 1
            raise RouterError(f"simulated router failure during {name}")

    def _load_routing(self) -> None:
        path = self.settings.state_file
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    saved = json.load(handle)
                weight = int(saved["weight"])
                if not 0 <= weight <= 100:
                    raise ValueError(weight)
                self.weight = weight
                self.mirror = bool(saved["mirror"])
                self.paused = bool(saved["paused"])
            except (OSError, ValueError, TypeError, KeyError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else "not a saved routing state"
                raise AdapterConfigError(f"cannot use {path}: {why}", "state_file") from None

    def save_routing(self) -> None:
        """Persist the routing state atomically, as a cluster would keep it."""
        path = self.settings.state_file
        if not path:
            return
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"weight": self.weight, "mirror": self.mirror, "paused": self.paused}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def routing(self) -> RoutingState:
        reps = self.settings.replicas
        canary_ready = 0 if self.weight == 0 else max(1, round(reps * self.weight / 100))
        return RoutingState(
            weight=self.weight,
            mirror=self.mirror,
            mirror_percent=self.mirror_percent if self.mirror else 0,
            canary_ready=canary_ready,
            stable_ready=reps,
            detail="simulator" + (" (paused)" if self.paused else ""),
        )


def _minus(a: VariantCounts, b: VariantCounts) -> VariantCounts:
    if a.latency is None or b.latency is None:
        raise ValueError("simulated counts always carry a latency histogram")
    hist = Histogram(
        a.latency.bounds,
        tuple(x - y for x, y in zip(a.latency.counts, b.latency.counts, strict=True)),
    )
    return replace(a, requests=a.requests - b.requests, errors=a.errors - b.errors, latency=hist)


class SimulatorMetrics:
    """MetricSource face: counts per variant for a window, or no data during an outage."""

    def __init__(self, service: SimulatedService) -> None:
        self.service = service

    def fetch(self, start: float, end: float) -> Sample:
        svc = self.service
        svc._advance_to(end)
        if svc.in_outage(end):
            return Sample.no_data(start, end, "connection refused (simulated metrics outage)")
        b0, c0 = svc.counts_at(start)
        b1, c1 = svc.counts_at(end)
        return Sample(start, end, _minus(b1, b0), _minus(c1, c0))

    def fetch_windows(self, start: float, end: float, step_s: float) -> list[Sample]:
        """Consecutive windows of [start, end), ending at `end`: `step_s` long, but at least
        the 10 s slices the history before the session is kept in (ReadsWindows)."""
        if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(step_s)):
            return [Sample.no_data(start, end, "a window that is not a finite time span")]
        step = max(step_s, HISTORY_SLICE_S)
        count = int((end - start) // step)
        if count < 1:
            return [Sample.no_data(start, end, f"a span shorter than one window ({step:g} s)")]
        out = []
        for i in range(count, 0, -1):
            sample = self.fetch(end - i * step, end - (i - 1) * step)
            if sample.ok:
                out.append(sample)
        return out


class SimulatorRouter:
    """TrafficRouter face: idempotent calls that report what the simulated cluster now says."""

    def __init__(self, service: SimulatedService) -> None:
        self.service = service

    def read(self) -> RoutingState:
        self.service._advance_to(self.service.clock.now())
        return self.service.routing()

    def set_weight(self, weight: int) -> RoutingState:
        if not 0 <= weight <= 100:
            raise RouterError(f"weight {weight} is outside 0..100", retryable=False)
        self.service._router_call(f"set_weight({weight})")
        self.service.weight = weight
        self.service.save_routing()
        return self.service.routing()

    def set_mirror(self, on: bool) -> RoutingState:
        self.service._router_call(f"set_mirror({on})")
        self.service.mirror = on
        self.service.save_routing()
        return self.service.routing()

    def set_paused(self, paused: bool) -> RoutingState:
        self.service._router_call(f"set_paused({paused})")
        self.service.paused = paused
        self.service.save_routing()
        return self.service.routing()

    def abort(self) -> RoutingState:
        self.service._router_call("abort")
        self.service.weight = 0
        self.service.mirror = False
        self.service.save_routing()
        return self.service.routing()

    def promote(self) -> RoutingState:
        self.service._router_call("promote")
        self.service.weight = 100
        self.service.mirror = False
        self.service.save_routing()
        return self.service.routing()

    def shadow_unsupported(self) -> str | None:
        return None
