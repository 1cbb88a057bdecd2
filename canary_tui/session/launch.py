"""Start a canary's session daemon in the background, or find the one already running."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from canary_tui.session.client import SessionUnavailable, query_status
from canary_tui.session.sockets import log_path, socket_path


def daemon_alive(path: Path) -> bool:
    try:
        asyncio.run(query_status(path, timeout=2.0))
    except (SessionUnavailable, OSError, TimeoutError, ValueError):
        return False
    return True


def ensure_daemon(canary: str, serve_args: list[str], timeout: float = 20.0) -> tuple[Path, bool]:
    """The socket of `canary`'s daemon, starting `canary-tui serve SERVE_ARGS` if none answers.

    Returns (socket path, whether this call started it). Raises RuntimeError with the daemon's
    own last words when it fails to come up.
    """
    path = socket_path(canary)
    if daemon_alive(path):
        return path, False
    log = log_path(canary)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "canary_tui.cli", "serve", *serve_args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True,  # an SSH hang-up of this terminal must not reach the loop
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError("the session daemon did not start: " + " / ".join(tail))
        if daemon_alive(path):
            return path, True
        time.sleep(0.1)
    raise RuntimeError(f"the session daemon did not answer within {timeout:.0f} s (log: {log})")
