"""Benchmark: attach to first frame, and key press to result, through a real session daemon.

Starts `canary-tui serve` on the simulator in a temp dir, then measures over the Unix socket:
  1. attach -> first full frame drawn-ready (SocketSession.attach until the frame arrives);
  2. action round trip: submit -> result back at the client (pause/resume, alternating);
  3. key press -> state change in a Textual app attached to the daemon (Pilot, headless).
Prints median and p99 for each. Not a test: figures, no assertions.

    python benchmarks/session_latency.py [--actions 300] [--attaches 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from canary_tui.core.actions import Verb  # noqa: E402
from canary_tui.core.state import Phase  # noqa: E402
from canary_tui.session.client import SocketSession  # noqa: E402

CONFIG = """
canary: {{name: bench}}
judge: {{kind: threshold}}
loop: {{tick: 1s}}
audit: {{path: {audit}}}
source: {{kind: simulator, rate: 200, onset_s: 100000}}
router: {{kind: simulator}}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(f"{name:<44} n={len(ms):<4} median {statistics.median(ms):7.2f} ms   "
          f"p99 {pct(ms, 0.99):7.2f} ms   max {max(ms):7.2f} ms")  # fmt: skip


async def measure(sock: Path, actions: int, attaches: int) -> None:
    attach_times = []
    for _ in range(attaches):
        session = SocketSession(sock)
        got = asyncio.Event()
        t0 = time.perf_counter()
        await session.attach(lambda _f, got=got: got.set())
        await got.wait()
        attach_times.append(time.perf_counter() - t0)
        await session.detach()
    report("attach -> first full frame", attach_times)

    frames = []
    session = SocketSession(sock)
    await session.attach(frames.append)
    while not frames:
        await asyncio.sleep(0.01)
    round_trips = []
    for i in range(actions):
        verb = Verb.PAUSE if i % 2 == 0 else Verb.RESUME
        t0 = time.perf_counter()
        outcome = await session.submit(verb, expected_version=None)
        round_trips.append(time.perf_counter() - t0)
        assert outcome.ok, outcome.message
    report("action -> result via daemon (socket)", round_trips)
    await session.detach()

    from canary_tui.tui.app import make_app

    app = make_app(SocketSession(sock))
    key_times = []
    async with app.run_test(size=(100, 30)) as pilot:
        while app.dashboard.model.frame is None:
            await pilot.pause(0.01)
        for _ in range(min(actions, 200)):
            before = app.dashboard.model.frame.state.phase
            t0 = time.perf_counter()
            app.simulate_key("p")
            while app.dashboard.model.frame.state.phase is before:
                await asyncio.sleep(0.0005)
            key_times.append(time.perf_counter() - t0)
            await pilot.pause(0.02)  # let the dashboard draw before the next key
        assert app.dashboard.model.frame.state.phase in (Phase.PAUSED, Phase.PROGRESSING)
    report("key press -> new state in the app (Pilot)", key_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--attaches", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "bench.yaml"
        config.write_text(CONFIG.format(audit=tmp / "audit.jsonl"))
        env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp / "run"),
               "XDG_STATE_HOME": str(tmp / "state")}  # fmt: skip
        os.environ.update(env)
        proc = subprocess.Popen([sys.executable, "-m", "canary_tui.cli", "serve", "--config",
                                 str(config)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            sock = tmp / "run" / "bench.sock"
            deadline = time.monotonic() + 20
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            print(f"canary-tui session daemon benchmark on {os.cpu_count()} cores "
                  f"({args.actions} actions, {args.attaches} attaches); audit fsync on")  # fmt: skip
            asyncio.run(measure(sock, args.actions, args.attaches))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
