"""What a recording file is, shared by its writer and its reader: the header, the names.

The recording file itself: `chunks` (the bytes), `columns` (the compact layout),
`recording` (the writer, `Recorder`), `reader` (the reader, `Recording`).

Each frames chunk has three independently compressed parts, so that seeking reads little:
  0  per frame: time, activity, full flag   (read from the nearest snapshot onwards)
  1  per frame: graph points, as lists      (read for the graph window only)
  2  per frame: everything else, in columns (read for the frame shown)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canary_tui import __version__
from canary_tui.core.codec import plan_from_list, plan_to_list
from canary_tui.core.frames import CanaryInfo, SeriesPoint
from canary_tui.core.plan import RampPlan
from canary_tui.paths import state_dir
from canary_tui.records.chunks import FORMAT_VERSION

SUFFIX = ".ctrec"
ACTION_KINDS = frozenset({"intent", "refused"})  # activity that marks an action (n / N)
TIMELINE, POINTS, REST = 0, 1, 2  # the parts of a frames chunk
POINT_FIELDS = tuple(f.name for f in fields(SeriesPoint))  # a graph point is stored as a list


class RecordingError(Exception):
    """A recording cannot be written, opened or read; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """What a recording says about itself; info and plan never change during a session."""

    info: CanaryInfo
    plan: RampPlan
    config: dict[str, Any]
    started_at: float
    host: str
    tool_version: str = __version__
    history_s: float = 600.0
    activity_keep: int = 200
    tick_s: float | None = None
    format: int = FORMAT_VERSION
    point_fields: tuple[str, ...] = POINT_FIELDS
    audit_log: str | None = None  # the audit log whose head this recording anchors

    def to_dict(self) -> dict[str, Any]:
        extra = {} if self.audit_log is None else {"audit_log": self.audit_log}
        return {
            "format": self.format,
            "tool": "canary-tui",
            "tool_version": self.tool_version,
            "info": asdict(self.info),
            "plan": plan_to_list(self.plan),
            "config": self.config,
            "started_at": self.started_at,
            "host": self.host,
            "history_s": self.history_s,
            "activity_keep": self.activity_keep,
            "tick_s": self.tick_s,
            "point_fields": list(self.point_fields),
            **extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordingHeader:
        tick = d.get("tick_s")
        config = d.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError("config is not a mapping")
        history, keep = float(d.get("history_s", 600.0)), int(d.get("activity_keep", 200))
        if not (math.isfinite(history) and history > 0 and 0 < keep <= 1_000_000):
            raise ValueError("bad history settings")
        point_fields = tuple(str(name) for name in d.get("point_fields", POINT_FIELDS))
        if "t" not in point_fields or len(set(point_fields)) != len(point_fields):
            raise ValueError("bad point fields")
        return cls(
            info=CanaryInfo(**d["info"]),
            plan=plan_from_list(list(d["plan"])),
            config=config,
            started_at=float(d["started_at"]),
            host=str(d.get("host", "")),
            tool_version=str(d.get("tool_version", "?")),
            history_s=history,
            activity_keep=keep,
            tick_s=float(tick) if tick is not None else None,
            format=int(d.get("format", FORMAT_VERSION)),
            point_fields=point_fields,
            audit_log=str(d["audit_log"]) if d.get("audit_log") is not None else None,
        )


def default_directory() -> Path:
    """Where recordings go unless told otherwise: the user's state directory."""
    return state_dir() / "recordings"


def recording_name(canary: str, started_at: float) -> str:
    """`<canary>-<UTC start YYYYmmddTHHMMSSZ>.ctrec`."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", canary).strip("._") or "canary"
    stamp = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe}-{stamp}{SUFFIX}"
