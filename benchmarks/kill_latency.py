"""Benchmark: nobody waits on a slow backend. The time from `k` to the kill's intent record
(fsynced) and to the router's abort call starting, while the loop's tick is stuck on a
metric source that answers in 10 s or on a router read that hangs.

Each run builds a real Engine (wall clock, fsynced audit log) on a router and a source
that do what the run says, starts its loop thread, waits until the tick is stuck, then
submits a kill from another thread, as a key press does. Prints median, p99 and max of both
delays for each kind of stall. Not a test: figures, no assertions.

    python benchmarks/kill_latency.py [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from canary_tui.core.actions import Action, Actor, Source, Verb  # noqa: E402
from canary_tui.core.frames import CanaryInfo  # noqa: E402
from canary_tui.core.metrics import Sample, VariantCounts  # noqa: E402
from canary_tui.core.plan import RampPlan  # noqa: E402
from canary_tui.core.ports import RoutingState  # noqa: E402
from canary_tui.engine.clocks import WallClock  # noqa: E402
from canary_tui.engine.loop import Engine, EngineSettings  # noqa: E402
from canary_tui.engine.runner import EngineRunner  # noqa: E402
from canary_tui.records.audit import AuditLog  # noqa: E402
from tests.faults.parts import ScriptedJudge  # noqa: E402


class StallingRouter:
    """Reads hang while `hang` is set; the abort notes when it was called."""

    def __init__(self) -> None:
        self.hang = False
        self.release = threading.Event()
        self.stuck = threading.Event()
        self.abort_called: float | None = None
        self.weight = 25

    def read(self) -> RoutingState:
        if self.hang:
            self.stuck.set()
            self.release.wait()
        return RoutingState(self.weight)

    def abort(self) -> RoutingState:
        self.abort_called = time.perf_counter()
        self.weight = 0
        return RoutingState(0)

    def set_weight(self, weight: int) -> RoutingState:
        self.weight = weight
        return RoutingState(weight)

    def set_mirror(self, on: bool) -> RoutingState:
        return RoutingState(self.weight, mirror=on)

    def set_paused(self, paused: bool) -> RoutingState:
        return RoutingState(self.weight)

    def promote(self) -> RoutingState:
        self.weight = 100
        return RoutingState(100)

    def shadow_unsupported(self) -> str | None:
        return None


class SlowSource:
    """Answers after 10 s (or at once when released) while `slow` is set."""

    def __init__(self) -> None:
        self.slow = False
        self.release = threading.Event()
        self.stuck = threading.Event()

    def fetch(self, start: float, end: float) -> Sample:
        if self.slow:
            self.stuck.set()
            self.release.wait(10.0)
        span = max(end - start, 0.0)
        return Sample(start, end, VariantCounts(100 * span, 0), VariantCounts(5 * span, 0))


class TimedAudit(AuditLog):
    """The audit log, noting when the kill's intent was durably written."""

    intent_written: float | None = None

    def append(self, record):  # type: ignore[no-untyped-def]
        out = super().append(record)
        if record.get("type") == "intent" and record.get("verb") == "kill":
            self.intent_written = time.perf_counter()
        return out


def one_run(directory: Path, stall: str) -> tuple[float, float]:
    router, source = StallingRouter(), SlowSource()
    audit = TimedAudit(directory / f"audit-{time.monotonic_ns()}.jsonl")
    engine = Engine(
        info=CanaryInfo("bench", "bench"), plan=RampPlan.of((25, 60), (50, 60)),
        judge=ScriptedJudge(), source=source, router=router, audit=audit, clock=WallClock(),
        settings=EngineSettings(tick_s=0.05),
    )  # fmt: skip
    runner = EngineRunner(engine)
    runner.start()
    if stall == "router read hangs":
        router.hang = True
        router.stuck.wait(30)
    else:
        source.slow = True
        source.stuck.wait(30)
    pressed = time.perf_counter()
    kill = Action(Verb.KILL, Actor("oncall"), Source.KEY, None, reason="benchmark")
    presser = threading.Thread(target=engine.submit, args=(kill,))
    presser.start()
    presser.join(30)
    intent_at, abort_at = audit.intent_written, router.abort_called
    router.release.set()
    source.release.set()
    runner.stop(30)
    audit.close()
    if intent_at is None or abort_at is None:
        raise SystemExit(f"the kill did not reach the audit log or the router ({stall})")
    return (intent_at - pressed) * 1000, (abort_at - pressed) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="kills per kind of stall")
    args = parser.parse_args()
    print(f"{'stall':<28} {'to intent (ms)':>24} {'to router call (ms)':>26}")
    print(f"{'':<28} {'median  p99    max':>24} {'median  p99    max':>26}")
    with tempfile.TemporaryDirectory() as tmp:
        for stall in ("metric source takes 10 s", "router read hangs"):
            intents, aborts = [], []
            for _ in range(args.runs):
                i, a = one_run(Path(tmp), stall)
                intents.append(i)
                aborts.append(a)
            print(f"{stall:<28} {_fig(intents):>24} {_fig(aborts):>26}")
    print(f"({args.runs} kills each; target: p99 under 100 ms for both)")


def _fig(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(ordered):6.2f} {p99:6.2f} {ordered[-1]:6.2f}"


if __name__ == "__main__":
    main()
