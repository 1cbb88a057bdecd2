"""Key press to PATCH: how long from an action until its PATCH reaches the API server.

Starts the real kube-apiserver + etcd (tests/support/kube_cluster.py), puts the loopback
fault proxy (tests/support/fault_proxy.py, no faults) in front of it, and times each action
from the call until the proxy has received the whole PATCH request (same process, same
`time.perf_counter()` clock). Two levels:

- router: the call to the router (`set_weight` on istio, gateway-api and deployments,
  `set_paused` on argo-rollouts), alternating values so every call writes;
- engine: `Engine.submit(step forward / step back)` on the istio router, i.e. the key
  press's whole path: decide, the audit intent written and fsynced, then the router.

Prints median, p99 and max per case against the target p99 < 50 ms; exit 1 if missed.

    python benchmarks/kube_patch_latency.py                 # 250 actions per case
    python benchmarks/kube_patch_latency.py --actions 500
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.kubernetes import ROUTER_BUILDERS, build_router  # noqa: E402
from adapters.registry import AdapterContext  # noqa: E402
from canary_tui.core.clock import VirtualClock  # noqa: E402
from tests.support.fault_proxy import FaultProxy  # noqa: E402
from tests.support.kube_cluster import KubeCluster  # noqa: E402

SHARED = ROOT.parent / "shared" / "k8s-examples"
TARGET_P99_MS = 50.0

OBJECTS = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: checkout}
spec:
  hosts: [checkout]
  http:
  - name: primary
    route:
    - {destination: {host: checkout, subset: stable}, weight: 100}
    - {destination: {host: checkout, subset: canary}, weight: 0}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: checkout}
spec:
  rules:
  - backendRefs:
    - {name: checkout-stable, port: 80, weight: 100}
    - {name: checkout-canary, port: 80, weight: 0}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout}
spec:
  replicas: 10
  selector: {matchLabels: {app: checkout, track: stable}}
  template:
    metadata: {labels: {app: checkout, track: stable}}
    spec: {containers: [{name: app, image: "shop/checkout:1"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout-canary}
spec:
  replicas: 0
  selector: {matchLabels: {app: checkout, track: canary}}
  template:
    metadata: {labels: {app: checkout, track: canary}}
    spec: {containers: [{name: app, image: "shop/checkout:2"}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: checkout}
spec:
  replicas: 5
  selector: {matchLabels: {app: checkout-ro}}
  template:
    metadata: {labels: {app: checkout-ro}}
    spec: {containers: [{name: app, image: "shop/checkout:2"}]}
  strategy: {canary: {steps: [{setWeight: 20}, {pause: {}}]}}
"""

CASES: dict[str, tuple[dict[str, Any], Callable[[Any, int], Any]]] = {
    "istio": ({"name": "checkout"}, lambda r, i: r.set_weight(10 if i % 2 else 20)),
    "gateway-api": ({"name": "checkout"}, lambda r, i: r.set_weight(10 if i % 2 else 20)),
    "deployments": (
        {"stable": "checkout", "canary": "checkout-canary"},
        lambda r, i: r.set_weight(10 if i % 2 else 20),
    ),
    "argo-rollouts": ({"name": "checkout"}, lambda r, i: r.set_paused(i % 2 == 0)),
}


def measure(proxy: FaultProxy, act: Callable[[int], Any], n: int) -> list[float]:
    """Milliseconds from each act(i) call to the arrival of its first PATCH."""
    out: list[float] = []
    for i in range(n):
        proxy.clear()
        t0 = time.perf_counter()
        act(i)
        sent = proxy.seen("PATCH")
        if not sent:
            raise RuntimeError(f"action {i} sent no PATCH")
        out.append((sent[0].t - t0) * 1000)
    return out


def report(name: str, ms: list[float]) -> bool:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    ok = p99 < TARGET_P99_MS
    print(
        f"{name:<24} n={len(ms):<4} median {statistics.median(ms):6.2f} ms   "
        f"p99 {p99:6.2f} ms   max {ms[-1]:6.2f} ms   {'ok' if ok else 'MISSED'}"
    )
    return ok


def engine_case(proxy: FaultProxy, kubeconfig: Path, n: int, workdir: Path) -> list[float]:
    from adapters import registry
    from canary_tui.config.build import build_engine
    from canary_tui.config.demo import demo_config
    from canary_tui.config.schema import Config
    from canary_tui.core.actions import Action, Actor, Source, Verb

    registry.ROUTERS.update(ROUTER_BUILDERS)  # what the registry lines will do
    data = demo_config().model_dump()
    data["router"] = {"kind": "istio", "name": "checkout", "kubeconfig": str(kubeconfig)}
    built = build_engine(
        Config.model_validate(data), VirtualClock(), audit_path=workdir / "audit.jsonl"
    )
    engine, actor = built.engine, Actor("bench")
    engine.start()

    def press(i: int) -> None:
        verb = Verb.STEP_FORWARD if i % 2 == 0 else Verb.STEP_BACK
        out = engine.submit(Action(verb, actor, Source.KEY, engine.state.version))
        if not out.ok:
            raise RuntimeError(out.message)

    try:
        return measure(proxy, press, n)
    finally:
        for router in built.context.shared.get("kube-routers", []):
            router.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=250, help="actions per case (>= 200)")
    args = parser.parse_args()
    n = max(200, args.actions)
    ok = True
    with KubeCluster() as kube, tempfile.TemporaryDirectory() as tmp:
        print(f"kube-apiserver up in {kube.startup_seconds:.1f} s at {kube.server_url}")
        kube.apply_manifest(SHARED / "argo-rollouts" / "rollout-crd.yaml")
        for crd in sorted((ROOT / "tests" / "support" / "k8s_crds").glob("*.yaml")):
            kube.apply_manifest(crd)
        for doc in yaml.safe_load_all(OBJECTS):
            kube.apply_manifest(yaml.safe_dump(doc))
        assert kube.ca_file is not None
        with FaultProxy(kube.server_url, kube.ca_file) as proxy:
            kubeconfig = proxy.write_kubeconfig(Path(tmp) / "kubeconfig", kube.admin_token)
            for kind, (settings, act) in CASES.items():
                ctx = AdapterContext(clock=VirtualClock())
                router = build_router(kind, {"kubeconfig": str(kubeconfig), **settings}, ctx)
                step = functools.partial(act, router)
                try:
                    measure(proxy, step, 20)  # warm up: connections, watch, caches
                    ms = measure(proxy, step, n)
                finally:
                    router.close()
                ok &= report(f"router {kind}", ms)
            ok &= report("engine.submit (istio)", engine_case(proxy, kubeconfig, n, Path(tmp)))
    print(f"target: p99 < {TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
