"""Where canary-tui keeps its files by default (XDG state and config directories)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "canary-tui"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "canary-tui"


def default_audit_path(canary: str) -> Path:
    return state_dir() / "audit" / f"{canary}.jsonl"
