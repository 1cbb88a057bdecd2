"""The two-line status header: who the canary is, where it stands, who is watching."""

from __future__ import annotations

from rich.console import OverflowMethod
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase
from canary_tui.tui.alarms import router_text
from canary_tui.tui.format import clock_time, mmss

PHASE_STYLE = {
    Phase.PROGRESSING: "bold $accent",
    Phase.PAUSED: "bold $warning",
    Phase.PROMOTED: "bold $success",
    Phase.ROLLED_BACK: "bold $error",
}


class StatusHeader(Widget):
    DEFAULT_CSS = "StatusHeader { height: 2; background: $panel; padding: 0 1; }"

    frame: reactive[Frame | None] = reactive(None, layout=False)
    mode: reactive[str] = reactive("LIVE")
    you: reactive[str] = reactive("")
    ascii_only: reactive[bool] = reactive(False)

    def render(self) -> Text:
        f = self.frame
        if f is None:
            return Text("connecting to the canary session…")
        s, info = f.state, f.info
        hold = f.plan.step(s.step_index).hold_s
        phase = s.phase.label.upper() + (" +SHADOW" if s.shadow else "")
        if s.kill is not None:
            phase = "KILL PENDING"
        wide = self.size.width >= 100
        line1 = Text.assemble(
            (f"{info.service}", "bold"),
            f" ({info.namespace})" if wide else "",
            f"  {info.stable_version}{'->' if self.ascii_only else '→'}{info.canary_version}  ",
            (
                f" {phase} ",
                self._style("bold reverse $error" if s.kill is not None else PHASE_STYLE[s.phase]),
            ),
            "  ",
            (f"{s.weight}%", "bold"),
            ("  step ", "dim"),
            f"{s.step_index + 1}/{len(f.plan)} ",
            ("ended" if s.terminal else f"{mmss(s.time_in_step(f.now))}/{mmss(hold)}", "dim"),
        )
        armed = (
            ("ARMED", self._style("bold $success"))
            if s.armed
            else ("DISARMED", self._style("bold reverse $error"))
        )
        router = router_text(f)
        router_style = "bold reverse $error" if f.routing_stale else "dim"
        mode, mode_style = self.mode, "bold $warning" if self.mode != "LIVE" else "dim"
        if self.mode == "LIVE" and f.loop != "running":
            mode, mode_style = f"LOOP {f.loop.upper()}", "bold reverse $error"
        present = ", ".join(f.presence) if f.presence else self.you
        if f.presence:
            present += f"  (alone: {f.unattended})"
        line2 = Text.assemble(
            ("auto-rollback ", "dim"),
            armed,
            ("  ", ""),
            (router, self._style(router_style)),
            ("  ", ""),
            (mode, self._style(mode_style)),
            (f" {clock_time(f.now)} UTC", "dim"),
            ("  watching: ", "dim"),
            present,
        )
        overflow: OverflowMethod = "crop" if self.ascii_only else "ellipsis"
        line1.truncate(self.size.width - 2, overflow=overflow)
        line2.truncate(self.size.width - 2, overflow=overflow)
        return Text("\n").join([line1, line2])

    def _style(self, spec: str) -> str:
        """Resolve $variables of the current theme inside a Rich style string."""
        variables = self.app.theme_variables
        out = []
        for part in spec.split():
            out.append(variables.get(part[1:], "default") if part.startswith("$") else part)
        return " ".join(out)
