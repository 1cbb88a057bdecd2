"""What the screen must say loudly, computed from a frame alone: a stopped or stalled loop,
a pending kill, an unreachable router, stale figures, no data, a held plan.

Ages come from the frame's own clock (`Frame.now`, which the session's watchdog moves every
second even when the loop is stuck), so live, attached and replayed sessions mark staleness
the same way, and nothing stale is ever drawn as live.
"""

from __future__ import annotations

from canary_tui.core.actions import ago as age_text
from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase
from canary_tui.tui.format import clock_time


def router_text(frame: Frame) -> str:
    """'router 10%', or with a '?' and its age when the last good read is stale."""
    routing = frame.routing
    if routing is None:
        return "router ?"
    text = f"router {routing.weight}%"
    if routing.mirror:
        text += f" mirror {routing.mirror_percent}%"
    if frame.routing_stale:
        age = frame.age(frame.routing_at)
        text += "?" + (f" ({age_text(age)} old)" if age is not None else "")
    return text


def alarms(frame: Frame) -> list[str]:
    """The banner's lines, most urgent first (empty: nothing to shout about)."""
    out: list[str] = []
    if frame.loop != "running":
        label = "LOOP STOPPED" if frame.loop == "stopped" else "LOOP STALLED"
        detail = frame.loop_detail or "no detail"
        out.append(f"{label}: {detail}; auto-rollback is NOT running, figures are frozen")
    s = frame.state
    if s.kill is not None:
        text = f"KILL PENDING ({s.kill.actor}: {s.kill.reason or 'no reason given'})"
        if frame.kill_attempts:
            text += f", attempt {frame.kill_attempts}"
        if frame.kill_error:
            text += f": {frame.kill_error}"
        out.append(text + "; retrying until the router confirms")
    if frame.router_error is not None:
        since = frame.routing_at
        when = f", last good read {age_text(frame.age(since) or 0)} ago" if since else ""
        out.append(f"ROUTER UNREACHABLE: {frame.router_error}{when}")
    elif frame.routing_stale and frame.loop == "running" and frame.routing is not None:
        out.append(f"ROUTER STATE STALE: {router_text(frame)}")
    if frame.no_data:
        out.append(f"NO DATA: {frame.no_data} (holding; no data is never a pass)")
    elif frame.metrics_stale and frame.metrics_at is not None and not s.terminal:
        age = frame.age(frame.metrics_at) or 0
        out.append(f"METRICS STALE: the last figures are {age_text(age)} old")
    if frame.warning and (s.kill is None or not frame.warning.startswith("KILL PENDING")):
        out.append(frame.warning)
    if s.phase is Phase.ROLLED_BACK:
        out.append("ROLLED BACK: canary weight 0")
    elif s.phase is Phase.PROMOTED:
        out.append("PROMOTED: canary at 100%")
    return out


def since_text(t: float | None) -> str:
    return "never" if t is None else f"{clock_time(t)} UTC"
