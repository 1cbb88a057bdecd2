"""The user's own settings and themes: `~/.config/canary-tui/settings.yaml` and `themes/*.yaml`.

Nothing here may stop the dashboard: a broken file is reported and ignored, never fatal.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from textual.theme import Theme

from canary_tui.paths import config_dir
from themes import ThemeError, theme_from_mapping

DEFAULT_THEME = "canary-dark"
MONO_THEME = "canary-mono"


def settings_path() -> Path:
    return config_dir() / "settings.yaml"


def load_settings() -> dict[str, object]:
    try:
        data = yaml.safe_load(settings_path().read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_setting(key: str, value: object) -> str | None:
    """Persist one setting; returns a problem to show, or None."""
    data = load_settings()
    data[key] = value
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return f"could not save {key} to {path}: {exc.strerror or exc}"
    return None


@dataclass
class UserThemes:
    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_user_themes(directory: Path | None = None) -> UserThemes:
    """Every valid theme in the user's themes folder, and a line per file that is not."""
    folder = directory or config_dir() / "themes"
    out = UserThemes()
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            out.themes.append(theme_from_mapping(data, str(path)))
        except (OSError, UnicodeDecodeError) as exc:
            out.problems.append(f"{path}: cannot read: {exc}")
        except yaml.YAMLError as exc:
            out.problems.append(f"{path}: not valid YAML: {exc}")
        except ThemeError as exc:
            out.problems.append(str(exc))
    return out


def initial_theme(requested: str | None) -> str:
    """--theme wins; then NO_COLOR or a terminal without colour (monochrome); then the saved
    choice; then the default."""
    if requested:
        return requested
    if "NO_COLOR" in os.environ or not terminal_has_colour():
        return MONO_THEME
    saved = load_settings().get("theme")
    return saved if isinstance(saved, str) and saved else DEFAULT_THEME


def terminal_has_colour() -> bool:
    """False when the terminal cannot show colour: TERM `dumb`, or a terminfo entry with fewer
    than 8 colours (vt100, vt220, xterm-mono), even with COLORTERM set (inside tmux COLORTERM
    is usually the outer terminal's, while TERM=vt100 was asked for); TERM unset without
    COLORTERM. A terminal terminfo does not know is taken to have colour."""
    term = os.environ.get("TERM", "")
    if term == "dumb":
        return False
    if not term:
        return bool(os.environ.get("COLORTERM"))
    colours = terminfo_colours(term)
    return colours is None or colours >= 8


@functools.cache
def terminfo_colours(term: str) -> int | None:
    """`tput colors` for `term` from the terminfo database (-1: none), None when unknown.

    (curses reads terminfo once per process: the first terminal asked about is the answer.)
    """
    try:
        import curses

        fd = os.open(os.devnull, os.O_WRONLY)
        try:
            curses.setupterm(term, fd)
        finally:
            os.close(fd)
        return int(curses.tigetnum("colors"))
    except Exception:  # no curses module, no terminfo entry (curses.error), no /dev/null
        return None


def wants_ascii(flag: bool) -> bool:
    """--ascii, or a locale that is not UTF-8 (LANG=C)."""
    if flag:
        return True
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = os.environ.get(var)
        if value:
            return "utf-8" not in value.lower() and "utf8" not in value.lower()
    return True  # no locale at all is the C locale
