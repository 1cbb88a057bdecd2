"""Helpers for Pilot and snapshot tests: an app on a seeded engine in virtual time."""

from __future__ import annotations

import time
from pathlib import Path

from canary_tui.core.actions import Actor
from canary_tui.session.inprocess import InProcessSession
from canary_tui.tui.app import CanaryApp, make_app
from tests.conftest import Rig, make_rig

ALICE = Actor("alice", host="bastion", ssh_client="203.0.113.7")


def app_on(
    tmp_path: Path, scenario: str = "healthy", seed: int = 0, ticks: int = 10, **kw: object
) -> tuple[CanaryApp, Rig]:
    rig = make_rig(tmp_path, scenario, seed)
    rig.ticks(ticks)
    app = make_app(InProcessSession(rig.engine, ALICE), **kw)  # type: ignore[arg-type]
    return app, rig


async def settle(pilot: object, rounds: int = 4) -> None:
    """Let workers, thread hand-offs, coalesced renders and graph builds finish."""
    from canary_tui.tui.widgets.graphs import ComparisonGraph

    for _ in range(rounds):
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    app = pilot.app  # type: ignore[attr-defined]
    # Graphs build in threads: wait for the last drawing. Bounded by a deadline, not a count
    # of polls, so a loaded machine waits longer instead of drawing a half-built screen.
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        graphs = list(app.screen.query(ComparisonGraph)) if app.screen.is_mounted else []
        if all(g.up_to_date() for g in graphs):
            break
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    await pilot.pause(0.02)  # type: ignore[attr-defined]


async def press(pilot: object, *keys: str) -> None:
    """Press `keys`, then let everything they cause finish (see `settle`)."""
    await pilot.press(*keys)  # type: ignore[attr-defined]
    await settle(pilot)
