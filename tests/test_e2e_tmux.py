"""End to end in a real terminal: `canary-tui demo` in tmux, keys by send-keys, screen by
capture-pane. Skipped only where tmux is missing (CI installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from canary_tui.records.audit import read_records, verify
from tests.support.processes import child_setup, stop_daemons

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
        tmux.keys("q")  # the last one out is asked: leave the loop running, or stop it
        tmux.wait_for(lambda s: "last one attached" in s, "the leave dialog")
        tmux.keys("s")
        tmux.wait_for(lambda s: "What should happen to the canary first" in s, "kill or hold")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "What should happen" not in s, "the dialog to close")
        tmux.keys("k")
        tmux.wait_for(lambda s: "ROLLED BACK" in s, "ROLLED BACK after kill")
        tmux.keys("q")  # rolled back: nothing left to kill or hold, `s` just stops the loop
        tmux.wait_for(lambda s: "already rolled back" in s, "the leave dialog, canary ended")
        tmux.keys("s")
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        tmux.kill()
        _stop_daemon(tmp_path)
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


def _demo(tmux: Tmux, tmp_path: Path, size: tuple[int, int], *args: str, env: str = "") -> Path:
    """Start `canary-tui demo` in tmux at `size`; return the file its exit code lands in."""
    done = tmp_path / "exit-code"
    base = (f"CANARY_TUI_RUNTIME_DIR={tmp_path / 'run'} XDG_STATE_HOME={tmp_path / 'state'} "
            f"XDG_CONFIG_HOME={tmp_path / 'config'} LANG=C.UTF-8")  # fmt: skip
    # stty first: a detached tmux may still be resizing the pane when the app starts
    command = (f"cd {Path.cwd()} && stty cols {size[0]} rows {size[1]} && "
               f"{base} {env or 'TERM=xterm-256color'} {sys.executable} -m "
               f"canary_tui.cli demo --audit {tmp_path / 'audit.jsonl'} {' '.join(args)}; "
               f"echo $? > {done}.tmp && mv {done}.tmp {done}")  # fmt: skip
    tmux.start(command, width=size[0], height=size[1])
    return done


def _stop_daemon(tmp_path: Path) -> None:
    """The session daemon outlives its terminal on purpose: end the one this test started
    (found by its lock in this test's runtime dir)."""
    stop_daemons(tmp_path / "run")


def _boxed(screen: str) -> str:
    """The words inside a dialog's thick border, joined: what the dialog says."""
    inner = [line.split("\u2588")[1] for line in screen.splitlines() if line.count("\u2588") >= 2]
    return " ".join(" ".join(inner).split())


def _exit_code(done: Path) -> str:
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return done.read_text().strip()


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
def test_every_screen_reads_correctly(tmp_path: Path, size: tuple[int, int]) -> None:
    """The dashboard, `?`, and both leave dialogs, captured from a real terminal: nothing the
    user needs is cut off, and each says what it should."""
    width, height = size
    tmux = Tmux(tmp_path)
    done = _demo(tmux, tmp_path, size, "--speed", "4")
    try:
        screen = tmux.wait_for(lambda s: "PROGRESSING" in s and "seconds ago" in s
                               and "Quit" in s, "dashboard")  # fmt: skip
        lines = screen.splitlines()
        assert len(lines) <= height and all(len(line) <= width for line in lines)
        footer = [line for line in lines if line.strip()][-1]
        assert "k Kill" in footer and "q Quit" in footer and "? Keys" in footer, footer
        assert screen.count(", last 5 min") == 2  # both graph titles state the axis span
        assert "(30 s)" not in screen
        tmux.keys("?")
        keys = tmux.wait_for(lambda s: "what it does" in s, "the ? screen")
        rows = [line.split("\u2588")[1].strip() for line in keys.splitlines()
                if line.count("\u2588") >= 2]  # inside the box's border  # fmt: skip
        first = rows[rows.index(next(r for r in rows if r.startswith("key "))) + 1]
        assert first.split()[:2] == ["s", "Step"], keys  # the canary's keys first
        tmux.keys("End")  # scroll to the end: quit once, then Textual's own keys
        keys = tmux.wait_for(lambda s: "general" in s, "the end of the ? screen")
        assert sum(" Quit " in line for line in keys.splitlines()) == 1, keys
        assert keys.index(" Quit ") < keys.index("general")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "general" not in s and "k Kill" in s, "the ? screen to close")
        tmux.keys("q")
        dialog = tmux.wait_for(lambda s: "last one attached" in s, "the leave dialog")
        words = _boxed(dialog)  # the text wraps inside the box: no word is cut
        for phrase in ("keeps running with auto-rollback armed", "unattended it will follow",
                       "enter leave it running", "s stop the loop", "escape stay"):  # fmt: skip
            assert phrase in words, dialog
        tmux.keys("s")
        stop = tmux.wait_for(lambda s: "What should happen" in s, "kill or hold")
        words = _boxed(stop)
        assert "k kill it (weight 0), then stop" in words
        assert "h hold it where it is, then stop" in words
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "What should happen" not in s, "the dialog to close")
        tmux.keys("k")
        tmux.wait_for(lambda s: "ROLLED BACK" in s, "the kill")
        tmux.keys("q")
        ended = tmux.wait_for(lambda s: "already rolled back" in s, "the ended leave dialog")
        assert "kill it" not in ended and "hold it" not in ended
        assert "s stop the loop now" in _boxed(ended)
        tmux.keys("s")
        assert _exit_code(done) == "0"
    finally:
        tmux.kill()
        _stop_daemon(tmp_path)


def test_ascii_only_at_60x20_prints_nothing_but_ascii(tmp_path: Path) -> None:
    """--ascii under NO_COLOR and LANG=C on a 60x20 screen: the dashboard and `?` hold no
    character outside ASCII (no ellipsis, no block or box glyph)."""
    tmux = Tmux(tmp_path)
    _demo(tmux, tmp_path, (60, 20), "--in-process", "--ascii",
          env="TERM=xterm-256color NO_COLOR=1 LANG=C LC_ALL=C")  # fmt: skip
    try:
        tmux.wait_for(lambda s: ("WAIT" in s or "PASS" in s) and "q Quit" in s.splitlines()[-1],
                      "verdicts, and quit in the footer", timeout=40)  # fmt: skip
        time.sleep(1.0)  # let the graphs' worker land its drawing
        screen = tmux.screen()
        assert screen.isascii(), [c for c in screen if not c.isascii()]
        tmux.keys("?")
        keys = tmux.wait_for(lambda s: "what it does" in s, "the ? screen")
        assert keys.isascii(), [c for c in keys if not c.isascii()]
        tmux.keys("End")  # Textual's own keys (arrows) at the end, spelt out
        keys = tmux.wait_for(lambda s: "general" in s, "the end of the ? screen")
        assert keys.isascii(), [c for c in keys if not c.isascii()]
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "general" not in s, "the ? screen to close")
        tmux.keys(":")
        palette = tmux.wait_for(lambda s: "Kill" in s and "Search for" in s, "the palette")
        assert palette.isascii(), [c for c in palette if not c.isascii()]
    finally:
        tmux.kill()


def _colours(params: str) -> list[tuple[int, int, int] | str]:
    """The colours an SGR sequence sets: (r, g, b) for 24-bit ones, the code otherwise."""
    codes = [int(c) if c else 0 for c in params.split(";")]
    out: list[tuple[int, int, int] | str] = []
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48) and i + 1 < len(codes) and codes[i + 1] == 2:
            out.append((codes[i + 2], codes[i + 3], codes[i + 4]))
            i += 5
            continue
        if code in (38, 48) and i + 1 < len(codes) and codes[i + 1] == 5:
            out.append(f"256:{codes[i + 2]}")
            i += 3
            continue
        if 30 <= code <= 37 or 40 <= code <= 47 or 90 <= code <= 97 or 100 <= code <= 107:
            out.append(f"16:{code}")
        i += 1
    return out


@pytest.mark.parametrize(
    "colorterm", ["", "truecolor"], ids=["no-COLORTERM", "COLORTERM-inherited"]
)
def test_a_vt100_inside_tmux_gets_the_monochrome_theme(tmp_path: Path, colorterm: str) -> None:
    """TERM=vt100 has no colours: only greys reach the screen (no red, green or yellow), even
    when COLORTERM comes along from the terminal tmux runs in."""
    tmux = Tmux(tmp_path)
    env = f"COLORTERM={colorterm} TERM=vt100" if colorterm else "env -u COLORTERM TERM=vt100"
    _demo(tmux, tmp_path, (80, 24), "--in-process", env=env)
    try:
        tmux.wait_for(lambda s: "WAIT" in s or "PASS" in s, "verdicts", timeout=40)
        time.sleep(1.0)
        captured = tmux.run("capture-pane", "-e", "-p", "-t", tmux.session)
    finally:
        tmux.kill()
    greys16 = {"16:30", "16:37", "16:90", "16:97", "16:40", "16:47", "16:100", "16:107"}
    seen = [c for p in re.findall(r"\x1b\[([0-9;]*)m", captured) for c in _colours(p)]
    assert seen  # the capture holds the escapes
    for colour in seen:
        if isinstance(colour, tuple):
            assert max(colour) - min(colour) <= 8, colour  # a grey
        elif colour.startswith("256:"):
            n = int(colour[4:])
            assert n in (0, 7, 8, 15, 16, 231) or n >= 232, colour
        else:
            assert colour in greys16, colour
