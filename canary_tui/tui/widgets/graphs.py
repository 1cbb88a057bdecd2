"""Canary-vs-baseline comparison graphs over a rolling window (textual-plotext).

A graph redraws only when what it would draw changes; nothing repaints on a timer. Its clock
advances in steps of one plotted sub-column (the time one braille dot stands for at the
graph's width), so a graph of 300 s on 40 columns redraws every ~5 s, not on every tick: a
redraw at every tick would move each curve by a fraction of a dot and still resend every row.
The numbers beside the graphs (header, verdicts, gauges) are the up-to-the-tick ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

from rich.text import Text
from textual.geometry import Region
from textual.reactive import reactive
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from canary_tui.core.frames import SeriesPoint

Getter = Callable[[SeriesPoint], float | None]


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    get: Getter
    canary: bool


BASELINE_COLOR, CANARY_COLOR = "#56B4E9", "#E69F00"
#: Columns plotext keeps for the y-axis labels and frame (an estimate: the clock's step only
#: needs to be about one sub-column, never more than two).
AXIS_COLUMNS = 8
#: Rows of a graph that are not the plot: title, the frame's top and bottom, x ticks, x label.
PLOT_CHROME_ROWS = 5
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
    "error rate %",
    "%",
    (
        Line("baseline", lambda p: p.err_baseline, False),
        Line("canary", lambda p: p.err_canary, True),
    ),
    scale=100.0,
)

LATENCY_P99 = GraphSpec(
    "latency p99 ms",
    "ms",
    (
        Line("base p99", lambda p: p.p99_baseline, False),
        Line("canary p99", lambda p: p.p99_canary, True),
    ),
)

LATENCY_ALL = GraphSpec(
    "latency ms, p50 p95 p99",
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
    "requests/s",
    "/s",
    (
        Line("baseline", lambda p: p.rps_baseline, False),
        Line("canary", lambda p: p.rps_canary, True),
    ),
)


@dataclass(frozen=True, slots=True)
class GraphJob:
    """Everything needed to draw one graph, as plain data a worker thread can own."""

    spec: GraphSpec
    points: tuple[SeriesPoint, ...]
    now: float
    window_s: float
    width: int
    height: int
    colors: dict[str, tuple[int, int, int]]
    markers: dict[str, str]
    ascii_only: bool


def build_graph(job: GraphJob) -> str:
    """Draw `job` with plotext and return its ANSI text. Pure: touches no widget.

    The plotext theme is "clear": foreground colours only, so the widget's own background
    shows through and the terminal receives far fewer escape codes.
    """
    plt = Plot()
    plt.plotsize(job.width, job.height)
    plt._set_size(job.width, job.height)
    plt.theme("clear")
    plt.title(graph_title(job.spec, job.window_s))
    plt.xlim(-job.window_s, 0)
    horizon = job.now - job.window_s
    visible = [p for p in job.points if p.t >= horizon]
    any_data = False
    for line in job.spec.lines:
        role = "canary" if line.canary else "baseline"
        xs = [p.t - job.now for p in visible if not p.no_data and line.get(p) is not None]
        ys = [
            v * job.spec.scale for p in visible if not p.no_data and (v := line.get(p)) is not None
        ]
        if xs:
            any_data = True
            plt.plot(xs, ys, label=line.label, marker=job.markers[role], color=job.colors[role])
    gaps = [p.t - job.now for p in visible if p.no_data]
    if gaps:
        plt.vertical_line(gaps[0], color=job.colors["gap"])
    if not any_data:
        plt.ylim(0, 1)
    else:
        values = [v * job.spec.scale for p in visible if not p.no_data for line in job.spec.lines
                  if (v := line.get(p)) is not None]  # fmt: skip
        ticks = nice_ticks(min(values), max(values), job.height - PLOT_CHROME_ROWS)
        plt.ylim(ticks[0], ticks[-1])
        plt.yticks(ticks, tick_labels(ticks))
    plt.xlabel("seconds ago")
    built = plt.build()
    return built.translate(ASCII_FRAME) if job.ascii_only else built


def graph_title(spec: GraphSpec, window_s: float) -> str:
    """The title with the span the x axis really covers: "error rate %, last 5 min"."""
    span = f"{window_s / 60:g} min" if window_s >= 120 else f"{window_s:g} s"
    return f"{spec.title}, last {span}"


_NICE = (1.0, 2.0, 2.5, 5.0)


def _nice_steps(at_least: float) -> Iterator[float]:
    """1, 2, 2.5 and 5 times powers of ten, from the first one at or above `at_least`."""
    power = 10.0 ** math.floor(math.log10(at_least))
    while True:
        for factor in _NICE:
            if factor * power >= at_least * (1 - 1e-9):
                yield factor * power
        power *= 10.0


def nice_ticks(low: float, high: float, rows: int) -> list[float]:
    """Evenly spaced round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering
    [low, high], as many as fall on whole rows of a plot `rows` rows tall (so plotext draws
    them evenly spaced too), at most 6: the most ticks whose range is at most twice the
    tightest one."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high - low <= 1e-12 * max(1.0, abs(high)):
        pad = abs(high) * 0.1 or 1.0
        low, high = (low - pad if low < 0 or low - pad >= 0 else 0.0), high + pad
    rows = max(2, rows)
    counts = [n for n in range(min(rows, 6), 1, -1) if (rows - 1) % (n - 1) == 0]
    options: list[list[float]] = []
    for n in counts:
        for step in _nice_steps((high - low) / (n - 1)):
            first = math.floor(low / step + 1e-9) * step
            if first + (n - 1) * step >= high - 1e-9 * step:
                break
        options.append([round(first + i * step, 12) for i in range(n)])
    tightest = min(t[-1] - t[0] for t in options)
    # the most ticks among the ranges not much wider than the tightest
    return max((t for t in options if t[-1] - t[0] <= 2 * tightest + 1e-12), key=len)


def tick_labels(ticks: list[float]) -> list[str]:
    """The ticks with the same number of decimals, as few as tell them apart."""
    for decimals in range(0, 7):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels) and all(
            abs(float(label) - t) < 1e-9 for label, t in zip(labels, ticks, strict=True)
        ):
            return labels
    return [f"{t:g}" for t in ticks]


def graph_clock_step(window_s: float, width: int) -> float:
    """Seconds one plotted sub-column stands for (two per cell), at least one tick of 1 s."""
    plot_columns = max(1, width - AXIS_COLUMNS)
    return max(1.0, window_s / (2 * plot_columns))


def graph_clock(now: float, step: float) -> float:
    """`now` rounded down to the graph's clock step."""
    return math.floor(now / step) * step


def build_graph_text(job: GraphJob) -> tuple[Text, list[str]]:
    """`build_graph` parsed into Rich Text in the worker too: parsing ANSI is not cheap."""
    built = build_graph(job)
    return Text.from_ansi(built, no_wrap=True, overflow="crop"), built.split("\n")


class ComparisonGraph(PlotextPlot):
    """One graph. New data, a new size or a new theme start ONE background build (plotext
    takes tens of milliseconds a graph); the event loop stays free for keys meanwhile, and
    the widget shows the last finished drawing until the next one is ready."""

    DEFAULT_CSS = "ComparisonGraph { height: 1fr; width: 1fr; min-height: 5; }"

    ascii_only: reactive[bool] = reactive(False)

    def __init__(self, spec: GraphSpec, window_s: float = 300.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.spec = spec
        self.window_s = window_s
        self._points: tuple[SeriesPoint, ...] = ()
        self._now = 0.0
        self._shown: tuple[float, tuple[SeriesPoint, ...]] | None = None
        self._version = 0
        self._built_key: tuple[object, ...] | None = None
        self._building: tuple[object, ...] | None = None
        self._cache: Text | None = None
        self._lines: list[str] = []

    def on_mount(self) -> None:
        super().on_mount()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._schedule())

    def show(self, points: Sequence[SeriesPoint], now: float) -> None:
        """Draw `points` as of `now`, on the graph's clock: nothing new to draw, no redraw."""
        self._points, self._now = tuple(points), now
        self._schedule()

    def _visible(self) -> tuple[float, tuple[SeriesPoint, ...]]:
        """The graph's clock and the points it draws (those of the last window up to it)."""
        clock = graph_clock(self._now, graph_clock_step(self.window_s, self.size.width))
        horizon = clock - self.window_s
        return clock, tuple(p for p in self._points if horizon <= p.t <= clock)

    def set_spec(self, spec: GraphSpec) -> None:
        if spec is not self.spec:
            self.spec = spec
            self._version += 1
            self._schedule()

    def on_resize(self) -> None:
        self._schedule()

    def watch_ascii_only(self) -> None:
        self._schedule()

    def _key(self) -> tuple[object, ...]:
        """What the drawing depends on now; a new version when the visible points moved."""
        shown = self._visible()
        if shown != self._shown:
            self._shown = shown
            self._version += 1
        return (self.size, self._version, self.app.theme, self.ascii_only)

    def up_to_date(self) -> bool:
        """True when what is shown matches the latest data (tests wait on this)."""
        too_small = self.size.width < 12 or self.size.height < 4
        return too_small or (self._building is None and self._built_key == self._key())

    def _schedule(self) -> None:
        if not self.is_mounted or self.size.width < 12 or self.size.height < 4:
            return
        key = self._key()
        if self._building is not None or key == self._built_key:
            return  # a build is running: when it ends, it checks for newer data
        variables = self.app.theme_variables
        colors, markers = {}, {}
        for role, is_canary in (("canary", True), ("baseline", False)):
            default = CANARY_COLOR if is_canary else BASELINE_COLOR
            colors[role] = _rgb(variables.get(f"{role}-color", default), default)
            markers[role] = ("*" if is_canary else ".") if self.ascii_only else variables.get(
                f"{role}-marker", "hd" if is_canary else "braille")  # fmt: skip
        colors["gap"] = _rgb(variables.get("error", "#FF0000"), "#FF0000")  # no data: a gap
        if self._shown is None:  # set by _key(): nothing to build yet
            return
        clock, visible = self._shown
        job = GraphJob(self.spec, visible, clock, self.window_s, self.size.width,
                       self.size.height, colors, markers, self.ascii_only)  # fmt: skip
        self._building = key
        self.run_worker(partial(build_graph_text, job), thread=True, group=f"graph-{id(self)}",
                        exit_on_error=False)  # fmt: skip

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != f"graph-{id(self)}":
            return
        if event.state is WorkerState.SUCCESS:
            result = event.worker.result
            if result is None:  # a successful build returns its drawing
                return
            text, lines = result
            changed = self._changed_rows(lines)
            self._lines = lines
            self._cache = text
            self._built_key = self._building
            # Repaint only the rows that differ: over SSH every unchanged row is bytes saved.
            for start, count in changed:
                self.refresh(Region(0, start, self.size.width, count))
        elif event.state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        else:
            self.refresh()
        self._building = None
        self._schedule()  # newer data may have come in meanwhile

    def _changed_rows(self, lines: list[str]) -> list[tuple[int, int]]:
        """Runs (first row, count) where `lines` differ from what is on screen."""
        old = self._lines
        if len(old) != len(lines) or self._cache is None:
            return [(0, max(len(lines), self.size.height))]
        runs: list[tuple[int, int]] = []
        for row, (a, b) in enumerate(zip(old, lines, strict=True)):
            if a != b:
                if runs and runs[-1][0] + runs[-1][1] == row:
                    runs[-1] = (runs[-1][0], runs[-1][1] + 1)
                else:
                    runs.append((row, 1))
        return runs

    def render(self) -> Text:
        if self.size.width < 12 or self.size.height < 4 or self._cache is None:
            return Text(self.spec.title, style="dim")
        return self._cache
