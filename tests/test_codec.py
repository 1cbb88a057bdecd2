"""Frames survive the codec (daemon wire and recordings) unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from canary_tui.core.actions import Verb
from canary_tui.core.codec import frame_from_dict, frame_to_dict
from canary_tui.core.frames import Frame
from tests.conftest import make_rig


def test_every_frame_of_a_session_round_trips_through_json(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "error-regression", seed=1)
    frames: list[Frame] = []
    rig.engine.subscribe(frames.append)
    rig.ticks(40)
    rig.act(Verb.ANNOTATE, version=None,
            reason="note")  # fmt: skip
    assert len(frames) > 40
    for f in frames:
        wire = json.loads(json.dumps(frame_to_dict(f)))
        assert frame_from_dict(wire) == f
        bare = json.loads(json.dumps(frame_to_dict(f, with_header=False)))
        assert "info" not in bare
        assert frame_from_dict(bare, info=f.info, plan=f.plan) == f
