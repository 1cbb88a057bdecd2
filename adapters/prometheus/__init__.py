"""Metrics from Prometheus: counts per variant for a tick's window, via prometheus-api-client.

Each tick runs one instant query per metric for both variants at once (grouped by the variant
label), evaluated at the window's end:

* requests  ``sum by (L) (increase(REQUESTS{matchers}[R]))``
* errors    the same with the preset's error matcher (``code=~"5.."``, ...)
* latency   ``sum by (L, le) (increase(BUCKETS{matchers}[R]))`` (ms buckets become seconds)
* resets    ``sum by (L) (resets(REQUESTS{matchers}[R]))``: a counter reset voids the tick
* one query per custom PromQL template (Flagger-style ``{{ placeholder }}`` templates)

``fetch_windows`` (the ReadsWindows capability) sends the same queries as range queries, with
the range as the step, and makes one window of each evaluation time: the baseline's past,
read before the canary starts.

Window alignment: for a window [start, end] of W seconds the range is
R = ceil(max(W, min_range)) whole seconds, and every count is scaled by W / R. When the tick is
longer than ``min_range`` (default 4 scrape intervals: ``increase()`` needs two samples in
range, and four survive a missed scrape) R is W rounded up and the factor is ~1. When the tick
is shorter, the counts are the rate over the last R seconds times W: estimates whose sum over
many ticks matches the real total, where querying ``increase(...[R])`` unscaled would count
every request R / W times and overstate the judge's sample sizes.

``increase()`` extrapolates to the range's edges, so counts are floats (kept as floats), and
each series is extrapolated on its own: tiny inversions between cumulative buckets are
repaired (running maximum) and errors are capped at requests. Real trouble is never repaired:
a bad query (HTTP 400), a timeout, a refused connection, an empty result or a counter reset
makes the tick no data, with a reason a person can read. Nothing here raises out of `fetch`.

Credentials come from a file or an environment variable, are re-read every tick (rotated
tokens keep working), never live in the settings, and are scrubbed from every message.
"""

from adapters.prometheus.presets import (
    PLACEHOLDERS,
    PRESETS,
    Preset,
    VariantAxis,
    promql_regex_alternatives,
    promql_string,
    render_template,
)
from adapters.prometheus.queries import Queries, placeholder_values, range_for, render_queries
from adapters.prometheus.settings import PrometheusSettings
from adapters.prometheus.source import (
    NoData,
    PrometheusSource,
    build_prometheus_source,
    describe_failure,
)

__all__ = [
    "PLACEHOLDERS",
    "PRESETS",
    "NoData",
    "Preset",
    "PrometheusSettings",
    "PrometheusSource",
    "Queries",
    "VariantAxis",
    "build_prometheus_source",
    "describe_failure",
    "placeholder_values",
    "promql_regex_alternatives",
    "promql_string",
    "range_for",
    "render_queries",
    "render_template",
]
