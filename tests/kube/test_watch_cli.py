"""`canary-tui watch KIND/NAME` against the real apiserver: the router and plan come from the
object, and the config it writes is one `canary-tui run` accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.kube.conftest import Apply
from tests.kube.test_argo import rollout
from tests.test_cli import canary

pytestmark = pytest.mark.kube


def test_watch_a_rollout_writes_a_runnable_config(apply: Apply, ns: str,
                                                  kubeconfigs: dict[str, Path], tmp_path: Path) -> None:  # fmt: skip
    apply(rollout())
    out = canary("watch", "rollout/checkout", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                 "--prometheus", "http://127.0.0.1:9", "--dry-run")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = yaml.safe_load(out.stdout)
    assert data["router"] == {"kind": "argo-rollouts", "name": "checkout", "namespace": ns,
                              "kubeconfig": str(kubeconfigs["admin"])}  # fmt: skip
    assert [s["weight"] for s in data["plan"]] == [20, 40, 80]
    assert data["source"] == {
        "kind": "prometheus",
        "url": "http://127.0.0.1:9",
        "preset": "generic",
    }
    cfg = tmp_path / "watch.yaml"
    cfg.write_text(out.stdout)
    from canary_tui.config.loader import load_config

    assert load_config(cfg).canary.name == "checkout"


def test_watch_names_what_is_missing(ns: str, kubeconfigs: dict[str, Path]) -> None:
    out = canary("watch", "vs/nowhere", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                 "--prometheus", "http://127.0.0.1:9", "--dry-run")  # fmt: skip
    assert out.returncode == 2 and "nowhere" in out.stderr and "Traceback" not in out.stderr
    no_metrics = canary("watch", "vs/x", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]))
    assert no_metrics.returncode == 2
