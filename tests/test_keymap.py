"""Keys from the config: rebinding by binding id, conflicts reported before anything starts."""

from __future__ import annotations

from pathlib import Path

from canary_tui.core.state import Phase
from canary_tui.tui.keymap import check_keymap
from canary_tui.tui.screens.help import HelpScreen
from tests.test_cli import canary, config_for
from tests.tui_support import app_on, settle


def test_check_keymap_finds_unknown_ids_and_conflicts() -> None:
    assert check_keymap({}) == []
    assert check_keymap({"kill": "X", "step_forward": "n"}) == []
    problems = check_keymap({"kill": "s", "explode": "x"})
    assert any("unknown binding id 'explode'" in p for p in problems)
    assert any("'s' is bound to both" in p and "kill" in p for p in problems)


async def test_a_rebound_key_acts_and_help_follows(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path, keymap={"kill": "X", "step_forward": "n"})
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert rig.engine.state.step_index == 1
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = {row[1]: row[0] for row in app.screen.rows}
        assert keys["Kill"] == "X" and keys["Step"] == "n"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("X")
        await settle(pilot)
        assert rig.engine.state.phase is Phase.ROLLED_BACK


def test_conflicting_keys_in_a_config_stop_the_start(tmp_path: Path) -> None:
    cfg = config_for(tmp_path, "healthy")
    cfg.write_text(cfg.read_text() + "\nkeys:\n  kill: p\n")
    out = canary("run", "--config", str(cfg), "--in-process")
    assert out.returncode == 2
    assert "'p' is bound to both" in out.stderr and "Traceback" not in out.stderr
