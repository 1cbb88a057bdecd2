"""Where session daemons listen: one Unix socket (and lock file) per canary, in a 0700 dir."""

from __future__ import annotations

import os
from pathlib import Path

from canary_tui.paths import state_dir


def runtime_dir() -> Path:
    """`$XDG_RUNTIME_DIR/canary-tui`, or the user's state directory when there is none."""
    base = os.environ.get("CANARY_TUI_RUNTIME_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "canary-tui"
    return state_dir() / "run"


def socket_path(canary: str) -> Path:
    return runtime_dir() / f"{canary}.sock"


def lock_path(canary: str) -> Path:
    return runtime_dir() / f"{canary}.lock"


def log_path(canary: str) -> Path:
    return state_dir() / "daemon" / f"{canary}.log"


def list_sockets() -> list[Path]:
    d = runtime_dir()
    return sorted(d.glob("*.sock")) if d.is_dir() else []
