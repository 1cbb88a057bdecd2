"""Small text formatting helpers shared by the widgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def clock_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def mmss(seconds: float) -> str:
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0f}ms"


def bar(fraction: float | None, width: int, ascii_only: bool = False) -> str:
    """A horizontal gauge bar, clamped to 0..1."""
    full, empty = ("#", "-") if ascii_only else ("█", "░")
    if fraction is None:
        return "?" * width
    f = max(0.0, min(1.0, fraction))
    n = round(f * width)
    return full * n + empty * (width - n)


def theme_style(app: Any, spec: str) -> str:
    """A Rich style string with the current theme's $variables resolved ("bold $success" ->
    "bold #009E73"), so every colour follows the theme: under canary-mono they are all
    white and meaning rests on words and weight, never on red and green."""
    variables = app.theme_variables
    return " ".join(
        variables.get(part[1:], "default") if part.startswith("$") else part
        for part in spec.split()
    )
