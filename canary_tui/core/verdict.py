"""Verdicts on a metric (PASS / FAIL / INCONCLUSIVE / WARMING UP), each with its evidence."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    # a comparison shown during the canary's warm-up: never acted on (neither a FAIL that
    # rolls back nor a PASS that advances), whatever the numbers say
    WARMING_UP = "warming-up"


@dataclass(frozen=True, slots=True)
class Evidence:
    """The numbers behind a verdict, enough for an engineer to check it by hand."""

    rule: str
    baseline_rate: float | None = None
    canary_rate: float | None = None
    baseline_n: float = 0.0
    canary_n: float = 0.0
    effect: float | None = None
    interval: tuple[float, float] | None = None  # an open upper end is inf (null in JSON)
    tolerance: float | None = None
    p_value: float | None = None
    unit: str = "%"
    effect_kind: str = "ratio"  # what `effect` is: "ratio" (canary / baseline) or "difference"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.interval is not None:
            out["interval"] = [x if math.isfinite(x) else None for x in self.interval]
        if self.effect_kind == "ratio":
            del out["effect_kind"]  # the default, and every verdict of every frame carries it
        return {k: v for k, v in out.items() if v is not None}

    def counts_text(self) -> str:
        """What stands behind the words: "canary n=981, baseline n=39,190, p=2.2e-05, rule ..."."""
        out = []
        if self.canary_n:
            out.append(f"canary n={self.canary_n:,.0f}")
        if self.baseline_n:
            out.append(f"baseline n={self.baseline_n:,.0f}")
        if self.p_value is not None:
            out.append(f"p={self.p_value:.3g}")
        out.append(f"rule {self.rule}")
        return ", ".join(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        interval = data.get("interval")
        return cls(
            rule=str(data["rule"]),
            baseline_rate=data.get("baseline_rate"),
            canary_rate=data.get("canary_rate"),
            baseline_n=float(data.get("baseline_n", 0.0)),
            canary_n=float(data.get("canary_n", 0.0)),
            effect=data.get("effect"),
            interval=(
                (float(interval[0]), math.inf if interval[1] is None else float(interval[1]))
                if interval
                else None
            ),
            tolerance=data.get("tolerance"),
            p_value=data.get("p_value"),
            unit=str(data.get("unit", "%")),
            effect_kind=str(data.get("effect_kind", "ratio")),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's word on one metric, with a one-line `why` an on-call engineer reads."""

    metric: str
    status: Status
    why: str
    evidence: Evidence
    no_data: bool = False

    @classmethod
    def without_data(cls, metric: str, reason: str, evidence: Evidence | None = None) -> Verdict:
        """INCONCLUSIVE for want of data: never a PASS, and flagged so the loop's no-data
        policy applies."""
        return cls(metric, Status.INCONCLUSIVE, f"no data: {reason}",
                   evidence or Evidence(rule="no-data"), no_data=True)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "status": self.status.value,
            "why": self.why,
            "evidence": self.evidence.to_dict(),
            "no_data": self.no_data,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            metric=str(data["metric"]),
            status=Status(data["status"]),
            why=str(data["why"]),
            evidence=Evidence.from_dict(data["evidence"]),
            no_data=bool(data.get("no_data", False)),
        )
