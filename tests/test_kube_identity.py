"""Who the console acts as in the cluster, as Events name it (no cluster needed): the
kubeconfig's user and context, or a pod's service account read from its token's subject."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from adapters.kubernetes.connection import (
    ConnectionSettings,
    Identity,
    ObjectRef,
    Resource,
    _token_subject,
    connect,
)
from adapters.kubernetes.events import PendingEvent, event_body
from canary_tui.core.ports import RoutingState


def test_kubeconfig_user_and_context_become_the_identity(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://x'}}]\n"
        "users: [{name: deployer, user: {token: t}}]\n"
        "contexts: [{name: prod-eu, context: {cluster: c, user: deployer}}]\n"
        "current-context: prod-eu\n"
    )
    api = connect(ConnectionSettings(kubeconfig=str(cfg)))
    assert api.identity == Identity(user="deployer", context="prod-eu")
    assert str(api.identity) == "user deployer, context prod-eu"


def test_service_account_token_subject(tmp_path: Path) -> None:
    claims = {"sub": "system:serviceaccount:shop:canary-tui", "iss": "kubernetes"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    token = tmp_path / "token"
    token.write_text(f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")
    assert _token_subject(token) == "system:serviceaccount:shop:canary-tui"
    token.write_text("not a jwt")
    assert _token_subject(token) == ""
    assert _token_subject(tmp_path / "missing") == ""


def test_event_names_the_person_and_the_kubernetes_identity() -> None:
    ref = ObjectRef(Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout"), "shop", "checkout")
    pending = PendingEvent(ref, None, "kill", "alice", "killed: errors 5% vs 0.4%")
    obj = {"metadata": {"uid": "u1", "resourceVersion": "7"}}
    now = datetime(2026, 1, 1, tzinfo=UTC)
    body = event_body(pending, obj, now=now, host="bastion",
                      identity=Identity("deployer", "prod-eu"))  # fmt: skip
    assert body["message"] == "alice (as deployer, context prod-eu): killed: errors 5% vs 0.4%"
    assert body["metadata"]["annotations"] == {
        "canary-tui/actor": "alice",
        "canary-tui/kube-user": "deployer",
        "canary-tui/kube-context": "prod-eu",
    }
    plain = event_body(pending, obj, now=now, host="bastion")
    assert plain["message"] == "alice: killed: errors 5% vs 0.4%"


def test_routing_phase_is_recorded_only_when_a_controller_says_one() -> None:
    assert "phase" not in RoutingState(weight=5).to_dict()
    argo = RoutingState(weight=20, detail="Rollout x: Paused", phase="paused")
    assert RoutingState(**argo.to_dict()) == argo
