"""The ramp plan as a one-line bar: done steps, the current one, the ones to come."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import Frame
from canary_tui.core.plan import RampPlan
from canary_tui.core.state import Phase


class PlanBar(Widget):
    DEFAULT_CSS = "PlanBar { height: 1; padding: 0 1; }"

    view: reactive[tuple[Phase, int, RampPlan] | None] = reactive(None)
    ascii_only: reactive[bool] = reactive(False)

    def show(self, frame: Frame) -> None:
        """Only what the bar draws: a new tick with the same step repaints nothing."""
        self.view = (frame.state.phase, frame.state.step_index, frame.plan)

    def render(self) -> Text:
        if self.view is None:
            return Text("")
        phase, step_index, plan = self.view
        done, here, todo, arrow = ("#", ">", ".", "-") if self.ascii_only else ("■", "▶", "□", "─")
        out = Text("plan ", style="dim")
        weights = [st.weight for st in plan.steps] + [100]
        for i, w in enumerate(weights):
            last = i == len(weights) - 1
            if phase is Phase.PROMOTED:
                mark, style = (done, "green") if not last else (here, "bold green")
            elif phase is Phase.ROLLED_BACK:
                mark, style = (todo, "dim red")
            elif last:
                mark, style = (todo, "dim")
            elif i < step_index:
                mark, style = (done, "green")
            elif i == step_index:
                mark, style = (here, "bold reverse")
            else:
                mark, style = (todo, "dim")
            out.append(f"{mark}{w}%", style=style)
            if not last:
                out.append(f" {arrow} ", style="dim")
        if phase is Phase.ROLLED_BACK:
            out.append("  rolled back to 0%", style="bold red")
        out.truncate(
            max(1, self.size.width - 2), overflow="crop" if self.ascii_only else "ellipsis"
        )
        return out
