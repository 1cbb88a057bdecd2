"""Counts the judge works from: requests, errors, latency histograms, per variant and window.

Sources report counts, never pre-averaged rates, because the judge needs sample sizes.
Latency comes as Prometheus-style cumulative histogram buckets (upper bounds in seconds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Variant(StrEnum):
    BASELINE = "baseline"
    CANARY = "canary"


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts: counts[i] requests took at most bounds[i] seconds."""

    bounds: tuple[float, ...]
    counts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.bounds) != len(self.counts):
            raise ValueError("histogram bounds and counts differ in length")
        if any(b <= a for a, b in itertools.pairwise(self.bounds)):
            raise ValueError("histogram bounds must increase")

    @property
    def total(self) -> float:
        return self.counts[-1] if self.counts else 0.0

    def is_valid(self) -> bool:
        if not all(math.isfinite(c) and c >= 0 for c in self.counts):
            return False
        return all(b >= a - 1e-9 for a, b in itertools.pairwise(self.counts))

    def count_above(self, threshold_s: float) -> float:
        """Requests slower than `threshold_s`, interpolating linearly inside a bucket."""
        return self.total - self.count_at_most(threshold_s)

    def count_at_most(self, threshold_s: float) -> float:
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            if threshold_s <= bound:
                if math.isinf(bound):
                    return lower_count
                width = bound - lower_bound
                frac = 1.0 if width <= 0 else (threshold_s - lower_bound) / width
                return lower_count + (count - lower_count) * max(0.0, min(1.0, frac))
            lower_bound, lower_count = bound, count
        return self.total

    def quantile(self, q: float) -> float | None:
        """The q-quantile in seconds, as Prometheus' histogram_quantile computes it."""
        total = self.total
        if total <= 0 or not self.bounds:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound
                in_bucket = count - lower_count
                if in_bucket <= 0:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket
            lower_bound, lower_count = bound, count
        return lower_bound

    def __add__(self, other: Histogram) -> Histogram:
        if self.bounds != other.bounds:
            raise ValueError("cannot add histograms with different buckets")
        summed = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        return Histogram(self.bounds, summed)

    def to_dict(self) -> dict[str, Any]:
        return {"le": [_enc(b) for b in self.bounds], "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        return cls(tuple(_dec(b) for b in data["le"]), tuple(float(c) for c in data["counts"]))


def _enc(x: float) -> float | str:
    return "+Inf" if math.isinf(x) else x


def _dec(x: float | str) -> float:
    return math.inf if x in ("+Inf", "inf", "Infinity") else float(x)


@dataclass(frozen=True, slots=True)
class VariantCounts:
    """What one variant served in one window."""

    requests: float
    errors: float
    latency: Histogram | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    def problem(self) -> str | None:
        """Why these counts cannot be trusted (NaN, infinite, negative: a counter reset)."""
        for name, value in (("requests", self.requests), ("errors", self.errors)):
            if not math.isfinite(value):
                return f"{name} is not a finite number"
            if value < 0:
                return f"{name} went negative (counter reset?)"
        if self.errors > self.requests + 1e-9:
            return "more errors than requests"
        if self.latency is not None and not self.latency.is_valid():
            return "latency histogram is not a valid cumulative count (counter reset?)"
        for name, value in self.custom.items():
            if not math.isfinite(value) or value < 0:
                return f"custom metric {name} is not a finite non-negative count"
        return None

    def __add__(self, other: VariantCounts) -> VariantCounts:
        latency: Histogram | None
        if self.latency is None:
            latency = other.latency
        elif other.latency is None:
            latency = self.latency
        else:
            latency = self.latency + other.latency
        custom = dict(self.custom)
        for k, v in other.custom.items():
            custom[k] = custom.get(k, 0.0) + v
        return VariantCounts(
            self.requests + other.requests, self.errors + other.errors, latency, custom
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"requests": self.requests, "errors": self.errors}
        if self.latency is not None:
            out["latency"] = self.latency.to_dict()
        if self.custom:
            out["custom"] = dict(self.custom)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantCounts:
        lat = data.get("latency")
        return cls(
            float(data["requests"]),
            float(data["errors"]),
            Histogram.from_dict(lat) if lat is not None else None,
            {str(k): float(v) for k, v in data.get("custom", {}).items()},
        )


EMPTY = VariantCounts(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Sample:
    """One window of counts for both variants, or the reason there are none."""

    start: float
    end: float
    baseline: VariantCounts | None
    canary: VariantCounts | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.baseline is not None and self.canary is not None

    def validated(self) -> Sample:
        """This sample, or a no-data sample naming what was wrong with it."""
        if self.problem is not None:
            return self
        if self.baseline is None or self.canary is None:
            return Sample(self.start, self.end, None, None, "no series for a variant")
        for variant, counts in ((Variant.BASELINE, self.baseline), (Variant.CANARY, self.canary)):
            why = counts.problem()
            if why is not None:
                return Sample(self.start, self.end, None, None, f"{variant.value}: {why}")
        return self

    @classmethod
    def no_data(cls, start: float, end: float, reason: str) -> Sample:
        return cls(start, end, None, None, reason)
