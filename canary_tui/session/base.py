"""The Session protocol: the only thing the TUI knows about where its canary lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from canary_tui.core.actions import ActionOutcome, Actor, Verb
from canary_tui.core.frames import Frame

FrameHandler = Callable[[Frame], None]


class Session(Protocol):
    """A live, attached or replayed canary session.

    `attach` delivers a full frame first, then every new frame, always on the caller's
    event loop thread. `submit` applies an action through the engine's one path.
    """

    @property
    def identity(self) -> Actor: ...

    @property
    def read_only(self) -> str | None:
        """Why actions are refused in this session (e.g. a replay), or None."""
        ...

    async def attach(self, on_frame: FrameHandler) -> None: ...

    async def submit(
        self, verb: Verb, *, expected_version: int | None, reason: str = ""
    ) -> ActionOutcome: ...

    async def detach(self) -> None: ...
