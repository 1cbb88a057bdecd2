"""Sessions: what the TUI talks to. A stream of frames in, actions out; transports vary."""

from canary_tui.session.base import Session
from canary_tui.session.model import DashboardModel

__all__ = ["DashboardModel", "Session"]
