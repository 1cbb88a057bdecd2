"""The dashboard's look at fixed sizes (pytest-textual-snapshot), on seeded virtual-time data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tui_support import app_on, settle


async def _settle(pilot: Any) -> None:
    await settle(pilot, 6)


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40), (200, 60)])
def test_dashboard_progressing(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    app, _ = app_on(tmp_path, "healthy", seed=4, ticks=40)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_after_automatic_rollback(
    snap_compare: Any, tmp_path: Path, size: tuple[int, int]
) -> None:
    app, rig = app_on(tmp_path, "error-regression", seed=1, ticks=60)
    assert rig.engine.state.terminal
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", [(50, 16), (30, 10)])
def test_small_terminals_compact_then_too_small(
    snap_compare: Any, tmp_path: Path, size: tuple[int, int]
) -> None:
    app, _ = app_on(tmp_path, "error-regression", seed=1, ticks=30)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


@pytest.mark.parametrize(
    "theme",
    ["canary-dark", "canary-light", "canary-high-contrast", "canary-colorblind", "canary-mono"],
)
def test_every_builtin_theme(snap_compare: Any, tmp_path: Path, theme: str) -> None:
    app, _ = app_on(tmp_path, "latency-regression", seed=2, ticks=40, theme=theme)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_ascii_only(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = app_on(tmp_path, "healthy", seed=4, ticks=40, ascii_only=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


def test_help_screen(snap_compare: Any, tmp_path: Path) -> None:
    app, _ = app_on(tmp_path)

    async def open_help(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_help)


def test_hold_over_waiting_for_proof(snap_compare: Any, tmp_path: Path) -> None:
    """Step 1's hold is over, the judge still wants proof: the plan bar says what and how long."""
    from canary_tui.session.inprocess import InProcessSession
    from canary_tui.tui.app import make_app
    from tests.conftest import make_rig
    from tests.tui_support import ALICE

    rig = make_rig(tmp_path, "healthy", 0, judge="sequential", rate=2000.0)
    hold = rig.engine.plan.step(0).hold_s
    rig.ticks(200, until=lambda e: e.state.time_in_step(rig.clock.now()) >= hold + 20)
    assert rig.engine.state.step_index == 0
    app = make_app(InProcessSession(rig.engine, ALICE))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_settle)


@pytest.mark.parametrize("ended", [False, True])
def test_leave_dialog(snap_compare: Any, tmp_path: Path, ended: bool) -> None:
    """The last one out at 80x24: a live canary (leave or stop), an ended one (no kill/hold)."""
    app, rig = app_on(tmp_path, "error-regression" if ended else "healthy", seed=1,
                      ticks=60 if ended else 10)  # fmt: skip
    assert rig.engine.state.terminal is ended
    app.session.detachable = True  # type: ignore[attr-defined]  # as if attached to a daemon

    async def leave(pilot: Any) -> None:
        await _settle(pilot)
        await pilot.press("q")
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=leave)
