"""Fuzzing the config loader: random YAML documents, random text, and mutations of the shipped
example configs give a valid config or a clear error (every line `FILE:LINE: field: why` or
`FILE: why`), never a traceback; within a memory limit for the whole run and a CPU limit for each
input, both set with setrlimit in a subprocess (no timing assertions).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary_tui.config.loader import MAX_PROBLEMS, ConfigError, load_config
from canary_tui.config.schema import Config
from tests.support.processes import child_setup

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INNER = "CANARY_TUI_FUZZ_INNER"

#: The budgets: memory for the whole fuzzing process (interpreter, pytest and hypothesis
#: included), CPU seconds for any one input, and CPU seconds for the whole run.
MEMORY_BYTES = 768 << 20
CPU_PER_INPUT_S = 5
CPU_TOTAL_S = 600
EXAMPLES_PER_STRATEGY = int(os.environ.get("CANARY_TUI_FUZZ_EXAMPLES", "100"))

LEAKS = ("Traceback", "object at 0x", "<class", "not supported between", "SeedSequence")


def check(text: str | bytes, tmp: Path) -> Config | None:
    """Load `text` as a config: a Config, or a ConfigError that reads well. Each input runs
    under its own CPU limit; the input is written first, so a killed run names it."""
    path = tmp / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = spent + CPU_PER_INPUT_S
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard < 0 else min(soft, hard), hard))
    try:
        return load_config(path)
    except ConfigError as exc:
        message = str(exc)
        lines = message.split("\n")
        assert message and len(lines) <= MAX_PROBLEMS + 1, message
        for line in lines:
            assert line.startswith(f"{path}:") or line.startswith(f"{path} "), line
            assert line.strip() == line and line.isprintable(), repr(line)
            assert not any(leak in line for leak in LEAKS), line
        return None


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["5s", "2m", "1h", "p95", "healthy", "simulator", "armed", "threshold"])
)
KEYS = st.sampled_from(
    [
        "canary", "name", "plan", "weight", "hold", "metrics", "kind", "loop", "tick", "judge",
        "source", "router", "seed", "rate", "scenario", "slos", "objective", "threshold_ms",
        "no_data", "grace", "alerts", "webhooks", "timeout", "keys", "audit", "session",
    ]
) | st.text(max_size=8)  # fmt: skip
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=40,
)
TOKENS = st.sampled_from(
    [
        "&a ", "*a", "*b", "<<: *a", "[", "]", "{", "}", ": ", "- ", "---\n", "...\n", "!!set ",
        "!!python/object:os.system ", "? ", "|\n", ">\n", "'", '"', "\t", "\x00", "#", ".inf",
        "-.inf", ".nan", "~", "\n  ", "\n", "%YAML 1.1\n", "\\", "\ufeff", "1e400", "0x1F",
        "!!bool ", "!!timestamp ", "!!int ", "!!float ", "!!binary ", "!!str ", "!!null ",
        "!!map ", "!!seq ", "!!omap ", "!local ", "!<tag:x> ",
    ]
)  # fmt: skip


@st.composite
def mutations(draw: Any) -> str:
    """An example config with a few random edits: lines dropped, doubled, swapped or cut,
    values replaced, YAML syntax and random text inserted."""
    text = draw(st.sampled_from(EXAMPLES)).read_text()
    for _ in range(draw(st.integers(1, 4))):
        lines = text.split("\n")
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        op = draw(st.sampled_from(["drop", "double", "swap", "value", "token", "text", "cut"]))
        if op == "drop":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {yaml.safe_dump(draw(SCALARS)).strip().splitlines()[0]}"
        elif op in ("token", "text"):
            pos = draw(st.integers(0, len(lines[i])))
            extra = draw(TOKENS) if op == "token" else draw(st.text(max_size=6))
            lines[i] = lines[i][:pos] + extra + lines[i][pos:]
        elif op == "cut":
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        text = "\n".join(lines)
    return text


inner = pytest.mark.skipif(not os.environ.get(INNER), reason="run by the limited outer test")
FUZZ = settings(
    max_examples=EXAMPLES_PER_STRATEGY,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@inner
@FUZZ
@given(doc=DOCUMENTS)
def test_random_yaml_documents(doc: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    check(yaml.safe_dump(doc), tmp_path_factory.mktemp("fuzz"))


@inner
@FUZZ
@given(doc=st.dictionaries(KEYS, DOCUMENTS, max_size=8))
def test_random_config_shaped_documents(
    doc: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    doc.setdefault("canary", {"name": "x"})
    check(yaml.safe_dump(doc), tmp_path_factory.mktemp("fuzz"))


@inner
@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300))
def test_random_text(text: str | bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    check(text, tmp_path_factory.mktemp("fuzz"))


@inner
@FUZZ
@given(text=mutations())
def test_mutated_example_configs(text: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    check(text, tmp_path_factory.mktemp("fuzz"))


@inner
def test_the_examples_themselves_are_valid(tmp_path: Path) -> None:
    assert EXAMPLES
    for example in EXAMPLES:
        assert check(example.read_text(), tmp_path) is not None, example


def _limits() -> None:
    child_setup()
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_TOTAL_S, CPU_TOTAL_S))


@pytest.mark.skipif(bool(os.environ.get(INNER)), reason="this is the inner run")
def test_fuzz_the_loader_within_memory_and_cpu_limits(tmp_path: Path) -> None:
    """The fuzz tests above, in a pytest of their own under RLIMIT_AS and RLIMIT_CPU: an input
    that takes more than CPU_PER_INPUT_S of CPU kills it with SIGXCPU (and fails here), one that
    needs more memory fails with MemoryError."""
    env = {**os.environ, INNER: "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "--basetemp", str(tmp_path / "inner"), f"{Path(__file__).relative_to(REPO)}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=CPU_TOTAL_S * 2,
        stdin=subprocess.DEVNULL, preexec_fn=_limits,
    )  # fmt: skip
    last = sorted((tmp_path / "inner").rglob("fuzz.yaml"), key=lambda p: p.stat().st_mtime)
    context = f"last input: {last[-1].read_bytes()[:2000]!r}" if last else ""
    assert out.returncode == 0, (
        f"{out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}\n{context}"
    )
    assert "5 passed, 1 skipped" in out.stdout, out.stdout[-2000:]
