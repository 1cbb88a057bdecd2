"""The activity pane: audit records, warnings and joins, on Textual's Line API (Log)."""

from __future__ import annotations

from collections.abc import Iterable

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
}


class ActivityLog(Log):
    """One line per entry; long histories cost nothing to scroll (Line API)."""

    DEFAULT_CSS = "ActivityLog { height: 1fr; min-height: 3; border-top: solid $panel; }"

    def __init__(self, *, ascii_only: bool = False, **kwargs: object) -> None:
        super().__init__(max_lines=5000, auto_scroll=True, **kwargs)  # type: ignore[arg-type]
        self.ascii_only = ascii_only

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
