"""One loop per canary, whatever the mode; and the headless loop is never held up by its own
output and says with its exit code when it did not finish."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from canary_tui.session.lock import CanaryLock, LockHeld
from tests.session.conftest import REPO, make_daemon
from tests.support.processes import child_setup


def test_the_second_taker_learns_who_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "checkout.lock"
    code = (
        "import sys; from pathlib import Path; from canary_tui.session.lock import CanaryLock\n"
        f"lock = CanaryLock('checkout', 'run --headless', Path({str(path)!r})); lock.acquire()\n"
        "print('held', flush=True); sys.stdin.readline()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              preexec_fn=child_setup)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = CanaryLock("checkout", "serve", path)
        with pytest.raises(LockHeld) as caught:
            mine.acquire()
        text = str(caught.value)
        assert f"pid {holder.pid}" in text and "run --headless" in text
        assert "canary-tui attach checkout" in text
        held = mine.holder()
        assert held is not None and held.pid == holder.pid
    finally:
        holder.communicate("\n", timeout=30)
    mine.acquire()  # the holder exited: the lock is free again
    assert mine.holder() is not None
    mine.release()
    assert not path.exists() and mine.holder() is None


def test_run_next_to_a_daemon_of_the_same_canary_is_refused(tmp_path: Path) -> None:
    d = make_daemon(tmp_path)
    d.start()
    try:
        out = d.cli("run", "--headless", "--config", str(d.config), "--speed", "max")
        assert out.returncode == 2, out.stderr
        assert "already driven by another loop" in out.stderr
        assert d.proc is not None and f"pid {d.proc.pid}" in out.stderr and "serve" in out.stderr
        assert "Traceback" not in out.stderr
        records_before = d.audit.read_text()
        assert d.cli("run", "--headless", "--config", str(d.config)).returncode == 2
        assert d.audit.read_text().startswith(records_before)  # nothing written by the loser
    finally:
        d.stop()


def test_headless_output_that_blocks_never_stops_the_loop() -> None:
    from canary_tui.cli import EventWriter

    gate = threading.Event()
    written: list[dict[str, Any]] = []

    def emit(event: dict[str, Any]) -> None:
        gate.wait()  # a reader that does not read (a stalled pipe)
        written.append(event)

    out = EventWriter(emit, size=10)
    for i in range(100):  # never blocks, whatever the pipe does
        out.put({"event": "tick", "n": i})
    assert out.dropped >= 89
    gate.set()
    out.close(timeout=30)
    assert written and written[0] == {"event": "tick", "n": 0}


def test_a_closed_stdout_never_stops_the_loop() -> None:
    from canary_tui.cli import EventWriter

    def emit(event: dict[str, Any]) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    out = EventWriter(emit)
    out.put({"event": "tick"})
    out.put({"event": "tick"})
    out.close(timeout=30)
    assert out.broken is not None and "Broken pipe" in out.broken


def test_a_headless_loop_that_stops_on_an_error_exits_3(tmp_path: Path) -> None:
    from canary_tui.cli import EXIT_INTERRUPTED, run_headless
    from canary_tui.config.build import build_engine
    from canary_tui.config.demo import demo_config
    from canary_tui.core.clock import VirtualClock

    built = build_engine(demo_config("healthy"), VirtualClock(), audit_path=tmp_path / "a.jsonl")

    def broken(ctx: object) -> tuple[()]:
        raise RuntimeError("judge bug")

    built.engine.judge.verdicts = broken  # type: ignore[method-assign]
    events: list[dict[str, Any]] = []
    assert run_headless(built, events.append) == EXIT_INTERRUPTED
    end = events[-1]
    assert end["event"] == "end" and end["outcome"] == "loop-stopped"
    assert "judge bug" in end["message"] and end["exit"] == 3


def test_headless_under_a_closed_pipe_finishes_its_canary(tmp_path: Path) -> None:
    config = tmp_path / "canary.yaml"
    config.write_text(
        "canary: {name: pipe}\njudge: {kind: threshold}\nloop: {tick: 2s}\n"
        f"audit: {{path: {tmp_path / 'audit.jsonl'}}}\n"
        "source: {kind: simulator, scenario: error-regression, seed: 1, rate: 500}\n"
        "router: {kind: simulator}\n"
    )
    env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_STATE_HOME": str(tmp_path / "state")}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "canary_tui.cli", "run", "--headless", "--config", str(config),
         "--speed", "max"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=child_setup,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()  # nobody reads: every write is EPIPE
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err  # rolled back, as the scenario says
    assert b"Traceback" not in err
    records = (tmp_path / "audit.jsonl").read_text()
    assert '"verb":"kill"' in records and '"outcome":"applied"' in records
