"""`canary-tui watch KIND/NAME`: turn what discovery found, an optional config file and the
command line's flags into one config, and say which queries it will run.

Precedence, field by field: the command line's flags, then the file, then discovery. The file
may leave out anything discovery knows (`canary.name` defaults to the target's NAME, the
router to the object's), and its router settings (`mirror_percent`, `retry_budget_s`, ...)
are kept beside what discovery found. A Rollout's plan follows the Rollout's own steps (Argo
owns them); the file's plan only gives the holds. Nothing here touches the cluster: it only
reads what `adapters.kubernetes.discover` already read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.kubernetes.discover import Discovered
from canary_tui.config.loader import ConfigError, PathKey, parse_yaml, read_text, validate
from canary_tui.config.schema import Config

#: Istio's standard metrics carry the pods' version as destination_version (from the `version`
#: or `app.kubernetes.io/version` label) and destination_canonical_revision.
ISTIO_LABELS = {
    "version": "",  # the preset's own axis label, destination_version
    "app.kubernetes.io/version": "",
    "service.istio.io/canonical-revision": "destination_canonical_revision",
}
#: router settings a command-line flag decided through discovery (flag -> settings)
FLAG_ROUTER_KEYS = {
    "rule": ("rule", "route"),
    "stable": ("stable_backend", "stable_subset", "stable_host", "stable"),
    "canary": ("canary_backend", "canary_subset", "canary_host", "canary"),
    "api_version": ("api_version",),
}


@dataclass(frozen=True, slots=True)
class WatchFlags:
    """The command line's say (None / "": not given)."""

    prometheus_url: str | None = None
    preset: str | None = None
    stable_version: str | None = None
    canary_version: str | None = None
    variant_label: str | None = None
    rule: str = ""
    stable: str = ""
    canary: str = ""
    api_version: str = ""


def read_file(path: Path) -> tuple[dict[str, Any], dict[PathKey, int]]:
    """A config file's mapping and its lines, not yet validated (it may be partial)."""
    text = read_text(path)  # the loader's reading, with its limits (size, FIFOs, devices)
    data, lines = parse_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: the top level must be a mapping of sections (canary:, plan:, ...)"
        )
    for section in ("canary", "router", "source"):
        if section in data and not isinstance(data[section], dict):
            line = lines.get((section,), 1)
            raise ConfigError(f"{path}:{line}: {section}: must be a mapping")
    return data, lines


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _preset_of(data: Mapping[str, Any]) -> str:
    return str((data.get("source") or {}).get("preset") or "generic")


def variant_source(found: Discovered, preset: str) -> tuple[dict[str, Any], list[str]]:
    """The source settings that make `preset`'s queries use the discovered variants, and
    what a person should know when the preset cannot."""
    v = found.variants
    notes: list[str] = []
    out: dict[str, Any] = {}
    stable_svc, canary_svc = found.services
    if preset == "istio" and stable_svc and canary_svc and stable_svc != canary_svc:
        # two Services: Istio tags every request with the one it went to
        return {
            "variant_by": "workload",  # the axis without a one-service filter
            "variant_label": "destination_service_name",
            "stable_value": stable_svc,
            "canary_value": canary_svc,
        }, notes
    if preset in ("linkerd", "nginx"):
        stable, canary = found.workloads
        if stable and canary and stable != canary:
            out.update(stable_workload=stable, canary_workload=canary)
        else:
            notes.append(
                f"the {preset} preset tells variants apart by workload and the two variants "
                "share one; pass --variant-label with --stable-version/--canary-version"
            )
        return out, notes
    if v is None:
        return out, notes
    if preset == "istio":
        if v.label in ISTIO_LABELS:
            if ISTIO_LABELS[v.label]:
                out["variant_label"] = ISTIO_LABELS[v.label]
        else:
            notes.append(
                f"the variants differ in the pod label {v.label} ({v.stable} / {v.canary}), "
                "which Istio's metrics do not carry: give the pods a `version` label, or pass "
                "--variant-label with --stable-version/--canary-version"
            )
            return {}, notes
    elif v.metric_label != "version":
        out["variant_label"] = v.metric_label
    return out, notes


def build_data(
    target: str,
    found: Discovered,
    flags: WatchFlags,
    file_data: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The merged config mapping (not yet validated) and notes for the person."""
    file_data = dict(file_data or {})
    name = target.partition("/")[2]
    notes = list(found.notes)
    file_router = file_data.get("router") or {}
    if "kind" in file_router and file_router["kind"] != found.router_kind:
        raise ConfigError(
            f"the file's router.kind is {file_router['kind']!r} but {target} is watched with "
            f"the {found.router_kind} router: remove router.kind from the file"
        )
    if "name" in file_router and "name" in found.settings and file_router["name"] != name:
        raise ConfigError(
            f"the file's router.name is {file_router['name']!r} but the target is {target}: "
            "remove router.name from the file"
        )
    discovered: dict[str, Any] = {
        "canary": {
            "name": name,
            "namespace": found.settings.get("namespace", "default"),
            "service": found.service or name,
        },
        "router": found.router_section(),
    }
    v = found.variants
    if v is not None:
        discovered["canary"].update(stable_version=v.stable, canary_version=v.canary)
    source_kind = (file_data.get("source") or {}).get("kind")
    prometheus = flags.prometheus_url is not None or source_kind == "prometheus"
    if flags.prometheus_url is not None and source_kind not in (None, "prometheus"):
        notes.append(f"--prometheus replaces the file's source (kind {source_kind})")
        file_data = {**file_data, "source": {}}
    if prometheus:
        discovered["source"] = {"kind": "prometheus", "preset": found.preset}
    data = merge(discovered, file_data)
    # the command line wins over the file
    if flags.prometheus_url is not None:
        data["source"] = {**data.get("source", {}), "kind": "prometheus",
                          "url": flags.prometheus_url}  # fmt: skip
    if flags.preset is not None:
        data.setdefault("source", {})["preset"] = flags.preset
    if prometheus:
        preset = _preset_of(data)
        extra, why = variant_source(found, preset)
        notes.extend(why)
        file_source = file_data.get("source") or {}
        if any(k in file_source for k in ("variant_label", "stable_value", "canary_value")):
            extra = {}  # the file says how variants are told apart: all of it, or nothing
        data["source"] = merge(extra, data["source"])
    canary = data["canary"]
    if flags.stable_version is not None:
        canary["stable_version"] = flags.stable_version
        if prometheus:
            data["source"]["stable_value"] = flags.stable_version
    if flags.canary_version is not None:
        canary["canary_version"] = flags.canary_version
        if prometheus:
            data["source"]["canary_value"] = flags.canary_version
    if flags.variant_label is not None and prometheus:
        data["source"]["variant_label"] = flags.variant_label
    for flag, keys in FLAG_ROUTER_KEYS.items():
        if getattr(flags, flag):
            for key in keys:
                if key in found.settings:
                    data["router"][key] = found.settings[key]
    if found.router_kind == "argo-rollouts":
        holds = [step.get("hold", 60) for step in file_data.get("plan") or []
                 if isinstance(step, Mapping)] or [60]  # fmt: skip
        weights = found.plan_weights or (0,)
        data["plan"] = [{"weight": w, "hold": holds[min(i, len(holds) - 1)]}
                        for i, w in enumerate(weights)]  # fmt: skip
        if file_data.get("plan"):
            notes.append(
                f"plan: the Rollout's steps give the weights {list(weights)} (Argo owns them); "
                "the file's plan gives only the holds"
            )
    return data, notes


def check(data: Mapping[str, Any], lines: dict[PathKey, int], name: str) -> Config:
    """Validate the merged mapping; errors name the file's lines where the file said it."""
    return validate(dict(data), lines, name)


def query_lines(config: Config) -> list[str]:
    """What `watch` prints at start: the source, how variants are told apart, the queries."""
    if config.source.kind != "prometheus":
        return [f"metrics: {config.source.kind} source"]
    from adapters.prometheus import PrometheusSettings, range_for, render_queries

    settings = PrometheusSettings.parse(config.source, "source").check_environment()
    stable, canary = settings.values
    range_s = range_for(settings, config.loop.tick)
    q = render_queries(settings, range_s)
    out = [
        f"metrics: prometheus {settings.url}, preset {settings.preset}; variants by label "
        f'{settings.label}: stable "{stable}", canary "{canary}"',
        "queries at each tick (range grows to cover the tick and 4 scrapes):",
        f"  requests: {q.requests}",
        f"  errors:   {q.errors}",
        f"  latency:  {q.latency}",
    ]
    out += [f"  {name}: {promql}" for name, promql in q.custom.items()]
    return out
