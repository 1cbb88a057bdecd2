"""Nothing lost at exit: the final kill's Event is posted by `close`, within a bounded wait,
even when the API server is slow (real kube-apiserver behind the fault proxy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from adapters.kubernetes.base import KubeRouter
from tests.kube.conftest import Apply
from tests.kube.test_deployments import deployment
from tests.support.fault_proxy import FaultProxy
from tests.support.processes import child_setup

pytestmark = pytest.mark.kube


def reasons(kube: Any, ns: str) -> list[str]:
    from kubernetes import client

    events = client.CoreV1Api(kube.api_client()).list_namespaced_event(ns).items
    return [e.reason for e in events]


def test_close_posts_the_final_kill_event_of_a_slow_api_server(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: Any, ns: str, faults: FaultProxy
) -> None:
    apply(deployment("checkout", 4), deployment("checkout-canary", 1))
    router = make_router("deployments", stable="checkout", canary="checkout-canary")
    router.abort()
    faults.add_rule(method="POST", path="/events", delay_s=1.0)  # a slow API server
    router.record_event("kill", "alice", "killed: errors 4.1% vs 0.5%")
    router.close()  # what the exit paths call: it waits for the queued Event (bounded)
    assert "CanaryKill" in reasons(kube, ns), "the kill's Event was lost at close"


def test_close_gives_up_after_its_bound_when_the_api_server_hangs(
    apply: Apply, make_router: Callable[..., KubeRouter], kube: Any, ns: str, faults: FaultProxy
) -> None:
    apply(deployment("checkout", 4), deployment("checkout-canary", 1))
    router = make_router("deployments", stable="checkout", canary="checkout-canary")
    router.abort()
    faults.add_rule(method="POST", path="/events", delay_s=30.0)
    router.record_event("kill", "alice", "killed")
    assert router.events.close(timeout=0.5) is False  # bounded: it returns, saying so


def test_a_process_that_exits_without_closing_still_posts_the_kill_event(
    apply: Apply, kube: Any, ns: str, faults: FaultProxy, kubeconfigs: dict[str, Any]
) -> None:
    """The exit path forgot router.close(): the interpreter's exit still posts the queued
    Event (bounded wait), through a slow API server."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    apply(deployment("checkout", 4), deployment("checkout-canary", 1))
    faults.add_rule(method="POST", path="/events", delay_s=1.0)
    code = textwrap.dedent(
        f"""
        from adapters.registry import AdapterContext, build_router
        from canary_tui.core.clock import VirtualClock
        router = build_router("deployments", {{"kubeconfig": {str(kubeconfigs["admin"])!r},
            "namespace": {ns!r}, "stable": "checkout", "canary": "checkout-canary"}},
            AdapterContext(clock=VirtualClock()))
        router.record_event("kill", "alice", "killed: errors")
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=60, preexec_fn=child_setup)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CanaryKill" in reasons(kube, ns), "the kill's Event was lost at exit"
