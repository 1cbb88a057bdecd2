"""The ramp plan as a one-line bar: done steps, the current one, the ones to come; and, once
the current step's hold is over but the loop still waits for the judge's proof, a second line
saying which proof and roughly how much longer (see `tui.waiting`)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import Frame
from canary_tui.core.plan import RampPlan
from canary_tui.core.state import Phase
from canary_tui.tui.format import theme_style
from canary_tui.tui.waiting import WaitNote, waiting_note


class PlanBar(Widget):
    DEFAULT_CSS = "PlanBar { height: auto; padding: 0 1; }"

    view: reactive[tuple[Phase, int, RampPlan] | None] = reactive(None)
    waiting: reactive[WaitNote | None] = reactive(None, layout=True)
    ascii_only: reactive[bool] = reactive(False)

    def show(self, frame: Frame, canary_rps: float | None = None) -> None:
        """Only what the bar draws: a new tick with the same step and the same (rounded)
        wait repaints nothing."""
        self.view = (frame.state.phase, frame.state.step_index, frame.plan)
        self.waiting = waiting_note(frame, canary_rps)

    def render(self) -> Text:
        if self.view is None:
            return Text("")
        line = self._plan_line()
        if self.waiting is None:
            return line
        width = max(1, self.size.width - 2)
        note = Text(self.waiting.fit(width), style="bold")
        note.truncate(width, overflow="crop" if self.ascii_only else "ellipsis")
        return Text("\n").join([line, note])

    def _plan_line(self) -> Text:
        if self.view is None:  # render() checked; nothing to draw otherwise
            return Text("")
        phase, step_index, plan = self.view
        done, here, todo, arrow = ("#", ">", ".", "-") if self.ascii_only else ("■", "▶", "□", "─")
        out = Text("plan ", style="dim")
        weights = [st.weight for st in plan.steps] + [100]
        for i, w in enumerate(weights):
            last = i == len(weights) - 1
            if phase is Phase.PROMOTED:
                mark, style = (done, "$success") if not last else (here, "bold $success")
            elif phase is Phase.ROLLED_BACK:
                mark, style = (todo, "dim $error")
            elif last:
                mark, style = (todo, "dim")
            elif i < step_index:
                mark, style = (done, "$success")
            elif i == step_index:
                mark, style = (here, "bold reverse")
            else:
                mark, style = (todo, "dim")
            out.append(f"{mark}{w}%", style=theme_style(self.app, style))
            if not last:
                out.append(f" {arrow} ", style="dim")
        if phase is Phase.ROLLED_BACK:
            out.append("  rolled back to 0%", style=theme_style(self.app, "bold $error"))
        out.truncate(
            max(1, self.size.width - 2), overflow="crop" if self.ascii_only else "ellipsis"
        )
        return out
