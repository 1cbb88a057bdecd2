"""The `?` screen: every key of the dashboard, generated from its live bindings."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from canary_tui.tui.keymap import ACTIONS_BY_ID


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 84; max-width: 98%; height: auto; max-height: 95%;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, rows: list[tuple[str, str, str, bool]]) -> None:
        """`rows`: (key display, label, description, enabled now)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="keys", box=None, padding=(0, 1), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("action", no_wrap=True)
        table.add_column("what it does")
        for key, label, description, enabled in self.rows:
            style = "" if enabled else "dim"
            table.add_row(key, label, description + ("" if enabled else "  (not now)"), style=style)
        with VerticalScroll():
            yield Static(table)
            yield Static("[dim]escape closes this help[/dim]")

    def action_close(self) -> None:
        self.dismiss(None)


def describe(binding: Binding) -> str:
    """The long description of a binding, from the action table or its own text."""
    action = ACTIONS_BY_ID.get(binding.action)
    if action is not None:
        return action.help
    return {
        "help": "show this list of keys",
        "evidence": "every verdict in full: rates, interval, tolerance, counts, p-value, rule",
        "change_theme": "pick a colour theme (remembered in ~/.config/canary-tui/settings.yaml)",
        "quit": "leave the dashboard (the last one out chooses: keep the loop running or stop it)",
        "detach": "leave the dashboard; the session daemon and its loop carry on",
        "command_palette": "search every action by name",
    }.get(binding.action, binding.description)
