"""The router detail widget (canary_tui/tui/widgets/router_detail.py) in a real Textual app:
the lines of RoutingState.detail, cut to the width, capped, coloured by what they say."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from textual.app import App, ComposeResult

from canary_tui.core.frames import Frame
from canary_tui.core.ports import RoutingState
from canary_tui.tui.widgets.router_detail import RouterDetail, detail_lines
from tests.conftest import make_rig

ARGO = "\n".join([
    "Rollout shop/checkout: Paused | step 2/5: pause (until resumed) | set 20% | "
    "stable 5d8f7c9b4 rev 3 shop/checkout:v1 | canary 7b6c5d4f9 rev 4 shop/checkout:v2",
    "message: CanaryPauseStep",
    "analysis checkout-7b6c5d4f9-4-1 (step): Failed (Metric failed) | error-rate Failed",
])  # fmt: skip


def frame_with(tmp_path: Path, detail: str) -> Frame:
    rig = make_rig(tmp_path, "healthy", 0)
    rig.ticks(1)
    return replace(rig.engine.full_frame(), routing=RoutingState(weight=20, detail=detail))


class Host(App[None]):
    def __init__(self, frame: Frame) -> None:
        super().__init__()
        self.frame = frame

    def compose(self) -> ComposeResult:
        yield RouterDetail()

    def on_mount(self) -> None:
        self.query_one(RouterDetail).frame = self.frame


async def test_renders_each_line_cut_to_the_width(tmp_path: Path) -> None:
    app = Host(frame_with(tmp_path, ARGO))
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause(0.05)
        widget = app.query_one(RouterDetail)
        assert widget.size.height == 3
        text = widget.render()
        rows = text.plain.split("\n")
        assert rows[0].startswith("Rollout shop/checkout: Paused | step 2/5")
        assert all(len(r) <= 78 for r in rows) and rows[0].endswith("…")
        assert rows[1] == "message: CanaryPauseStep"
        error = app.theme_variables["error"]
        assert any(str(span.style) == error for span in text.spans)  # the failed analysis


def test_lines_are_capped_and_empty_detail_takes_no_room(tmp_path: Path) -> None:
    frame = frame_with(tmp_path, "\n".join(f"line {i}" for i in range(6)))
    assert detail_lines(frame, 4) == ["line 0", "line 1", "line 2", "(+3 more lines)"]
    assert detail_lines(replace(frame, routing=RoutingState(weight=0)), 4) == []
    assert detail_lines(replace(frame, routing=None), 4) == []
