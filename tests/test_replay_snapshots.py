"""The replay screen's look at fixed sizes and themes (pytest-textual-snapshot), on a recording
of a seeded virtual-time session made by the test itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from canary_tui.core.actions import Actor
from canary_tui.session.replay import ReplaySession
from tests.test_recording import record_session
from tests.tui_support import settle


async def _settle(pilot: Any) -> None:
    await settle(pilot, 6)


def _session(tmp_path: Path, *, cut: bool = False) -> ReplaySession:
    path = record_session(tmp_path).path
    if cut:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 3 // 4])
    return ReplaySession.open(path, identity=Actor("viewer"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_replay_at_the_rollback(snap_compare: Any, tmp_path: Path, size: tuple[int, int]) -> None:
    from canary_tui.tui.replay import make_replay_app

    session = _session(tmp_path)
    session.seek(session.recording.marks.phases[-1])  # the frame the canary was rolled back
    assert snap_compare(make_replay_app(session), terminal_size=size, run_before=_settle)


def test_replay_light_theme_ascii_cut_short(snap_compare: Any, tmp_path: Path) -> None:
    from canary_tui.tui.replay import make_replay_app

    session = _session(tmp_path, cut=True)
    session.seek(session.frames // 2)
    app = make_replay_app(session, theme="canary-light", ascii_only=True)
    assert snap_compare(app, terminal_size=(100, 30), run_before=_settle)
