"""The PromQL of one tick: the preset's requests, errors, latency-bucket and reset queries and
the custom templates, rendered for a range of whole seconds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.prometheus.presets import (
    PRESETS,
    promql_regex_alternatives,
    promql_string,
    render_template,
)
from adapters.prometheus.settings import PrometheusSettings


@dataclass(frozen=True, slots=True)
class Queries:
    """The PromQL of one tick; every query returns one series per variant."""

    requests: str
    errors: str
    latency: str
    resets: str
    custom: Mapping[str, str]
    range_s: int


def placeholder_values(settings: PrometheusSettings, range_s: int) -> dict[str, str]:
    """What each ``{{ placeholder }}`` stands for (values escaped for PromQL strings)."""
    stable, canary = settings.values
    label = settings.label
    variant_matcher = f'{label}=~"{promql_regex_alternatives(stable, canary)}"'
    values = {
        "namespace": promql_string(settings.namespace),
        "service": promql_string(settings.service),
        "stable_workload": promql_string(settings.stable_workload or settings.service),
        "canary_workload": promql_string(settings.canary_workload or f"{settings.service}-canary"),
        "stable_version": promql_string(settings.stable_version),
        "canary_version": promql_string(settings.canary_version),
        "variant_label": label,
        "stable_value": promql_string(stable),
        "canary_value": promql_string(canary),
        "variant_values": promql_regex_alternatives(stable, canary),
        "variant_matcher": variant_matcher,
        "window": f"{range_s}s",
    }
    selector = render_template(settings.selector, values | {"selector": ""}, "selector")
    base = render_template(settings.axis.matchers, values, "preset")
    values["selector"] = selector
    values["matchers"] = ", ".join(m for m in (base, selector, variant_matcher) if m)
    return values


def render_queries(settings: PrometheusSettings, range_s: int) -> Queries:
    """The preset's queries and the custom templates for a range of `range_s` seconds."""
    preset = PRESETS[settings.preset]
    v = placeholder_values(settings, range_s)
    label, matchers, window = v["variant_label"], v["matchers"], v["window"]
    req = f"{preset.requests_metric}{{{matchers}}}[{window}]"
    err = f"{preset.requests_metric}{{{matchers}, {preset.error_matcher}}}[{window}]"
    buckets = f"{preset.buckets_metric}{{{matchers}}}[{window}]"
    return Queries(
        requests=f"sum by ({label}) (increase({req}))",
        errors=f"sum by ({label}) (increase({err}))",
        latency=f"sum by ({label}, le) (increase({buckets}))",
        resets=f"sum by ({label}) (resets({req}))",
        custom={
            name: render_template(template, v, "custom", name)
            for name, template in settings.custom.items()
        },
        range_s=range_s,
    )


def range_for(settings: PrometheusSettings, window_s: float) -> int:
    """Whole seconds of range for a window: W rounded up (sub-millisecond jitter ignored), and
    never less than `min_range`."""
    return max(1, math.ceil(max(window_s, settings.effective_min_range) - 1e-3))
