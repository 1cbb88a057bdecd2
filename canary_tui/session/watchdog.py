"""The loop's watchdog: every second, ask the runner how the loop is (running, stalled,
stopped) and send every viewer a heartbeat frame, so a dead or stuck loop and stale figures
are marked on screen within seconds. It never waits on the engine's locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from canary_tui.core.frames import Frame
from canary_tui.engine.runner import EngineRunner

HEARTBEAT_S = 1.0


async def watch_loop(
    runner: EngineRunner,
    deliver: Callable[[Frame], None],
    interval: float = HEARTBEAT_S,
    on_change: Callable[[tuple[str, str]], None] | None = None,
) -> None:
    """Until cancelled: refresh the loop's health and deliver a heartbeat frame."""
    last: tuple[str, str] | None = None
    while True:
        health = runner.refresh_health()
        if on_change is not None and health[0] != (last[0] if last else "running"):
            on_change(health)
        last = health
        frame = runner.engine.heartbeat()
        if frame is not None:
            deliver(frame)
        await asyncio.sleep(interval)
