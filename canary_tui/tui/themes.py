"""Register the project's themes (themes/*.yaml) and the user's own with the app."""

from __future__ import annotations

from typing import Any

from textual.app import App

from canary_tui.tui.settings import load_user_themes
from themes import load_builtin_themes


def register_themes(app: App[Any]) -> list[str]:
    """Register built-in then user themes; return one line per user theme file ignored."""
    for theme in load_builtin_themes():
        app.register_theme(theme)
    user = load_user_themes()
    for theme in user.themes:
        app.register_theme(theme)
    return user.problems
