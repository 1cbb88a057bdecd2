"""SLO gauges for the canary: objective, current, error budget left, burn rate."""

from __future__ import annotations

from rich.console import OverflowMethod
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from canary_tui.core.slo import Gauge
from canary_tui.tui.format import bar, pct, theme_style

#: Narrower than this, a gauge drops its objective and the word "budget" (a full row takes
#: about 65 columns: "availability >=99.0% now 99.60% ########-- 80% budget burn 0.4x").
COMPACT_BELOW = 68


class SLOGauges(Widget):
    DEFAULT_CSS = "SLOGauges { height: auto; min-height: 2; padding: 0 1; }"

    gauges: reactive[tuple[Gauge, ...]] = reactive(())
    ascii_only: reactive[bool] = reactive(False)

    def render(self) -> Table | Text:
        if not self.gauges:
            return Text("no SLOs configured", style="dim")
        table = Table.grid(padding=(0, 1))
        compact = self.size.width < COMPACT_BELOW
        # "…" is not ASCII: with --ascii, what does not fit is cut off instead
        overflow: OverflowMethod = "crop" if self.ascii_only else "ellipsis"
        for _ in range(3 if compact else 4):
            table.add_column(no_wrap=True, overflow=overflow)
        width = 6 if compact else 10
        for g in self.gauges:
            budget = g.budget_left
            style = theme_style(
                self.app,
                "$success"
                if budget is not None and budget > 0.5
                else ("$warning" if budget is not None and budget > 0 else "bold $error"),
            )
            budget_text = "n/a" if budget is None else f"{budget * 100:.0f}%"
            burn = "n/a" if g.burn_rate is None else f"{g.burn_rate:.1f}x"
            burn_style = theme_style(self.app, "bold $error") if (g.burn_rate or 0) > 1 else ""
            gauge_bar = Text.assemble(
                (bar(budget, width, self.ascii_only), style), f" {budget_text}"
            )
            if compact:
                table.add_row(
                    Text(f"{g.slo[:7]} {pct(g.current)}", style="bold"),
                    gauge_bar,
                    Text(f"burn {burn}", style=burn_style),
                )
            else:
                table.add_row(
                    Text(
                        f"{g.slo} {'>=' if self.ascii_only else '≥'}{pct(g.objective, 1)}",
                        style="bold",
                    ),
                    Text(f"now {pct(g.current)}"),
                    Text.assemble(gauge_bar, " budget"),
                    Text(f"burn {burn}", style=burn_style),
                )
        return table
