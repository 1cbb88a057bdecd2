"""Configs no input can crash or exhaust: YAML read with limits (size, depth, alias expansion),
every duration and number finite and within bounds, empty values and the simulator's settings
reported at their own line and field, and the command line's answer to each: one clear message,
exit code 2, no traceback, within a CPU and memory limit."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from canary_tui.config.loader import MAX_BYTES, MAX_DEPTH, MAX_VALUES, ConfigError, load_config
from tests.support.processes import child_setup

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "checkout.yaml"

#: The memory and CPU any bad config may cost the command (the interpreter and its imports
#: included): a few hundred MB and a few seconds.
LIMIT_AS_BYTES = 512 << 20
LIMIT_CPU_S = 10

BOMB = "\n".join(
    [
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        *(
            f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "canary: {name: x}",
    ]
)
RECURSIVE = "canary: &a [*a]\n"
NESTED = "canary: " + "[" * 5000 + "]" * 5000 + "\n"
MERGE_BOMB = "canary: {name: x}\nsource:\n  kind: prometheus\n" + "\n".join(
    [
        "  a: &a {x0: 1, x1: 1, x2: 1, x3: 1, x4: 1, x5: 1, x6: 1, x7: 1, x8: 1}",
        *(
            f"  {n}: &{n} {{<<: [{','.join([f'*{p}'] * 9)}]}}"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RECURSIVE, "c.yaml:1: canary[0]: the alias *a is inside the value it names"),
        (NESTED, "c.yaml:1: canary[0][0][0]"),
        (NESTED, f"nested more than {MAX_DEPTH} levels deep"),
        (BOMB, f"more than {MAX_VALUES} values once aliases are expanded"),
        ("canary: {name: x}\nplan: *nope\n", "c.yaml:2: plan: the alias *nope has no &nope"),
        ("canary: {name: x}\n---\nplan: []\n", "c.yaml:2: a second YAML document"),
        ("canary: {name: x}\nplan: !!set {a, b}\n", "c.yaml:2: plan: the tag !!set is not allowed"),
        ("canary: {name: !!python/name:os.system x}\n", "canary.name: the tag"),
        (
            "canary: {name: x}\nloop: {auto_advance: !!bool maybe}\n",
            "c.yaml:2: loop.auto_advance: 'maybe' is not a valid bool",
        ),
        (
            "canary: {name: x}\nloop: {tick: !!timestamp soon}\n",
            "c.yaml:2: loop.tick: 'soon' is not a valid timestamp",
        ),
        ("canary: {name: x}\nloop: {tick: !!float abc}\n", "loop.tick: 'abc' is not a valid float"),
        ("canary: {name: x}\n? [a, b]\n: 1\n", "c.yaml:2: a key must be a plain name, not a list"),
        ("canary: {name: x\x01}\n", "c.yaml:1: not valid YAML: the character '\\x01'"),
        (
            "canary: {name: x}\nplan: [{weight: " + "9" * 5000 + "}]\n",
            "c.yaml:2: plan[0].weight: '99999",
        ),
        (
            "canary: {name: x}\nplan: [{weight: 5}]\ncanary: {name: y}\n",
            "c.yaml:3: canary: appears twice",
        ),
    ],
)
def test_yaml_that_would_crash_or_exhaust_the_loader(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = error_of(tmp_path, text)
    assert expected in message
    assert "\n" not in message and "Traceback" not in message


def test_aliases_and_merge_keys_within_the_limits_still_work(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "canary: {name: checkout}\n"
            "plan:\n"
            "  - &step {weight: 5, hold: 30s}\n"
            "  - {<<: *step, weight: 10}\n"
            "  - {<<: *step, weight: 25, hold: 1m}\n",
        )
    )
    assert [(s.weight, s.hold) for s in cfg.plan] == [(5, 30.0), (10, 30.0), (25, 60.0)]


def test_merged_keys_are_located_at_the_merge(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        "canary: {name: x}\nplan:\n  - &s {weight: 5, hold: forever}\n  - <<: *s\n    weight: 9\n",
    )
    assert message.startswith(f"{tmp_path / 'c.yaml'}:3: plan[0].hold: 'forever' is not")
    assert "c.yaml:4: plan[1].hold: 'forever' is not" in message


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("loop:\n  tick: .inf", "c.yaml:3: loop.tick: a duration must be a finite number"),
        ("loop:\n  tick: .nan", "c.yaml:3: loop.tick: a duration must be a finite number"),
        ("loop:\n  tick: 1ms", "c.yaml:3: loop.tick: must be at least 100ms and at most 1h, got 1ms"),
        ("loop:\n  tick: 2h", "loop.tick: must be at least 100ms and at most 1h, got 2h"),
        ("loop:\n  tick: -1", "loop.tick: must be at least 100ms"),
        ("loop:\n  no_data: {grace: 1.0e+400}", "c.yaml:3: loop.no_data.grace: a duration must be a finite"),
        ("plan:\n  - {weight: 5, hold: 1000d}", "c.yaml:3: plan[0].hold: must be at least 0s and at most 30d"),
        ("judge:\n  window: 0", "c.yaml:3: judge.window: must be more than 0s"),
        ("judge:\n  min_requests: .inf", "c.yaml:3: judge.min_requests: Input should be a finite number"),
        ("metrics:\n  - {name: e, kind: errors, tolerance_ratio: .inf}", "metrics[0].tolerance_ratio: Input should be a finite number"),
        ("metrics:\n  - {name: l, kind: latency, threshold_ms: .nan}", "metrics[0].threshold_ms: Input should be a finite number"),
        ("slos:\n  - {name: a, kind: availability, objective: .nan}", "slos[0].objective: Input should be a finite number"),
        ("alerts:\n  webhooks:\n    - {url: 'http://x', timeout: .inf}", "c.yaml:4: alerts.webhooks[0].timeout: a duration must be a finite"),
        ("alerts:\n  webhooks:\n    - {url: 'http://x', timeout: 0}", "alerts.webhooks[0].timeout: must be more than 0s"),
    ],
)  # fmt: skip
def test_every_duration_and_number_is_finite_and_bounded(
    tmp_path: Path, fragment: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, f"canary: {{name: x}}\n{fragment}\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("canary:\n  name:\n", "c.yaml:2: canary.name: is empty (write a value after the colon"),
        ("canary:\n  name: x\nplan:\n", "c.yaml:3: plan: is empty"),
        ("canary:\n  name: x\nloop:\n  tick:\n", "c.yaml:4: loop.tick: is empty"),
        ("canary:\n", "c.yaml:1: canary: is empty"),
        ("canary: {name: x}\nsource: [simulator]\n", "c.yaml:2: source: should be a mapping of fields"),
        ("canary: {name: x}\nplan: {weight: 5}\n", "c.yaml:2: plan: should be a list"),
    ],
)  # fmt: skip
def test_empty_and_mistyped_values_are_reported_at_their_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, text)


def test_a_canary_name_fits_in_file_names_and_a_socket_path(tmp_path: Path) -> None:
    """A 120-character name made `serve` die with a traceback (AF_UNIX path too long)."""
    message = error_of(tmp_path, f"canary:\n  name: {'a' * 64}\n")
    assert "c.yaml:2: canary.name: String should have at most 63 characters" in message
    assert load_config(write(tmp_path, f"canary:\n  name: {'a' * 63}\n")).canary.name


def test_an_empty_optional_value_means_its_default(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "canary:\n  name: checkout\n  service:\n"))
    assert cfg.canary.service is None


def test_whole_config_checks_name_the_field_and_its_line(tmp_path: Path) -> None:
    decreasing = error_of(
        tmp_path,
        "canary: {name: x}\nplan:\n  - {weight: 5}\n  - {weight: 50}\n  - {weight: 10}\n",
    )
    assert decreasing.endswith(
        "c.yaml:5: plan[2].weight: plan weights must not decrease (step 3 is 10%, after 50%)"
    )
    twice = error_of(
        tmp_path,
        "canary: {name: x}\nmetrics:\n  - {name: e, kind: errors}\n  - {name: e, kind: errors}\n",
    )
    assert twice.endswith(
        "c.yaml:4: metrics[1].name: metric names must be unique: 'e' is used twice"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("rate: fast", "c.yaml:4: source.rate: must be a number, got 'fast'"),
        ("rate: .inf", "source.rate: must be more than 0 and at most 1e+06, got inf"),
        ("rate: 0", "source.rate: must be more than 0"),
        ("seed: -1", "c.yaml:4: source.seed: must be from 0 to 2^64-1, got -1"),
        ("seed: abc", "source.seed: must be a whole number, got 'abc'"),
        ("seed: 1.5", "source.seed: must be a whole number, got 1.5"),
        ("seed: [1, 2]", "source.seed: must be a whole number, got [1, 2]"),
        ("onset_s: soon", "source.onset_s: must be a number, got 'soon'"),
        ("median_ms: 0", "source.median_ms: must be more than 0"),
        ("sigma: -1", "source.sigma: must be more than 0"),
        ("baseline_error_rate: 2", "source.baseline_error_rate: must be at least 0 and at most 1"),
        ("history_s: 1.0e+9", "source.history_s: must be at least 0 and at most 86400"),
        ("replicas: 0", "source.replicas: must be from 1 to 10000, got 0"),
        ("replicas: true", "source.replicas: must be a whole number, got True"),
        ("scenario: [healthy]", "source.scenario: unknown scenario ['healthy']"),
        ("state_file: 5", "source.state_file: must be a file path, got 5"),
        ("buckets: [1, 2]", "source.buckets: unknown simulator setting"),
    ],
)
def test_simulator_settings_are_checked_at_their_line_without_python_internals(
    tmp_path: Path, settings: str, expected: str
) -> None:
    message = error_of(tmp_path, f"canary: {{name: x}}\nsource:\n  kind: simulator\n  {settings}\n")
    assert expected in message
    for leak in ("not supported between", "SeedSequence", "object", "Traceback", "<class"):
        assert leak not in message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("source: {kind: prometheus, url: 'http://p:9090', timeout: .inf}", "c.yaml:2: source.timeout: a duration must be a finite number"),
        ("source: {kind: prometheus, url: 'http://p:9090', timeout: 10m}", "source.timeout: must be more than 0s and at most 5m, got 10m"),
        ("source: {kind: prometheus, url: 'http://p:9090', scrape_interval: 0}", "source.scrape_interval: must be more than 0s"),
        ("source: {kind: prometheus, url: 'http://p:9090', min_range: .nan}", "source.min_range: a duration must be a finite number"),
        ("router: {kind: istio, timeout_s: .nan}", "c.yaml:2: router.timeout_s: a duration must be a finite number"),
        ("router: {kind: istio, timeout_s: abc}", "router.timeout_s: must be a number of seconds, got 'abc'"),
        ("router: {kind: argo-rollouts, retry_budget_s: 1.0e+9}", "router.retry_budget_s: must be at least 0s and at most 1h"),
        ("router: {kind: deployments, kill_retry_s: -1}", "router.kill_retry_s: must be at least 0s and at most 1h, got -1s"),
    ],
)  # fmt: skip
def test_adapter_durations_are_finite_bounded_and_located(
    tmp_path: Path, section: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, f"canary: {{name: x}}\n{section}\n")


def test_adapter_durations_within_bounds_are_read_as_seconds(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "canary: {name: x}\nsource: {kind: prometheus, url: 'http://p:9090', timeout: 500ms}\n"
            "router: {kind: istio, name: vs, timeout_s: 2.5, retry_budget_s: 3}\n",
        )
    )
    assert cfg.source.settings()["timeout"] == 0.5
    assert cfg.router.settings() == {"name": "vs", "timeout_s": 2.5, "retry_budget_s": 3.0}


def test_a_damaged_simulator_state_file_is_a_config_error(tmp_path: Path) -> None:
    from canary_tui.config.build import build_engine
    from canary_tui.core.clock import VirtualClock

    state = tmp_path / "cluster.json"
    state.write_bytes(b"\x00\xffgarbage")
    cfg = load_config(
        write(tmp_path, f"canary: {{name: x}}\nsource: {{kind: simulator, state_file: {state}}}\n")
    )
    with pytest.raises(ConfigError, match="state_file: cannot use .*not a saved routing state"):
        build_engine(cfg, VirtualClock(), audit_path=tmp_path / "a.jsonl")


def test_files_too_large_binary_fifo_and_unreadable(tmp_path: Path) -> None:
    big = write(tmp_path, "canary: {name: x}\n" + "# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="too large for a config file"):
        load_config(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"canary:\n  name: x\n\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"bin.yaml:3: not UTF-8 text"):
        load_config(binary)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes: read as empty, without waiting for a writer
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(fifo)
    with pytest.raises(ConfigError, match="too large"):
        load_config(Path("/dev/zero"))
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path, "canary: {name: x}\n", "locked.yaml")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="cannot read: Permission denied"):
            load_config(locked)


def _limited() -> None:
    child_setup()
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS_BYTES, LIMIT_AS_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (LIMIT_CPU_S, LIMIT_CPU_S))


@pytest.mark.parametrize(
    "text",
    [RECURSIVE, NESTED, BOMB, MERGE_BOMB, "canary: {name: x}\nloop: {tick: .inf}\n"],
    ids=["recursive-alias", "nested-5000", "alias-bomb", "merge-bomb", "tick-inf"],
)
def test_the_command_gives_one_line_and_exit_2_within_cpu_and_memory_limits(
    tmp_path: Path, text: str
) -> None:
    path = write(tmp_path, text)
    out = subprocess.run(
        [sys.executable, "-m", "canary_tui.cli", "run", "--config", str(path), "--headless"],
        cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        preexec_fn=_limited,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"canary-tui: {path}:"), out.stderr[-2000:]
