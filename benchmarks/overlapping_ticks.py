"""Bursty traffic seen through a source whose ticks overlap, as Prometheus' are.

Prometheus' count for a 5 s tick is an increase() over `min_range` (60 s with 15 s scrapes)
scaled down to the tick: consecutive ticks share 55 of their 60 s, a moving average whose
spread hides bursts. This benchmark takes the detection benchmark's 1 s streams (same arms,
seeds and pre-canary history) and feeds the sequential judge such ticks, three ways:

  ticks       the dispersion measured on the ticks (what the judge did before it knew)
  windows-z0  measured only on the source's own 60 s windows (the 10 min before the canary,
              then one a minute, each after the ticks it covers), as a point estimate
  windows     the same as an upper bound one standard deviation up: what the loop does
              (`SequentialJudge.dispersion_on_windows_only`)

It prints A/A false rollbacks per hour (Wilson interval) and, on regression arms, the median
and p90 time to detect after the onset.

    python benchmarks/overlapping_ticks.py                      # 40 A/A runs, 25 per arm
    python benchmarks/overlapping_ticks.py --aa-runs 200 --only "A/A b10-20"
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import detection as d

from canary_tui.core.judging.base import StepContext
from canary_tui.core.judging.sequential import SequentialJudge
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.verdict import Status

TICK_S, RANGE_S = 5, 60
MODES = ("ticks", "windows-z0", "windows")
ARMS = (
    "A/A", "A/A b2-4", "A/A b1-10", "A/A b10-20", "A/A b2-4/5s",
    "errors 1.0%", "latency x1.2", "errors 2.0% b2-4",
)  # fmt: skip


def counts(n: float, bad: float, buckets: np.ndarray) -> VariantCounts:
    return VariantCounts(
        float(n), float(bad), Histogram(d.BUCKETS, tuple(np.cumsum(buckets).tolist()))
    )


class Padded:
    """One run's 1 s series with the last minute before the canary in front (baseline only),
    so that a tick's 60 s range can reach back before the canary's first second."""

    def __init__(self, s: d.Stream) -> None:
        h = s.history
        zeros = np.zeros(RANGE_S, dtype=np.int64)
        self.n = (np.concatenate([h[-RANGE_S:, 0], s.nb]), np.concatenate([zeros, s.nc]))
        self.bad = (np.concatenate([h[-RANGE_S:, 1], s.eb]), np.concatenate([zeros, s.ec]))
        empty = np.zeros((RANGE_S, len(d.BUCKETS)), dtype=np.int64)
        self.buckets = (np.concatenate([h[-RANGE_S:, 2:], s.hb]), np.concatenate([empty, s.hc]))

    def window(self, t: int, scale: float) -> Sample:
        """The canary's [t - 60, t), its counts multiplied by `scale`."""
        lo, hi = t, t + RANGE_S  # padded indices of canary seconds t - 60 .. t - 1
        sides = [
            counts(n[lo:hi].sum() * scale, b[lo:hi].sum() * scale, k[lo:hi].sum(axis=0) * scale)
            for n, b, k in zip(self.n, self.bad, self.buckets, strict=True)
        ]
        return Sample(float(t - RANGE_S * scale), float(t), sides[0], sides[1])


def history_windows(s: d.Stream) -> list[Sample]:
    h = s.history
    none = counts(0, 0, np.zeros(len(d.BUCKETS)))
    out = []
    for k in range(len(h) // RANGE_S):
        part = h[k * RANGE_S : (k + 1) * RANGE_S]
        start = float(k * RANGE_S - len(h))
        out.append(Sample(start, start + RANGE_S, counts(part[:, 0].sum(), part[:, 1].sum(),
                                                         part[:, 2:].sum(axis=0)), none))  # fmt: skip
    return out


def judge_run(arm: d.Arm, s: d.Stream, mode: str) -> int | None:
    """The first tick (seconds into the canary) the judge fails, or None within the run."""
    judge = SequentialJudge(d.judge_specs(1.0), d.ALPHA)
    judge.calibrate(s.history_total())
    judge.learn_dispersion(history_windows(s))
    if mode != "ticks":
        judge.dispersion_on_windows_only()
    if mode == "windows-z0":
        for comp in judge._comparisons:
            comp.dispersion.z = comp.canary_dispersion.z = 0.0
    judge.start_step(0, 0.0)
    padded = Padded(s)
    for t in range(TICK_S, arm.ticks + 1, TICK_S):
        judge.observe(padded.window(t, TICK_S / RANGE_S))
        if mode != "ticks" and t % RANGE_S == 0:
            judge.learn_dispersion([padded.window(t, 1.0)])
        if any(v.status is Status.FAIL for v in judge.verdicts(StepContext(0, t, 60.0, t))):
            return t
    return None


def one_run(task: tuple[int, int, int]) -> tuple[int, dict[str, int | None]]:
    arm_index, run, seed = task
    arm = d.arms()[arm_index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, arm_index, run]))
    history_rng = np.random.default_rng(np.random.SeedSequence([seed, arm_index, run, 1]))
    s = d.generate(arm, rng, history_rng)
    return arm_index, {mode: judge_run(arm, s, mode) for mode in MODES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aa-runs", type=int, default=40)
    parser.add_argument("--runs", type=int, default=25, help="runs per regression arm")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--only", default=None, help="only arms whose label contains this")
    parser.add_argument("--workers", type=int, default=max(1, min(2, multiprocessing.cpu_count())))
    args = parser.parse_args(argv)
    arm_list = d.arms()
    chosen = [
        i for i, a in enumerate(arm_list)
        if a.traffic == 1000.0 and a.label in ARMS and (args.only is None or args.only in a.label)
    ]  # fmt: skip
    if not chosen:
        parser.error(f"--only {args.only!r} matches none of: {', '.join(ARMS)}")
    work = [
        (i, run, args.seed)
        for i in chosen
        for run in range(args.runs if arm_list[i].regression else args.aa_runs)
    ]
    started = time.monotonic()
    results: dict[int, list[dict[str, int | None]]] = {i: [] for i in chosen}
    with multiprocessing.Pool(args.workers) as pool:
        for i, r in pool.imap_unordered(one_run, work, chunksize=2):
            results[i].append(r)
    print(f"overlapping ticks: {TICK_S} s ticks over a {RANGE_S} s range, alpha {d.ALPHA}, "
          f"seed {args.seed}, {time.monotonic() - started:.0f} s")  # fmt: skip
    head = f"{'arm':<20} {'mode':<11} {'runs':>5}  {'false RB/h [95% Wilson]':>24} {'median s':>9} {'p90 s':>6}"
    print(head)
    print("-" * len(head))
    for i in chosen:
        arm, rows = arm_list[i], results[i]
        for mode in MODES:
            ticks = [r[mode] for r in rows]
            line = f"{arm.label:<20} {mode:<11} {len(rows):>5}  "
            if not arm.regression:
                k = sum(t is not None for t in ticks)
                lo, hi = d.wilson(k, len(rows))
                line += f"{k / len(rows) * 100:5.1f}% [{lo * 100:4.1f}, {hi * 100:4.1f}] ({k:>3})"
            else:
                late = sorted((t - arm.onset) if t is not None else float("inf") for t in ticks)
                line += f"{'-':>24} {_fmt(late[len(late) // 2]):>9} {_fmt(late[int(len(late) * 0.9)]):>6}"
            print(line)
    return 0


def _fmt(x: Any) -> str:
    return ">1h" if x == float("inf") else f"{x:.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
