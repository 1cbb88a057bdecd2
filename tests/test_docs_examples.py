"""Every shell example in the README and docs/ is run as the page shows it, so none can rot.

A ```sh (or ```console) block runs unless the line before it is a marker:

    <!-- doc-test: skip REASON -->   not run (a cluster, the network, a running session); REASON required
    <!-- doc-test: exit 0 1 -->      each command may exit with any of these codes (default: 0)
    <!-- doc-test: dashboard -->     each command is a dashboard: started on a pseudo-terminal,
                                     it must draw (pyte renders the screen), then it is stopped

A ```console block is `$ command` lines, each followed by its expected output, compared exactly.
The blocks of one page run in order in one temporary home (HOME, XDG dirs, the session
daemons' runtime directory) with copies of examples/ and recordings/ as the working
directory; `canary-tui` is this checkout's. Every process started dies with the test: the
commands in their own process group, killed on timeout, and any session daemon they started
(found by its lock file in the private runtime directory) killed at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyte
import pytest

from tests.support.processes import child_setup, stop_daemons

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
MARKER = re.compile(r"^<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)")
SHELL = {"sh", "bash", "shell", "console"}
RUN_TIMEOUT = 180.0
DRAW_TIMEOUT = 90.0


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    mode: str = "run"  # run | dashboard | skip
    codes: tuple[int, ...] = (0,)
    reason: str = ""
    commands: list[str] = field(default_factory=list)
    expected: list[str | None] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _commands(lines: list[str]) -> list[str]:
    """Shell lines, with `\\` continuations joined and comment-only lines dropped."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        text = raw.rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text = pending + text
        pending = ""
        if text.strip() and not text.lstrip().startswith("#"):
            out.append(text.strip())
    return out


def _console(lines: list[str]) -> tuple[list[str], list[str | None]]:
    commands: list[str] = []
    expected: list[str | None] = []
    for text in lines:
        if text.startswith("$ "):
            commands.append(text[2:].strip())
            expected.append("")
        elif expected:
            expected[-1] = f"{expected[-1]}{text.rstrip()}\n"
    return commands, expected


def parse(page: Path) -> list[Block]:
    """The shell blocks of a page, with their markers; a bad marker is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        lang = fence.group("lang")
        if lang not in SHELL:
            continue
        block = Block(page, start + 1, lang)
        marker = MARKER.match(lines[start - 1]) if start else None
        if marker:
            words = marker.group("body").split(None, 1)
            kind = words[0] if words else ""
            if kind == "skip":
                block.mode, block.reason = "skip", words[1] if len(words) > 1 else ""
                if not block.reason:
                    raise ValueError(f"{block.where}: `doc-test: skip` needs a reason")
            elif kind == "dashboard":
                block.mode = "dashboard"
            elif kind == "exit":
                block.codes = tuple(int(c) for c in (words[1] if len(words) > 1 else "").split())
                if not block.codes:
                    raise ValueError(f"{block.where}: `doc-test: exit` needs exit codes")
            else:
                raise ValueError(f"{block.where}: unknown marker {marker.group(0)!r}")
        if lang == "console":
            block.commands, block.expected = _console(body)
        else:
            block.commands = _commands(body)
            block.expected = [None] * len(block.commands)
        if not block.commands:
            raise ValueError(f"{block.where}: a shell block with no command")
        blocks.append(block)
    return blocks


def _runnable_pages() -> list[Path]:
    return [p for p in PAGES if any(b.mode != "skip" for b in parse(p))]


class Home:
    """A private home for one page's examples: dirs, environment, and the cleanup."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        for name in ("examples", "recordings"):
            shutil.copytree(REPO / name, self.work / name)
        self.bin = root / "bin"
        self.bin.mkdir()
        shim = self.bin / "canary-tui"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m canary_tui.cli "$@"\n')
        shim.chmod(0o755)
        # short: a Unix socket's path has at most 107 bytes
        self.run = Path(tempfile.mkdtemp(prefix="cdoc-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CANARY_", "XDG_"))}
        for name in ("NO_COLOR", "SSH_CONNECTION", "KUBECONFIG", "PYTHONSTARTUP"):
            env.pop(name, None)
        env.update(
            PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
            HOME=str(root / "home"),
            XDG_CONFIG_HOME=str(root / "home" / ".config"),
            XDG_STATE_HOME=str(root / "home" / ".local" / "state"),
            CANARY_TUI_RUNTIME_DIR=str(self.run),
            PYTHONPATH=str(REPO),
            TERM="xterm-256color",
            LANG="C.UTF-8",
            LC_ALL="C.UTF-8",
        )
        (root / "home").mkdir()
        self.env = env

    def run_command(self, command: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command], cwd=self.work, env=self.env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, preexec_fn=child_setup,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"`{command}` did not finish within {RUN_TIMEOUT:.0f} s")
        return subprocess.CompletedProcess(command, proc.returncode, out, err)

    def run_dashboard(self, command: str, cols: int = 100, rows: int = 30) -> str:
        """Start `command` on a pty; return the screen once the dashboard has drawn."""
        pid, fd = pty.fork()
        if pid == 0:  # child: its own session on the pty, killed if the test dies
            child_setup()
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.chdir(self.work)
            os.execve("/bin/sh", ["/bin/sh", "-c", f"exec {command}"], self.env)
        screen = pyte.Screen(cols, rows)
        stream = pyte.ByteStream(screen)
        try:
            deadline = time.monotonic() + DRAW_TIMEOUT
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(fd, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    stream.feed(data)
                text = "\n".join(screen.display)
                if "Quit" in text and ("Kill" in text or "REPLAY" in text):
                    return text
            pytest.fail(
                f"`{command}` did not draw the dashboard within {DRAW_TIMEOUT:.0f} s; "
                "screen:\n" + "\n".join(screen.display)
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)

    def stop_daemons(self) -> None:
        """Stop the session daemons a command left running (a dashboard that was closed
        leaves its daemon carrying on, as it should): the next example starts clean."""
        stop_daemons(self.run)

    def close(self) -> None:
        self.stop_daemons()
        shutil.rmtree(self.run, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path)
    try:
        yield h
    finally:
        h.close()


def test_every_shell_block_is_run_or_says_why_not() -> None:
    """Markers parse, skips give a reason, and the pages do have runnable examples."""
    blocks = [b for page in PAGES for b in parse(page)]
    assert sum(b.mode != "skip" for b in blocks) >= 10
    for b in blocks:
        if b.mode == "skip":
            assert len(b.reason.split()) >= 2, f"{b.where}: say why it cannot run"


@pytest.mark.parametrize("page", _runnable_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_page_examples_run(page: Path, home: Home) -> None:
    for block in parse(page):
        if block.mode == "skip":
            continue
        if block.mode == "dashboard":
            for command in block.commands:  # a block may attach a second dashboard
                home.run_dashboard(command)
            home.stop_daemons()  # as a person who quits and stops the loop would
            continue
        for command, expected in zip(block.commands, block.expected, strict=True):
            done = home.run_command(command)
            assert done.returncode in block.codes, (
                f"{block.where}: `{command}` exited {done.returncode}, expected "
                f"{block.codes}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-2000:]}"
            )
            assert "Traceback" not in done.stderr, f"{block.where}: `{command}`\n{done.stderr}"
            if expected is not None:
                got = "".join(line.rstrip() + "\n" for line in done.stdout.splitlines())
                assert got == expected, f"{block.where}: `{command}` printed\n{got}"
