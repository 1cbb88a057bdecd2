"""`python -O` must not change behaviour: no `assert` statement on a runtime path of the
product (canary_tui and adapters). Tests, benchmarks and scripts may assert."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_assert_statement_in_the_product() -> None:
    found = []
    for package in ("canary_tui", "adapters"):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            found += [f"{path.relative_to(REPO)}:{node.lineno}"
                      for node in ast.walk(tree) if isinstance(node, ast.Assert)]  # fmt: skip
    assert found == [], "assert statements vanish under python -O: " + ", ".join(found)
