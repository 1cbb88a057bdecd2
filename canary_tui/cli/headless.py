"""The loop with no dashboard, for pipelines: JSON events on stdout through a queue that
never holds the loop up, and an exit code that says how the canary ended."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from canary_tui.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_PROMOTED,
    EXIT_ROLLED_BACK,
    close_built,
    recovery_of,
)
from canary_tui.config.build import Built
from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase


def emit_json(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def frame_events(frame: Frame) -> list[dict[str, Any]]:
    """The JSON events a frame stands for in headless output."""
    events: list[dict[str, Any]] = []
    for entry in frame.activity:
        events.append(
            {
                "event": "activity",
                "time": entry.t,
                "kind": entry.kind,
                "actor": entry.actor,
                "text": entry.text,
                "seq": entry.seq,
            }
        )
    if frame.points:
        s = frame.state
        events.append(
            {
                "event": "tick",
                "time": frame.now,
                "phase": s.phase.value,
                "step": s.step_index + 1,
                "steps": len(frame.plan),
                "weight": s.weight,
                "armed": s.armed,
                "no_data": frame.no_data,
                "verdicts": [
                    {"metric": v.metric, "status": v.status.value, "why": v.why}
                    for v in frame.verdicts
                ],
            }
        )
    return events


def run_headless(built: Built, emit: Callable[[dict[str, Any]], None]) -> int:
    """The loop with no UI; returns the exit code for the canary's outcome.

    Events go through a bounded queue to a writer thread: a stalled or closed stdout never
    stops the loop (events are then dropped and counted). If the loop stops on an error,
    the run exits 3 (it did not finish), like an interruption.
    """
    from canary_tui.engine.runner import EngineRunner

    engine = built.engine
    out = EventWriter(emit)
    engine.subscribe(out.frame)
    runner = EngineRunner(engine, stop_when_terminal=True, resume=recovery_of(built))
    interrupted: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        interrupted.append(signum)
        runner.stop(timeout=0)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        runner.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    state = engine.state
    if runner.error is not None:
        engine.stop(f"loop stopped on an error: {runner.error}")
        out.put({"event": "end", "outcome": "loop-stopped", "message": str(runner.error),
                 "weight": state.weight, "exit": EXIT_INTERRUPTED})  # fmt: skip
        code = EXIT_INTERRUPTED
    elif interrupted and not state.terminal:
        engine.stop(f"interrupted by signal {interrupted[0]} at {state.weight}%")
        out.put({"event": "end", "outcome": "interrupted", "weight": state.weight,
                 "exit": EXIT_INTERRUPTED})  # fmt: skip
        code = EXIT_INTERRUPTED
    else:
        code = EXIT_PROMOTED if state.phase is Phase.PROMOTED else EXIT_ROLLED_BACK
        engine.stop(f"canary {state.phase.label}")
        out.put({"event": "end", "outcome": state.phase.value, "exit": code})
    close_built(built)
    out.close()
    return code


class EventWriter:
    """Headless output off the loop's thread: a bounded queue and a writer thread."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], size: int = 10_000) -> None:
        import queue
        import threading

        self.emit = emit
        self.dropped = 0
        self.broken: str | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(size)
        self._thread = threading.Thread(target=self._run, name="headless-out", daemon=True)
        self._thread.start()

    def frame(self, frame: Frame) -> None:
        """Engine subscriber: never blocks."""
        for event in frame_events(frame):
            self.put(event)

    def put(self, event: dict[str, Any]) -> None:
        import queue

        if self.broken is not None:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            if self.broken is not None:
                continue
            try:
                self.emit(event)
            except (OSError, ValueError) as exc:  # EPIPE, a closed stdout: stop writing
                self.broken = str(exc) or type(exc).__name__

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded wait), then stop."""
        import contextlib
        import queue

        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self.dropped:
            with contextlib.suppress(OSError, ValueError):
                click.echo(f"canary-tui: {self.dropped} events were dropped: the output "
                           "did not keep up", err=True)  # fmt: skip
