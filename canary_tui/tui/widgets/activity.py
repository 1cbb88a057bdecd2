"""The activity pane: audit records, warnings and joins, on Textual's Line API (Log)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

from canary_tui.core.frames import ActivityEntry
from canary_tui.tui.format import clock_time

MARK = {
    "intent": "»",
    "result": "✓",
    "refused": "✗",
    "warn": "!",
    "verdict": "!",
    "presence": "@",
    "info": "·",
    "note": "✎",
    "alert": "‼",
    "failed": "✘",
}
ASCII_MARK = {
    "intent": ">",
    "result": "+",
    "refused": "x",
    "warn": "!",
    "verdict": "!",
    "presence": "@",
    "info": ".",
    "note": "*",
    "alert": "!!",
    "failed": "X",
}


class FailureHighlighter(Highlighter):
    """Failed actions and alerts in the error colour: a failure never looks like a success."""

    def __init__(self, ascii_only: bool) -> None:
        marks = ASCII_MARK if ascii_only else MARK
        self.marks = (f" {marks['failed']} ", f" {marks['alert']} ")

    def highlight(self, text: Text) -> None:
        plain = text.plain
        if any(mark in plain[:16] for mark in self.marks):
            text.stylize("bold red")


class ActivityLog(Log):
    """One line per entry; long histories cost nothing to scroll (Line API)."""

    DEFAULT_CSS = "ActivityLog { height: 1fr; min-height: 3; border-top: solid $panel; }"

    def __init__(self, *, ascii_only: bool = False, **kwargs: object) -> None:
        super().__init__(max_lines=5000, auto_scroll=True, highlight=True,
                         **kwargs)  # type: ignore[arg-type]  # fmt: skip
        self.ascii_only = ascii_only
        self.highlighter = FailureHighlighter(ascii_only)

    def format(self, entry: ActivityEntry) -> str:
        marks = ASCII_MARK if self.ascii_only else MARK
        seq = f" #{entry.seq}" if entry.seq is not None else ""
        return (
            f"{clock_time(entry.t)} {marks.get(entry.kind, '-')} {entry.actor}: {entry.text}{seq}"
        )

    def add(self, entries: Iterable[ActivityEntry]) -> None:
        lines = [self.format(e) for e in entries]
        if lines:
            self.write_lines(lines)
