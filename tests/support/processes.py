"""What every real process the tests and benchmarks start needs: free loopback ports, children
that start with default signal dispositions and die with the test process (`child_setup`,
`popen`, `run`, `stop`), `with Server() as s` that always stops what it started, and the
dashboard on a real pseudo-terminal."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from canary_tui.session.lock import CanaryLock


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def die_with_parent() -> None:
    """preexec_fn: have the child killed if the test process dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_UNCATCHABLE = (signal.SIGKILL, signal.SIGSTOP)
_SIGNALS = tuple(s for s in signal.valid_signals() if s not in _UNCATCHABLE)


def reset_signals() -> None:
    """Default disposition for every signal and an empty signal mask, whatever this process
    inherited: `nohup` ignores SIGHUP, a shell's background job ignores SIGINT and SIGQUIT,
    some CI runners ignore or block SIGTERM. Ignored signals and the mask survive exec."""
    for sig in _SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def child_setup() -> None:
    """preexec_fn for every process a test starts: default signal dispositions and mask, and
    killed (SIGKILL) if the test process dies. Pass it as `preexec_fn=child_setup`, or use
    `popen` / `run` below, which do."""
    reset_signals()
    die_with_parent()


def popen(argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen with `child_setup` (stdin from /dev/null unless given). The caller stops
    it: `with popen(...) as p`, or `stop(p)` in a finally or a fixture's teardown."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(argv, preexec_fn=child_setup, **kwargs)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run with `child_setup`; on a timeout the child is killed (as run does)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, preexec_fn=child_setup, **kwargs)


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Terminate `proc` (its process group if it leads one), then kill it if it lingers."""
    try:
        group = proc.poll() is None and os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        group = False
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Running:
    """`with Server(...) as s:` starts it and stops it however the block ends."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_daemons(runtime_dir: Path, grace: float = 10.0) -> list[int]:
    """Stop the session daemons whose locks are in `runtime_dir` (a test's
    CANARY_TUI_RUNTIME_DIR): those the product started on the test's behalf (`demo`, `run`,
    `attach` in tmux or over ssh) in a session of their own, which no PDEATHSIG reaches. Only a
    live canary-tui process is signalled (a pid may have been reused). Returns the pids stopped."""
    stopped = []
    for lock in sorted(runtime_dir.glob("*.lock")) if runtime_dir.is_dir() else []:
        holder = CanaryLock(lock.stem, "test", lock).holder()  # None: nobody holds it
        if holder is None:
            continue
        pid = holder.pid
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"canary_tui" not in cmdline and b"canary-tui" not in cmdline:
            continue
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if _gone(pid, wait):
                break
        stopped.append(pid)
    return stopped


def _gone(pid: int, timeout: float) -> bool:
    """Whether `pid` has exited (or is a zombie) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


REPO = Path(__file__).resolve().parents[2]


def spawn_dashboard(
    cols: int, rows: int, config: Path, env: dict[str, str], *args: str
) -> tuple[int, int]:
    """`canary-tui run --config CONFIG --in-process ARGS` on a new pty of cols x rows: (pid, fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: size the terminal, then become the dashboard
        child_setup()
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.chdir(REPO)
        argv = [sys.executable, "-m", "canary_tui.cli", "run", "--config", str(config)]
        os.execve(sys.executable, [*argv, "--in-process", *args], env)
    return pid, fd


def read_pty(fd: int, seconds: float) -> Iterator[bytes]:
    """What arrives on `fd` for `seconds`, chunk by chunk as it is read (ends early if it closes)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.1))
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            yield data
