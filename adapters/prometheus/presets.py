"""The PromQL presets (Istio, Linkerd, ingress-nginx, generic): which metrics a mesh exports,
how it tells the variants apart, and the `{{ placeholder }}` templates they and custom
metrics are written in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.settings_types import AdapterConfigError


@dataclass(frozen=True, slots=True)
class VariantAxis:
    """How one preset tells the two variants apart: a label, and where its values come from."""

    label: str
    values_from: str  # "version" (stable_version/canary_version) or "workload"
    matchers: str  # template: the preset's own label matchers for this axis


@dataclass(frozen=True, slots=True)
class Preset:
    """Metric names and label conventions of one mesh, ingress or instrumentation library."""

    name: str
    description: str
    requests_metric: str
    buckets_metric: str
    bucket_unit_s: float  # seconds per unit of the `le` label (0.001 for milliseconds)
    error_matcher: str
    axes: Mapping[str, VariantAxis]
    default_axis: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "generic",
            "http_requests_total / http_request_duration_seconds_bucket with a version label",
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            1.0,
            'code=~"5.."',
            {"version": VariantAxis("version", "version", "")},
            "version",
        ),
        Preset(
            "istio",
            "Istio standard metrics, reported by the destination proxy",
            "istio_requests_total",
            "istio_request_duration_milliseconds_bucket",
            0.001,
            'response_code=~"5.."',
            {
                "version": VariantAxis(
                    "destination_version",
                    "version",
                    'reporter="destination", destination_workload_namespace="{{ namespace }}", '
                    'destination_service_name="{{ service }}"',
                ),
                "workload": VariantAxis(
                    "destination_workload",
                    "workload",
                    'reporter="destination", destination_workload_namespace="{{ namespace }}"',
                ),
            },
            "version",
        ),
        Preset(
            "linkerd",
            "Linkerd proxy metrics, inbound side, by deployment",
            "response_total",
            "response_latency_ms_bucket",
            0.001,
            'classification="failure"',
            {
                "workload": VariantAxis(
                    "deployment", "workload", 'direction="inbound", namespace="{{ namespace }}"'
                )
            },
            "workload",
        ),
        Preset(
            "nginx",
            "ingress-nginx controller metrics, by backend Service (stable and canary Services)",
            "nginx_ingress_controller_requests",
            "nginx_ingress_controller_request_duration_seconds_bucket",
            1.0,
            'status=~"5.."',
            {"workload": VariantAxis("service", "workload", 'namespace="{{ namespace }}"')},
            "workload",
        ),
    )
}

PLACEHOLDERS = (
    "namespace",
    "service",
    "stable_workload",
    "canary_workload",
    "stable_version",
    "canary_version",
    "variant_label",
    "stable_value",
    "canary_value",
    "variant_values",
    "variant_matcher",
    "selector",
    "matchers",
    "window",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_regex_alternatives(*values: str) -> str:
    """An RE2 alternation matching exactly these values, escaped for a PromQL string."""
    return promql_string("|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values))


def render_template(template: str, values: Mapping[str, str], *loc: str) -> str:
    """Replace ``{{ name }}`` placeholders; an unknown one is an AdapterConfigError naming the
    setting at `loc` (`selector`, `custom`, name)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise AdapterConfigError(
                f"unknown placeholder {{{{ {name} }}}} (known: {', '.join(sorted(values))})",
                *loc,
                section="source",
            )
        return values[name]

    return _PLACEHOLDER.sub(sub, template)
