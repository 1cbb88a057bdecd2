"""The baseline's windows before the canary measure the judge's index of dispersion: the
simulator reads them back, the engine feeds and audits them, and says when it cannot."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator import SimulatedService, SimulatorSettings
from canary_tui.config import build
from canary_tui.config.build import build_engine
from canary_tui.core.clock import VirtualClock
from canary_tui.core.judging.sequential import SequentialJudge
from canary_tui.core.metrics import Sample
from canary_tui.core.ports import ReadsWindows, SmoothsTicks
from canary_tui.records.audit import read_records
from tests.conftest import make_rig
from tests.test_baseline_thresholds import config_with


def test_the_simulator_reads_its_past_as_windows_that_tile_the_span() -> None:
    clock = VirtualClock()
    service = SimulatedService(clock, SimulatorSettings(seed=3, rate=1000))
    source = service.metrics
    assert isinstance(source, ReadsWindows)
    end = clock.now()
    windows = source.fetch_windows(end - 600, end, 5.0)  # its history is kept in 10 s slices
    assert [(w.start, w.end) for w in windows] == [
        (end - 600 + 10 * i, end - 590 + 10 * i) for i in range(60)
    ]
    whole = source.fetch(end - 600, end)
    assert whole.baseline is not None and whole.canary is not None
    assert sum(w.baseline.requests for w in windows if w.baseline) == whole.baseline.requests
    assert sum(w.baseline.errors for w in windows if w.baseline) == whole.baseline.errors
    assert all(w.canary is not None and w.canary.requests == 0 for w in windows)
    # a span shorter than one window, or not a span of time: one no-data sample that says why
    for start, stop, step in ((end - 5, end, 1.0), (end - 600, math.nan, 10.0),
                              (end - 600, end, math.inf)):  # fmt: skip
        (only,) = source.fetch_windows(start, stop, step)
        assert not only.ok and only.problem


def test_the_dispersion_is_measured_before_the_canary_and_audited(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with())
    records = [r for r in read_records(rig.audit_path) if r["type"] == "judge"]
    measured = next(r["message"] for r in records if "index of dispersion" in r["message"])
    assert re.fullmatch(
        r"index of dispersion of the baseline's bad events over the 10 min before the canary "
        r"\(60 windows\): errors \d+\.\dx, latency \d+\.\dx",
        measured,
    ), measured
    rig.ticks(3)  # the first comparisons are scaled by it, not held back
    for verdict in rig.engine.verdicts:
        assert "too soon to tell" not in verdict.why, verdict.why


def test_without_history_the_dispersion_is_measured_from_the_canary(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with({"history_s": 0, "baseline_error_rate": 0.05}))
    notes = [a.text for a in rig.engine.full_frame().activity]
    assert any("index of dispersion: nothing to read over the 10 min before the canary "
               "(no baseline traffic); measuring it during the canary instead" in n
               for n in notes), notes  # fmt: skip
    rig.ticks(3)
    errors = next(v for v in rig.engine.verdicts if v.metric == "errors")
    assert "too soon to tell if errors come in bursts" in errors.why, errors.why


def test_a_source_failing_to_read_its_past_is_a_note_and_the_loop_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualClock()
    built = build_engine(config_with(), clock, audit_path=tmp_path / "audit.jsonl")
    service: SimulatedService = built.context.shared["simulator"]

    def broken(start: float, end: float, step_s: float) -> list[Sample]:
        raise RuntimeError("range query exploded")

    monkeypatch.setattr(service.metrics, "fetch_windows", broken)
    built.engine.start()
    notes = [a.text for a in built.engine.full_frame().activity]
    assert any("index of dispersion: nothing to read" in n
               and "metric source failed: range query exploded" in n for n in notes), notes  # fmt: skip
    assert not any("index of dispersion of the baseline" in r["message"]
                   for r in read_records(built.audit_path) if r["type"] == "judge")  # fmt: skip
    clock.advance(2.0)
    built.engine.tick()
    assert built.engine.verdicts


class Overlapping:
    """The simulator's metrics, declaring (as Prometheus' increase() over min_range does)
    that each tick's counts cover the last `resolution_s` seconds; records the past reads."""

    def __init__(self, inner: Any, resolution: float) -> None:
        self.inner, self.resolution = inner, resolution
        self.reads: list[tuple[float, float, list[Sample]]] = []

    def fetch(self, start: float, end: float) -> Sample:
        return self.inner.fetch(start, end)  # type: ignore[no-any-return]

    def fetch_windows(self, start: float, end: float, step_s: float) -> list[Sample]:
        windows = self.inner.fetch_windows(start, end, max(step_s, self.resolution))
        self.reads.append((start, end, windows))
        return windows  # type: ignore[no-any-return]

    def resolution_s(self, tick_s: float) -> float:
        return self.resolution


def test_a_source_whose_ticks_overlap_has_its_own_windows_read_every_resolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources: list[Overlapping] = []
    real = build.build_source

    def overlapping(*args: Any) -> Overlapping:
        sources.append(Overlapping(real(*args), 30.0))
        return sources[-1]

    monkeypatch.setattr(build, "build_source", overlapping)
    clock = VirtualClock()
    built = build.build_engine(config_with(), clock, audit_path=tmp_path / "audit.jsonl")
    built.engine.start()
    (source,) = sources
    assert isinstance(source, SmoothsTicks) and isinstance(source, ReadsWindows)
    judge = built.engine.judge
    assert isinstance(judge, SequentialJudge) and not judge.tick_dispersion
    notes = [a.text for a in built.engine.full_frame().activity]
    assert any("each tick's counts cover the source's last 30 s: the index of dispersion is "
               "measured on the source's own 30 s windows, read every 30 s" in n
               for n in notes), notes  # fmt: skip
    started = clock.now()
    for _ in range(60):  # 2 min of 2 s ticks
        clock.advance(2.0)
        built.engine.tick()
    (_, first_end, history), *live = source.reads
    assert first_end == started and len(history) == 20  # 10 min of 30 s windows
    assert len(live) == 4  # one read per 30 s, each taking up where the last windows ended
    follows = history[-1].end
    for start, end, windows in live:
        assert start == follows and end <= clock.now()
        assert [w.end - w.start for w in windows] == [30.0]
        follows = windows[-1].end


def test_a_source_whose_ticks_do_not_overlap_measures_the_dispersion_on_ticks(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path, config=config_with())
    judge = rig.engine.judge
    assert isinstance(judge, SequentialJudge) and judge.tick_dispersion
