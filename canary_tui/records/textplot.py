"""Small ASCII line plots for reports: they paste into Markdown and read in any terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    marker: str
    points: Sequence[tuple[float, float]]  # (x, y)


def _label(y: float) -> str:
    if y == 0:
        return "0"
    if abs(y) >= 100:
        return f"{y:.0f}"
    if abs(y) >= 10:
        return f"{y:.1f}"
    return f"{y:.2f}"


def text_plot(
    title: str,
    series: Sequence[Series],
    *,
    x_range: tuple[float, float],
    mark_x: float | None = None,
    width: int = 64,
    height: int = 10,
    x_unit: str = "s",
) -> str:
    """A plot of `series` over `x_range`; `mark_x` draws a `|` (the moment); overlaps are `#`."""
    x0, x1 = x_range
    values = [y for s in series for x, y in s.points if x0 <= x <= x1 and math.isfinite(y)]
    if not values:
        return f"{title}\n  (no data in this window)"
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0 if lo >= 1.0 else 0.0, hi + 1.0
    grid = [[" "] * width for _ in range(height)]
    span = max(x1 - x0, 1e-9)

    def col(x: float) -> int:
        return max(0, min(width - 1, round((x - x0) / span * (width - 1))))

    if mark_x is not None and x0 <= mark_x <= x1:
        for row in grid:
            row[col(mark_x)] = "|"
    for s in series:
        for x, y in s.points:
            if not (x0 <= x <= x1 and math.isfinite(y)):
                continue
            r = max(0, min(height - 1, round((hi - y) / (hi - lo) * (height - 1))))
            cell = grid[r][col(x)]
            grid[r][col(x)] = s.marker if cell in (" ", "|", s.marker) else "#"
    labels = {0: _label(hi), (height - 1) // 2: _label((hi + lo) / 2), height - 1: _label(lo)}
    pad = max(len(v) for v in labels.values())
    lines = [title]
    for i, row in enumerate(grid):
        lines.append(f"{labels.get(i, ''):>{pad}} |{''.join(row)}".rstrip())
    lines.append(" " * pad + " +" + "-" * width)
    left, mid, right = f"{x0:+.0f}", "0" if x0 < 0 < x1 else f"{(x0 + x1) / 2:+.0f}", f"{x1:+.0f}"
    middle = col(0.0) if x0 < 0 < x1 else width // 2
    axis = [" "] * (width + 2)
    for text, at in ((left, 0), (mid, middle - len(mid) // 2), (right, width - len(right))):
        at = max(0, min(width + 2 - len(text), at))
        axis[at : at + len(text)] = list(text)
    lines.append(" " * (pad + 2) + "".join(axis).rstrip() + f" {x_unit}")
    legend = "   ".join(f"{s.marker} {s.label}" for s in series)
    if mark_x is not None:
        legend += "   | the moment   # both"
    lines.append(" " * (pad + 2) + legend)
    return "\n".join(lines)
