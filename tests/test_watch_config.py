"""`watch`'s config making without a cluster (canary_tui/cli/watch_config.py and the pure parts of
adapters/kubernetes/discover.py): precedence flags > file > discovery, field by field; the
variant label per preset; the printed queries; how a two-backend rule is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.kubernetes.discover import (
    Choices,
    Discovered,
    Variants,
    _guess_roles,
    _version_key,
    variants_between,
)
from canary_tui.cli.watch_config import WatchFlags, build_data, check, query_lines, read_file
from canary_tui.config.loader import ConfigError

URL = "http://127.0.0.1:9"
BY_VERSION = Variants("version", "v1", "v2", "Deployments a/b pod labels")


def found(
    kind: str = "deployments",
    variants: Variants | None = BY_VERSION,
    **kw: object,
) -> Discovered:
    settings = {"namespace": "shop", "stable": "checkout", "canary": "checkout-canary"}
    if kind != "deployments":
        settings = {"name": "checkout", "namespace": "shop"}
    return Discovered(kind, settings, str(kw.pop("preset", "generic")), "summary",
                      variants=variants, workloads=("checkout", "checkout-canary"),
                      **kw)  # type: ignore[arg-type]  # fmt: skip


def test_variants_prefer_version_labels_and_hashes_last() -> None:
    stable = {"app": "web", "version": "v1", "rollouts-pod-template-hash": "a", "tier": "x"}
    canary = {"app": "web", "version": "v2", "rollouts-pod-template-hash": "b", "tier": "y"}
    assert variants_between(stable, canary, "s") == Variants("version", "v1", "v2", "s")
    del stable["version"], canary["version"]
    assert variants_between(stable, canary, "s") == Variants("tier", "x", "y", "s")
    del stable["tier"], canary["tier"]
    got = variants_between(stable, canary, "s")
    assert got is not None and got.metric_label == "rollouts_pod_template_hash"
    assert variants_between({"app": "web"}, {"app": "web"}, "s") is None
    assert Variants("app.kubernetes.io/version", "1", "2", "").metric_label == (
        "app_kubernetes_io_version"
    )


def test_two_backends_read_by_weight_then_version_then_flags() -> None:
    rule = {"backendRefs": [{"name": "foo-v1", "weight": 90}, {"name": "foo-v2", "weight": 10}]}
    assert _guess_roles(rule, Choices())[:2] == (0, 1)  # type: ignore[index]
    even = {"backendRefs": [{"name": "foo-v10", "weight": 50}, {"name": "foo-v9", "weight": 50}]}
    assert _guess_roles(even, Choices())[:2] == (1, 0)  # type: ignore[index]  # 10 > 9
    plain = {"backendRefs": [{"name": "blue", "weight": 50}, {"name": "green", "weight": 50}]}
    assert _guess_roles(plain, Choices()) is None
    assert _guess_roles(plain, Choices(canary="blue"))[:2] == (1, 0)  # type: ignore[index]
    assert _guess_roles(plain, Choices(stable="nope")) is None
    assert _version_key("web-1.10") == (1, 10) and _version_key("web") is None


def test_flags_win_over_the_file_which_wins_over_discovery() -> None:
    file = {
        "canary": {"stable_version": "old"},
        "router": {"mirror_percent": 20},
        "source": {"kind": "prometheus", "url": URL, "scrape_interval": "5s"},
    }
    data, _notes = build_data("deploy/checkout", found(), WatchFlags(canary_version="new"), file)
    assert data["canary"] == {"name": "checkout", "namespace": "shop", "service": "checkout",
                              "stable_version": "old", "canary_version": "new"}  # fmt: skip
    assert data["router"] == {"kind": "deployments", "namespace": "shop", "stable": "checkout",
                              "canary": "checkout-canary", "mirror_percent": 20}  # fmt: skip
    assert data["source"]["canary_value"] == "new" and data["source"]["scrape_interval"] == "5s"
    config = check(data, {}, "watch deploy/checkout")
    assert any('version=~"old|new"' in line for line in query_lines(config))


def test_a_file_naming_another_router_or_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="router.kind is 'istio'"):
        build_data("deploy/checkout", found(), WatchFlags(URL), {"router": {"kind": "istio"}})
    with pytest.raises(ConfigError, match="router.name is 'other'"):
        build_data("ro/checkout", found("argo-rollouts"), WatchFlags(URL),
                   {"router": {"name": "other"}})  # fmt: skip


def test_variant_label_per_preset() -> None:
    hashed = Variants("rollouts-pod-template-hash", "a1", "b2", "Rollout")
    data, notes = build_data("ro/checkout", found("argo-rollouts", hashed), WatchFlags(URL))
    assert data["source"]["variant_label"] == "rollouts_pod_template_hash" and not notes
    # Istio reports the pods' version, not the hash: said, not silently queried
    data, notes = build_data("ro/checkout", found("argo-rollouts", hashed, preset="istio"),
                             WatchFlags(URL))  # fmt: skip
    assert "variant_label" not in data["source"]
    assert any("which Istio's metrics do not carry" in n for n in notes)
    revision = Variants("service.istio.io/canonical-revision", "r1", "r2", "DR")
    data, _ = build_data("vs/checkout", found("istio", revision, preset="istio"), WatchFlags(URL))
    assert data["source"]["variant_label"] == "destination_canonical_revision"
    # two Services (host routing, HTTPRoute backends): Istio tells them apart by itself
    split = found("istio", hashed, preset="istio", services=("web-stable", "web-canary"))
    data, notes = build_data("vs/checkout", split, WatchFlags(URL))
    assert not notes and data["source"]["variant_label"] == "destination_service_name"
    config = check(data, {}, "vs")
    assert any(
        'destination_service_name=~"web-stable|web-canary"' in q for q in query_lines(config)
    )
    # workload presets take the two workloads
    data, _ = build_data("deploy/checkout", found(), WatchFlags(URL, preset="linkerd"))
    assert (data["source"]["stable_workload"], data["source"]["canary_workload"]) == (
        "checkout", "checkout-canary")  # fmt: skip
    # the flag names the label whatever was found
    data, _ = build_data("deploy/checkout", found(), WatchFlags(URL, variant_label="track"))
    assert data["source"]["variant_label"] == "track"


def test_rollout_plan_follows_its_steps_with_the_files_holds() -> None:
    ro = found("argo-rollouts", None, plan_weights=(20, 40, 80))
    file = {"plan": [{"weight": 5, "hold": 30}, {"weight": 50, "hold": "2m"}]}
    data, notes = build_data("ro/checkout", ro, WatchFlags(URL), file)
    assert data["plan"] == [{"weight": 20, "hold": 30}, {"weight": 40, "hold": "2m"},
                            {"weight": 80, "hold": "2m"}]  # fmt: skip
    assert any("Argo owns them" in n for n in notes)
    data, _ = build_data("ro/checkout", found("argo-rollouts", None), WatchFlags(URL))
    assert data["plan"] == [{"weight": 0, "hold": 60}]


def test_partial_files_are_read_and_bad_ones_named(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("source:\n  kind: prometheus\n  url: http://p:9090\n")
    data, lines = read_file(f)
    assert data["source"]["url"] == "http://p:9090" and lines[("source",)] == 1
    f.write_text("router: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"m.yaml:1: router: must be a mapping"):
        read_file(f)
    with pytest.raises(ConfigError, match="no such config file"):
        read_file(tmp_path / "none.yaml")
    # a bad value in the file is reported at the file's line
    f.write_text("source:\n  kind: prometheus\n  url: http://p:9090\nloop:\n  tick: -1\n")
    data, lines = read_file(f)
    merged, _ = build_data("deploy/checkout", found(), WatchFlags(), data)
    with pytest.raises(ConfigError, match=r"m.yaml:5: loop.tick"):
        check(merged, lines, str(f))


def test_flags_that_do_not_apply_to_the_kind_are_one_clear_error() -> None:
    from adapters.kubernetes.discover import DiscoveryError, discover

    with pytest.raises(DiscoveryError, match=r"^--stable does not apply to rollout"):
        discover("rollout/checkout", choices=Choices(stable="a"))
    with pytest.raises(DiscoveryError, match=r"^--rule and --api-version do not apply to deploy"):
        discover("deploy/checkout", choices=Choices(rule="0", api_version="v1"))
