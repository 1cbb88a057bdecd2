"""The verdict table: per metric, baseline, canary, difference, status and why."""

from __future__ import annotations

from rich.console import OverflowMethod
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.verdict import Evidence, Status, Verdict
from canary_tui.tui.format import pct, theme_style

#: Theme colours ($variables, resolved with `theme_style`): meaning never rests on hue alone.
STATUS_STYLE = {
    Status.PASS: "bold $success",
    Status.FAIL: "bold reverse $error",
    Status.INCONCLUSIVE: "$warning",
    Status.WARMING_UP: "$accent",
}
STATUS_WORD = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.INCONCLUSIVE: "WAIT",
    Status.WARMING_UP: "WARM",
}


def effect_text(e: Evidence) -> str:
    """The diff column: the effect the judge quotes, a ratio (1.64x) or a difference (+0.32pp)."""
    if e.effect is not None and e.effect_kind == "ratio":
        return f"{e.effect:.2f}x"
    if e.effect is not None:
        return f"{e.effect * 100:+.2f}pp"
    if e.baseline_rate is not None and e.canary_rate is not None:
        return f"{(e.canary_rate - e.baseline_rate) * 100:+.2f}pp"
    return ""


class VerdictTable(Widget):
    DEFAULT_CSS = "VerdictTable { height: auto; min-height: 3; padding: 0 1; }"

    verdicts: reactive[tuple[Verdict, ...]] = reactive(())
    ascii_only: reactive[bool] = reactive(False)

    def render(self) -> Table | Text:
        if not self.verdicts:
            return Text("verdicts: waiting for the first window", style="dim")
        table = Table(
            box=None, padding=(0, 1), show_edge=False, expand=True, header_style="bold dim"
        )
        table.add_column("metric", no_wrap=True)
        table.add_column("base", justify="right", no_wrap=True)
        table.add_column("canary", justify="right", no_wrap=True)
        table.add_column("diff", justify="right", no_wrap=True)
        table.add_column("", no_wrap=True)
        overflow: OverflowMethod = "crop" if self.ascii_only else "ellipsis"
        table.add_column("why", no_wrap=True, overflow=overflow, ratio=1)
        for v in self.verdicts:
            e = v.evidence
            table.add_row(
                v.metric,
                pct(e.baseline_rate),
                pct(e.canary_rate),
                effect_text(e),
                Text(STATUS_WORD[v.status], style=theme_style(self.app, STATUS_STYLE[v.status])),
                Text(v.why.split(": ", 1)[-1] if ": " in v.why else v.why, style="dim"),
            )
        return table
