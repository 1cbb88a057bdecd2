"""Themes (user YAML, NO_COLOR, persistence), ASCII detection, SSH without animations."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary_tui.tui.settings import (
    MONO_THEME,
    initial_theme,
    load_settings,
    load_user_themes,
    wants_ascii,
)
from tests.tui_support import app_on, settle


def test_no_color_picks_monochrome_unless_a_theme_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert initial_theme(None) == MONO_THEME
    assert initial_theme("canary-light") == "canary-light"


@pytest.mark.parametrize(("env", "flag", "expected"), [
    ({"LANG": "en_US.UTF-8"}, False, False),
    ({"LANG": "C"}, False, True),
    ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, False, True),
    ({"LANG": "en_US.UTF-8"}, True, True),
    ({}, False, True),
])  # fmt: skip
def test_ascii_when_asked_or_the_locale_is_not_utf8(monkeypatch: pytest.MonkeyPatch,
                                                    env: dict[str, str], flag: bool, expected: bool) -> None:  # fmt: skip
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert wants_ascii(flag) is expected


def test_user_themes_load_and_broken_ones_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "good.yaml").write_text("name: mine\nprimary: '#112233'\n")
    (folder / "bad-colour.yaml").write_text("name: broken\nprimary: 'not a colour'\n")
    (folder / "bad-field.yaml").write_text("name: odd\nprimary: '#112233'\nsparkle: true\n")
    (folder / "bad-yaml.yaml").write_text("name: [unclosed\n")
    themes = load_user_themes(folder)
    assert [t.name for t in themes.themes] == ["mine"]
    joined = "\n".join(themes.problems)
    assert "bad-colour.yaml" in joined and "sparkle" in joined and "not valid YAML" in joined


async def test_a_broken_user_theme_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    folder = Path(__import__("os").environ["XDG_CONFIG_HOME"]) / "canary-tui" / "themes"
    folder.mkdir(parents=True)
    (folder / "bad.yaml").write_text("name: x\n")
    app, _ = app_on(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert any("theme ignored" in str(n.message) for n in app._notifications)
        assert app.theme == "canary-dark"


async def test_picked_theme_is_remembered(tmp_path: Path) -> None:
    app, _ = app_on(tmp_path, persist_theme=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.theme = "canary-colorblind"
        await settle(pilot)
    assert load_settings()["theme"] == "canary-colorblind"
    assert initial_theme(None) == "canary-colorblind"


async def test_over_ssh_animations_are_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.7 51000 10.0.0.5 22")
    app, _ = app_on(tmp_path)
    assert app.animation_level == "none"
    monkeypatch.delenv("SSH_CONNECTION")
    app2, _ = app_on(tmp_path / "b")
    assert app2.animation_level != "none"
