"""The `?` screen: every key of the dashboard, generated from its live bindings.

The canary's own keys come first (in the footer's order), then the dashboard's views and
leaving, then whatever Textual adds (scrolling, focus, copy) under "general"; one row per
action, so a key bound twice (quit: q and ctrl+q) is listed once with both keys. A greyed key
says why it cannot be used now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from rich.console import OverflowMethod
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from canary_tui.tui.keymap import ACTION_KEYS, ACTIONS_BY_ID, app_bindings

#: The app's own bindings after the canary's actions, in this order; everything else after.
APP_ORDER = (*(b.action for b in app_bindings()), "command_palette")


class HelpRow(NamedTuple):
    """One line of the `?` screen (a tuple: row[0] is the keys, row[1] the label)."""

    keys: str  # "q, ^q"
    label: str
    description: str
    why_not: str | None = None  # why it is greyed now; None: usable
    general: bool = False  # one of Textual's generic keys, listed last


def help_rows(
    bindings: Iterable[tuple[str, Binding, bool]],
    why_not: Mapping[str, str | None],
    *,
    lead: Mapping[str, tuple[str, str]] | None = None,
) -> list[HelpRow]:
    """Rows for (key display, binding, enabled) triples: `lead`'s actions first (action ->
    (label, text): the replay player's keys), then the canary's, then the app's, then the
    rest; one row per action. `why_not` gives a greyed action's reason."""
    lead = lead or {}
    keys: dict[str, list[str]] = {}
    first: dict[str, Binding] = {}
    enabled: dict[str, bool] = {}
    for display, binding, on in bindings:
        action = binding.action
        if action not in first or (binding.id and not first[action].id):
            first[action] = binding  # the app's own binding (with an id) describes it
        if action not in keys:
            keys[action], enabled[action] = [], on
        if display not in keys[action]:
            keys[action].append(display)
        enabled[action] = enabled[action] or on
    order = [*lead, *(a.id for a in ACTION_KEYS), *APP_ORDER]
    ranked = sorted(first, key=lambda a: order.index(a) if a in order else len(order))
    rows = []
    for action in ranked:
        binding = first[action]
        label, text = binding.description or action.replace("_", " "), describe(binding)
        if action in ACTIONS_BY_ID:
            label = ACTIONS_BY_ID[action].label
        if action in lead:
            label, text = lead[action]
        if action == "command_palette":
            label = "Commands"
        if text == label:  # Textual's own keys say the same thing twice
            text = ""
        reason = None if enabled[action] else (why_not.get(action) or "not now")
        shown = sorted(keys[action], key=len)  # the plain key before ^q
        rows.append(HelpRow(", ".join(shown), label, text, reason,
                            general=action not in order))  # fmt: skip
    return rows


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 84; max-width: 98%; height: auto; max-height: 95%;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    HelpScreen .general { margin-top: 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        own = [row for row in self.rows if not row.general]
        general = [row for row in self.rows if row.general]
        with VerticalScroll():
            yield Static(self._table("keys", own))
            if general:  # a table of its own, so its long names do not widen the first one
                yield Static(self._table("general", general), classes="general")
            yield Static("[dim]up/down/page keys scroll; escape closes this help[/dim]")

    def _table(self, title: str, rows: list[HelpRow]) -> Table:
        table = Table(title=title, box=None, padding=(0, 1), expand=True)
        # "…" is not ASCII: with --ascii a name too long for its column is cut instead
        cut: OverflowMethod = "crop" if getattr(self.app, "ascii_only", False) else "ellipsis"
        table.add_column("key", style="bold", no_wrap=True, overflow=cut)
        table.add_column("action", no_wrap=True, overflow=cut)
        # only this column takes the spare width; a word longer than it folds, never "…"
        table.add_column("what it does", ratio=1, overflow="fold")
        for row in rows:
            text = row.description
            if row.why_not:
                text += f"  [i](greyed: {row.why_not})[/i]"
            table.add_row(row.keys, row.label, text, style="" if row.why_not is None else "dim")
        return table

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
