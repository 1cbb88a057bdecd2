"""Argo Rollouts router against the real API server (Rollout CRD v1.8.3, status subresource).

There is no Argo controller here: tests play the controller by writing `status` themselves,
and check that the console writes exactly what `kubectl argo rollouts` would."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from adapters.kubernetes.argo import ArgoRolloutsRouter, current_set_weight
from adapters.kubernetes.base import KubeRouter
from adapters.kubernetes.connection import ConnectionSettings, connect
from adapters.kubernetes.discover import discover
from canary_tui.core.ports import RouterError, Unsupported
from tests.kube.conftest import Apply, patches
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.kube

RO = ("argoproj.io", "v1alpha1")
STEPS = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 40},
    {"pause": {"duration": "40s"}},
    {"setWeight": 80},
]


def rollout(name: str = "checkout", *, istio: bool = False) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": copy.deepcopy(STEPS)}
    if istio:
        canary.update(
            canaryService="checkout-canary",
            stableService="checkout-stable",
            trafficRouting={
                "managedRoutes": [{"name": "mirror-route"}],
                "istio": {"virtualService": {"name": "checkout-vsvc", "routes": ["primary"]}},
            },
        )
        canary["steps"].insert(
            1,
            {
                "setMirrorRoute": {
                    "name": "mirror-route",
                    "percentage": 50,
                    "match": [{"method": {"exact": "POST"}, "path": {"prefix": "/color"}}],
                }
            },
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop/checkout:v2"}]},
            },
            "strategy": {"canary": canary},
        },
    }


def vsvc() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "checkout-vsvc"},
        "spec": {
            "hosts": ["checkout.example"],
            "http": [
                {
                    "name": "primary",
                    "route": [
                        {
                            "destination": {"host": "checkout-stable", "port": {"number": 80}},
                            "weight": 80,
                        },
                        {
                            "destination": {"host": "checkout-canary", "port": {"number": 80}},
                            "weight": 20,
                        },
                    ],
                }
            ],
        },
    }


def play_controller(co: Any, ns: str, status: dict[str, Any], name: str = "checkout") -> None:
    """Write status as the Argo controller would."""
    co.patch_namespaced_custom_object_status(*RO, ns, "rollouts", name, {"status": status})


def get(co: Any, ns: str, name: str = "checkout") -> dict[str, Any]:
    return dict(co.get_namespaced_custom_object(*RO, ns, "rollouts", name))


PAUSED_AT_STEP_2 = {
    "phase": "Paused",
    "currentStepIndex": 1,
    "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-05-01T10:00:00Z"}],
    "stableRS": "5d8f7c9b4",
    "currentPodHash": "7b6c5d4f9",
    "readyReplicas": 5,
    "updatedReplicas": 1,
}


def test_read_reports_phase_step_weights_revisions(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(rollout())
    apply(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "checkout-5d8f7c9b4",
                "labels": {"app": "checkout", "rollouts-pod-template-hash": "5d8f7c9b4"},
            },
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": "checkout"}},
                "template": {
                    "metadata": {"labels": {"app": "checkout"}},
                    "spec": {"containers": [{"name": "app", "image": "shop/checkout:v1"}]},
                },
            },
        }
    )
    play_controller(co, ns, PAUSED_AT_STEP_2)
    router = make_router("argo-rollouts", name="checkout")
    assert isinstance(router, ArgoRolloutsRouter)
    state = router.read()
    assert (state.weight, state.mirror, state.canary_ready, state.stable_ready) == (20, False, 1, 4)
    for text in (
        "Paused",
        "step 2/5",
        "set 20%",
        "paused: CanaryPauseStep",
        "stable 5d8f7c9b4 shop/checkout:v1",
        "canary 7b6c5d4f9 shop/checkout:v2",
    ):
        assert text in state.detail
    view = router.status()
    assert view.pause_reasons == ("CanaryPauseStep",) and view.step_index == 1
    assert router.plan_weights() == [20, 40, 80]
    # the controller's actual (traffic) weight wins over the step's
    play_controller(
        co,
        ns,
        {
            "canary": {
                "weights": {
                    "canary": {"weight": 15, "podTemplateHash": "7b6c5d4f9"},
                    "stable": {"weight": 85, "podTemplateHash": "5d8f7c9b4"},
                }
            }
        },
    )
    assert router._read_back().weight == 15


def test_set_weight_semantics_of_argo() -> None:
    steps = tuple(STEPS)
    assert current_set_weight(steps, None, False) == 20
    assert current_set_weight(steps, 3, False) == 40
    assert current_set_weight(steps, 5, False) == 100
    assert current_set_weight(steps, 1, True) == 0
    assert current_set_weight((), None, False) == 100
    assert current_set_weight(({"pause": {}}, {"setWeight": 10}), 0, False) == 0


def test_step_forward_is_the_plugins_promote(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(rollout())
    play_controller(co, ns, PAUSED_AT_STEP_2)
    co.patch_namespaced_custom_object(*RO, ns, "rollouts", "checkout", {"spec": {"paused": True}})
    router = make_router("argo-rollouts", name="checkout")
    router.set_weight(40)
    # paused at a pause step: clear pauseConditions (status) and unpause (spec), nothing else
    status_patch, spec_patch = patches(faults, "/rollouts/checkout")
    assert status_patch == {"status": {"pauseConditions": None}}
    assert faults.seen("PATCH")[0].path.split("?")[0].endswith("/rollouts/checkout/status")
    assert spec_patch == {"spec": {"paused": False}}
    got = get(co, ns)
    assert "pauseConditions" not in got["status"] and got["spec"]["paused"] is False
    assert got["status"]["currentStepIndex"] == 1  # the controller moves on, not us
    # pressed again before the controller moved: not paused, so advance the index (as the
    # plugin would), guarded by resourceVersion, and only up to the step that sets 40%
    faults.clear()
    router.set_weight(40)
    (advance,) = patches(faults, "/rollouts/checkout/status")
    assert advance["status"] == {"pauseConditions": None, "currentStepIndex": 2}
    assert advance["metadata"]["resourceVersion"]
    assert router.set_weight(40).weight == 40  # there: nothing more is written
    router.set_weight(40)
    assert len(patches(faults)) == 1
    assert get(co, ns)["status"]["currentStepIndex"] == 2


def test_target_index_never_skips_past_the_asked_weight() -> None:
    from adapters.kubernetes.argo import target_index

    steps = tuple(STEPS)
    assert [target_index(steps, 1, w) for w in (20, 40, 41, 80, 100)] == [1, 2, 4, 4, 5]
    assert target_index(steps, 3, 40) == 3


def test_step_back_and_equal_weight(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(rollout())
    play_controller(co, ns, {"currentStepIndex": 2, "stableRS": "a", "currentPodHash": "b"})
    router = make_router("argo-rollouts", name="checkout")
    assert router.set_weight(40).weight == 40 and not patches(faults)
    with pytest.raises(RouterError, match="cannot step back") as excinfo:
        router.set_weight(20)
    assert not excinfo.value.retryable
    # a plan that is not the Rollout's (e.g. the engine's first weight at start) moves nothing
    with pytest.raises(RouterError, match=r"next step sets 80%, not 50%.*\[20, 40, 80\]"):
        router.set_weight(50)
    assert not patches(faults)


def test_pause_resume_kill_promote(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str, faults: FaultProxy
) -> None:
    apply(rollout())
    play_controller(co, ns, {"currentStepIndex": 0, "stableRS": "a1", "currentPodHash": "b2"})
    router = make_router("argo-rollouts", name="checkout")
    router.set_paused(True)
    assert get(co, ns)["spec"]["paused"] is True and "spec.paused" in router.read().detail
    router.set_paused(False)
    assert get(co, ns)["spec"]["paused"] is False
    assert patches(faults) == [{"spec": {"paused": True}}, {"spec": {"paused": False}}]
    faults.clear()
    promoted = router.promote()
    assert get(co, ns)["status"]["promoteFull"] is True
    assert "full promotion requested" in promoted.detail
    assert patches(faults, "/rollouts/checkout/status") == [{"status": {"promoteFull": True}}]
    killed = router.abort()
    assert killed.weight == 0 and "(aborted)" in killed.detail
    assert get(co, ns)["status"]["abort"] is True
    router.abort()  # idempotent: no second write
    assert patches(faults, "/status")[-1] == {"status": {"abort": True}}
    assert len(patches(faults, "/status")) == 2
    with pytest.raises(RouterError, match="aborted"):
        router.set_weight(80)


def test_abort_falls_back_like_the_plugin(
    apply: Apply, make_router: Callable[..., KubeRouter], faults: FaultProxy
) -> None:
    apply(rollout())
    router = make_router("argo-rollouts", name="checkout")
    router.read()
    faults.add_rule(method="PATCH", path="/rollouts/checkout/status", status=404)
    router.abort()
    sent = faults.seen("PATCH")
    assert [s.path.split("?")[0].rsplit("/", 1)[-1] for s in sent] == ["status", "checkout"]
    assert [s.json() for s in sent] == [{"status": {"abort": True}}] * 2


def test_shadow_needs_istio_with_managed_route(
    apply: Apply, make_router: Callable[..., KubeRouter]
) -> None:
    apply(rollout())
    router = make_router("argo-rollouts", name="checkout")
    reason = router.shadow_unsupported()
    assert reason is not None and "Istio" in reason
    with pytest.raises(Unsupported):
        router.set_mirror(True)
    assert router.set_mirror(False).mirror is False


def test_shadow_writes_the_managed_mirror_route(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(vsvc(), rollout(istio=True))
    play_controller(
        co,
        ns,
        {
            "currentStepIndex": 0,
            "stableRS": "a1",
            "currentPodHash": "b2",
            "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}},
        },
    )
    router = make_router("argo-rollouts", name="checkout")
    assert router.shadow_unsupported() is None
    on = router.set_mirror(True)
    assert (on.mirror, on.mirror_percent, on.weight) == (True, 50, 20)
    http = co.get_namespaced_custom_object(
        "networking.istio.io", "v1beta1", ns, "virtualservices", "checkout-vsvc"
    )["spec"]["http"]
    assert [r["name"] for r in http] == ["mirror-route", "primary"]
    mirror = http[0]
    assert mirror["match"] == [{"method": {"exact": "POST"}, "uri": {"prefix": "/color"}}]
    assert mirror["mirror"] == {"host": "checkout-canary", "port": {"number": 80}}
    assert mirror["mirrorPercentage"] == {"value": 50.0}
    assert mirror["route"] == http[1]["route"]
    # kill aborts and takes the mirror away at once
    killed = router.abort()
    assert not killed.mirror
    http = co.get_namespaced_custom_object(
        "networking.istio.io", "v1beta1", ns, "virtualservices", "checkout-vsvc"
    )["spec"]["http"]
    assert [r["name"] for r in http] == ["primary"]


def test_events_and_discovery(
    apply: Apply,
    make_router: Callable[..., KubeRouter],
    kube: Any,
    ns: str,
    kubeconfigs: dict[str, Any],
) -> None:
    from kubernetes import client

    apply(rollout(), rollout("plain-istio", istio=True))
    router = make_router("argo-rollouts", name="checkout")
    router.set_paused(True)
    router.record_event("pause", "bob", "pause at step 1")
    assert router.events.flush(5)
    (event,) = client.CoreV1Api(kube.api_client()).list_namespaced_event(ns).items
    assert event.reason == "CanaryPause"
    assert event.message == "bob (as user, context proxied): pause at step 1"
    assert event.involved_object.kind == "Rollout"
    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))
    found = discover("ro/checkout", namespace=ns, api=api)
    assert found.router_section() == {"kind": "argo-rollouts", "name": "checkout", "namespace": ns}
    assert (found.preset, found.plan_weights) == ("generic", (20, 40, 80))
    assert discover("rollout/plain-istio", namespace=ns, api=api).preset == "istio"


# --- what the console shows of a Rollout: phase, step, revisions, analysis ------------------


def stable_rs(name: str = "checkout", hash_: str = "5d8f7c9b4") -> dict[str, Any]:
    labels = {"app": name, "rollouts-pod-template-hash": hash_}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": f"{name}-{hash_}", "labels": labels,
                     "annotations": {"rollout.argoproj.io/revision": "3"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app",
                                                       "image": "shop/checkout:v1"}]}}},
    }  # fmt: skip


def analysis_run(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {"name": name},
        "spec": {"metrics": [{"name": "error-rate", "provider": {"prometheus": {}}}]},
    }


def run_status(phase: str, value: str, failed: int = 0) -> dict[str, Any]:
    return {
        "phase": phase,
        "metricResults": [{
            "name": "error-rate", "phase": phase, "count": 2, "successful": 2 - failed,
            "failed": failed,
            "measurements": [{"phase": phase, "value": value}],
        }],
    }  # fmt: skip


def test_detail_has_phase_message_step_revisions_and_live_analysis(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    import threading

    ro = rollout()
    ro["metadata"]["annotations"] = {"rollout.argoproj.io/revision": "4"}
    apply(ro, stable_rs(), analysis_run("checkout-7b6c5d4f9-4-1"))
    co.patch_namespaced_custom_object_status(
        *RO, ns, "analysisruns", "checkout-7b6c5d4f9-4-1",
        {"status": run_status("Running", "[0.004]")},
    )  # fmt: skip
    play_controller(co, ns, {
        **PAUSED_AT_STEP_2,
        "message": "CanaryPauseStep",
        "canary": {"currentStepAnalysisRunStatus": {
            "name": "checkout-7b6c5d4f9-4-1", "status": "Running"}},
    })  # fmt: skip
    router = make_router("argo-rollouts", name="checkout")
    state = router.read()
    assert state.phase == "paused"  # paused at a pause step: PAUSED, not PROGRESSING
    lines = state.detail.split("\n")
    assert "step 2/5: pause (until resumed)" in lines[0]
    assert "stable 5d8f7c9b4 rev 3 shop/checkout:v1" in lines[0]
    assert "canary 7b6c5d4f9 rev 4 shop/checkout:v2" in lines[0]
    assert lines[1] == "message: CanaryPauseStep"
    assert lines[2] == (
        "analysis checkout-7b6c5d4f9-4-1 (step): Running | error-rate Running "
        "(2 successful of 2) last [0.004]"
    )
    # the run's result reaches subscribers as it comes (the run is watched)
    failed = threading.Event()
    router.subscribe(lambda s: failed.set() if "error-rate Failed" in s.detail else None)
    co.patch_namespaced_custom_object_status(
        *RO, ns, "analysisruns", "checkout-7b6c5d4f9-4-1",
        {"status": {**run_status("Failed", "[0.09]", failed=1), "message": "Metric failed"}},
    )  # fmt: skip
    assert failed.wait(10), router.read().detail
    assert (
        "Failed (Metric failed) | error-rate Failed (1 successful, 1 failed of 2) last [0.09]"
        in (router.read().detail)
    )
    # the next step names no run: its watch stops (one would pile up per analysis step)
    from adapters.kubernetes.connection import ANALYSISRUN

    watched = [r for r in router._watchers if r.resource == ANALYSISRUN]
    assert [r.name for r in watched] == ["checkout-7b6c5d4f9-4-1"]
    co.patch_namespaced_custom_object_status(
        *RO, ns, "rollouts", "checkout",
        {"status": {"currentStepIndex": 2, "canary": {"currentStepAnalysisRunStatus": None}}},
    )  # fmt: skip
    assert "analysis" not in router._read_back().detail
    assert not [r for r in router._watchers if r.resource == ANALYSISRUN]


def test_phase_and_weight_agree_with_argo(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    apply(rollout())
    router = make_router("argo-rollouts", name="checkout")
    play_controller(co, ns, {"currentStepIndex": 2, "stableRS": "a1", "currentPodHash": "b2",
                             "phase": "Progressing"})  # fmt: skip
    state = router._read_back()
    assert (state.phase, state.weight) == ("progressing", 40)
    # fully promoted: Argo routes 0% to "canary" because the canary is the stable now
    play_controller(co, ns, {
        "currentStepIndex": 5, "stableRS": "b2", "currentPodHash": "b2", "phase": "Healthy",
        "canary": {"weights": {"canary": {"weight": 0}, "stable": {"weight": 100}}},
    })  # fmt: skip
    state = router._read_back()
    assert (state.phase, state.weight) == ("promoted", 100)
    assert "done (5 steps)" in state.detail
    play_controller(co, ns, {"abort": True, "currentPodHash": "c3", "phase": "Degraded"})
    assert router._read_back().phase == "rolled_back"


def test_rollout_without_setweight_steps(
    apply: Apply, make_router: Callable[..., KubeRouter], co: Any, ns: str
) -> None:
    from adapters.kubernetes.argo import rollout_plan

    ro = rollout()
    ro["spec"]["strategy"]["canary"]["steps"] = [{"pause": {"duration": "1m"}}]
    apply(ro)
    play_controller(co, ns, {"currentStepIndex": 0, "stableRS": "a1", "currentPodHash": "b2",
                             "phase": "Progressing"})  # fmt: skip
    router = make_router("argo-rollouts", name="checkout")
    state = router.read()
    assert (state.weight, state.phase) == (0, "progressing")
    assert "step 1/1: pause 1m" in state.detail
    assert isinstance(router, ArgoRolloutsRouter) and router.plan_weights() == [0]
    assert rollout_plan(()) == (0,)
    assert rollout_plan(tuple(STEPS)) == (20, 40, 80)
    assert rollout_plan(({"pause": {}}, {"setWeight": 30})) == (0, 30)
