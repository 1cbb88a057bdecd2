"""`canary-tui watch` on the upstream example objects (../shared/k8s-examples: Argo Rollouts,
Gateway API) and on plain Deployments, against the real kube-apiserver and a real Prometheus:
one command, the variants' label values discovered from the cluster, and data on the first
ticks. There is no Argo controller here: the tests write a Rollout's status as Argo would.

Each end-to-end test serves counters under the label values the cluster's pods would carry
(tests/kube/metrics_target.py), has a real Prometheus scrape them every second, runs
`canary-tui watch ... --headless` and waits for a tick with data (not NO DATA).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.kubernetes.connection import ConnectionSettings, connect
from adapters.kubernetes.discover import Choices, DiscoveryError, discover
from tests.kube.conftest import EXAMPLES, REPO, Apply
from tests.kube.metrics_target import GENERIC, Family, GrowingTarget, istio
from tests.support.fault_proxy import FaultProxy
from tests.support.processes import die_with_parent
from tests.support.prometheus_server import PrometheusServer
from tests.test_cli import canary
from tests.test_prometheus_source import prometheus_or_skip

pytestmark = [pytest.mark.kube, pytest.mark.prometheus]

RO = ("argoproj.io", "v1alpha1")
STABLE_HASH, CANARY_HASH = "5d8f7c9b4", "7b6c5d4f9"


# --- helpers ----------------------------------------------------------------------------------


def service(name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 8080}]}}  # fmt: skip


def deployment(name: str, labels: dict[str, str], image: str = "shop/app:v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def stable_replicaset(rollout: str, labels: dict[str, str]) -> dict[str, Any]:
    full = {**labels, "rollouts-pod-template-hash": STABLE_HASH}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": f"{rollout}-{STABLE_HASH}", "labels": full,
                     "annotations": {"rollout.argoproj.io/revision": "1"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": full},
                 "template": {"metadata": {"labels": full},
                              "spec": {"containers": [{"name": "app", "image": "app:blue"}]}}},
    }  # fmt: skip


def play_argo(co: Any, ns: str, name: str, status: dict[str, Any]) -> None:
    """Write a Rollout's status as the Argo controller would (status subresource)."""
    co.patch_namespaced_custom_object_status(*RO, ns, "rollouts", name, {"status": status})


PAUSED_AT_STEP_2 = {
    "phase": "Paused",
    "message": "CanaryPauseStep",
    "currentStepIndex": 1,
    "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-05-01T10:00:00Z"}],
    "stableRS": STABLE_HASH,
    "currentPodHash": CANARY_HASH,
    "readyReplicas": 5,
    "updatedReplicas": 1,
}


@pytest.fixture
def api_for(kubeconfigs: dict[str, Path], ns: str) -> Any:
    return connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))


def watch_config(tmp_path: Path) -> Path:
    """The only settings a test adds: a fast tick and Prometheus scraping every second."""
    cfg = tmp_path / "metrics.yaml"
    cfg.write_text(yaml.safe_dump({
        "loop": {"tick": 1},
        "source": {"scrape_interval": "1s"},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
    }))  # fmt: skip
    return cfg


class Watching:
    """`canary-tui watch ... --headless` as a child process, its JSON lines on a queue."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
               "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
        self.stderr_path = tmp_path / "watch.stderr"
        self._err = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "canary_tui.cli", "watch", *args, "--headless"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._err,
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )  # fmt: skip
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue
        self.events.put(None)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def first_tick_with_data(self, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is None:
                break
            if event.get("event") == "tick":
                last = event
                if not event["no_data"]:
                    return event
        raise AssertionError(
            f"no tick with data within {timeout_s} s; last tick {last}\nstderr:\n{self.stderr}"
        )

    def until_first_tick(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Every event up to and including the first tick (with data or not)."""
        deadline = time.monotonic() + timeout_s
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if event is None:
                break
            seen.append(event)
            if event.get("event") == "tick":
                return seen
        raise AssertionError(f"no tick within {timeout_s} s: {seen}\nstderr:\n{self.stderr}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()


def watch_with_data(
    target: str, ns: str, kubeconfig: Path, tmp_path: Path, family: Family, label: str,
    values: list[str], *extra: str,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Serve the variants' counters, scrape them, watch TARGET: (first tick with data, stderr)."""
    prometheus_or_skip()
    with (
        GrowingTarget(family, label, values) as metrics,
        PrometheusServer({"app": metrics.address}, scrape_interval_s=1.0) as prom,
    ):
        prom.wait_for_samples(family.requests, 3, timeout_s=30)
        w = Watching([target, "-n", ns, "--kubeconfig", str(kubeconfig), "--prometheus", prom.url,
                      "--config", str(watch_config(tmp_path)), *extra], tmp_path)  # fmt: skip
        try:
            tick = w.first_tick_with_data()
        finally:
            w.stop()
        return tick, w.stderr


@pytest.fixture
def examples() -> Iterator[Path]:
    if not (EXAMPLES / "gateway-api" / "traffic-split.yaml").is_file():
        pytest.skip(f"upstream examples not found under {EXAMPLES}")
    yield EXAMPLES


# --- Gateway API ------------------------------------------------------------------------------


def test_httproute_upstream_traffic_split_in_one_command(
    examples: Path, apply: Apply, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    """The upstream example (foo-v1 at 90, foo-v2 at 10, no -stable/-canary names): stable and
    canary are told by weight, the variant values come from the Services' selectors."""
    apply(examples / "gateway-api" / "traffic-split.yaml",
          service("foo-v1", {"app": "foo", "version": "v1"}),
          service("foo-v2", {"app": "foo", "version": "v2"}))  # fmt: skip
    tick, stderr = watch_with_data("httproute/foo-route", ns, kubeconfigs["admin"], tmp_path,
                                   GENERIC, "version", ["v1", "v2"])  # fmt: skip
    assert "took foo-v1 as stable and foo-v2 as canary" in stderr
    assert "pod label version: stable 'v1', canary 'v2' (from Services foo-v1/foo-v2" in stderr
    assert 'http_requests_total{version=~"v1|v2"}' in stderr  # the queries, printed at start
    assert tick["no_data"] is None and tick["verdicts"]


def test_httproute_workload_labels_when_selectors_say_less(
    examples: Path, apply: Apply, ns: str, api_for: Any
) -> None:
    """Services that select by name only: the `version` labels of the Deployments behind
    them are what the metrics carry."""
    apply(examples / "gateway-api" / "traffic-split.yaml",
          service("foo-v1", {"app": "foo-v1"}), service("foo-v2", {"app": "foo-v2"}),
          deployment("foo-v1", {"app": "foo-v1", "version": "1.4"}),
          deployment("foo-v2", {"app": "foo-v2", "version": "1.5"}))  # fmt: skip
    found = discover("httproute/foo-route", namespace=ns, api=api_for)
    assert found.variants is not None
    assert (found.variants.label, found.variants.stable, found.variants.canary) == (
        "version", "1.4", "1.5")  # fmt: skip
    assert found.variants.source == "Deployments foo-v1/foo-v2 pod labels"


def two_rule_route() -> dict[str, Any]:
    refs = [{"name": "web-a", "port": 80, "weight": 50}, {"name": "web-b", "port": 80,
                                                           "weight": 50}]  # fmt: skip
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop"},
        "spec": {"rules": [{"backendRefs": refs}, {"name": "api", "backendRefs": refs}]},
    }


def test_httproute_undecidable_lists_rules_and_takes_flags(
    apply: Apply, ns: str, kubeconfigs: dict[str, Path], api_for: Any
) -> None:
    apply(two_rule_route())
    with pytest.raises(DiscoveryError) as excinfo:
        discover("httproute/shop", namespace=ns, api=api_for)
    message = str(excinfo.value)
    assert "rule #0: web-a weight 50, web-b weight 50" in message
    assert "rule #1 (api): web-a weight 50, web-b weight 50" in message
    assert "--rule N --stable BACKEND --canary BACKEND" in message
    found = discover("httproute/shop", namespace=ns, api=api_for,
                     choices=Choices(rule="api", stable="web-b", canary="web-a"))  # fmt: skip
    assert found.settings["rule"] == "api"
    assert (found.settings["stable_backend"], found.settings["canary_backend"]) == (
        "web-b", "web-a")  # fmt: skip
    # one side named is enough for a rule of two backends
    found = discover("httproute/shop", namespace=ns, api=api_for,
                     choices=Choices(rule="0", canary="web-a"))  # fmt: skip
    assert (found.settings["rule"], found.settings["stable_backend"]) == (0, "web-b")
    # the CLI: one clear message, the rules, exit 2, no traceback
    out = canary("watch", "httproute/shop", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                 "--prometheus", "http://127.0.0.1:9", "--dry-run")  # fmt: skip
    assert out.returncode == 2 and "rule #1 (api)" in out.stderr
    assert "Traceback" not in out.stderr
    out = canary("watch", "httproute/shop", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                 "--prometheus", "http://127.0.0.1:9", "--dry-run", "--rule", "api",
                 "--stable", "web-a", "--canary", "web-b")  # fmt: skip
    assert out.returncode == 0, out.stderr
    router = yaml.safe_load(out.stdout)["router"]
    assert (router["rule"], router["stable_backend"], router["canary_backend"]) == (
        "api", "web-a", "web-b")  # fmt: skip


def test_httproute_upstream_mirror_only_route_says_what_is_missing(
    examples: Path, apply: Apply, ns: str, kubeconfigs: dict[str, Path]
) -> None:
    """The upstream request-mirroring example sends everything to foo-v1 and only mirrors to
    foo-v2: there is no weight to move; the message says what would make it watchable."""
    apply(examples / "gateway-api" / "request-mirroring.yaml")
    out = canary(
        "watch",
        "httproute/http-filter-mirror",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfigs["admin"]),
        "--prometheus",
        "http://127.0.0.1:9",
        "--dry-run",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "rule #0: foo-v1 weight 1; mirrors to foo-v2" in out.stderr
    assert "add foo-v2 with weight 0" in out.stderr


def test_httproute_version_is_the_served_one(
    examples: Path, apply: Apply, ns: str, faults: FaultProxy, kubeconfigs: dict[str, Path]
) -> None:
    """v1 where served; a server that serves only v1beta1 gets v1beta1 (discovery answer
    replaced by the proxy); --api-version wins."""
    apply(examples / "gateway-api" / "traffic-split.yaml")
    api = connect(ConnectionSettings(kubeconfig=str(kubeconfigs["admin"]), namespace=ns))
    found = discover("httproute/foo-route", namespace=ns, api=api)
    assert "api_version" not in found.settings and "/v1)" in found.summary
    only_beta = {"kind": "APIGroup", "apiVersion": "v1", "name": "gateway.networking.k8s.io",
                 "versions": [{"groupVersion": "gateway.networking.k8s.io/v1beta1",
                               "version": "v1beta1"}],
                 "preferredVersion": {"groupVersion": "gateway.networking.k8s.io/v1beta1",
                                      "version": "v1beta1"}}  # fmt: skip
    faults.clear()
    faults.add_rule(method="GET", path="/apis/gateway.networking.k8s.io", status=200,
                    body=only_beta, times=1)  # fmt: skip
    found = discover("httproute/foo-route", namespace=ns, api=api)
    assert found.settings["api_version"] == "v1beta1"
    gets = [s.path for s in faults.seen("GET", "/httproutes/foo-route")]
    assert gets and all("/v1beta1/" in p for p in gets)
    told = discover(
        "httproute/foo-route",
        namespace=ns,
        api=api,
        choices=Choices(api_version="gateway.networking.k8s.io/v1beta1"),
    )
    assert told.settings["api_version"] == "v1beta1"


# --- Argo Rollouts ----------------------------------------------------------------------------


def test_rollout_upstream_canary_in_one_command(
    examples: Path, apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path],
    tmp_path: Path, faults: FaultProxy,
) -> None:  # fmt: skip
    """The upstream rollout-canary example, paused at its indefinite pause: its pods differ
    only by the pod-template hash, so the queries group by rollouts_pod_template_hash."""
    apply(examples / "argo-rollouts" / "rollout-canary.yaml",
          stable_replicaset("rollout-canary", {"app": "rollout-canary"}))  # fmt: skip
    play_argo(co, ns, "rollout-canary", PAUSED_AT_STEP_2)
    tick, stderr = watch_with_data(
        "rollout/rollout-canary", ns, kubeconfigs["admin"], tmp_path, GENERIC,
        "rollouts_pod_template_hash", [STABLE_HASH, CANARY_HASH])  # fmt: skip
    assert f'rollouts_pod_template_hash=~"{STABLE_HASH}|{CANARY_HASH}"' in stderr
    assert tick["no_data"] is None and tick["steps"] == 4  # 20, 40, 60, 80
    assert not faults.seen("PATCH"), "watching a Rollout must not write to it"


def test_rollout_version_label_beats_the_hash(apply: Apply, co: Any, ns: str, api_for: Any) -> None:
    from tests.kube.test_argo import rollout

    ro = rollout("checkout")
    ro["spec"]["template"]["metadata"]["labels"]["version"] = "v2"
    apply(ro, stable_replicaset("checkout", {"app": "checkout", "version": "v1"}))
    play_argo(co, ns, "checkout", PAUSED_AT_STEP_2)
    found = discover("rollout/checkout", namespace=ns, api=api_for)
    assert found.variants is not None
    assert (found.variants.label, found.variants.stable, found.variants.canary) == (
        "version", "v1", "v2")  # fmt: skip
    assert found.plan_weights == (20, 40, 80)


def test_rollout_without_setweight_plans_one_zero_step(
    apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path]
) -> None:
    from tests.kube.test_argo import rollout

    ro = rollout("checkout")
    ro["spec"]["strategy"]["canary"]["steps"] = [{"pause": {}}]
    apply(ro)
    out = canary("watch", "rollout/checkout", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                 "--prometheus", "http://127.0.0.1:9", "--dry-run")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [s["weight"] for s in yaml.safe_load(out.stdout)["plan"]] == [0]
    assert "no setWeight step" in out.stderr


def test_rollout_without_setweight_is_not_reported_aborted(
    apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path,
    faults: FaultProxy,
) -> None:  # fmt: skip
    """A Rollout whose steps set no weight holds its canary at 0%: that is its plan, not an
    abort made outside the loop."""
    from tests.kube.test_argo import rollout

    ro = rollout("checkout")
    ro["spec"]["strategy"]["canary"]["steps"] = [{"pause": {}}]
    apply(ro)
    play_argo(co, ns, "checkout", {**PAUSED_AT_STEP_2, "currentStepIndex": 0})
    w = Watching(["rollout/checkout", "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                  "--prometheus", "http://127.0.0.1:9", "--config", str(watch_config(tmp_path))],
                 tmp_path)  # fmt: skip
    try:
        events = w.until_first_tick()
    finally:
        w.stop()
    texts = [e.get("text", "") for e in events if e.get("event") == "activity"]
    assert texts and not [t for t in texts if "aborted" in t], texts
    tick = events[-1]
    assert (tick["weight"], tick["steps"]) == (0, 1)
    assert not faults.seen("PATCH")


# --- Istio (the Argo example's VirtualService and DestinationRule) ----------------------------


def subset_split(examples: Path, ns: str, co: Any, apply: Apply, labels: dict[str, dict[str, str]]
                 ) -> None:  # fmt: skip
    """The upstream istio-subset-split example, with the subsets' labels as given (Argo adds
    the pod-template hashes to them at run time; Istio users often label by version)."""
    apply(examples / "argo-rollouts" / "istio-subset-split.yaml")
    co.patch_namespaced_custom_object(
        "networking.istio.io",
        "v1alpha3",
        ns,
        "destinationrules",
        "istio-subset-split-destrule",
        {"spec": {"subsets": [{"name": name, "labels": value} for name, value in labels.items()]}},
    )


def test_virtualservice_upstream_subsets_by_version(
    examples: Path, apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    subset_split(examples, ns, co, apply, {
        "stable": {"app": "istio-subset-split", "version": "v1"},
        "canary": {"app": "istio-subset-split", "version": "v2"},
    })  # fmt: skip
    tick, stderr = watch_with_data(
        "vs/istio-subset-split-vsvc", ns, kubeconfigs["admin"], tmp_path,
        istio(ns, "istio-subset-split"), "destination_version", ["v1", "v2"])  # fmt: skip
    assert "from DestinationRule istio-subset-split-destrule subsets stable/canary" in stderr
    assert 'destination_version=~"v1|v2"' in stderr
    assert 'destination_service_name="istio-subset-split"' in stderr
    assert tick["no_data"] is None


def test_virtualservice_upstream_host_split_by_destination_service(
    examples: Path, apply: Apply, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    """The upstream istio-mirror example routes to two Services (host split): Istio tags each
    request with the Service it went to, whatever the pods' labels."""
    docs = yaml.safe_load_all((examples / "argo-rollouts" / "istio-mirror.yaml").read_text())
    apply(*[d for d in docs if d and d["kind"] != "Gateway"])  # no Istio Gateway CRD here
    family = istio(ns, "")
    family.labels = {"reporter": "destination", "destination_workload_namespace": ns}
    hosts = ["istio-host-split-stable", "istio-host-split-canary"]
    tick, stderr = watch_with_data("vs/istio-host-split-vsvc", ns, kubeconfigs["admin"],
                                   tmp_path, family, "destination_service_name", hosts)  # fmt: skip
    assert f'destination_service_name=~"{hosts[0]}|{hosts[1]}"' in stderr
    assert tick["no_data"] is None


def test_virtualservice_hash_subsets_say_why_istio_cannot_tell(
    examples: Path, apply: Apply, co: Any, ns: str, kubeconfigs: dict[str, Path]
) -> None:
    """As Argo leaves them (hashes only): Istio's metrics do not carry the hash; say so, and
    the flags settle it."""
    subset_split(examples, ns, co, apply, {
        "stable": {"app": "istio-subset-split", "rollouts-pod-template-hash": STABLE_HASH},
        "canary": {"app": "istio-subset-split", "rollouts-pod-template-hash": CANARY_HASH},
    })  # fmt: skip
    args = [
        "watch",
        "vs/istio-subset-split-vsvc",
        "-n",
        ns,
        "--kubeconfig",
        str(kubeconfigs["admin"]),
        "--prometheus",
        "http://127.0.0.1:9",
        "--dry-run",
    ]
    out = canary(*args)
    assert out.returncode == 0, out.stderr
    assert "which Istio's metrics do not carry" in out.stderr
    out = canary(*args, "--stable-version", "blue", "--canary-version", "green")
    assert out.returncode == 0, out.stderr
    assert 'destination_version=~"blue|green"' in out.stderr


# --- plain Deployments ------------------------------------------------------------------------


def test_deployments_pod_labels_in_one_command(
    apply: Apply, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    apply(deployment("checkout", {"app": "checkout", "version": "v1"}),
          deployment("checkout-canary", {"app": "checkout", "version": "v2"}),
          service("checkout", {"app": "checkout"}))  # fmt: skip
    tick, stderr = watch_with_data("deploy/checkout", ns, kubeconfigs["admin"], tmp_path,
                                   GENERIC, "version", ["v1", "v2"])  # fmt: skip
    assert "from Deployments checkout/checkout-canary pod labels" in stderr
    assert tick["no_data"] is None


def test_deployments_named_on_the_command_line(apply: Apply, ns: str, api_for: Any) -> None:
    apply(deployment("web-blue", {"app": "web", "color": "blue"}),
          deployment("web-green", {"app": "web", "color": "green"}))  # fmt: skip
    with pytest.raises(DiscoveryError, match="--stable NAME --canary NAME"):
        discover("deploy/web-blue", namespace=ns, api=api_for)
    found = discover("deploy/web-blue", namespace=ns, api=api_for,
                     choices=Choices(canary="web-green"))  # fmt: skip
    assert (found.settings["stable"], found.settings["canary"]) == ("web-blue", "web-green")
    assert found.variants is not None and found.variants.label == "color"


# --- the config file and discovery, field by field ---------------------------------------------


def test_config_file_merges_field_by_field(
    apply: Apply, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    apply(deployment("checkout", {"app": "checkout", "version": "v1"}),
          deployment("checkout-canary", {"app": "checkout", "version": "v2"}))  # fmt: skip
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(yaml.safe_dump({
        "router": {"mirror_percent": 20, "retry_budget_s": 7},
        "source": {"kind": "prometheus", "url": "http://127.0.0.1:9", "scrape_interval": "5s"},
        "judge": {"min_requests": 50},
    }))  # fmt: skip
    kc = str(kubeconfigs["admin"])
    out = canary("watch", "deploy/checkout", "-n", ns, "--kubeconfig", kc, "--config",
                 str(metrics), "--dry-run")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = yaml.safe_load(out.stdout)
    assert data["router"] == {"kind": "deployments", "namespace": ns, "kubeconfig": kc,
                              "stable": "checkout", "canary": "checkout-canary",
                              "mirror_percent": 20, "retry_budget_s": 7}  # fmt: skip
    assert data["canary"]["name"] == "checkout"  # the target's, the file has none
    assert (data["canary"]["stable_version"], data["canary"]["canary_version"]) == ("v1", "v2")
    assert data["source"]["scrape_interval"] == "5s" and data["judge"] == {"min_requests": 50}
    # the file wins over discovery; the flags over the file
    metrics.write_text(yaml.safe_dump({
        "canary": {"name": "shared", "stable_version": "old"},
        "source": {"kind": "prometheus", "url": "http://127.0.0.1:9"},
    }))  # fmt: skip
    out = canary("watch", "deploy/checkout", "-n", ns, "--kubeconfig", kc, "--config",
                 str(metrics), "--dry-run", "--canary-version", "new")  # fmt: skip
    data = yaml.safe_load(out.stdout)
    assert data["canary"]["name"] == "shared"
    assert (data["canary"]["stable_version"], data["canary"]["canary_version"]) == ("old", "new")
    assert 'version=~"old|new"' in out.stderr
    # a file that names another router is refused with one line
    metrics.write_text(yaml.safe_dump({"router": {"kind": "istio"}}))
    out = canary("watch", "deploy/checkout", "-n", ns, "--kubeconfig", kc, "--config",
                 str(metrics), "--prometheus", "http://127.0.0.1:9", "--dry-run")  # fmt: skip
    assert out.returncode == 2 and "router.kind" in out.stderr and "Traceback" not in out.stderr


def test_two_targets_with_one_metrics_file_do_not_share_a_session(
    apply: Apply, ns: str, kubeconfigs: dict[str, Path], tmp_path: Path
) -> None:
    apply(deployment("cart", {"app": "cart", "version": "v1"}),
          deployment("cart-canary", {"app": "cart", "version": "v2"}),
          deployment("pay", {"app": "pay", "version": "v1"}),
          deployment("pay-canary", {"app": "pay", "version": "v2"}))  # fmt: skip
    metrics = tmp_path / "metrics.yaml"
    metrics.write_text(yaml.safe_dump({"source": {"kind": "prometheus",
                                                  "url": "http://127.0.0.1:9"}}))  # fmt: skip
    names = []
    for target in ("deploy/cart", "deploy/pay"):
        out = canary("watch", target, "-n", ns, "--kubeconfig", str(kubeconfigs["admin"]),
                     "--config", str(metrics), "--dry-run")  # fmt: skip
        assert out.returncode == 0, out.stderr
        names.append(yaml.safe_load(out.stdout)["canary"]["name"])
    assert names == ["cart", "pay"]
