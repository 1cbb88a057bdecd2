"""Drives an engine: a background thread that ticks on the engine's monotonic clock, and
reports the loop's health (running, stalled, stopped) without needing the engine to answer.

A tick that raises stops the loop; with `restart`, the runner audits the failure and starts
ticking again after a backoff (1, 2, 4 ... 60 s), auditing each attempt. Without it (headless
runs) the thread ends and the caller exits with its own status.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback

from canary_tui.core.clock import speed_of
from canary_tui.engine.loop import Engine
from canary_tui.engine.recovery import Recovery

log = logging.getLogger("canary_tui.runner")

STALL_TICKS = 3.0  # a tick running (or no tick started) for this many intervals: stalled
RESTART_FIRST_S, RESTART_MAX_S = 1.0, 60.0


class EngineRunner:
    """Ticks `engine` every `tick_s` seconds of its clock in a daemon thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        stop_when_terminal: bool = False,
        resume: Recovery | None = None,
        restart: bool = False,
    ) -> None:
        self.engine = engine
        self.resume = resume
        self.stop_when_terminal = stop_when_terminal
        self.restart = restart
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.restarts = 0
        self._tick_started: float | None = None  # monotonic, while a tick runs
        self._last_tick_end: float | None = None
        self._failed_at: float | None = None
        self._next_restart_at: float | None = None

    def start(self) -> None:
        self.engine.start(self.resume)
        self._last_tick_end = self.engine.clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="canary-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        clock, tick_s = self.engine.clock, self.engine.settings.tick_s
        speed = speed_of(clock)
        next_tick = clock.monotonic() + tick_s
        try:
            while not self._stop.is_set():
                now = clock.monotonic()
                if self._next_restart_at is not None:
                    if now < self._next_restart_at:
                        clock.sleep(min(self._next_restart_at - now, 0.2 * speed))
                        continue
                    self._restarted()
                    next_tick = clock.monotonic()
                wait = next_tick - now
                if wait > 0:
                    # Sleep in small slices so that stop() is prompt at any demo speed.
                    clock.sleep(min(wait, 0.2 * speed))
                    continue
                if not self._tick():
                    if not self.restart:
                        break
                    continue
                next_tick += tick_s
                if next_tick < clock.monotonic():  # fell behind (suspended laptop): no burst
                    next_tick = clock.monotonic() + tick_s
                if self.stop_when_terminal and self.engine.state.terminal:
                    break
        finally:
            self._stop.set()

    def _tick(self) -> bool:
        clock = self.engine.clock
        self._tick_started = clock.monotonic()
        try:
            self.engine.tick()
        except Exception as exc:  # the loop must not die silently: audit, then maybe restart
            self._failed(exc)
            return False
        finally:
            self._last_tick_end = clock.monotonic()
            self._tick_started = None
        return True

    def _failed(self, exc: BaseException) -> None:
        self.error = exc
        clock = self.engine.clock
        self._failed_at = clock.monotonic()
        log.error("the loop stopped on an error:\n%s", "".join(traceback.format_exception(exc)))
        text = f"the loop stopped on an error: {type(exc).__name__}: {exc}"
        if self.restart:
            delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2**self.restarts)
            self._next_restart_at = self._failed_at + delay
            text += f"; restarting it in {delay:.0f} s"
        try:
            self.engine.record_loop("error", text)
        except Exception:
            log.exception("cannot record the loop's failure")

    def _restarted(self) -> None:
        self.restarts += 1
        self._next_restart_at = None
        self._failed_at = None
        try:
            self.engine.record_loop(
                "restart", f"loop restarted (attempt {self.restarts}) after: {self.error}"
            )
        except Exception:
            log.exception("cannot record the loop's restart")

    # --- health --------------------------------------------------------------------------
    def health(self) -> tuple[str, str]:
        """("running" | "stalled" | "stopped", why), from the runner's own timestamps."""
        clock = self.engine.clock
        now = clock.monotonic()
        limit = STALL_TICKS * self.engine.settings.tick_s
        if self._failed_at is not None:
            detail = f"the loop stopped on an error: {self.error}"
            if self._next_restart_at is not None:
                wait = max(0.0, self._next_restart_at - now)
                detail += f" (restart {self.restarts + 1} in {wait:.0f} s)"
            return "stopped", detail
        if self._thread is not None and not self.running:
            if self.error is not None:
                return "stopped", f"the loop stopped on an error: {self.error}"
            return "stopped", "the loop has ended"
        started = self._tick_started
        if started is not None and now - started > limit:
            return "stalled", (f"a tick has run for {now - started:.0f} s (waiting on the metric "
                               "source or the router)")  # fmt: skip
        last = self._last_tick_end
        idle_limit = limit + self.engine.settings.tick_s
        if started is None and last is not None and now - last > idle_limit:
            return "stalled", f"no tick for {now - last:.0f} s"
        return "running", ""

    def refresh_health(self) -> tuple[str, str]:
        """Compute the health and hand it to the engine (its frames carry it)."""
        health = self.health()
        self.engine.loop_health = health
        return health

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
