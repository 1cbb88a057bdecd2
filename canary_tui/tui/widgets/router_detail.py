"""What the router's own controller says, under the header: `RoutingState.detail`, one line
per fact (for Argo Rollouts: phase and current step with revisions and images, the Rollout's
message, one line per AnalysisRun with its metrics' results).

Lines are cut to the width (never wrapped: the dashboard's layout stays put) and limited to
`max_lines`; a line that says Failed/Error/aborted is drawn in the theme's error colour,
Inconclusive/paused in its warning colour. With no detail (the simulator, or no routing
state yet) the widget takes no room.
"""

from __future__ import annotations

import re

from rich.console import OverflowMethod
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import Frame

BAD = re.compile(r"\b(Failed|Error|Degraded|aborted)\b")
WATCH = re.compile(r"\b(Inconclusive|Paused|paused)\b")


def detail_lines(frame: Frame | None, max_lines: int) -> list[str]:
    """The detail's non-empty lines, at most `max_lines` (the last says how many are left)."""
    if frame is None or frame.routing is None or not frame.routing.detail.strip():
        return []
    lines = [line for line in frame.routing.detail.splitlines() if line.strip()]
    if len(lines) > max_lines >= 1:
        rest = len(lines) - max_lines + 1
        lines = [*lines[: max_lines - 1], f"(+{rest} more lines)"]
    return lines


class RouterDetail(Widget):
    DEFAULT_CSS = "RouterDetail { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }"

    frame: reactive[Frame | None] = reactive(None, layout=True)
    ascii_only: reactive[bool] = reactive(False)
    max_lines: reactive[int] = reactive(4, layout=True)

    def render(self) -> Text:
        lines = detail_lines(self.frame, self.max_lines)
        overflow: OverflowMethod = "crop" if self.ascii_only else "ellipsis"
        out = []
        for line in lines:
            text = Text(line)
            if BAD.search(line):
                text.stylize(self._colour("error"))
            elif WATCH.search(line):
                text.stylize(self._colour("warning"))
            text.truncate(max(1, self.size.width - 2), overflow=overflow)
            out.append(text)
        return Text("\n").join(out)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(detail_lines(self.frame, self.max_lines))

    def _colour(self, name: str) -> str:
        return str(self.app.theme_variables.get(name, "default"))
