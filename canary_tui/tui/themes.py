"""Load Textual themes from the project's themes/ folder (YAML) and register them."""

from __future__ import annotations

from textual.app import App

from themes import load_builtin_themes


def register_themes(app: App[object]) -> None:
    for theme in load_builtin_themes():
        app.register_theme(theme)
