"""The ramp plan as a one-line bar: done steps, the current one, the ones to come."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase


class PlanBar(Widget):
    DEFAULT_CSS = "PlanBar { height: 1; padding: 0 1; }"

    frame: reactive[Frame | None] = reactive(None)
    ascii_only: reactive[bool] = reactive(False)

    def render(self) -> Text:
        f = self.frame
        if f is None:
            return Text("")
        s = f.state
        done, here, todo, arrow = ("#", ">", ".", "-") if self.ascii_only else ("■", "▶", "□", "─")
        out = Text("plan ", style="dim")
        weights = [st.weight for st in f.plan.steps] + [100]
        for i, w in enumerate(weights):
            last = i == len(weights) - 1
            if s.phase is Phase.PROMOTED:
                mark, style = (done, "green") if not last else (here, "bold green")
            elif s.phase is Phase.ROLLED_BACK:
                mark, style = (todo, "dim red")
            elif last:
                mark, style = (todo, "dim")
            elif i < s.step_index:
                mark, style = (done, "green")
            elif i == s.step_index:
                mark, style = (here, "bold reverse")
            else:
                mark, style = (todo, "dim")
            out.append(f"{mark}{w}%", style=style)
            if not last:
                out.append(f" {arrow} ", style="dim")
        if s.phase is Phase.ROLLED_BACK:
            out.append("  rolled back to 0%", style="bold red")
        out.truncate(
            max(1, self.size.width - 2), overflow="crop" if self.ascii_only else "ellipsis"
        )
        return out
