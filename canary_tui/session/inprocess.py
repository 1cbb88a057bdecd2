"""The in-process session: the engine runs in this process, in a background thread."""

from __future__ import annotations

import asyncio
import contextlib

from canary_tui.core.actions import Action, ActionOutcome, Actor, Source, Verb
from canary_tui.core.frames import Frame
from canary_tui.engine.loop import Engine
from canary_tui.engine.runner import EngineRunner
from canary_tui.session.base import FrameHandler
from canary_tui.session.watchdog import watch_loop


class InProcessSession:
    """Frames from the engine's thread are handed to the event loop thread-safely."""

    def __init__(
        self,
        engine: Engine,
        identity: Actor,
        source: Source = Source.KEY,
        runner: EngineRunner | None = None,
    ) -> None:
        self.engine = engine
        self.runner = runner
        self._identity = identity
        self._source = source
        self._unsubscribe: list[object] = []
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def identity(self) -> Actor:
        return self._identity

    @property
    def read_only(self) -> str | None:
        return None

    async def attach(self, on_frame: FrameHandler) -> None:
        loop = asyncio.get_running_loop()

        def deliver(frame: Frame) -> None:
            # RuntimeError: the event loop is closed, the client has gone.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(on_frame, frame)

        self._unsubscribe.append(self.engine.subscribe(deliver))
        if self.runner is not None:
            self._watchdog = asyncio.create_task(watch_loop(self.runner, on_frame))

    async def submit(
        self, verb: Verb, *, expected_version: int | None, reason: str = ""
    ) -> ActionOutcome:
        action = Action(verb, self._identity, self._source, expected_version, reason=reason)
        return await asyncio.to_thread(self.engine.submit, action)

    async def detach(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        for unsubscribe in self._unsubscribe:
            if callable(unsubscribe):
                unsubscribe()
        self._unsubscribe.clear()
