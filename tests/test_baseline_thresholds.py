"""Slow-request thresholds read from the baseline before the canary (baseline_quantile)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator import SimulatedService, SimulatorSettings
from canary_tui.config.loader import ConfigError, load_config
from canary_tui.config.schema import Config
from canary_tui.core.clock import VirtualClock
from canary_tui.core.judging.sequential import SequentialJudge
from canary_tui.core.judging.threshold import ThresholdJudge
from canary_tui.core.specs import MetricKind, MetricSpec
from canary_tui.core.state import Phase
from canary_tui.records.audit import read_records
from tests.conftest import make_rig


def config_with(source: dict[str, Any] | None = None, **judge: Any) -> Config:
    return Config.model_validate({
        "canary": {"name": "checkout"},
        "plan": [{"weight": 10, "hold": 60}, {"weight": 50, "hold": 60}],
        "metrics": [
            {"name": "errors", "kind": "errors", "tolerance_ratio": 1.5, "tolerance_abs": 0.002},
            {"name": "latency", "kind": "latency", "baseline_quantile": "p95",
             "tolerance_ratio": 1.5, "tolerance_abs": 0.005},
        ],
        "slos": [],
        "judge": {"kind": "sequential", **judge},
        "loop": {"tick": 2},
        "source": {"kind": "simulator", "rate": 2000, "onset_s": 45, **(source or {})},
        "router": {"kind": "simulator"},
    })  # fmt: skip


# --- the spec and the config ----------------------------------------------------------------


def test_a_latency_metric_takes_a_threshold_or_a_baseline_quantile() -> None:
    assert MetricSpec("l", MetricKind.LATENCY, baseline_quantile=0.99).threshold_ms is None
    with pytest.raises(ValueError, match="one of them"):
        MetricSpec("l", MetricKind.LATENCY)
    with pytest.raises(ValueError, match="one of them"):
        MetricSpec("l", MetricKind.LATENCY, threshold_ms=250.0, baseline_quantile=0.95)
    with pytest.raises(ValueError, match=r"\[0.5, 1\)"):
        MetricSpec("l", MetricKind.LATENCY, baseline_quantile=1.0)
    with pytest.raises(ValueError, match="only a latency metric"):
        MetricSpec("e", MetricKind.ERRORS, baseline_quantile=0.95)
    with pytest.raises(ValueError, match="sequential"):
        ThresholdJudge((MetricSpec("l", MetricKind.LATENCY, baseline_quantile=0.95),))


def test_config_reads_p95_and_p99_9() -> None:
    assert config_with().metrics[1].baseline_quantile == pytest.approx(0.95)
    cfg = config_with()
    data = cfg.model_dump()
    data["metrics"][1]["baseline_quantile"] = "p99.9"
    assert Config.model_validate(data).metrics[1].baseline_quantile == pytest.approx(0.999)
    assert config_with(baseline_window="15m").judge.baseline_window == 900.0


@pytest.mark.parametrize(("metric", "judge", "message"), [
    ("{name: latency, kind: latency, baseline_quantile: p100}", "sequential", "less than 1"),
    ("{name: latency, kind: latency, baseline_quantile: fast}", "sequential", "not a quantile"),
    ("{name: latency, kind: latency, baseline_quantile: p95, threshold_ms: 250}", "sequential",
     "not both"),
    ("{name: errors, kind: errors, baseline_quantile: p95}", "sequential", "only a latency"),
    ("{name: latency, kind: latency}", "sequential", "baseline_quantile"),
    ("{name: latency, kind: latency, baseline_quantile: p95}", "threshold",
     "needs judge.kind: sequential"),
])  # fmt: skip
def test_bad_quantile_settings_are_located_errors(
    tmp_path: Path, metric: str, judge: str, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        canary: {{name: checkout}}
        metrics:
          - {metric}
        judge: {{kind: {judge}}}
        """)
    )
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


# --- the simulator's history -------------------------------------------------------------------


def test_the_simulator_has_baseline_history_and_the_session_stream_is_unchanged() -> None:
    samples = []
    for history in (0.0, 600.0):
        clock = VirtualClock()
        service = SimulatedService(clock, SimulatorSettings(seed=3, rate=1000, history_s=history))
        before = service.metrics.fetch(clock.now() - 600, clock.now())
        assert before.ok and before.canary is not None and before.baseline is not None
        assert before.canary.requests == 0
        if history:
            assert 550_000 < before.baseline.requests < 650_000
            assert before.baseline.latency is not None and before.baseline.latency.total > 0
        else:
            assert before.baseline.requests == 0
        service.weight = 10
        clock.advance(30)
        samples.append(service.metrics.fetch(clock.now() - 30, clock.now()))
    assert samples[0] == samples[1]


# --- the engine reads it before the canary ---------------------------------------------------


def test_thresholds_are_fixed_before_the_canary_and_audited(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with())
    judge = rig.engine.judge
    assert isinstance(judge, SequentialJudge)
    assert judge.thresholds_ms() == {"latency": 250.0}  # the p95 (~230 ms) up to its bucket
    record = next(r for r in read_records(rig.audit_path) if r["type"] == "judge")
    assert "10 min before the canary" in record["message"] and "250 ms" in record["message"]
    assert any("slow above 250 ms" in a.text for a in rig.engine.full_frame().activity)
    rig.ticks(10)
    latency = next(v for v in rig.engine.verdicts if v.metric == "latency")
    assert latency.why.startswith("latency >250 ms:")


def test_latency_regression_rolls_back_with_the_learnt_threshold(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with({"scenario": "latency-regression", "seed": 5}))
    rig.ticks(200, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    kill = next(r for r in read_records(rig.audit_path)
                if r["type"] == "intent" and r["verb"] == "kill")  # fmt: skip
    assert "baseline p95 was" in kill["reason"] and "before the canary" in kill["reason"]


def test_without_history_the_judge_learns_from_the_first_minute(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with({"history_s": 0}))
    judge = rig.engine.judge
    assert isinstance(judge, SequentialJudge) and judge.needs_baseline
    assert any("nothing to read" in a.text and "only 0 baseline requests" in a.text
               for a in rig.engine.full_frame().activity)  # fmt: skip
    rig.ticks(5)
    latency = next(v for v in rig.engine.verdicts if v.metric == "latency")
    assert "learning the baseline's p95" in latency.why
    rig.ticks(40)
    assert judge.thresholds_ms() == {"latency": 250.0}
    latency = next(v for v in rig.engine.verdicts if v.metric == "latency")
    assert latency.why.startswith("latency >250 ms:")


def test_a_failing_source_at_start_is_a_note_not_a_crash(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with({"scenario": "metrics-outage", "onset_s": 0}))
    assert rig.engine.judge.needs_baseline  # type: ignore[attr-defined]
    assert any(
        "nothing to read" in a.text and "outage" in a.text for a in rig.engine.full_frame().activity
    )


def test_the_effect_the_evidence_quotes_is_configurable(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, config=config_with({"scenario": "error-regression", "seed": 5},
                                                effect="difference"))  # fmt: skip
    rig.ticks(200, until=lambda e: e.state.terminal)
    kill = next(r for r in read_records(rig.audit_path)
                if r["type"] == "intent" and r["verb"] == "kill")  # fmt: skip
    assert "difference +" in kill["reason"] and " pp" in kill["reason"]
    with pytest.raises(ValueError, match="ratio"):
        config_with(effect="odds")
