"""Keys the router cannot do, on the real API server: the engine's frame says which and why
(CanaryInfo.unavailable), and the dashboard greys them with that reason.

Argo Rollouts without a managed mirror route cannot shadow, and owns its steps (no step
back); plain Deployments cannot shadow. Istio VirtualService can do both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.kubernetes.base import KubeRouter
from canary_tui.engine.loop import Engine
from canary_tui.session.inprocess import InProcessSession
from canary_tui.tui.app import make_app
from tests.conftest import make_rig
from tests.kube.conftest import Apply
from tests.kube.test_argo import rollout
from tests.kube.test_deployments import deployment
from tests.tui_support import ALICE, settle

pytestmark = pytest.mark.kube


def engine_on(router: KubeRouter, tmp_path: Path) -> Engine:
    """The demo's loop (metrics from the simulator), routed by `router`; never started, so
    nothing is written to the cluster."""
    e = make_rig(tmp_path).engine
    return Engine(info=e.info, plan=e.plan, judge=e.judge, source=e.source, router=router,
                  audit=e.audit, clock=e.clock)  # fmt: skip


async def test_argo_without_a_mirror_route_greys_shadow_and_step_back(
    apply: Apply, make_router: Callable[..., KubeRouter], tmp_path: Path
) -> None:
    apply(rollout())
    engine = engine_on(make_router("argo-rollouts", name="checkout"), tmp_path)
    no_shadow = engine.info.why_unavailable("shadow_on")
    no_back = engine.info.why_unavailable("step_back")
    assert no_shadow is not None and "Istio" in no_shadow
    assert no_back is not None and "cannot step back" in no_back
    app = make_app(InProcessSession(engine, ALICE))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.check_action("toggle_shadow", ()) is None
        assert screen.check_action("step_back", ()) is None
        assert screen.why_disabled("toggle_shadow") == no_shadow  # type: ignore[attr-defined]
        assert screen.why_disabled("step_back") == no_back  # type: ignore[attr-defined]
        assert screen.check_action("toggle_pause", ()) is True


async def test_deployments_grey_shadow_only(
    apply: Apply, make_router: Callable[..., KubeRouter], tmp_path: Path
) -> None:
    apply(deployment("checkout", 4), deployment("checkout-canary", 1))
    router = make_router("deployments", stable="checkout", canary="checkout-canary", replicas=5)
    engine = engine_on(router, tmp_path)
    assert [verb for verb, _ in engine.info.unavailable] == ["shadow_on"]
    assert "Deployments" in (engine.info.why_unavailable("shadow_on") or "")
