"""How long each step of `canary-tui demo` really lasts, and how good the dashboard's "about N s
more" estimate is, measured on the demo's own configuration in virtual time.

The plan's holds are minimums: a step advances when its hold is over AND every metric has
passed. This runs the healthy demo (the same config `canary-tui demo` builds: 2000 requests/s,
sequential judge) for several seeds, and prints per step: the plan's hold, how long the step
really lasted (median, min, max over the seeds), and, at the first tick after the hold, the
dashboard's estimate of the wait (`canary_tui.tui.waiting`) against the wait that followed.

    python -m benchmarks.demo_holds                  # 10 seeds, about half a minute
    python -m benchmarks.demo_holds --seeds 30 --rate 400
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

from canary_tui.config.build import build_engine
from canary_tui.config.demo import demo_config
from canary_tui.core.clock import VirtualClock
from canary_tui.tui.waiting import waiting_note

_ETA = re.compile(r"about (\d+) (s|min) more")


def _eta_seconds(note: str | None) -> float | None:
    if note is None:
        return None
    if "any moment" in note:
        return 0.0
    found = _ETA.search(note)
    if found is None:
        return None
    return float(found.group(1)) * (60.0 if found.group(2) == "min" else 1.0)


def run_one(
    seed: int, rate: float, scenario: str, directory: Path
) -> list[dict[str, float | None]]:
    """Per step of one demo canary: hold, how long it lasted, the estimate at hold end."""
    clock = VirtualClock()
    config = demo_config(scenario, seed, rate=rate)
    built = build_engine(config, clock, audit_path=directory / f"audit-{seed}.jsonl")
    engine = built.engine
    engine.start()
    steps: list[dict[str, float | None]] = []
    index, started, estimate = 0, clock.now(), None
    last_rps: float | None = None
    for _ in range(100_000):
        clock.advance(engine.settings.tick_s)
        frame = engine.tick()
        for point in frame.points:
            if point.rps_canary is not None:
                last_rps = point.rps_canary
        s = engine.state
        hold = engine.plan.step(index).hold_s
        at_hold_end = s.step_index == index and s.time_in_step(clock.now()) >= hold
        if estimate is None and at_hold_end and not s.terminal:
            note = waiting_note(frame, last_rps)
            estimate = _eta_seconds(note.text) if note else 0.0
            hold_end = clock.now()
        if s.step_index != index or s.terminal:
            lasted = clock.now() - started
            waited = clock.now() - hold_end if estimate is not None else None
            steps.append({"hold": hold, "lasted": lasted, "estimate": estimate, "waited": waited})
            if s.terminal:
                break
            index, started, estimate = s.step_index, clock.now(), None
    engine.stop("benchmark done")
    engine.audit.close()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2000.0, help="demo requests/s")
    parser.add_argument("--scenario", default="healthy")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            runs.append(run_one(seed, args.rate, args.scenario, Path(tmp)))
    print(f"demo {args.scenario}, {args.rate:g} requests/s, {args.seeds} seeds (virtual time)")
    print(f"{'step':>4} {'hold':>6} {'lasted: median':>15} {'min':>6} {'max':>6}"
          f"   {'estimate at hold end vs wait that followed (median abs error)':<}")  # fmt: skip
    for i in range(max(len(r) for r in runs)):
        rows = [r[i] for r in runs if len(r) > i]
        lasted = [float(x["lasted"] or 0) for x in rows]
        pairs = [(x["estimate"], x["waited"]) for x in rows
                 if x["estimate"] is not None and x["waited"] is not None]  # fmt: skip
        errors = [abs(float(e or 0) - float(w or 0)) for e, w in pairs]
        waited = [float(w or 0) for _, w in pairs]
        print(
            f"{i + 1:>4} {rows[0]['hold']:>5.0f}s {statistics.median(lasted):>14.0f}s "
            f"{min(lasted):>5.0f}s {max(lasted):>5.0f}s   "
            + (f"wait median {statistics.median(waited):.0f} s, estimate off by median "
               f"{statistics.median(errors):.0f} s" if pairs else "")
        )  # fmt: skip


if __name__ == "__main__":
    main()
