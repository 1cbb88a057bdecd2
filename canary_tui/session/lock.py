"""One loop per canary: the per-canary lock every mode takes before it opens the audit log.

`demo`, `run` (in-process), `run --headless` and `serve` all take it; the second one to try
learns who holds it (pid, user, mode, since) and says so, or attaches instead. The lock is
an flock on a file in the runtime directory; the holder's identity is written into it. The
file is removed on release, and a taker checks that the file it locked is still the one at
the path (so a release racing a take cannot leave two holders).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from canary_tui.session.sockets import lock_path


class LockHeld(Exception):
    """Another process drives this canary; the message says who, and what to do."""


@dataclass(frozen=True, slots=True)
class Holder:
    pid: int
    user: str
    mode: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.since)) if self.since else "?"
        return f"pid {self.pid}, user {self.user}, {self.mode}, since {when}"


class CanaryLock:
    """The lock of canary `name`, held by this process in `mode` once `acquire` returns."""

    def __init__(self, name: str, mode: str, path: Path | None = None) -> None:
        self.name = name
        self.mode = mode
        self.path = path or lock_path(name)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise LockHeld naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise LockHeld(self._held_message(holder)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released (and removed) between our open and our flock: again
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            info = {"pid": os.getpid(), "user": _user(), "mode": self.mode, "since": time.time()}
            os.write(fd, (json.dumps(info) + "\n").encode())
            self._fd = fd
            return
        raise LockHeld(f"could not take the lock {self.path}: it keeps being replaced")

    def _held_message(self, holder: Holder | None) -> str:
        who = holder.describe() if holder is not None else "an unknown process"
        return (
            f"canary {self.name!r} is already driven by another loop ({who}); one loop per "
            f"canary: attach to it with `canary-tui attach {self.name}`, or stop it first"
        )

    def holder(self) -> Holder | None:
        """Who holds the lock now (None if nobody), without taking it."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> CanaryLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_holder(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        data = json.loads(raw)
        return Holder(int(data["pid"]), str(data["user"]), str(data["mode"]),
                      float(data["since"]))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
