"""The client's picture of a session, folded from frames: what the dashboard renders."""

from __future__ import annotations

from collections import deque

from canary_tui.core.frames import ActivityEntry, Frame, SeriesPoint


class DashboardModel:
    """The latest frame plus a bounded history of graph points and activity lines."""

    def __init__(self, max_points: int = 2000, max_activity: int = 2000) -> None:
        self.frame: Frame | None = None
        self.points: deque[SeriesPoint] = deque(maxlen=max_points)
        self.activity: deque[ActivityEntry] = deque(maxlen=max_activity)
        self.points_changed = False

    def apply(self, frame: Frame) -> list[ActivityEntry]:
        """Fold `frame` in; return the activity lines it added."""
        if frame.full:
            self.points.clear()
            self.activity.clear()
        self.points.extend(frame.points)
        self.activity.extend(frame.activity)
        self.points_changed = self.points_changed or bool(frame.points) or frame.full
        self.frame = frame
        return list(frame.activity)
