"""The layers of DESIGN.md are import-linter contracts (pyproject.toml, `[tool.importlinter]`).

scripts/test.sh runs `lint-imports` on the real tree; these tests run it too, and check on a
copy of the tree that a forbidden import really breaks a contract (so the contracts bite).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.processes import child_setup

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
CONTRACTS = (
    "Layers: cli -> tui -> session -> engine -> records -> core",
    "core is pure",
    "Adapters stand beside the layers",
    "The TUI talks only to a Session",
    "No Textual below the TUI",
)


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=child_setup,
    )


def copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    for package in ("canary_tui", "adapters", "themes"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def test_the_real_tree_keeps_every_contract() -> None:
    done = lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    report = " ".join(done.stdout.split())
    for name in CONTRACTS:
        assert name in report
    assert "5 kept, 0 broken" in report


def test_textual_in_core_breaks_the_contracts(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    with (root / "canary_tui" / "core" / "actions.py").open("a") as f:
        f.write("\nimport textual  # a UI library in the pure core\n")
    done = lint(root)
    assert done.returncode != 0
    assert (
        "core is pure: nothing of the project above it, no I/O or UI libraries BROKEN"
        in " ".join(done.stdout.split())
    )


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    with (root / "canary_tui" / "engine" / "loop.py").open("a") as f:
        f.write("\nimport canary_tui.session.client  # the engine reaching up\n")
    done = lint(root)
    assert done.returncode != 0
    assert "(imports only point down) BROKEN" in " ".join(done.stdout.split())
