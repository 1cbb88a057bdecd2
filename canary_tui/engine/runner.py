"""Drives an engine: a background thread that ticks on the engine's clock until stopped."""

from __future__ import annotations

import threading
import time

from canary_tui.core.state import CanaryState
from canary_tui.engine.loop import Engine


class EngineRunner:
    """Ticks `engine` every `tick_s` seconds of its clock in a daemon thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        stop_when_terminal: bool = False,
        resume: CanaryState | None = None,
    ) -> None:
        self.engine = engine
        self.resume = resume
        self.stop_when_terminal = stop_when_terminal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        self.engine.start(self.resume)
        self._thread = threading.Thread(target=self._run, name="canary-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        clock, tick_s = self.engine.clock, self.engine.settings.tick_s
        next_tick = clock.now() + tick_s
        try:
            while not self._stop.is_set():
                wait = next_tick - clock.now()
                if wait > 0:
                    # Sleep in small slices so that stop() is prompt at any demo speed.
                    clock.sleep(min(wait, 0.2 * getattr(clock, "speed", 1.0)))
                    continue
                self.engine.tick()
                next_tick += tick_s
                if next_tick < clock.now():  # fell behind (suspended laptop): do not burst
                    next_tick = clock.now() + tick_s
                if self.stop_when_terminal and self.engine.state.terminal:
                    break
        except BaseException as exc:  # surfaced by join(); the loop must not die silently
            self.error = exc
        finally:
            self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread is not None and self._thread.is_alive():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._thread.join(0.2 if remaining is None else min(0.2, remaining))
            if deadline is not None and time.monotonic() >= deadline:
                break
