"""Layer rules of DESIGN.md, checked on real imports in a fresh interpreter.

core imports nothing of the project above it and nothing of textual/kubernetes/httpx (nor any
third-party package); engine, session, records and adapters import no Textual.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import canary_tui.core

CORE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(canary_tui.core.__path__, "canary_tui.core.")
)


def loaded_after_import(*modules: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_core_is_pure() -> None:
    assert "canary_tui.core.actions" in CORE_MODULES
    loaded = loaded_after_import(*CORE_MODULES)
    tops = {m.split(".")[0] for m in loaded}
    assert not tops & {
        "textual",
        "kubernetes",
        "httpx",
        "numpy",
        "pydantic",
        "yaml",
        "rich",
        "adapters",
        "prometheus_api_client",
        "click",
    }
    project = {m for m in loaded if m.startswith("canary_tui.")}
    allowed = {"canary_tui", "canary_tui.core", *CORE_MODULES}
    assert project <= allowed, project - allowed


@pytest.mark.parametrize(
    "module",
    [
        "canary_tui.engine.loop",
        "canary_tui.engine.runner",
        "canary_tui.session.inprocess",
        "canary_tui.records.audit",
        "adapters.simulator",
        "adapters.registry",
        "canary_tui.config.build",
    ],
)
def test_lower_layers_import_no_textual(module: str) -> None:
    tops = {m.split(".")[0] for m in loaded_after_import(module)}
    assert "textual" not in tops and "canary_tui.tui" not in loaded_after_import(module)


def test_tui_never_imports_adapters_or_the_runner() -> None:
    loaded = loaded_after_import("canary_tui.tui.app")
    assert not {m for m in loaded if m.startswith("adapters")}
    assert not {m for m in loaded if m.startswith("canary_tui.engine")}
