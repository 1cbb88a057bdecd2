"""The compact view for small terminals (below 60x20): numbers and verdicts, no graphs."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import ActivityEntry, Frame
from canary_tui.tui.alarms import alarms, router_text
from canary_tui.tui.format import clock_time, mmss, pct
from canary_tui.tui.waiting import WaitNote
from canary_tui.tui.widgets.verdicts import STATUS_WORD


class CompactSummary(Widget):
    DEFAULT_CSS = "CompactSummary { height: 1fr; padding: 0 1; }"

    frame: reactive[Frame | None] = reactive(None)
    last_activity: reactive[ActivityEntry | None] = reactive(None)
    waiting: reactive[WaitNote | None] = reactive(None)
    ascii_only: reactive[bool] = reactive(False)

    def render(self) -> Text:
        f = self.frame
        if f is None:
            return Text("connecting...")
        s = f.state
        hold = f.plan.step(s.step_index).hold_s
        lines = [
            Text.assemble(
                (f.info.service, "bold"),
                f" {f.info.canary_version}  ",
                (s.phase.label.upper() + (" +SHADOW" if s.shadow else ""), "bold reverse"),
            ),
            Text(f"weight {s.weight}%  step {s.step_index + 1}/{len(f.plan)}  "
                 f"{'ended' if s.terminal else mmss(s.time_in_step(f.now)) + '/' + mmss(hold)}"),
            Text(f"auto-rollback {'ARMED' if s.armed else 'DISARMED'}  {router_text(f)}"),
        ]  # fmt: skip
        if self.waiting is not None:
            lines.append(Text(self.waiting.short, style="bold"))
        for alarm in alarms(f):
            lines.append(Text(alarm, style="bold"))
        for v in f.verdicts:
            e = v.evidence
            lines.append(Text(f"{v.metric[:8]:<8} b {pct(e.baseline_rate)} c {pct(e.canary_rate)} "
                              f"{STATUS_WORD[v.status]}"))  # fmt: skip
        for g in f.gauges:
            budget = "n/a" if g.budget_left is None else f"{g.budget_left * 100:.0f}%"
            burn = "n/a" if g.burn_rate is None else f"{g.burn_rate:.1f}x"
            lines.append(Text(f"{g.slo[:8]:<8} {pct(g.current)} budget {budget} burn {burn}"))
        if self.last_activity is not None:
            a = self.last_activity
            lines.append(Text(f"{clock_time(a.t)} {a.actor}: {a.text}", style="dim"))
        out = Text("\n").join(lines)
        return out
