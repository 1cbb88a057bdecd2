"""Small text formatting helpers shared by the widgets."""

from __future__ import annotations

from datetime import UTC, datetime


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
