"""A real session daemon (`canary-tui serve`) in a subprocess, and clients for it.

Every process started here begins with default signal dispositions and an empty signal mask
(`child_setup`), whatever pytest inherited (`nohup`, a shell's background job), and is stopped
when its test ends: the daemon by its fixture, clients started with `Daemon.spawn` with it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from canary_tui.core.frames import Frame
from canary_tui.session.client import SocketSession
from tests.support.processes import child_setup, stop

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
canary: {{name: {name}, service: checkout, stable_version: v1, canary_version: v2}}
plan:
  - {{weight: 5, hold: 20s}}
  - {{weight: 10, hold: 20s}}
  - {{weight: 25, hold: 20s}}
  - {{weight: 50, hold: 20s}}
judge: {{kind: threshold}}
loop: {{tick: 1s, unattended: {unattended}}}
audit: {{path: {audit}}}
session: {{operators: {operators}}}
source: {{kind: simulator, scenario: {scenario}, seed: 3, rate: 300, onset_s: 3600, state_file: {state}}}
router: {{kind: simulator}}
"""


@dataclass
class Daemon:
    tmp: Path
    env: dict[str, str]
    config: Path
    name: str
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)
    #: other processes a test starts against this daemon (clients): stopped with it
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.tmp / "run" / f"{self.name}.sock"

    @property
    def audit(self) -> Path:
        return self.tmp / "audit.jsonl"

    @property
    def log(self) -> Path:
        return self.tmp / "daemon.log"

    def start(self, timeout: float = 20) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "canary_tui.cli", "serve", "--config", str(self.config),
                 "--speed", "10", *self.extra],
                cwd=REPO, env=self.env, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=child_setup,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()[-2000:]}")
            if self._answers():
                return
            time.sleep(0.05)
        raise AssertionError(f"daemon did not start: {self.log.read_text()[-2000:]}")

    def _answers(self) -> bool:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.socket))
        except OSError:
            return False
        finally:
            probe.close()
        return True

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "canary_tui.cli", *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=child_setup)  # fmt: skip

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def spawn(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """A client process for this daemon, stopped (at the latest) with the daemon."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(
            argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=child_setup,
            **kwargs,
        )  # fmt: skip
        self.children.append(proc)
        return proc

    def stop(self) -> None:
        for child in self.children:
            stop(child)
        if self.proc is not None:
            stop(self.proc)


def make_daemon(tmp: Path, *, name: str = "checkout", scenario: str = "healthy",
                operators: str = "[]", unattended: str = "hold") -> Daemon:  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "canary.yaml"
    config.write_text(CONFIG.format(name=name, audit=tmp / "audit.jsonl", scenario=scenario,
                                    state=tmp / "cluster.json", operators=operators,
                                    unattended=unattended))  # fmt: skip
    env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp / "run"),
           "XDG_STATE_HOME": str(tmp / "state"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("SSH_CONNECTION", None)
    env.pop("SSH_CLIENT", None)
    return Daemon(tmp, env, config, name)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path)
    d.start()
    yield d
    d.stop()


class Watcher:
    """A SocketSession that records every frame it receives."""

    def __init__(self, path: Path) -> None:
        self.session = SocketSession(path)
        self.frames: list[Frame] = []

    async def attach(self) -> Watcher:
        await self.session.attach(self.frames.append)
        await self.until(lambda: bool(self.frames), "the first frame")
        return self

    async def until(self, check: Any, what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def started(self) -> Watcher:
        """Wait for the audited auto-start of the fresh canary (the first attach starts it)."""
        await self.until(lambda: self.last.state.weight > 0, "the canary's audited start")
        return self

    @property
    def last(self) -> Frame:
        return self.frames[-1]
