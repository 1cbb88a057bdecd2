"""Recording benchmark: a synthetic 12-hour session at one tick per second.

43,200 ticks, two variants, four metrics (errors, latency from Prometheus-style histogram
buckets, two custom counters), two SLO gauges, a ramp with phase changes, and a person's
note every 20 minutes. Prints the file size, the time to write it, the time to open it
(complete, and cut short: no index, chunks scanned), and the time to seek to 100 random points
(median and max, each with an empty chunk cache), against the targets: at most 20 MB, open in
under 1 s, any seek in under 100 ms.

    python benchmarks/recording.py                 # 12 h at 1 tick/s
    python benchmarks/recording.py --hours 1       # quicker
    python benchmarks/recording.py --keep out.ctrec
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import shutil
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from canary_tui.core.frames import ActivityEntry, CanaryInfo, Frame, SeriesPoint
from canary_tui.core.metrics import Histogram, Sample, VariantCounts
from canary_tui.core.plan import RampPlan
from canary_tui.core.ports import RoutingState
from canary_tui.core.slo import Gauge
from canary_tui.core.state import CanaryState, LastChange, Phase
from canary_tui.core.verdict import Evidence, Status, Verdict
from canary_tui.records.recording import Recorder, Recording

BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.175,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    math.inf,
)
INFO = CanaryInfo("checkout", "checkout", "shop", "v1.41.0", "v1.42.0")
PLAN = RampPlan.of((5, 7200), (10, 7200), (25, 7200), (50, 7200), (75, 7200))
METRICS = ("errors", "latency", "cart_errors", "payment_errors")


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    if math.isinf(x):
        return 1.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (sigma * math.sqrt(2.0))))


PROBS = [_lognormal_cdf(b, 0.1, 0.5) for b in BUCKETS]


def _counts(rng: random.Random, n: int, err: float) -> VariantCounts:
    cumulative = []
    for p in PROBS:
        mean = n * p
        c = min(n, max(0, round(rng.gauss(mean, math.sqrt(max(mean * (1 - p), 1e-9))))))
        cumulative.append(float(max(c, cumulative[-1] if cumulative else 0.0)))
    cumulative[-1] = float(n)
    errors = float(min(n, max(0, round(rng.gauss(n * err, math.sqrt(n * err + 1e-9))))))
    custom = {
        "cart_errors": float(max(0, round(rng.gauss(n * 0.002, math.sqrt(n * 0.002 + 1e-9))))),
        "payment_errors": float(max(0, round(rng.gauss(n * 0.001, math.sqrt(n * 0.001 + 1e-9))))),
    }
    return VariantCounts(float(n), errors, Histogram(BUCKETS, tuple(cumulative)), custom)


def _verdicts(window: deque[tuple[VariantCounts, VariantCounts]]) -> tuple[Verdict, ...]:
    out = []
    for metric in METRICS:
        bn = sum(b.requests for b, _ in window)
        cn = sum(c.requests for _, c in window)

        def bad(v: VariantCounts, metric: str = metric) -> float:
            if metric == "errors":
                return v.errors
            if metric == "latency":
                assert v.latency is not None
                return v.latency.count_above(0.25)
            return v.custom[metric]

        br = sum(bad(b) for b, _ in window) / bn if bn else None
        cr = sum(bad(c) for _, c in window) / cn if cn else None
        if br is None or cr is None:
            out.append(Verdict(metric, Status.INCONCLUSIVE, "waiting", Evidence("threshold")))
            continue
        half = 2.0 * math.sqrt(max(cr * (1 - cr), 1e-12) / max(cn, 1.0))
        limit = br * 1.5 + 0.002
        status = Status.PASS if cr <= limit else Status.FAIL
        why = (
            f"canary {cr:.2%} vs baseline {br:.2%}, ratio {cr / br if br else 0:.1f}x, "
            f"limit {limit:.2%}: {status.value.upper()}"
        )
        evidence = Evidence(
            "threshold",
            br,
            cr,
            bn,
            cn,
            cr / br if br else None,
            (cr - half, cr + half),
            limit,
            min(1.0, max(0.0, 0.5 - (limit - cr) * 10)),
        )
        out.append(Verdict(metric, status, why, evidence))
    return tuple(out)


def synthetic_frames(hours: float, tick: float, seed: int) -> Iterator[Frame]:
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    state = CanaryState.initial(PLAN.step(0).weight, t0)
    yield Frame(t0, INFO, PLAN, state, RoutingState(state.weight), (), (), full=True)
    window: deque[tuple[VariantCounts, VariantCounts]] = deque(maxlen=60)
    total_c = [0.0, 0.0, 0.0]  # requests, errors, slow
    for k in range(1, int(hours * 3600 / tick) + 1):
        now = t0 + k * tick
        activity: list[ActivityEntry] = []
        if not state.terminal and state.time_in_step(now) >= PLAN.step(state.step_index).hold_s:
            last = state.step_index >= PLAN.last_index
            did = "promoted the canary" if last else "stepped forward"
            activity.append(ActivityEntry(now, "intent", "auto-advance", "step forward", k))
            state = replace(
                state,
                phase=Phase.PROMOTED if last else state.phase,
                step_index=state.step_index if last else state.step_index + 1,
                weight=100 if last else PLAN.step(state.step_index + 1).weight,
                version=state.version + 1,
                step_started_at=now,
                last_change=LastChange("auto-advance", did, now),
            )
            activity.append(ActivityEntry(now, "result", "auto-advance", did, k + 1))
        if k % 1200 == 0:
            note = f"note {k // 1200}: p99 looks steady at {rng.uniform(180, 260):.0f} ms"
            activity.append(ActivityEntry(now, "intent", "alice", f"annotate: {note}", k + 2))
            activity.append(ActivityEntry(now, "result", "alice", "noted", k + 3))
        rate = 400.0 * tick
        cn = max(0, round(rng.gauss(rate * state.weight / 100, 3.0)))
        bn = max(0, round(rng.gauss(rate - cn, 5.0)))
        base, canary = _counts(rng, bn, 0.005), _counts(rng, cn, 0.005)
        sample = Sample(now - tick, now, base, canary)
        window.append((base, canary))
        assert canary.latency is not None
        total_c[0] += canary.requests
        total_c[1] += canary.errors
        total_c[2] += canary.latency.count_above(0.3)
        good = [1 - total_c[1] / max(total_c[0], 1), 1 - total_c[2] / max(total_c[0], 1)]
        gauges = (
            Gauge("availability", 0.99, good[0], 1 - (1 - good[0]) / 0.01, 0.3, total_c[0]),
            Gauge("latency", 0.95, good[1], 1 - (1 - good[1]) / 0.05, 0.6, total_c[0]),
        )
        yield Frame(
            now,
            INFO,
            PLAN,
            state,
            RoutingState(state.weight),
            _verdicts(window),
            gauges,
            points=(SeriesPoint.from_sample(sample),),
            activity=tuple(activity),
            sample=sample,
        )


def record(path: Path, hours: float, tick: float, seed: int) -> tuple[float, float]:
    """Write the synthetic session; return the total time and the time spent in on_frame."""
    started = time.perf_counter()
    recorder = Recorder.create(None, INFO, PLAN, {}, path=path, started_at=1_700_000_000.0)
    in_loop = 0.0
    for frame in synthetic_frames(hours, tick, seed):
        t = time.perf_counter()
        recorder.on_frame(frame)
        in_loop += time.perf_counter() - t
    recorder.close()
    return time.perf_counter() - started, in_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--tick", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeks", type=int, default=100)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the recording here.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ctrec-bench-"))
    try:
        path = tmp / "bench.ctrec"
        write_s, in_loop = record(path, args.hours, args.tick, args.seed)
        gc.collect()
        size = path.stat().st_size
        opens = []
        for _ in range(5):
            t = time.perf_counter()
            rec = Recording.open(path)
            opens.append(time.perf_counter() - t)
            rec.close()
        cut = tmp / "cut.ctrec"
        shutil.copyfile(path, cut)
        with cut.open("r+b") as f:
            f.truncate(size - 1000)
        t = time.perf_counter()
        cut_rec = Recording.open(cut)
        open_cut = time.perf_counter() - t
        rec = Recording.open(path)
        rng = random.Random(args.seed + 1)
        seeks, by_time = [], []
        for _ in range(args.seeks):
            i = rng.randrange(rec.frames)
            rec._cache.clear()
            t = time.perf_counter()
            frame = rec.full_frame_at(i)
            seeks.append(time.perf_counter() - t)
            assert frame.full and frame.points
            when = rng.uniform(rec.start_time, rec.end_time)
            rec._cache.clear()
            t = time.perf_counter()
            rec.full_frame_at(rec.index_at(when))
            by_time.append(time.perf_counter() - t)
        print(
            f"recording: {args.hours:g} h at {args.tick:g} s/tick = {rec.ticks} ticks, "
            f"{rec.frames} frames, {len(rec._snaps)} snapshots, {len(rec._chunks)} chunks"
        )
        print(f"file size:            {size / 1e6:8.2f} MB   (target <= 20 MB)")
        print(f"write (incl. making): {write_s:8.2f} s    on_frame total {in_loop:.2f} s")
        print(f"open, complete:       {statistics.median(opens) * 1000:8.1f} ms   (target < 1 s)")
        print(f"open, cut short:      {open_cut * 1000:8.1f} ms   ({cut_rec.frames} frames kept)")
        print(
            f"seek to frame (100):  median {statistics.median(seeks) * 1000:6.1f} ms, "
            f"max {max(seeks) * 1000:6.1f} ms   (target < 100 ms)"
        )
        print(
            f"seek to time (100):   median {statistics.median(by_time) * 1000:6.1f} ms, "
            f"max {max(by_time) * 1000:6.1f} ms"
        )
        rec.close()
        cut_rec.close()
        if args.keep is not None:
            shutil.copyfile(path, args.keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
