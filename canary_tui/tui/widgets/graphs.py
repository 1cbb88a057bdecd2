"""Canary-vs-baseline comparison graphs over a rolling window (textual-plotext).

A graph redraws only when it is given new points; nothing repaints on a timer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from canary_tui.core.frames import SeriesPoint

Getter = Callable[[SeriesPoint], float | None]


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    get: Getter
    canary: bool


BASELINE_COLOR, CANARY_COLOR = "#56B4E9", "#E69F00"
#: Box-drawing and block glyphs plotext draws, and their ASCII stand-ins.
ASCII_FRAME = str.maketrans(
    {
        "┌": "+",
        "┐": "+",
        "└": "+",
        "┘": "+",
        "─": "-",
        "│": "|",
        "┬": "+",
        "┴": "+",
        "├": "+",
        "┤": "+",
        "┼": "+",
        "•": ".",
    }
)


def _rgb(value: str, fallback: str) -> tuple[int, int, int]:
    text = (value or fallback).lstrip("#")
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except (ValueError, IndexError):
        return _rgb(fallback, "#FFFFFF")


@dataclass(frozen=True, slots=True)
class GraphSpec:
    title: str
    unit: str
    lines: tuple[Line, ...]
    scale: float = 1.0


ERRORS = GraphSpec(
    "error rate % (30 s)",
    "%",
    (
        Line("baseline", lambda p: p.err_baseline, False),
        Line("canary", lambda p: p.err_canary, True),
    ),
    scale=100.0,
)

LATENCY_P99 = GraphSpec(
    "latency p99 ms (30 s)",
    "ms",
    (
        Line("base p99", lambda p: p.p99_baseline, False),
        Line("canary p99", lambda p: p.p99_canary, True),
    ),
)

LATENCY_ALL = GraphSpec(
    "latency ms, p50 p95 p99 (30 s)",
    "ms",
    (
        Line("base p50", lambda p: p.p50_baseline, False),
        Line("canary p50", lambda p: p.p50_canary, True),
        Line("base p95", lambda p: p.p95_baseline, False),
        Line("canary p95", lambda p: p.p95_canary, True),
        Line("base p99", lambda p: p.p99_baseline, False),
        Line("canary p99", lambda p: p.p99_canary, True),
    ),
)

REQUESTS = GraphSpec(
    "requests/s (30 s)",
    "/s",
    (
        Line("baseline", lambda p: p.rps_baseline, False),
        Line("canary", lambda p: p.rps_canary, True),
    ),
)


class ComparisonGraph(PlotextPlot):
    """One graph; `show(points, now)` replaces its data and redraws once."""

    DEFAULT_CSS = "ComparisonGraph { height: 1fr; width: 1fr; min-height: 5; }"

    ascii_only: reactive[bool] = reactive(False)

    def __init__(self, spec: GraphSpec, window_s: float = 300.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.spec = spec
        self.window_s = window_s
        self._points: Sequence[SeriesPoint] = ()
        self._now = 0.0
        self._version = 0
        self._cache_key: tuple[object, ...] | None = None
        self._cache: Text | None = None

    def show(self, points: Sequence[SeriesPoint], now: float) -> None:
        self._points, self._now = points, now
        self._version += 1
        self._replot()
        self.refresh()

    def set_spec(self, spec: GraphSpec) -> None:
        if spec is not self.spec:
            self.spec = spec
            self._version += 1
            self._replot()
            self.refresh()

    def _replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.spec.title)
        horizon = self._now - self.window_s
        visible = [p for p in self._points if p.t >= horizon]
        plt.xlim(-self.window_s, 0)
        any_data = False
        for line in self.spec.lines:
            xs: list[float] = []
            ys: list[float] = []
            for p in visible:
                v = line.get(p)
                if v is not None and not p.no_data:
                    xs.append(p.t - self._now)
                    ys.append(v * self.spec.scale)
            if xs:
                any_data = True
                role = "canary" if line.canary else "baseline"
                variables = self.app.theme_variables
                if self.ascii_only:
                    marker = "*" if line.canary else "."
                else:
                    marker = variables.get(f"{role}-marker", "hd" if line.canary else "braille")
                default = CANARY_COLOR if line.canary else BASELINE_COLOR
                color = _rgb(variables.get(f"{role}-color", default), default)
                plt.plot(xs, ys, label=line.label, marker=marker, color=color)
        gaps = [p.t - self._now for p in visible if p.no_data]
        if gaps:
            plt.vertical_line(gaps[0], color="red")
        if not any_data:
            plt.ylim(0, 1)
        plt.xlabel("seconds ago")

    def render(self) -> Text:
        """Plotext is slow (tens of ms a graph): build once per new data, size or theme."""
        if self.size.width < 12 or self.size.height < 4:
            return Text(self.spec.title, style="dim")
        key = (self.size, self._version, self.app.theme, self.ascii_only)
        if self._cache is None or key != self._cache_key:
            self._replot()  # colours and markers come from the theme
            plot, (width, height) = self._plot, self.size
            plot.plotsize(width, height)
            plot._set_size(width, height)
            plot.theme(self._get_plotext_theme_name(self.app.theme))
            built = plot.build()
            if self.ascii_only:
                built = built.translate(ASCII_FRAME)
            self._cache = Text.from_ansi(built)
            self._cache_key = key
        assert self._cache is not None
        return self._cache
