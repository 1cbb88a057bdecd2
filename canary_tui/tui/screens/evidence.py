"""The `e` screen: every current verdict in full, with the counts and p-value behind it.

The verdict table has room for a status and a few numbers; this is where an engineer reads
the whole sentence ("errors: canary 1.9% vs baseline 0.5%, ratio 3.8x [2.1x, 6.4x], tolerance
1.2x: FAIL") before acting on it. It follows the live frames while open.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Static

from canary_tui.core.verdict import Verdict
from canary_tui.tui.format import clock_time, theme_style
from canary_tui.tui.widgets.verdicts import STATUS_STYLE, STATUS_WORD


def evidence_text(
    verdicts: tuple[Verdict, ...], now: float | None, style: Callable[[str], str]
) -> Group:
    """One block per verdict: status and full why, then counts, p-value and rule (dim).
    `style` resolves the theme's $variables in a style string."""
    when = f" at {clock_time(now)} UTC" if now is not None else ""
    parts: list[Text] = [Text(f"verdicts{when}", style="bold")]
    if not verdicts:
        parts.append(Text("waiting for the first window", style="dim"))
    for v in verdicts:
        line = Text()
        line.append(f" {STATUS_WORD[v.status]} ", style=style(STATUS_STYLE[v.status]))
        line.append(" ")
        line.append(v.why)
        parts += [Text(""), line, Text(f"      {_numbers(v)}", style="dim")]
    return Group(*parts)


def _numbers(v: Verdict) -> str:
    return v.evidence.counts_text() + (", no data" if v.no_data else "")


class EvidenceScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    EvidenceScreen { align: center middle; }
    EvidenceScreen > VerticalScroll { width: 110; max-width: 98%; height: auto;
                                      max-height: 95%; border: thick $accent;
                                      background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="evidence_close"),
        Binding("e", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    shown: reactive[tuple[tuple[Verdict, ...], float | None]] = reactive(((), None))

    def __init__(self, verdicts: tuple[Verdict, ...], now: float | None) -> None:
        super().__init__()
        self.set_reactive(EvidenceScreen.shown, (verdicts, now))

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(evidence_text(*self.shown, self._style), id="evidence")
            yield Static("[dim]escape closes this view; it follows the live verdicts[/dim]")

    def watch_shown(self, shown: tuple[tuple[Verdict, ...], float | None]) -> None:
        if self.is_mounted:
            self.query_one("#evidence", Static).update(evidence_text(*shown, self._style))

    def _style(self, spec: str) -> str:
        return theme_style(self.app, spec)

    def action_close(self) -> None:
        self.dismiss(None)
