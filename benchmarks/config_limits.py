"""Benchmark: what the worst config files cost the loader, each in a fresh process.

For each input (a recursive alias, 5000 nested brackets, an alias bomb, a merge-key bomb, the
largest file allowed of the densest kind, the shipped example) it runs `load_config` in a child
process and prints the CPU seconds, the peak resident memory of the child (interpreter and
imports included, so the example's row is the baseline) and the first line of the outcome.
Figures only, no assertions.
    python benchmarks/config_limits.py
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from canary_tui.config.loader import MAX_BYTES  # noqa: E402
from tests.support.processes import child_setup  # noqa: E402


def _bomb(merge: bool) -> str:
    names = "abcdefghi"
    if merge:
        head = "canary: {name: x}\nsource:\n  kind: prometheus\n"
        rows = ["  a: &a {" + ", ".join(f"x{i}: 1" for i in range(9)) + "}"]
        rows += [
            f"  {n}: &{n} {{<<: [{','.join([f'*{p}'] * 9)}]}}" for p, n in itertools.pairwise(names)
        ]
        return head + "\n".join(rows) + "\n"
    rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    rows += [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in itertools.pairwise(names)]
    return "\n".join(rows) + "\ncanary: {name: x}\n"


def _metrics(count: int | None = None) -> str:
    """`count` metrics (7 values each), or as many as fit in MAX_BYTES."""
    head = "canary: {name: x}\nmetrics:\n"
    row = "  - {name: m%06d, kind: errors, tolerance_ratio: 1.5}\n"
    count = count if count is not None else (MAX_BYTES - len(head)) // len(row % 0)
    return head + "".join(row % i for i in range(count))


def _comments() -> str:
    text = (REPO / "examples" / "checkout.yaml").read_text()
    return text + "# " + "x" * 77 + "\n" * ((MAX_BYTES - len(text)) // 80)


INPUTS = {
    "example (baseline)": (REPO / "examples" / "checkout.yaml").read_text(),
    "recursive alias": "canary: &a [*a]\n",
    "5000 nested brackets": "canary: " + "[" * 5000 + "]" * 5000 + "\n",
    "alias bomb (9^9)": _bomb(merge=False),
    "merge-key bomb (9^8)": _bomb(merge=True),
    f"largest file ({MAX_BYTES // 1024} KiB of metrics)": _metrics(),
    "2800 metrics (19600 values: valid)": _metrics(2800),
    f"example + comments to {MAX_BYTES // 1024} KiB": _comments(),
}

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from canary_tui.config.loader import ConfigError, load_config
start = resource.getrusage(resource.RUSAGE_SELF)
try:
    load_config(Path(sys.argv[1]))
    outcome = "valid"
except ConfigError as exc:
    outcome = str(exc).splitlines()[0]
end = resource.getrusage(resource.RUSAGE_SELF)
cpu = (end.ru_utime + end.ru_stime) - (start.ru_utime + start.ru_stime)
print(json.dumps({"cpu": cpu, "rss_mb": end.ru_maxrss / 1024, "outcome": outcome}))
"""


def main() -> None:
    print(f"{'input':<34} {'CPU s':>7} {'peak RSS MB':>12}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in INPUTS.items():
            path = Path(tmp) / "c.yaml"
            path.write_text(text)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(REPO)], capture_output=True,
                text=True, check=True, stdin=subprocess.DEVNULL, preexec_fn=child_setup,
            )  # fmt: skip
            r = json.loads(out.stdout)
            outcome = r["outcome"].replace(str(path), "c.yaml")
            print(f"{name:<34} {r['cpu']:>7.3f} {r['rss_mb']:>12.1f}  {outcome[:90]}")


if __name__ == "__main__":
    main()
