"""Config files: a complete valid example, and every kind of bad input located by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary_tui.config.loader import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout.yaml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_the_readme_example_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.canary.name == "checkout"
    assert [s.weight for s in cfg.plan] == [5, 10, 25, 50, 75]
    assert cfg.loop.tick == 5.0 and cfg.plan[2].hold == 120.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "canary:\n  name: x\nplan:\n  - weight: 150\n",
            "c.yaml:4: plan[0].weight: Input should be less than or equal to 100",
        ),
        (
            "canary:\n  name: x\nloop:\n  tick: soon\n",
            "c.yaml:4: loop.tick: 'soon' is not a duration",
        ),
        (
            "canary:\n  name: x\njudge:\n  kind: magic\n",
            "c.yaml:4: judge.kind: Input should be 'threshold' or 'sequential'",
        ),
        ("canary:\n  name: x\nlop:\n  tick: 1\n", "c.yaml:3: lop: unknown field"),
        ("plan: []\n", "canary: Field required"),
        (
            "canary:\n  name: x\nplan:\n  - weight: 50\n  - weight: 10\n",
            "c.yaml:5: plan[1].weight: plan weights must not decrease (step 2 is 10%, after 50%)",
        ),
        (
            "canary:\n  name: x\nmetrics:\n  - name: l\n    kind: latency\n",
            "c.yaml:4: metrics[0]: a latency metric needs threshold_ms",
        ),
        (
            "canary:\n  name: x\n  name: y\n",
            "c.yaml:3: canary.name: appears twice (first on line 2)",
        ),
        ("canary: [unclosed\n", "c.yaml:2: not valid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping"),
        ("", "the file is empty"),
        ("canary:\n  name: x\nloop:\n  tick: 0\n", "c.yaml:4: loop.tick: must be at least 100ms"),
        ("canary:\n  name: 'bad name!'\n", "canary.name: String should match pattern"),
    ],
)
def test_bad_configs_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value)


def test_missing_file_and_directory_and_binary(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(p)


def test_unknown_adapter_and_simulator_settings(tmp_path: Path) -> None:
    # the kind and the adapter's settings are checked by the loader, at their line
    for source, expected in (
        (
            "kind: nope",
            "c.yaml:4: source.kind: unknown metric source 'nope' (known: prometheus, simulator)",
        ),
        ("kind: simulator\n  scenario: boom", "c.yaml:5: source.scenario: unknown scenario 'boom'"),
        (
            "kind: simulator\n  speed: 3",
            "c.yaml:5: source.speed: unknown simulator setting (known: baseline_error_rate,",
        ),
    ):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, f"canary:\n  name: x\nsource:\n  {source}\n"))
        assert expected in str(info.value)
