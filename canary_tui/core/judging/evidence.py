"""The words and numbers of a comparison's evidence.

One job: say how the effect a verdict quotes is shown: which effect (`Effect`: the rate ratio
or the difference), the bounds on the difference (`_Difference`), and how ratios and
differences are written (`_x`: '1.25x', `_pp`: '+1.4 pp').
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Effect(StrEnum):
    """The effect the evidence reports an interval for."""

    RATIO = "ratio"  # canary rate / baseline rate
    DIFFERENCE = "difference"  # canary rate - baseline rate


@dataclass(frozen=True, slots=True)
class _Difference:
    fail_low: float  # conservative lower bound on canary - baseline, used for FAIL
    pass_high: float  # upper bound over this step, used for PASS
    shown_low: float
    base_lo: float
    base_hi: float


def _diff_from_ratio(rho: float, diff: _Difference) -> float:
    if math.isinf(rho):
        return math.inf
    return (diff.base_hi if rho >= 1 else diff.base_lo) * (rho - 1.0)


def _x(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    if value >= 100:
        return f"{value:.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def _pp(value: float | None) -> str:
    """A difference of rates in percentage points: 0.014 -> '+1.4 pp'."""
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value * 100:+.2g} pp"
