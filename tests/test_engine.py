"""The loop in virtual time on the seeded simulator: rollbacks, promotions, holds, one path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from canary_tui.config.demo import demo_config
from canary_tui.config.schema import Config
from canary_tui.core.actions import Verb
from canary_tui.core.frames import Frame
from canary_tui.core.metrics import Sample, VariantCounts
from canary_tui.core.state import Phase
from canary_tui.core.verdict import Status
from canary_tui.records.audit import read_records, verify
from canary_tui.tui.widgets.verdicts import STATUS_WORD
from tests.conftest import ALICE, BOB, Rig

Factory = Callable[..., Rig]


def test_error_regression_is_rolled_back_automatically_with_evidence(rig_factory: Factory) -> None:
    rig = rig_factory("error-regression", seed=1)
    ticks = rig.ticks(200, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    # onset at 45 s, ticks of 2 s: rolled back within 60 ticks of the start
    assert ticks <= 60
    assert rig.service.weight == 0 and rig.service.router_calls[-1] == "abort"
    records = list(read_records(rig.audit_path))
    intent = next(r for r in records if r["type"] == "intent" and r["verb"] == "kill")
    assert intent["actor"] == {"name": "auto-rollback", "kind": "rule"}
    assert intent["source"] == "rule"
    assert intent["evidence"]["rule"] == "verdict-fail"
    failing = intent["evidence"]["verdicts"][0]
    assert failing["metric"] == "errors" and failing["status"] == "fail"
    assert failing["evidence"]["canary_rate"] > failing["evidence"]["baseline_rate"]
    assert "errors: canary" in intent["reason"]
    result = next(r for r in records if r["type"] == "result" and r["id"] == intent["id"])
    assert result["outcome"] == "applied" and result["routing"]["weight"] == 0
    assert records.index(intent) < records.index(result)
    assert verify(rig.audit_path).ok


def test_healthy_scenario_is_promoted_with_no_rollback(rig_factory: Factory) -> None:
    rig = rig_factory("healthy", seed=1)
    rig.ticks(400, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.PROMOTED
    assert rig.service.weight == 100
    verbs = [r["verb"] for r in read_records(rig.audit_path) if r["type"] == "result"]
    assert "kill" not in verbs
    assert verbs.count("step_forward") == 4 and verbs[-1] == "promote"


def test_metrics_outage_holds_and_never_advances(rig_factory: Factory) -> None:
    rig = rig_factory("metrics-outage", seed=0)
    svc = rig.service
    steps_seen = set()
    saw_no_data = False
    while rig.clock.now() - svc.started_at < svc.settings.onset_s + svc.scenario.outage_s:
        before = rig.engine.state.step_index
        rig.ticks(1)
        if svc.in_outage(rig.clock.now()):
            saw_no_data = True
            assert rig.engine.no_data is not None
            assert rig.engine.state.step_index == before, "advanced during a metrics outage"
            assert all(v.no_data for v in rig.engine.verdicts)
            steps_seen.add(rig.engine.state.step_index)
    assert saw_no_data and len(steps_seen) == 1
    assert not rig.engine.state.terminal


def test_no_data_rollback_policy_kills_after_grace(rig_factory: Factory) -> None:
    from canary_tui.config.demo import demo_config

    cfg = demo_config("metrics-outage")
    cfg = cfg.model_copy(
        update={
            "loop": cfg.loop.model_copy(
                update={
                    "no_data": cfg.loop.no_data.model_copy(
                        update={"action": "rollback", "grace": 20.0}
                    )
                }
            )
        }
    )
    rig = rig_factory(config=cfg)
    rig.ticks(200, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    kill = [r for r in read_records(rig.audit_path) if r["type"] == "intent"][-1]
    assert kill["evidence"]["rule"] == "no-data" and kill["evidence"]["silent_s"] >= 20


def test_bad_counts_are_no_data_and_shown(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    real = rig.engine.source

    class Resetting:
        def fetch(self, start: float, end: float) -> Sample:
            s = real.fetch(start, end)
            return Sample(start, end, s.baseline, VariantCounts(-3.0, 0.0))

    rig.engine.source = Resetting()
    frame = rig.engine.tick()
    assert frame.no_data is not None and "negative" in frame.no_data
    assert frame.points[-1].no_data
    assert all(v.no_data for v in frame.verdicts)


def test_manual_actions_go_through_the_one_path_and_are_audited(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    rig.ticks(3)
    assert rig.act(Verb.STEP_FORWARD).ok
    assert rig.service.weight == 10
    assert rig.act(Verb.SHADOW_ON).ok and rig.service.mirror
    assert rig.act(Verb.PAUSE).ok and rig.service.paused
    out = rig.act(Verb.PAUSE)
    assert not out.ok and "already paused" in out.message
    assert rig.act(Verb.ANNOTATE, reason="latency looks odd", version=None).ok
    records = list(read_records(rig.audit_path))
    refused = [r for r in records if r["type"] == "refused"]
    assert refused and refused[-1]["actor"]["name"] == "alice"
    assert refused[-1]["actor"]["ssh_client"] == "203.0.113.7"
    note = [r for r in records if r.get("verb") == "annotate"]
    assert [r["type"] for r in note] == ["intent", "result"]
    assert note[0]["reason"] == "latency looks odd"
    for r in records:
        if r["type"] in ("intent", "result", "refused"):
            assert {"time", "actor", "source", "state", "prev", "hash", "seq"} <= set(r)


def test_paused_canary_does_not_advance_but_still_rolls_back(rig_factory: Factory) -> None:
    rig = rig_factory("error-regression", seed=2)
    rig.ticks(1)  # the fresh canary (at 0%) is started at the first step by the audited rule
    assert rig.service.weight == 5
    assert rig.act(Verb.PAUSE).ok
    rig.ticks(200, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    steps = [r for r in read_records(rig.audit_path) if r.get("verb") == "step_forward"]
    assert steps == []


def test_disarmed_loop_warns_instead_of_killing(rig_factory: Factory) -> None:
    rig = rig_factory("error-regression", seed=1)
    assert rig.act(Verb.DISARM, reason="testing the alarm").ok
    rig.ticks(60)
    assert rig.engine.state.phase is not Phase.ROLLED_BACK
    assert rig.engine.warning is not None and "DISARMED" in rig.engine.warning


def test_stale_action_refused_with_who_and_kill_wins(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    rig.ticks(2)
    seen = rig.engine.state.version
    assert rig.act(Verb.KILL, BOB, version=seen).ok
    promote = rig.act(Verb.PROMOTE, ALICE, version=seen)
    assert not promote.ok
    assert promote.message.startswith("refused: bob killed the canary")
    second_kill = rig.act(Verb.KILL, ALICE, version=seen)
    assert second_kill.ok and "nothing to do" in second_kill.message
    results = [
        r for r in read_records(rig.audit_path) if r.get("verb") == "kill" and r["type"] == "result"
    ]
    assert [r["outcome"] for r in results] == ["applied", "noop"]


def test_kill_is_retried_with_backoff_until_the_router_confirms(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    rig.ticks(2)
    rig.service.fail_next_router_calls(4)  # the press and three retries fail
    out = rig.act(Verb.KILL)
    assert not out.ok and "pending" in out.message
    assert rig.engine.warning is not None and "KILL PENDING" in rig.engine.warning
    ticks = rig.ticks(60, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK and rig.service.weight == 0
    aborts = [c for c in rig.service.router_calls if c == "abort"]
    assert len(aborts) == 5
    # backoff 1, 2, 4, 8 s between attempts, ticks of 2 s: not one attempt per tick
    assert ticks > 5
    results = [r for r in read_records(rig.audit_path) if r.get("verb") == "kill"]
    assert [r["type"] for r in results] == ["intent"] + ["result"] * 5
    assert [r["outcome"] for r in results[1:]] == ["error"] * 4 + ["applied"]
    assert len({r["id"] for r in results}) == 1


def test_audit_intent_is_written_before_the_router_is_called(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    seen_at_call: list[int] = []
    router = rig.engine.router
    original = router.set_weight

    def spying(weight: int):  # type: ignore[no-untyped-def]
        lines = rig.audit_path.read_text().splitlines()
        seen_at_call.append(len(lines))
        last = json.loads(lines[-1])
        assert last["type"] == "intent" and last["verb"] == "step_forward"
        return original(weight)

    router.set_weight = spying  # type: ignore[method-assign]
    assert rig.act(Verb.STEP_FORWARD).ok
    assert seen_at_call


def test_unwritable_audit_refuses_actions_but_kill_still_applies(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    rig.ticks(1)
    rig.engine.audit.close()  # every append now fails
    out = rig.act(Verb.STEP_FORWARD)
    assert not out.ok and "audit log cannot be written" in out.message
    assert rig.service.weight == 5
    rig.engine.audit.append = _raise  # type: ignore[method-assign]
    kill = rig.act(Verb.KILL)
    assert rig.service.weight == 0, kill


def _raise(record: object) -> dict[str, object]:
    from canary_tui.records.audit import AuditError

    raise AuditError("disk full")


def test_late_subscriber_gets_history_first(rig_factory: Factory) -> None:
    rig = rig_factory("healthy")
    rig.ticks(20)
    frames = []
    rig.engine.subscribe(frames.append)
    assert frames[0].full and len(frames[0].points) == 20
    assert any("loop started" in a.text for a in frames[0].activity)
    rig.ticks(1)
    assert not frames[-1].full and len(frames[-1].points) == 1


@pytest.mark.parametrize("scenario", ["error-regression", "latency-regression", "tail-latency"])
def test_the_sequential_judge_rolls_back_every_regression(
    rig_factory: Factory, scenario: str
) -> None:
    rig = rig_factory(scenario, seed=5, judge="sequential", rate=2000.0)
    ticks = rig.ticks(200, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    # onset at 45 s (tick 22): rolled back within a minute of it
    assert ticks <= 22 + 30
    kill = next(r for r in read_records(rig.audit_path)
                if r["type"] == "intent" and r["verb"] == "kill")  # fmt: skip
    assert kill["actor"]["name"] == "auto-rollback" and ": FAIL" in kill["reason"]
    # the interval and the tolerance quoted (the comparison's), or the SLO guard's lower bound
    # when bursts make the comparison a tick slower than the guard
    reason = kill["reason"]
    assert ("tolerance" in reason and "[" in reason) or "(lower bound" in reason, reason


def test_the_sequential_judge_promotes_the_healthy_canary(rig_factory: Factory) -> None:
    rig = rig_factory("healthy", seed=5, judge="sequential", rate=2000.0)
    rig.ticks(600, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.PROMOTED
    verbs = [r["verb"] for r in read_records(rig.audit_path) if r["type"] == "result"]
    assert "kill" not in verbs and verbs[-1] == "promote"


@pytest.mark.parametrize("scenario", ["error-regression", "latency-regression", "tail-latency"])
def test_a_rollback_quotes_figures_inside_its_own_interval(
    rig_factory: Factory, scenario: str
) -> None:
    """The evidence an engineer reads at 3 a.m. must not contradict itself: the ratio a FAIL
    quotes lies within the interval it quotes, and an SLO guard's rate is at least the lower
    bound that fails it (a sharp regression once quoted a window diluted by the minute before)."""
    fails = 0
    for seed in range(8):
        rig = rig_factory(scenario, seed, judge="sequential", rate=2000.0)
        rig.ticks(4000, until=lambda e: e.state.terminal)
        assert rig.engine.state.phase is Phase.ROLLED_BACK, (scenario, seed)
        for v in rig.engine.verdicts:
            if v.status is not Status.FAIL:
                continue
            fails += 1
            ev = v.evidence
            assert ev.interval is not None, v.why
            low, high = ev.interval
            if ev.effect is not None:  # a comparison: ratio [low, high]
                assert low * 0.999 <= ev.effect <= high * 1.001, v.why
            elif "lower bound" in v.why:  # an SLO guard: "canary errors 2.8% (last 10 s)"
                quoted = re.search(r"canary (?:errors|slow requests) ([\d.]+)%", v.why)
                assert quoted and float(quoted[1]) / 100 >= low * 0.999, v.why
    assert fails >= 8


def _warmup_config(scenario: str, *, warmup: float, ceiling: float | None) -> Config:
    """The demo with a warm-up, the regression from the canary's first second, no SLOs (so
    only the comparisons and the ceiling speak)."""
    data = demo_config(scenario, 3, rate=2000.0, onset_s=0.0).model_dump(mode="json")
    data["judge"].update(warmup=warmup, ceiling=ceiling)
    data["slos"] = []
    return Config.model_validate(data)


def test_during_warm_up_comparisons_show_warming_up_and_never_roll_back(
    rig_factory: Factory,
) -> None:
    rig = rig_factory(config=_warmup_config("error-regression", warmup=90.0, ceiling=None))
    frames: list[Frame] = []
    rig.engine.subscribe(frames.append)
    # 84 s of a canary with ten times the baseline's errors (the dispersion is measured
    # after a minute: before that the comparison is undecided, warm-up or not)
    rig.ticks(42)
    assert rig.engine.state.phase is not Phase.ROLLED_BACK
    errors = next(v for v in frames[-1].verdicts if v.metric == "errors")
    assert errors.status is Status.WARMING_UP, errors.why
    assert re.search(r": WARMING UP \(would fail; \d+ s of warm-up left\)", errors.why), errors.why
    assert STATUS_WORD[errors.status] == "WARM"  # what the dashboard's verdict table shows
    assert not [r for r in read_records(rig.audit_path) if r.get("verb") == "kill"]
    ticks = rig.ticks(100, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK and ticks <= 20  # soon after it
    kill = next(r for r in read_records(rig.audit_path)
                if r["type"] == "intent" and r["verb"] == "kill")  # fmt: skip
    assert "WARMING" not in kill["reason"] and "tolerance" in kill["reason"], kill["reason"]


def test_a_catastrophic_canary_is_rolled_back_during_warm_up_by_the_ceiling(
    rig_factory: Factory,
) -> None:
    rig = rig_factory(config=_warmup_config("error-regression", warmup=300.0, ceiling=0.02))
    ticks = rig.ticks(60, until=lambda e: e.state.terminal)
    assert rig.engine.state.phase is Phase.ROLLED_BACK
    assert ticks <= 5  # 10 s of 2 s ticks
    kill = next(r for r in read_records(rig.audit_path)
                if r["type"] == "intent" and r["verb"] == "kill")  # fmt: skip
    assert "hard ceiling of 2.00%" in kill["reason"] and ": FAIL" in kill["reason"], kill
