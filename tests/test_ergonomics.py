"""Themes (user YAML, NO_COLOR, persistence), ASCII detection, SSH without animations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from canary_tui.tui.settings import (
    MONO_THEME,
    initial_theme,
    load_settings,
    load_user_themes,
    wants_ascii,
)
from tests.support.processes import child_setup
from tests.tui_support import app_on, settle


def test_no_color_picks_monochrome_unless_a_theme_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert initial_theme(None) == MONO_THEME
    assert initial_theme("canary-light") == "canary-light"


@pytest.mark.parametrize(("term", "colorterm", "expected"), [
    ("xterm-256color", "", "canary-dark"),
    ("screen", "", "canary-dark"),
    ("vt100", "", "canary-mono"),
    ("vt220", "", "canary-mono"),
    ("dumb", "", "canary-mono"),
    ("", "", "canary-mono"),
    ("vt100", "truecolor", "canary-mono"),  # TERM asked for vt100; COLORTERM may be inherited
    ("xterm-256color", "truecolor", "canary-dark"),
    ("", "truecolor", "canary-dark"),
    ("no-such-terminal", "", "canary-dark"),
])  # fmt: skip
def test_a_terminal_without_colour_picks_monochrome(
    term: str, colorterm: str, expected: str
) -> None:
    """In a fresh interpreter each time: curses reads terminfo once per process."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLORTERM", "TERM")}
    env.update({"TERM": term} if term else {})
    env.update({"COLORTERM": colorterm} if colorterm else {})
    code = "from canary_tui.tui.settings import initial_theme; print(initial_theme(None))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1],
                         preexec_fn=child_setup)  # fmt: skip
    assert out.stdout.strip() == expected


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


# --- graphs redraw only when the drawing would change ---------------------------------------


def test_the_graph_clock_steps_one_plotted_dot() -> None:
    from canary_tui.tui.widgets.graphs import AXIS_COLUMNS, graph_clock, graph_clock_step

    assert graph_clock_step(300.0, 40) == pytest.approx(300.0 / (2 * (40 - AXIS_COLUMNS)))
    assert graph_clock_step(30.0, 200) == 1.0  # never finer than a tick
    step = graph_clock_step(300.0, 40)
    assert graph_clock(100.0, step) <= 100.0 < graph_clock(100.0, step) + step


async def test_a_graph_is_rebuilt_once_per_dot_not_once_per_tick() -> None:
    from textual.app import App, ComposeResult

    from canary_tui.core.frames import SeriesPoint
    from canary_tui.tui.widgets.graphs import ERRORS, ComparisonGraph, graph_clock_step

    class OneGraph(App[None]):
        def compose(self) -> ComposeResult:
            yield ComparisonGraph(ERRORS)

    app = OneGraph()
    async with app.run_test(size=(40, 14)) as pilot:
        graph = app.query_one(ComparisonGraph)
        builds: list[int] = []
        original = graph.run_worker
        graph.run_worker = lambda *a, **k: builds.append(1) or original(*a, **k)  # type: ignore[method-assign]
        points: list[SeriesPoint] = []
        ticks = 60
        for t in range(1, ticks + 1):
            points.append(SeriesPoint(t=float(t), err_baseline=0.01, err_canary=0.01 + t / 1e4))
            graph.show(points, float(t))
            await settle(pilot, rounds=1)
        step = graph_clock_step(graph.window_s, graph.size.width)
        assert step > 4  # a 300 s graph on 40 columns: one dot is several ticks
        assert ticks / step - 2 <= len(builds) <= ticks / step + 2
        shown = graph._shown
        assert shown is not None and shown[1][-1].t <= shown[0] <= ticks
