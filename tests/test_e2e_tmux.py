"""End to end in a real terminal: `canary-tui demo` in tmux, keys by send-keys, screen by
capture-pane. Skipped only where tmux is missing (CI installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from canary_tui.records.audit import read_records, verify
from tests.support.processes import child_setup

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("tmux") is None and not os.environ.get("CI"), reason="tmux is not installed"
    ),
]


class Tmux:
    def __init__(self, tmp_path: Path) -> None:
        self.socket = str(tmp_path / "tmux.sock")
        self.session = f"canary-{uuid.uuid4().hex[:6]}"

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            preexec_fn=child_setup,
        )
        return out.stdout

    def start(self, command: str, width: int = 80, height: int = 24) -> None:
        self.run(
            "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{text}")

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "-S", self.socket, "has-session", "-t", self.session],
                capture_output=True,
                preexec_fn=child_setup,
            ).returncode
            == 0
        )

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       preexec_fn=child_setup)  # fmt: skip


def test_demo_in_a_real_terminal(tmp_path: Path) -> None:
    tmux = Tmux(tmp_path)
    audit = tmp_path / "audit.jsonl"
    done = tmp_path / "exit-code"
    env = f"CANARY_TUI_RUNTIME_DIR={tmp_path / 'run'} XDG_STATE_HOME={tmp_path / 'state'}"
    command = (
        f"cd {Path.cwd()} && {env} TERM=xterm-256color {sys.executable} -m canary_tui.cli "
        f"demo --scenario healthy --speed 4 --audit {audit}; echo $? > {done}"
    )
    tmux.start(command)
    try:
        tmux.wait_for(lambda s: "PROGRESSING" in s and "error rate" in s, "the dashboard")
        screen = tmux.screen()
        assert "checkout" in screen and "plan" in screen and "Kill" in screen
        tmux.keys("p")
        tmux.wait_for(lambda s: "PAUSED" in s, "PAUSED in the header")
        tmux.keys("P")
        tmux.wait_for(lambda s: "Promote checkout" in s, "the promote confirmation")
        tmux.keys("n")
        tmux.wait_for(lambda s: "Promote checkout" not in s, "the confirmation to close")
        tmux.keys("k")
        tmux.wait_for(lambda s: "ROLLED BACK" in s, "ROLLED BACK after kill")
        tmux.keys("q")  # the last one out is asked: leave the loop running, or stop it
        tmux.wait_for(lambda s: "last one attached" in s, "the leave dialog")
        tmux.keys("s")
        tmux.wait_for(lambda s: "What should happen to the canary first" in s, "kill or hold")
        tmux.keys("h")
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        tmux.kill()
    assert verify(audit).ok
    records = list(read_records(audit))
    kill = [r for r in records if r.get("verb") == "kill" and r["type"] == "result"]
    assert kill and kill[0]["outcome"] == "applied" and kill[0]["source"] == "key"
    assert kill[0]["actor"]["kind"] == "person"
    assert records[-1]["type"] == "session" and records[-1]["event"] == "stop"


def test_demo_refuses_a_tiny_terminal(tmp_path: Path) -> None:
    tmux = Tmux(tmp_path)
    err, code = tmp_path / "stderr", tmp_path / "exit-code"
    tmux.start(
        f"cd {Path.cwd()} && stty cols 30 rows 10 && {sys.executable} -m canary_tui.cli demo "
        f"--audit {tmp_path / 'a.jsonl'} 2> {err}; echo $? > {code}.tmp && mv {code}.tmp {code}",
        width=30,
        height=10,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not code.exists():
            time.sleep(0.2)
    finally:
        tmux.kill()
    assert code.read_text().strip() == "2"
    text = err.read_text()
    assert "terminal too small: 30x10" in text and "Traceback" not in text


def test_compacted_output_draws_the_same_colours_as_textuals_own(tmp_path: Path) -> None:
    """One replay frame drawn twice in tmux, through the SGR compactor and raw: capture-pane
    with escapes (what tmux holds for every cell, colours included) must be the same."""
    recording = Path(__file__).resolve().parents[1] / "recordings" / "auto-rollback.ctrec"
    captures = {}
    for mode in ("raw", "compact"):
        tmux = Tmux(tmp_path / mode)
        (tmp_path / mode).mkdir()
        env = (f"CANARY_TUI_OUTPUT={mode} XDG_STATE_HOME={tmp_path / mode / 'state'} "
               f"XDG_CONFIG_HOME={tmp_path / mode / 'config'} TERM=xterm-256color "
               "COLORTERM=truecolor")  # fmt: skip
        tmux.start(f"cd {Path.cwd()} && {env} {sys.executable} -m canary_tui.cli replay "
                   f"--paused {recording}; sleep 30", width=100, height=30)  # fmt: skip
        try:
            tmux.wait_for(lambda s: "PAUSED" in s and "tick 0/" in s, "the paused replay")
            tmux.keys("n")  # the next action: the automatic kill
            tmux.wait_for(lambda s: "ROLLED BACK" in s, "the rollback frame")
            time.sleep(1.0)  # graphs are drawn in a worker: let the last one land
            captures[mode] = tmux.run("capture-pane", "-e", "-p", "-t", tmux.session)
        finally:
            tmux.kill()
    assert "\x1b[" in captures["raw"]  # colours were captured
    assert captures["compact"] == captures["raw"]
