"""Every key of the dashboard, driven with Textual's Pilot against a real engine."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.widgets import Static

from canary_tui.core.state import Phase
from canary_tui.records.audit import read_records
from canary_tui.tui.format import clock_time
from canary_tui.tui.screens.dialogs import ConfirmScreen, TextScreen
from canary_tui.tui.screens.evidence import EvidenceScreen
from canary_tui.tui.screens.help import HelpScreen
from canary_tui.tui.widgets.activity import ActivityLog
from tests.tui_support import app_on, press, settle

SIZE = (100, 30)


def audit_of(rig) -> list[dict]:  # type: ignore[no-untyped-def]
    return list(read_records(rig.audit_path))


async def test_step_forward_and_back(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "s")
        assert rig.engine.state.step_index == 1 and rig.service.weight == 10
        await press(pilot, "S")
        assert rig.engine.state.step_index == 0 and rig.service.weight == 5
        results = [r for r in audit_of(rig) if r["type"] == "result"]
        assert [r["verb"] for r in results][-2:] == ["step_forward", "step_back"]
        assert results[-1]["actor"]["name"] == "alice" and results[-1]["source"] == "key"


async def test_pause_resume_shadow_toggles(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "p")
        assert rig.engine.state.phase is Phase.PAUSED
        await press(pilot, "p")
        assert rig.engine.state.phase is Phase.PROGRESSING
        await press(pilot, "h")
        assert rig.engine.state.shadow and rig.service.mirror
        await press(pilot, "h")
        assert not rig.engine.state.shadow and not rig.service.mirror


async def test_kill_is_immediate_and_then_other_keys_are_greyed_and_refused(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "k")
        assert rig.engine.state.phase is Phase.ROLLED_BACK and rig.service.weight == 0
        screen = app.screen
        assert screen.check_action("step_forward", ()) is None  # greyed in the footer
        await press(pilot, "s")
        refused = [r for r in audit_of(rig) if r["type"] == "refused"]
        assert refused and refused[-1]["verb"] == "step_forward"
        assert "rolled back" in refused[-1]["message"]
        log = app.screen.query_one(ActivityLog)
        assert any("step forward refused" in line for line in log.lines)
        assert any("refused" in str(n.title) for n in app._notifications)


async def test_promote_asks_and_n_cancels_y_promotes(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "P")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "n")
        assert rig.engine.state.phase is Phase.PROGRESSING
        await press(pilot, "P")
        await press(pilot, "y")
        assert rig.engine.state.phase is Phase.PROMOTED and rig.service.weight == 100


async def test_annotate_writes_a_note(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "a")
        assert isinstance(app.screen, TextScreen)
        await pilot.press("enter")  # empty text is refused in the dialog itself
        await settle(pilot)
        assert isinstance(app.screen, TextScreen)
        await pilot.press(*"p99 wobble")
        await press(pilot, "enter")
        notes = [r for r in audit_of(rig) if r.get("verb") == "annotate"]
        assert notes and notes[0]["reason"] == "p99 wobble"


async def test_disarm_asks_for_a_reason_escape_cancels_and_d_rearms(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "d")
        await press(pilot, "escape")
        assert rig.engine.state.armed
        await press(pilot, "d")
        await pilot.press(*"INC-7 noisy")
        await press(pilot, "enter")
        assert not rig.engine.state.armed
        disarm = [r for r in audit_of(rig) if r.get("verb") == "disarm" and r["type"] == "intent"]
        assert disarm[0]["reason"] == "INC-7 noisy"
        await press(pilot, "d")
        assert rig.engine.state.armed


async def test_help_lists_every_binding_and_palette_runs_actions(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.rows
        labels = [row.label for row in rows]
        canary = ["Step", "Back", "Pause", "Shadow", "Kill", "Promote", "Note", "Disarm"]
        assert labels[: len(canary)] == canary  # the canary's keys first, in footer order
        quits = [row for row in rows if row.label == "Quit"]
        assert len(quits) == 1 and quits[0].keys == "q, ^q"  # once, with both keys
        general = [i for i, row in enumerate(rows) if row.general]
        assert general and min(general) > labels.index("Quit")  # Textual's keys come last
        assert "Focus Next" in [rows[i].label for i in general]
        await press(pilot, "escape")
        await press(pilot, "colon")
        await pilot.press(*"shadow")
        await settle(pilot, 8)
        await pilot.press("enter")
        await settle(pilot, 8)
        assert rig.engine.state.shadow


async def test_quit(tmp_path: Path) -> None:
    app, _ = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "q")
    assert app.return_code == 0


async def test_resizing_never_loses_state(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for size in ((30, 8), (200, 60), (59, 19), (120, 40), (45, 14), (80, 24)):
            await pilot.resize_terminal(*size)
            await settle(pilot)
        assert not app.screen.has_class("-too-small") and not app.screen.has_class("-compact")
        await pilot.resize_terminal(50, 15)
        await settle(pilot)
        assert app.screen.has_class("-compact")
        await pilot.resize_terminal(30, 10)
        await settle(pilot)
        assert app.screen.has_class("-too-small")
        await pilot.press("k")  # the safety key works even then
        await settle(pilot)
        assert rig.engine.state.phase is Phase.ROLLED_BACK


def _plain(renderable: object, width: int = 200) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def test_evidence_shows_every_verdict_in_full_and_follows_the_frames(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path, "error-regression", ticks=30)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "e")
        screen = app.screen
        assert isinstance(screen, EvidenceScreen)
        text = _plain(screen.query_one("#evidence", Static).content)
        verdicts = rig.engine.verdicts
        assert verdicts and all(v.why in text for v in verdicts), text
        assert "canary n=" in text and "rule " in text
        rig.ticks(5)
        await settle(pilot)
        frame = app.dashboard.model.frame
        assert frame is not None and screen.shown == (frame.verdicts, frame.now)
        assert clock_time(frame.now) in _plain(screen.query_one("#evidence", Static).content)
        await press(pilot, "escape")
        assert app.screen is app.dashboard
        await press(pilot, "colon")  # the palette finds it by name too
        await pilot.press(*"evidence")
        await settle(pilot, 8)
        await press(pilot, "enter")
        assert isinstance(app.screen, EvidenceScreen)


async def test_a_pending_kill_shows_in_the_header_and_k_cancels_it_with_a_reason(
    tmp_path: Path,
) -> None:
    from canary_tui.tui.widgets.header import StatusHeader

    app, rig = app_on(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.check_action("cancel_kill", ()) is False  # hidden: no kill pending
        rig.service.fail_next_router_calls(1000)
        await press(pilot, "k")
        assert rig.engine.state.kill is not None and rig.service.weight == 5
        header = app.screen.query_one(StatusHeader).render().plain
        assert "KILL PENDING" in header
        banner = str(app.screen.query_one("#banner", Static).render())
        assert "KILL PENDING (alice" in banner and "attempt 1" in banner
        await press(pilot, "s")  # refused: a kill is pending
        assert rig.service.weight == 5
        assert app.screen.check_action("cancel_kill", ()) is True
        await press(pilot, "K")
        assert isinstance(app.screen, TextScreen)
        await pilot.press(*"load test")
        await press(pilot, "enter")
        assert rig.engine.state.kill is None and rig.engine.state.phase is Phase.PAUSED
        cancel = [r for r in audit_of(rig) if r.get("verb") == "cancel_kill"]
        assert [r["type"] for r in cancel] == ["intent", "result"]
        assert cancel[0]["reason"] == "load test" and cancel[0]["actor"]["name"] == "alice"
