"""The command line: headless exit codes and JSON events; bad input never shows a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import child_setup

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout.yaml"


def canary(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "canary_tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        preexec_fn=child_setup,
    )


def config_for(tmp_path: Path, scenario: str, seed: int = 3, judge: str = "threshold") -> Path:
    text = EXAMPLE.read_text().replace("scenario: healthy", f"scenario: {scenario}")
    text = text.replace("seed: 7", f"seed: {seed}").replace(
        "./checkout-audit.jsonl", str(tmp_path / "audit.jsonl")
    )
    text = text.replace("kind: sequential", f"kind: {judge}")
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("scenario", "code", "outcome"),
    [
        ("healthy", 0, "promoted"),
        ("error-regression", 1, "rolled_back"),
    ],
)
def test_headless_exit_codes_and_json_events(
    tmp_path: Path, scenario: str, code: int, outcome: str
) -> None:
    out = canary(
        "run", "--config", str(config_for(tmp_path, scenario)), "--headless", "--speed", "max"
    )
    assert out.returncode == code, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1] == {"event": "end", "outcome": outcome, "exit": code}
    ticks = [e for e in events if e["event"] == "tick"]
    assert ticks and all({"phase", "weight", "verdicts", "step"} <= set(e) for e in ticks)
    assert any(e["event"] == "activity" and e["kind"] == "result" for e in events)
    verify = canary("audit", "verify", str(tmp_path / "audit.jsonl"))
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize(("scenario", "code"), [("healthy", 0), ("error-regression", 1)])
def test_the_example_as_shipped_promotes_healthy_and_rolls_back_bad(
    tmp_path: Path, scenario: str, code: int
) -> None:
    """The example's own judge and SLO guards: a healthy canary must not fail them."""
    config = config_for(tmp_path, scenario, seed=7, judge="sequential")
    out = canary("run", "--config", str(config), "--headless", "--speed", "max")
    assert out.returncode == code, out.stdout[-2000:]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--config", "/nonexistent.yaml", "--headless"], "no such config file"),
        (["demo", "--scenario", "nope"], "unknown scenario 'nope'"),
        (["demo"], "needs a terminal"),
        (
            ["demo", "--theme", "neon"],
            "unknown theme 'neon'; known: canary-colorblind, canary-dark",
        ),
        (
            ["run", "--config", "CFG", "--headless", "--speed", "fast"],
            "--speed must be a positive number",
        ),
        (
            ["run", "--config", "CFG", "--headless", "--speed", "-2"],
            "--speed must be a positive number",
        ),
        (["demo", "--speed", "inf"], "--speed must be a positive number up to 1000"),
        (["demo", "--speed", "5000"], "or 'max' for virtual time with no waiting; got '5000'"),
        (["demo", "--rate", "inf"], "Invalid value for '--rate'"),
        (["demo", "--exporter-port", "99999"], "Invalid value for '--exporter-port'"),
        (["serve", "--demo", "--exporter-port", "0"], "Invalid value for '--exporter-port'"),
        (
            ["run", "--config", "CFG", "--headless", "--audit", "BLOCKED/a.jsonl"],
            "cannot open audit log",
        ),
        (["audit", "verify", "/nonexistent.jsonl"], "cannot read audit log"),
    ],
)
def test_bad_input_gives_one_clear_message(tmp_path: Path, args: list[str], fragment: str) -> None:
    cfg = config_for(tmp_path, "healthy")
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    args = [a.replace("CFG", str(cfg)).replace("BLOCKED", str(blocked)) for a in args]
    out = canary(*args, env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert out.returncode == 2, out
    assert fragment in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert "Traceback" not in out.stderr and len(lines) <= 3, out.stderr


def test_invalid_config_names_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("canary:\n  name: x\nplan:\n  - weight: 500\n")
    out = canary("run", "--config", str(p), "--headless")
    assert out.returncode == 2
    assert f"{p}:4: plan[0].weight" in out.stderr and "Traceback" not in out.stderr


def test_help_lists_commands() -> None:
    out = canary("--help")
    assert out.returncode == 0
    for command in ("demo", "run", "audit"):
        assert command in out.stdout


def test_serve_under_a_runtime_dir_too_deep_for_a_socket_is_one_clear_line(
    tmp_path: Path,
) -> None:
    """Reproduction: a deep CANARY_TUI_RUNTIME_DIR made serve die with a traceback
    ('AF_UNIX path too long'); the lock it took is released."""
    deep = tmp_path / ("d" * 110)
    out = canary("serve", "--demo", env={"CANARY_TUI_RUNTIME_DIR": str(deep),
                                         "XDG_STATE_HOME": str(tmp_path / "state")})  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "AF_UNIX path too long" in out.stderr and "CANARY_TUI_RUNTIME_DIR" in out.stderr
    assert not list(deep.glob("*.lock")), "the canary's lock was left behind"
