"""Frames as plain JSON-ready dicts and back: one codec for the daemon's wire and recordings.

`frame_from_dict(frame_to_dict(f)) == f` for every frame (a property test checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

from canary_tui.core.frames import ActivityEntry, CanaryInfo, Frame, SeriesPoint
from canary_tui.core.metrics import Sample, VariantCounts
from canary_tui.core.plan import RampPlan, RampStep
from canary_tui.core.ports import RoutingState
from canary_tui.core.slo import Gauge
from canary_tui.core.state import CanaryState, KillLatch, LastChange, Phase
from canary_tui.core.verdict import Verdict

FORMAT = 1
_T = TypeVar("_T")


def state_to_dict(s: CanaryState) -> dict[str, Any]:
    out = asdict(s)
    out["phase"] = s.phase.value
    return out


def state_from_dict(d: Mapping[str, Any]) -> CanaryState:
    last = d.get("last_change")
    kill = d.get("kill")
    return CanaryState(
        phase=Phase(d["phase"]),
        step_index=int(d["step_index"]),
        weight=int(d["weight"]),
        shadow=bool(d["shadow"]),
        armed=bool(d["armed"]),
        version=int(d["version"]),
        step_started_at=float(d["step_started_at"]),
        started_at=float(d["started_at"]),
        last_change=LastChange(**last) if last else None,
        kill=KillLatch.from_dict(kill) if isinstance(kill, Mapping) else None,
        hold=d.get("hold"),
    )


def plan_to_list(p: RampPlan) -> list[dict[str, Any]]:
    return [asdict(s) for s in p.steps]


def plan_from_list(items: list[Mapping[str, Any]]) -> RampPlan:
    steps = (
        RampStep(int(i["weight"]), float(i["hold_s"]), float(i.get("analysis_window_s", 60.0)))
        for i in items
    )
    return RampPlan(tuple(steps))


def sample_to_dict(s: Sample) -> dict[str, Any]:
    return {
        "start": s.start,
        "end": s.end,
        "baseline": s.baseline.to_dict() if s.baseline is not None else None,
        "canary": s.canary.to_dict() if s.canary is not None else None,
        "problem": s.problem,
    }


def sample_from_dict(d: Mapping[str, Any]) -> Sample:
    b, c = d.get("baseline"), d.get("canary")
    return Sample(
        float(d["start"]),
        float(d["end"]),
        VariantCounts.from_dict(b) if b is not None else None,
        VariantCounts.from_dict(c) if c is not None else None,
        d.get("problem"),
    )


_POINT_FIELDS = frozenset(f.name for f in fields(SeriesPoint))


def _point_from(d: Mapping[str, Any]) -> SeriesPoint:
    return SeriesPoint(**{k: v for k, v in d.items() if k in _POINT_FIELDS})


def frame_to_dict(f: Frame, *, with_header: bool = True) -> dict[str, Any]:
    """The frame as a dict; `with_header=False` leaves out info and plan (they never change)."""
    out: dict[str, Any] = {
        "now": f.now,
        "state": state_to_dict(f.state),
        "routing": f.routing.to_dict() if f.routing is not None else None,
        "verdicts": [v.to_dict() for v in f.verdicts],
        "gauges": [g.to_dict() for g in f.gauges],
        "no_data": f.no_data,
        "warning": f.warning,
        "points": [asdict(p) for p in f.points],
        "activity": [asdict(a) for a in f.activity],
        "full": f.full,
        "sample": sample_to_dict(f.sample) if f.sample is not None else None,
        "presence": list(f.presence),
        "seq": f.seq,
        "attended": f.attended,
        "unattended": f.unattended,
        "tick_s": f.tick_s,
        "routing_at": f.routing_at,
        "router_error": f.router_error,
        "metrics_at": f.metrics_at,
        "loop": f.loop,
        "loop_detail": f.loop_detail,
        "kill_attempts": f.kill_attempts,
        "kill_error": f.kill_error,
        "heartbeat": f.heartbeat,
    }
    if with_header:
        out["info"] = f.info.to_dict()
        out["plan"] = plan_to_list(f.plan)
    return out


def frame_from_dict(
    d: Mapping[str, Any], *, info: CanaryInfo | None = None, plan: RampPlan | None = None
) -> Frame:
    """Rebuild a frame; `info`/`plan` fill in when the dict was written without its header."""
    routing = d.get("routing")
    sample = d.get("sample")
    extra = d.get("extra") or {}
    return Frame(
        now=float(d["now"]),
        info=CanaryInfo.from_dict(d["info"]) if "info" in d else _required(info, "info"),
        plan=plan_from_list(d["plan"]) if "plan" in d else _required(plan, "plan"),
        state=state_from_dict(d["state"]),
        routing=RoutingState(**routing) if routing is not None else None,
        verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts", ())),
        gauges=tuple(Gauge(**g) for g in d.get("gauges", ())),
        no_data=d.get("no_data"),
        warning=d.get("warning"),
        points=tuple(_point_from(p) for p in d.get("points", ())),
        activity=tuple(ActivityEntry(**a) for a in d.get("activity", ())),
        full=bool(d.get("full", False)),
        sample=sample_from_dict(sample) if sample is not None else None,
        presence=tuple(d.get("presence", ())),
        # Recordings made before these were fields kept seq/attended/unattended in "extra".
        seq=int(d.get("seq", extra.get("seq", -1))),
        attended=bool(d.get("attended", extra.get("attended", True))),
        unattended=str(d.get("unattended", extra.get("unattended", "hold"))),
        tick_s=float(d.get("tick_s", 5.0)),
        routing_at=_opt_float(d.get("routing_at")),
        router_error=d.get("router_error"),
        metrics_at=_opt_float(d.get("metrics_at")),
        loop=str(d.get("loop", "running")),
        loop_detail=str(d.get("loop_detail", "")),
        kill_attempts=int(d.get("kill_attempts", 0)),
        kill_error=d.get("kill_error"),
        heartbeat=bool(d.get("heartbeat", False)),
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _required(value: _T | None, name: str) -> _T:
    if value is None:
        raise ValueError(f"frame has no {name} and none was given")
    return value
