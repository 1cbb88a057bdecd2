"""Benchmark: what the dashboard costs on a real pseudo-terminal at one tick per second.

For each size (80x24 and 120x40) it starts `canary-tui run --in-process` on a pty, lets it
warm up, then over the measuring window reports (once as shipped, and once with
CANARY_TUI_OUTPUT=raw, Textual's own output without the SGR compactor, for the ratio):
  - bytes written to the terminal per second (steady state);
  - CPU used by the dashboard process (% of one core, from /proc);
  - key press to the screen showing the effect: `p` written to the pty until the header's
    new phase (PAUSED / PROGRESSING) appears in the output, median and p99.
Figures only, no assertions.
    python benchmarks/terminal.py [--seconds 60] [--keys 100] [--sizes 80x24,120x40] [--no-raw]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.processes import read_pty, spawn_dashboard  # noqa: E402

CONFIG = """
canary: {{name: bench, service: checkout, stable_version: v1.41.0, canary_version: v1.42.0}}
plan: [{{weight: 10, hold: 1h}}, {{weight: 50, hold: 1h}}]
judge: {{kind: sequential}}
loop: {{tick: 1s}}
audit: {{path: {audit}}}
source: {{kind: simulator, rate: 400, onset_s: 100000}}
router: {{kind: simulator}}
"""


def read_for(fd: int, seconds: float, sink: list[tuple[float, bytes]]) -> None:
    sink.extend((time.monotonic(), data) for data in read_pty(fd, seconds))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(fd: int, needle: bytes, timeout: float = 5.0) -> float | None:
    start = time.monotonic()
    seen = b""
    while time.monotonic() - start < timeout:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            seen = (seen + os.read(fd, 65536))[-4096:]
            if needle in seen:
                return time.monotonic() - start
    return None


def measure(cols: int, rows: int, seconds: float, keys: int, tmp: Path, raw: bool) -> None:
    config = tmp / f"bench-{cols}x{rows}.yaml"
    config.write_text(CONFIG.format(audit=tmp / f"audit-{cols}.jsonl"))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
           "LANG": "C.UTF-8", "XDG_STATE_HOME": str(tmp / "state"),
           "XDG_CONFIG_HOME": str(tmp / "config")}  # fmt: skip
    env.pop("NO_COLOR", None)
    env["CANARY_TUI_OUTPUT"] = "raw" if raw else "compact"
    pid, fd = spawn_dashboard(cols, rows, config, env, "--theme", "canary-dark")
    try:
        warm: list[tuple[float, bytes]] = []
        read_for(fd, 12, warm)
        chunks: list[tuple[float, bytes]] = []
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        read_for(fd, seconds, chunks)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        total = sum(len(c) for _, c in chunks)
        per_s = total / (t1 - t0)
        cpu = 100 * (cpu1 - cpu0) / (t1 - t0)
        latencies = []
        for i in range(keys):
            os.write(fd, b"p")
            took = wait_for(fd, b"PAUSED" if i % 2 == 0 else b"PROGRESSING")
            if took is not None:
                latencies.append(took)
            drain: list[tuple[float, bytes]] = []
            read_for(fd, 0.15, drain)
        lat = sorted(x * 1000 for x in latencies)
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))] if lat else float("nan")
        print(f"{cols}x{rows}{' raw' if raw else ''}: {per_s / 1024:6.2f} KB/s over {t1 - t0:.0f} s, CPU {cpu:5.1f}% of a "
              f"core, key->screen median {statistics.median(lat) if lat else float('nan'):6.1f} ms "
              f"p99 {p99:6.1f} ms ({len(lat)}/{keys} keys seen)")  # fmt: skip
    finally:
        os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--sizes", default="80x24,120x40", help="comma-separated COLSxROWS")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw-output comparison")
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes.split(",")]
    print(f"canary-tui dashboard on a pty, 1 tick/s, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for cols, rows in sizes:
            for raw in (False,) if args.no_raw else (False, True):
                measure(cols, rows, args.seconds, args.keys, Path(tmp), raw)


if __name__ == "__main__":
    main()
