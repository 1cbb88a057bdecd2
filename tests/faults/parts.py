"""Fault-injecting parts for the trust tests: an in-memory cluster router, a metric source
and a judge that do what the test says (fail, fail after applying, hang, answer slowly),
and a crash that ends the engine at a named point of the action path.

These stand in for the outside world only; the engine, the audit log and the recovery under
test are the real ones. Real-process variants (the daemon killed with SIGKILL at each point,
the real kube-apiserver stopped) are in tests/faults/test_crash_processes.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary_tui.core.actions import Verb
from canary_tui.core.judging.base import StepContext
from canary_tui.core.metrics import Sample, VariantCounts
from canary_tui.core.ports import RouterError, RoutingState
from canary_tui.core.verdict import Evidence, Status, Verdict


class Crash(BaseException):
    """The process dies here (a BaseException: no `except Exception` of the engine stops it)."""


@dataclass
class Write:
    verb: str
    before: tuple[int, bool]
    after: tuple[int, bool]
    latched: bool  # the audit log's last state had a kill latch
    open_intent: dict[str, Any] | None  # the intent this write belongs to


def audit_view(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """(the open intent, if any; whether the last recorded state has a kill latch)."""
    open_intents: dict[str, dict[str, Any]] = {}
    latched = False
    if not path.exists():
        return None, False
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec.get("state"), dict):
            latched = "kill" in rec["state"]
        if rec.get("type") == "intent":
            open_intents[rec["id"]] = rec
        elif rec.get("type") in ("result", "refused"):
            open_intents.pop(rec.get("id"), None)
    intent = list(open_intents.values())[-1] if open_intents else None
    return intent, latched


class FaultyRouter:
    """The cluster's routing for one canary, in memory, with faults on demand.

    Every write is logged with what the audit log said at that moment, so a test can prove
    that each write had an intent before it and that no write under a kill latch added
    traffic.
    """

    def __init__(self, audit_path: Path, weight: int = 0, mirror: bool = False) -> None:
        self.audit_path = audit_path
        self.weight, self.mirror = weight, mirror
        self.writes: list[Write] = []
        self.fail_writes = 0  # the next N writes raise before applying
        self.fail_after_apply = 0  # the next N writes apply, then raise (a lost answer)
        self.fail_reads = 0
        self.hang: threading.Event | None = None  # set: reads and writes block until set
        self.hang_reads: threading.Event | None = None
        self.calls: list[str] = []
        self.shadow_reason: str | None = None
        self.phase = ""  # what a controller says (Argo Rollouts), "" for plain routes

    # --- faults --------------------------------------------------------------------------
    def external(self, weight: int, mirror: bool | None = None) -> None:
        """Someone changes the route outside the loop (kubectl, Argo's own abort)."""
        self.weight = weight
        if mirror is not None:
            self.mirror = mirror

    # --- the protocol --------------------------------------------------------------------
    def state(self) -> RoutingState:
        return RoutingState(weight=self.weight, mirror=self.mirror,
                            mirror_percent=100 if self.mirror else 0, phase=self.phase)  # fmt: skip

    def read(self) -> RoutingState:
        self.calls.append("read")
        if self.hang_reads is not None:
            self.hang_reads.wait()
        if self.fail_reads > 0:
            self.fail_reads -= 1
            raise RouterError("injected: the API server is unreachable")
        return self.state()

    def _write(self, verb: str, weight: int | None, mirror: bool | None) -> RoutingState:
        self.calls.append(verb)
        if self.hang is not None:
            self.hang.wait()
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise RouterError(f"injected: {verb} failed")
        intent, latched = audit_view(self.audit_path)
        before = (self.weight, self.mirror)
        if weight is not None:
            self.weight = weight
        if mirror is not None:
            self.mirror = mirror
        self.writes.append(Write(verb, before, (self.weight, self.mirror), latched, intent))
        if self.fail_after_apply > 0:
            self.fail_after_apply -= 1
            raise RouterError(f"injected: {verb} applied, but the answer was lost")
        return self.state()

    def set_weight(self, weight: int) -> RoutingState:
        return self._write("set_weight", weight, None)

    def set_mirror(self, on: bool) -> RoutingState:
        return self._write("set_mirror", None, on)

    def set_paused(self, paused: bool) -> RoutingState:
        return self.read()

    def abort(self) -> RoutingState:
        return self._write("abort", 0, False)

    def promote(self) -> RoutingState:
        return self._write("promote", 100, False)

    def shadow_unsupported(self) -> str | None:
        return self.shadow_reason


class SteadySource:
    """Healthy-looking counts every window, or no data / a failure / a wait when told."""

    def __init__(self) -> None:
        self.fail = 0
        self.no_data = 0
        self.delay: Callable[[], None] | None = None  # called inside fetch (a slow backend)
        self.fetches = 0

    def fetch(self, start: float, end: float) -> Sample:
        self.fetches += 1
        if self.delay is not None:
            self.delay()
        if self.fail > 0:
            self.fail -= 1
            raise RuntimeError("injected: the metric backend failed")
        if self.no_data > 0:
            self.no_data -= 1
            return Sample.no_data(start, end, "injected: empty series")
        span = max(end - start, 0.0)
        return Sample(start, end, VariantCounts(100.0 * span, 0.1 * span),
                      VariantCounts(5.0 * span, 0.005 * span))  # fmt: skip


@dataclass
class ScriptedJudge:
    """Says what the test tells it to, for one metric."""

    status: Status = Status.INCONCLUSIVE
    steps: list[int] = field(default_factory=list)

    def observe(self, sample: Sample) -> None:
        return None

    def start_step(self, index: int, now: float) -> None:
        self.steps.append(index)

    def verdicts(self, ctx: StepContext) -> tuple[Verdict, ...]:
        why = f"errors: scripted {self.status.value}"
        return (Verdict("errors", self.status, why, Evidence(rule="scripted")),)


def crash_at(point: str, verb: Verb | None = None) -> Callable[[str, Verb], None]:
    """A crash hook that raises Crash at `point` (for `verb`, or any)."""

    def hook(at: str, what: Verb) -> None:
        if at == point and (verb is None or what is verb):
            raise Crash(f"{at}:{what.value}")

    return hook


class ControllerRouter(FaultyRouter):
    """A router whose own controller walks the steps and says its phase (like Argo)."""

    owns_steps = True
