"""Shared fixtures: engines on the seeded simulator in virtual time, temp audit logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.simulator import SimulatedService
from canary_tui.config.build import build_engine
from canary_tui.config.demo import demo_config
from canary_tui.config.schema import Config
from canary_tui.core.actions import Action, Actor, Source, Verb
from canary_tui.core.clock import VirtualClock
from canary_tui.engine.loop import ActionOutcome, Engine

ALICE = Actor("alice", host="bastion", ssh_client="203.0.113.7")
BOB = Actor("bob", host="bastion")


@dataclass
class Rig:
    engine: Engine
    clock: VirtualClock
    audit_path: Path
    service: SimulatedService

    def ticks(self, n: int, until: Callable[[Engine], bool] | None = None) -> int:
        """Advance n ticks (or until `until` holds); return ticks run."""
        for i in range(1, n + 1):
            self.clock.advance(self.engine.settings.tick_s)
            self.engine.tick()
            if until is not None and until(self.engine):
                return i
        return n

    def act(
        self, verb: Verb, actor: Actor = ALICE, *, version: int | None = -1, reason: str = ""
    ) -> ActionOutcome:
        expected = self.engine.state.version if version == -1 else version
        return self.engine.submit(Action(verb, actor, Source.KEY, expected, reason=reason))


def make_rig(
    tmp_path: Path,
    scenario: str = "healthy",
    seed: int = 0,
    *,
    judge: str = "threshold",
    config: Config | None = None,
    **overrides: Any,
) -> Rig:
    clock = VirtualClock()
    cfg = config or demo_config(scenario, seed, judge=judge, **overrides)
    built = build_engine(cfg, clock, audit_path=tmp_path / "audit.jsonl")
    built.engine.start()
    return Rig(built.engine, clock, built.audit_path, built.context.shared["simulator"])


@pytest.fixture(autouse=True)
def _textual_class_state() -> Iterator[None]:
    """`--ascii` swaps Textual's scrollbar renderer class-wide (one app per process in the
    product); a test's app that ends without unmounting must not leave it to the next test."""
    from textual.scrollbar import ScrollBar

    renderer = ScrollBar.renderer
    yield
    ScrollBar.renderer = renderer


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recordings, settings and state of tests never land in the user's home."""
    monkeypatch.setenv("CANARY_TUI_RECORDINGS", str(tmp_path / "recordings"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # a colour terminal unless a test says otherwise (CI may run with no TERM at all)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def rig_factory(tmp_path: Path) -> Callable[..., Rig]:
    def factory(scenario: str = "healthy", seed: int = 0, **kw: Any) -> Rig:
        return make_rig(tmp_path, scenario, seed, **kw)

    return factory
