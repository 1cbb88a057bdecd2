"""The Prometheus metric source (adapters/prometheus/) and the simulator's /metrics exporter.

Two kinds of tests:

* unit tests (no marker): the PromQL each preset renders, settings validation, secret
  redaction, and the answer handling (ms buckets, scaling, repairs, failures) against a tiny
  fake Prometheus HTTP API that answers canned vectors;
* ``@pytest.mark.prometheus``: a real Prometheus (Debian's package) scraping the simulator's
  exporter every second, read back through the adapter and compared with the simulator's
  ground truth; plus bad queries, empty results, counter resets and a stopped server.

The real-Prometheus tests run in wall time (Prometheus scrapes in wall time); about 25 s in all,
most of it Prometheus' own ~5 s delay before its first scrape and one 10-s window. They skip
when the binary is missing, except under CI=true where a missing binary fails loudly.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from adapters.prometheus import (
    PRESETS,
    PrometheusSettings,
    PrometheusSource,
    build_prometheus_source,
    range_for,
    render_queries,
)
from adapters.registry import AdapterConfigError, AdapterContext
from adapters.simulator import SimulatedService, SimulatorSettings, _Totals
from adapters.simulator_exporter import SimulatorExporter, start_exporter
from canary_tui.core.clock import VirtualClock
from canary_tui.core.metrics import Sample
from canary_tui.core.ports import ReadsWindows, SmoothsTicks
from canary_tui.core.verdict import Status
from canary_tui.engine.clocks import WallClock
from tests.support.processes import free_port
from tests.support.prometheus_server import PrometheusServer, find_prometheus

STABLE, CANARY = "v1.41.0", "v1.42.0"
CANARY_SECTION = {
    "name": "checkout",
    "service": "checkout",
    "namespace": "shop",
    "stable_version": STABLE,
    "canary_version": CANARY,
}


def settings(**raw: Any) -> PrometheusSettings:
    raw.setdefault("url", "http://prometheus.test:9090")
    return PrometheusSettings.from_mapping(raw, CANARY_SECTION)


# ============================================================================ PromQL rendering

# The whole contract of each preset, written out: one query per metric for both variants,
# grouped by the variant label (60 s range; version values are regex-escaped).
EXPECTED = {
    ("generic", "version"): (
        'sum by (version) (increase(http_requests_total{version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0"}[60s]))',
        'sum by (version) (increase(http_requests_total{version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0", code=~"5.."}[60s]))',
        'sum by (version, le) (increase(http_request_duration_seconds_bucket{version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0"}[60s]))',
    ),
    ("istio", "version"): (
        'sum by (destination_version) (increase(istio_requests_total{reporter="destination", destination_workload_namespace="shop", destination_service_name="checkout", destination_version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0"}[60s]))',
        'sum by (destination_version) (increase(istio_requests_total{reporter="destination", destination_workload_namespace="shop", destination_service_name="checkout", destination_version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0", response_code=~"5.."}[60s]))',
        'sum by (destination_version, le) (increase(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="shop", destination_service_name="checkout", destination_version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0"}[60s]))',
    ),
    ("istio", "workload"): (
        'sum by (destination_workload) (increase(istio_requests_total{reporter="destination", destination_workload_namespace="shop", destination_workload=~"checkout|checkout-canary"}[60s]))',
        'sum by (destination_workload) (increase(istio_requests_total{reporter="destination", destination_workload_namespace="shop", destination_workload=~"checkout|checkout-canary", response_code=~"5.."}[60s]))',
        'sum by (destination_workload, le) (increase(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="shop", destination_workload=~"checkout|checkout-canary"}[60s]))',
    ),
    ("linkerd", "workload"): (
        'sum by (deployment) (increase(response_total{direction="inbound", namespace="shop", deployment=~"checkout|checkout-canary"}[60s]))',
        'sum by (deployment) (increase(response_total{direction="inbound", namespace="shop", deployment=~"checkout|checkout-canary", classification="failure"}[60s]))',
        'sum by (deployment, le) (increase(response_latency_ms_bucket{direction="inbound", namespace="shop", deployment=~"checkout|checkout-canary"}[60s]))',
    ),
    ("nginx", "workload"): (
        'sum by (service) (increase(nginx_ingress_controller_requests{namespace="shop", service=~"checkout|checkout-canary"}[60s]))',
        'sum by (service) (increase(nginx_ingress_controller_requests{namespace="shop", service=~"checkout|checkout-canary", status=~"5.."}[60s]))',
        'sum by (service, le) (increase(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop", service=~"checkout|checkout-canary"}[60s]))',
    ),
}


def test_every_preset_and_axis_is_covered() -> None:
    assert {(p.name, axis) for p in PRESETS.values() for axis in p.axes} == set(EXPECTED)


@pytest.mark.parametrize(("preset", "axis"), sorted(EXPECTED))
def test_preset_promql(preset: str, axis: str) -> None:
    q = render_queries(settings(preset=preset, variant_by=axis), 60)
    assert (q.requests, q.errors, q.latency) == EXPECTED[preset, axis]
    assert q.resets == q.requests.replace(" (increase(", " (resets(")


def test_selector_custom_templates_and_window_placeholders() -> None:
    s = settings(
        selector='job="{{ service }}", cluster="eu-1"',
        custom={
            "throttled": 'sum by ({{ variant_label }}) (increase(http_requests_total{ {{ matchers }}, code="429" }[{{ window }}]))',
            "pinned": 'sum by (version) (increase(x{version="{{ canary_value }}", ns="{{ namespace }}"}[{{ window }}]))',
        },
    )
    q = render_queries(s, 15)
    versions = 'version=~"v1\\\\.41\\\\.0|v1\\\\.42\\\\.0"'
    assert q.requests == (
        f'sum by (version) (increase(http_requests_total{{job="checkout", cluster="eu-1", {versions}}}[15s]))'
    )
    assert q.custom == {
        "throttled": f'sum by (version) (increase(http_requests_total{{ job="checkout", cluster="eu-1", {versions}, code="429" }}[15s]))',
        "pinned": 'sum by (version) (increase(x{version="v1.42.0", ns="shop"}[15s]))',
    }


def test_label_values_are_escaped_for_promql_strings_and_regexes() -> None:
    s = settings(stable_value='a"b', canary_value="c\\d+e")
    q = render_queries(s, 60)
    assert 'version=~"a\\"b|c\\\\\\\\d\\\\+e"' in q.requests


def test_range_is_at_least_min_range_in_whole_seconds() -> None:
    s = settings(scrape_interval="15s")  # min_range defaults to 4 x 15 s
    assert range_for(s, 5.0) == 60
    assert range_for(s, 60.0) == 60
    assert range_for(s, 61.2) == 62
    assert range_for(settings(scrape_interval=1, min_range="2s"), 10.0000001) == 10


# ============================================================================ settings


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "url: is required"),
        ({"url": "prometheus:9090"}, "url: 'prometheus:9090' is not an http"),
        ({"url": "http://u:pw@prom:9090"}, "url: must not carry credentials"),
        ({"preset": "consul"}, "preset: unknown preset 'consul' (known: generic, istio"),
        ({"preset": "linkerd", "variant_by": "version"}, "variant_by: the linkerd preset"),
        ({"timeout": "soon"}, "timeout: 'soon' is not a duration"),
        ({"timeout": 0}, "timeout: must be more than 0s and at most 5m, got 0s"),
        ({"scrape_interval": 15, "min_range": 20}, "min_range: 20 s is less than 2 x"),
        ({"bearer_token": "abc123"}, "bearer_token: secrets are never read from the config"),
        ({"password": "abc123"}, "password: secrets are never read"),
        ({"bearer_token_file": "/nonexistent/token"}, "bearer_token_file: /nonexistent/token"),
        ({"bearer_token_env": "CANARY_TEST_UNSET_VAR"}, "bearer_token_env: environment variable"),
        ({"password_env": "HOME"}, "username: basic auth needs username"),
        ({"canary_value": STABLE}, "canary_value: stable and canary have the same version"),
        ({"custom": {"x": "sum({{ nope }})"}}, "custom.x: unknown placeholder {{ nope }}"),
        ({"custom": ["q"]}, "custom: must map metric names"),
        ({"selector": 'job="{{ job }}"'}, "selector: unknown placeholder {{ job }}"),
        ({"tls_verify": "no"}, "tls_verify: must be true or false"),
        ({"tls": True}, "source.tls: unknown prometheus source setting (known: bearer_token_env,"),
    ],
)
def test_settings_errors_name_the_setting(raw: dict[str, Any], message: str) -> None:
    if raw and "url" not in raw:  # only the first case ({}) leaves the url out on purpose
        raw = {"url": "http://prom:9090", **raw}
    with pytest.raises(AdapterConfigError) as err:
        PrometheusSettings.from_mapping(raw, CANARY_SECTION)
    assert message in str(err.value)
    assert "abc123" not in str(err.value)


def test_workload_presets_need_a_service() -> None:
    with pytest.raises(AdapterConfigError, match="service"):
        PrometheusSettings.from_mapping({"url": "http://p:9090", "preset": "linkerd"})
    s = PrometheusSettings.from_mapping(
        {"url": "http://p:9090", "preset": "linkerd", "stable_value": "a", "canary_value": "b"}
    )
    assert s.values == ("a", "b")


def test_builder_takes_canary_defaults_from_the_context() -> None:
    ctx = AdapterContext(VirtualClock(), shared={"canary": CANARY_SECTION})
    src = build_prometheus_source({"url": "https://prom:9090/", "preset": "istio"}, ctx)
    assert (src.settings.namespace, src.settings.service) == ("shop", "checkout")
    assert src.settings.values == (STABLE, CANARY)
    assert src.settings.tls_verify is True
    assert src.settings.url == "https://prom:9090"


# ============================================================================ a fake Prometheus API


@dataclass
class FakePrometheus:
    """A tiny HTTP server answering /api/v1/query (a vector) and /api/v1/query_range (a
    matrix) with `answer(query) -> (code, body)`; `params` are each request's parameters."""

    url: str
    queries: list[str]
    headers: list[dict[str, str]]
    params: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def fake_prometheus() -> Iterator[Callable[[Callable[[str], Any]], FakePrometheus]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[str], Any]) -> FakePrometheus:
        record = FakePrometheus("", [], [])

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                query = params["query"]
                record.queries.append(query)
                record.headers.append(dict(self.headers))
                record.params.append(params)
                kind = "matrix" if url.path.endswith("/query_range") else "vector"
                got = answer(query)
                code, body = got if isinstance(got, tuple) else (200, got)
                if not isinstance(body, str | bytes):
                    body = json.dumps(
                        {"status": "success", "data": {"resultType": kind, "result": body}}
                    )
                data = body.encode() if isinstance(body, str) else body
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        record.url = f"http://127.0.0.1:{server.server_address[1]}"
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def vec(label: str, rows: dict[tuple[str, ...], float], extra: str = "") -> list[dict[str, Any]]:
    out = []
    for key, value in rows.items():
        metric = {label: key[0]}
        if extra:
            metric[extra] = key[1]
        out.append({"metric": metric, "value": [0, str(value)]})
    return out


def istio_answer(
    *,
    canary_requests: float = 100.0,
    resets: float = 0.0,
    canary_missing: bool = False,
    canary_errors: float = 5.0,
) -> Callable[[str], Any]:
    """Canned Istio answers: milliseconds buckets with a hair-thin inversion in the canary's."""
    label = "destination_version"

    def answer(q: str) -> Any:
        if q.startswith("sum by (destination_version, le)"):
            rows = {
                (STABLE, "100"): 190.0,
                (STABLE, "250"): 199.0,
                (STABLE, "+Inf"): 200.0,
                (CANARY, "100"): 80.0,
                (CANARY, "250"): 79.9999,  # per-series extrapolation noise
                (CANARY, "+Inf"): canary_requests,
            }
            if canary_missing:
                rows = {k: v for k, v in rows.items() if k[0] != CANARY}
            return vec(label, rows, "le")
        if "resets(" in q:
            return vec(label, {(STABLE,): 0.0, (CANARY,): resets})
        if "response_code" in q:
            return vec(label, {(STABLE,): 2.0, (CANARY,): canary_errors})
        rows = {(STABLE,): 200.0, (CANARY,): canary_requests, ("v0.9",): 7.0}
        if canary_missing:
            del rows[(CANARY,)]
        return vec(label, rows)

    return answer


def test_one_query_per_metric_for_both_variants(fake_prometheus: Any) -> None:
    prom = fake_prometheus(istio_answer())
    src = PrometheusSource(
        settings(
            url=prom.url,
            preset="istio",
            scrape_interval=15,
            custom={"slow": "sum by (destination_version) (increase(x[{{ window }}]))"},
        )
    )
    sample = src.fetch(1000.0, 1060.0)
    assert sample.ok, sample.problem
    assert len(prom.queries) == 5  # requests, resets, errors, latency, one custom
    for q in prom.queries:
        if q.startswith("sum by (destination_version) (increase(x"):
            continue
        assert q.startswith("sum by (destination_version")
        assert r'destination_version=~"v1\\.41\\.0|v1\\.42\\.0"' in q


def test_answers_become_counts_in_seconds_scaled_to_the_window(fake_prometheus: Any) -> None:
    prom = fake_prometheus(istio_answer(canary_errors=150.0))
    src = PrometheusSource(settings(url=prom.url, preset="istio", scrape_interval=15))
    sample = src.fetch(1000.0, 1015.0).validated()  # 15 s window < min_range 60 s: x 1/4
    assert sample.ok, sample.problem
    assert sample.baseline is not None and sample.canary is not None
    assert sample.baseline.requests == pytest.approx(50.0)  # the series "v0.9" is ignored
    assert sample.baseline.errors == pytest.approx(0.5)
    assert sample.baseline.latency is not None
    assert sample.baseline.latency.bounds == (0.1, 0.25, math.inf)
    assert sample.baseline.latency.counts == pytest.approx((47.5, 49.75, 50.0))
    assert sample.canary.errors == sample.canary.requests == pytest.approx(25.0)  # capped
    assert sample.canary.latency is not None
    assert sample.canary.latency.counts == pytest.approx((20.0, 20.0, 25.0))  # repaired
    assert sample.canary.latency.is_valid()


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (istio_answer(canary_missing=True), 'no series for canary (destination_version="v1.42.0")'),
        (istio_answer(resets=1.0), "counter reset in the canary series of istio_requests_total"),
        (lambda q: (422, '{"status":"error","error":"many-to-many matching"}'), "HTTP 422"),
        (lambda q: (503, "overloaded"), "HTTP 503 unavailable or query timed out"),
        (lambda q: (200, "<html>login</html>"), "not a Prometheus API answer"),
        (lambda q: [{"metric": {}, "value": "zzz"}], "not a Prometheus API answer"),
    ],
)
def test_bad_answers_are_no_data(fake_prometheus: Any, answer: Any, reason: str) -> None:
    prom = fake_prometheus(answer)
    src = PrometheusSource(settings(url=prom.url, preset="istio", scrape_interval=15))
    sample = src.fetch(1000.0, 1060.0)
    assert not sample.ok
    assert sample.problem is not None
    assert sample.problem.startswith(f"prometheus at {prom.url}: ")
    assert reason in sample.problem


def test_custom_metric_must_be_grouped_by_the_variant_label(fake_prometheus: Any) -> None:
    answers = istio_answer()
    prom = fake_prometheus(lambda q: vec("x", {("1",): 3.0}) if "foo" in q else answers(q))
    src = PrometheusSource(
        settings(url=prom.url, preset="istio", custom={"f": "sum(increase(foo[{{ window }}]))"})
    )
    problem = src.fetch(1000.0, 1060.0).problem
    assert problem is not None and "custom metric f: the result is not grouped by" in problem


# ============================================================================ past windows (range queries)


def matrix(at: dict[float, Callable[[str], Any]]) -> Callable[[str], Any]:
    """A range query's answer stitched from one instant answer per evaluation time."""

    def answer(q: str) -> Any:
        series: dict[str, dict[str, Any]] = {}
        for t, instant in at.items():
            for row in instant(q):
                key = json.dumps(row["metric"], sort_keys=True)
                entry = series.setdefault(key, {"metric": row["metric"], "values": []})
                entry["values"].append([t, row["value"][1]])
        return list(series.values())

    return answer


def window_problem(src: PrometheusSource, start: float, end: float, step_s: float) -> str:
    """The reason of a failed read of past windows: one no-data Sample over the span."""
    got = src.fetch_windows(start, end, step_s)
    assert len(got) == 1 and not got[0].ok, got
    assert (got[0].start, got[0].end) == (start, end) or math.isnan(start)
    assert got[0].problem is not None
    assert got[0].problem.startswith(f"prometheus at {src.settings.url}: "), got[0].problem
    return got[0].problem


def test_prometheus_source_reads_windows() -> None:
    assert isinstance(PrometheusSource(settings()), ReadsWindows)


def test_ticks_cover_the_range_so_they_overlap_when_it_is_longer() -> None:
    """A 5 s tick's counts are an increase() over 60 s (four 15 s scrapes) scaled down: the
    loop then measures the dispersion on 60 s windows; with ticks as long as the range, not."""
    source = PrometheusSource(settings())
    assert isinstance(source, SmoothsTicks)
    assert source.resolution_s(5.0) == 60.0
    assert source.resolution_s(90.0) == 90.0
    fast = PrometheusSource(settings(scrape_interval="1s", min_range="5s"))
    assert fast.resolution_s(5.0) == 5.0


def test_range_answers_become_windows(fake_prometheus: Any) -> None:
    """Four 60 s windows over [1000, 1250): the second lacks the canary, the third holds a
    counter reset; those two are left out, the others are counted like `fetch` counts."""
    prom = fake_prometheus(
        matrix(
            {
                1060.0: istio_answer(canary_errors=150.0),
                1120.0: istio_answer(canary_missing=True),
                1180.0: istio_answer(resets=1.0),
                1240.0: istio_answer(canary_requests=120.0),
            }
        )
    )
    s = settings(
        url=prom.url,
        preset="istio",
        scrape_interval=15,
        custom={"slow": "sum by (destination_version) (increase(x[{{ window }}]))"},
    )
    windows = PrometheusSource(s).fetch_windows(1000.0, 1250.0, 30.0)  # the step: min_range
    q = render_queries(s, 60)
    assert prom.queries == [q.requests, q.resets, q.errors, q.latency, q.custom["slow"]]
    assert all(
        p | {"query": ""} == {"query": "", "start": "1060.000", "end": "1240.000", "step": "60"}
        for p in prom.params
    )
    assert [(w.start, w.end) for w in windows] == [(1000.0, 1060.0), (1180.0, 1240.0)]
    first, last = (w.validated() for w in windows)
    assert first.ok and last.ok, (first.problem, last.problem)
    assert first.baseline is not None and first.canary is not None and last.canary is not None
    assert first.baseline.requests == 200.0  # not scaled: the window is the range
    assert first.baseline.errors == 2.0
    assert first.baseline.latency is not None
    assert first.baseline.latency.counts == (190.0, 199.0, 200.0)
    assert first.canary.errors == first.canary.requests == 100.0  # capped
    assert first.canary.latency is not None
    assert first.canary.latency.counts == (80.0, 80.0, 100.0)  # kept cumulative
    assert first.canary.custom == {"slow": 100.0}  # the fake answers it as requests
    assert last.canary.requests == 120.0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            lambda q: (401, '{"status":"error","error":"authentication required"}'),
            "HTTP 401 unauthorized (check the bearer token or basic auth) (requests query)",
        ),
        (lambda q: (200, "<html>login</html>"), "not a Prometheus API answer (requests query"),
        (lambda q: [{"metric": {}, "values": "zzz"}], "not a Prometheus API answer (requests"),
        (matrix({1061.5: istio_answer()}), "a point at 1061.5 is not one of the evaluation times"),
        (
            matrix({t: istio_answer(canary_missing=True) for t in (1060.0, 1120.0)}),
            "no window of 60 s has data for both variants (the latest: no series for canary",
        ),
    ],
)
def test_failed_window_reads_are_one_no_data_sample(
    fake_prometheus: Any, answer: Any, reason: str
) -> None:
    prom = fake_prometheus(answer)
    src = PrometheusSource(settings(url=prom.url, preset="istio", scrape_interval=15))
    assert reason in window_problem(src, 1000.0, 1130.0, 60.0)


@pytest.mark.parametrize(
    ("span", "reason"),
    [
        ((1000.0, 1059.0, 30.0), "the span of 59 s is shorter than one step of 60 s"),
        ((math.nan, 1060.0, 60.0), "the span from nan to 1060 is not finite"),
        ((1000.0, math.inf, 60.0), "the span from 1000 to inf is not finite"),
        ((1000.0, 1240.0, math.inf), "the step (inf s) is not a positive duration"),
        ((1000.0, 1240.0, -1.0), "the step (-1 s) is not a positive duration"),
    ],
)
def test_spans_without_a_whole_window_ask_nothing(
    fake_prometheus: Any, span: tuple[float, float, float], reason: str
) -> None:
    prom = fake_prometheus(istio_answer())
    src = PrometheusSource(settings(url=prom.url, preset="istio", scrape_interval=15))
    assert window_problem(src, *span).endswith(reason)
    assert prom.queries == []


def test_windows_share_one_timeout(fake_prometheus: Any) -> None:
    """A slow server (0.4 s an answer): the third query runs out of the one 1 s budget."""
    answers = matrix({60.0: istio_answer()})

    def slow(q: str) -> Any:
        time.sleep(0.4)  # the server's slowness under test, not synchronisation
        return answers(q)

    prom = fake_prometheus(slow)
    src = PrometheusSource(settings(url=prom.url, preset="istio", timeout="1s"))
    t0 = time.monotonic()
    problem = window_problem(src, 0.0, 60.0, 60.0)
    assert "timed out after 1 s (" in problem
    assert 2 <= len(prom.queries) < 5
    assert time.monotonic() - t0 < 1.6


def test_a_long_span_is_cut_to_its_most_recent_windows(fake_prometheus: Any) -> None:
    """Prometheus answers at most 11,000 points a series: the step stays, the span shrinks."""
    prom = fake_prometheus(lambda q: [])
    src = PrometheusSource(settings(url=prom.url, scrape_interval=15))
    assert "no window of 60 s has data" in window_problem(src, 0.0, 60.0 * 20_000, 60.0)
    first, last = (20_000 - 11_000 + 1) * 60, 20_000 * 60
    assert prom.params[0] | {"query": ""} == {
        "query": "",
        "start": f"{first:.3f}",
        "end": f"{last:.3f}",
        "step": "60",
    }


# ============================================================================ secrets


def test_tokens_are_sent_but_never_shown(
    fake_prometheus: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cr3t-t0ken-value"
    box: list[FakePrometheus] = []
    # A hostile or buggy server that echoes the Authorization header in its error message.
    prom = fake_prometheus(
        lambda q: (400, json.dumps({"error": f"bad: {box[0].headers[-1]['Authorization']}"}))
    )
    box.append(prom)
    monkeypatch.setenv("CANARY_TEST_TOKEN", token)
    src = PrometheusSource(settings(url=prom.url, bearer_token_env="CANARY_TEST_TOKEN"))
    sample = src.fetch(0.0, 60.0)
    assert prom.headers[-1]["Authorization"] == f"Bearer {token}"  # the token is sent...
    assert sample.problem is not None and "HTTP 400 bad query" in sample.problem
    assert token not in sample.problem and "bad: Bearer ***" in sample.problem  # ...and scrubbed
    assert token not in repr(src) and token not in repr(src.settings)
    windows = src.fetch_windows(0.0, 120.0, 60.0)  # the range queries' reasons too
    assert len(windows) == 1 and windows[0].problem is not None
    assert "HTTP 400 bad query (requests query)" in windows[0].problem
    assert token not in windows[0].problem and "bad: Bearer ***" in windows[0].problem

    path = tmp_path / "password"
    path.write_text("hunter2-password\n")
    basic = PrometheusSource(settings(url=prom.url, username="ops", password_file=str(path)))
    basic.fetch(0.0, 60.0)
    assert prom.headers[-1]["Authorization"].startswith("Basic ")
    assert "hunter2" not in repr(basic) and "hunter2" not in repr(basic.settings)


def test_token_file_is_reread_every_tick(fake_prometheus: Any, tmp_path: Path) -> None:
    prom = fake_prometheus(istio_answer())
    path = tmp_path / "token"
    path.write_text("first\n")
    src = PrometheusSource(settings(url=prom.url, preset="istio", bearer_token_file=str(path)))
    assert src.fetch(0.0, 60.0).ok
    path.write_text("second\n")
    assert src.fetch(60.0, 120.0).ok
    assert prom.headers[0]["Authorization"] == "Bearer first"
    assert prom.headers[-1]["Authorization"] == "Bearer second"
    path.unlink()
    problem = src.fetch(120.0, 180.0).problem
    assert problem is not None and f"cannot read bearer token file {path}" in problem


# ============================================================================ failures without Prometheus


@pytest.mark.parametrize("windows", [False, True], ids=["fetch", "fetch_windows"])
def test_timeout_is_no_data_within_the_budget(windows: bool) -> None:
    """A server that accepts and never answers: no data after `timeout`, not a hang."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        src = PrometheusSource(settings(url=url, timeout="1s"))
        t0 = time.monotonic()
        if windows:
            (sample,) = src.fetch_windows(0.0, 120.0, 60.0)
        else:
            sample = src.fetch(0.0, 60.0)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert sample.problem == f"prometheus at {url}: timed out after 1 s (requests query)"
    assert 0.9 < elapsed < 1.6


def test_the_loop_holds_on_a_dead_prometheus(rig_factory: Any) -> None:
    """Through the engine: every tick is no data, no verdict passes, the canary never moves."""
    rig = rig_factory("healthy", judge="threshold")
    url = f"http://127.0.0.1:{free_port()}"
    rig.engine.source = PrometheusSource(settings(url=url, timeout=1))
    rig.ticks(40)
    assert rig.engine.no_data == f"prometheus at {url}: connection refused"
    assert all(v.status is not Status.PASS for v in rig.engine.verdicts)
    assert rig.engine.state.step_index == 0 and not rig.engine.state.terminal


# ============================================================================ a real Prometheus


def prometheus_or_skip() -> None:
    if find_prometheus() is None:
        message = "Debian's prometheus is not installed (apt-get install -y prometheus)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}: under CI it must be (.ci/run installs it)")
        pytest.skip(message)


SCRAPE_S = 1.0


@dataclass
class Lab:
    prom: PrometheusServer
    service: SimulatedService  # job "sim": the ground-truth comparison
    resetting: SimulatedService  # job "reset": its counters get reset
    exporters: list[SimulatorExporter]

    def source(self, job: str = "sim", **raw: Any) -> PrometheusSource:
        return PrometheusSource(
            settings(url=self.prom.url, scrape_interval=SCRAPE_S, selector=f'job="{job}"', **raw)
        )


def make_service(seed: int) -> SimulatedService:
    svc = SimulatedService(
        WallClock(),
        SimulatorSettings(
            scenario="error-regression",  # canary 5% errors, baseline 2%: errors worth counting
            onset_s=0.0,
            baseline_error_rate=0.02,
            rate=400.0,
            seed=seed,
        ),
    )
    svc.weight = 30
    return svc


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    prometheus_or_skip()
    service, resetting = make_service(1), make_service(2)
    exporters = []
    for svc in (service, resetting):
        exporter, _ = start_exporter(svc, stable_version=STABLE, canary_version=CANARY)
        exporters.append(exporter)
    try:
        targets = {"sim": exporters[0].target, "reset": exporters[1].target}
        with PrometheusServer(targets, scrape_interval_s=SCRAPE_S) as prom:
            prom.wait_for_samples('http_requests_total{job=~"sim|reset"}', 3)
            yield Lab(prom, service, resetting, exporters)
    finally:
        for exporter in exporters:
            exporter.stop()


Totals = dict[str, tuple[float, float, list[float]]]


def truth(svc: SimulatedService, at: float) -> Totals:
    """The simulator's cumulative totals at wall time `at` (advanced to it first)."""
    with svc._lock:
        svc._advance_to(at)
        return {v: (t.requests, t.errors, list(t.buckets)) for v, t in svc.totals.items()}


def tolerance(count: float, window_s: float) -> float:
    """How far Prometheus' increase() may be from the true count of a window.

    increase() sees only the scrapes inside the window and extrapolates linearly to its edges,
    so the error is the traffic of the unsampled edges, at most about one scrape interval on
    each side: Poisson noise of ~2 intervals of traffic (4 sigma), plus one whole interval of
    traffic for a late or missed scrape at one edge (extrapolation then stops short).
    """
    per_s = count / window_s
    return per_s * SCRAPE_S + 4 * math.sqrt(per_s * 2 * SCRAPE_S + 1)


def assert_counts_match(
    lab: Lab, sample: Sample, before: Totals, after: Totals, *, least: float
) -> None:
    """Each variant's counts of the sample are the simulator's between `before` and `after`
    (each over `least` requests), within `tolerance`, latency buckets included."""
    sample = sample.validated()
    assert sample.ok, sample.problem
    span = sample.end - sample.start
    for variant, got in (("baseline", sample.baseline), ("canary", sample.canary)):
        assert got is not None and got.latency is not None
        requests = after[variant][0] - before[variant][0]
        errors = after[variant][1] - before[variant][1]
        assert requests > least
        assert got.requests == pytest.approx(requests, abs=tolerance(requests, span))
        assert got.errors == pytest.approx(errors, abs=tolerance(errors, span))
        assert got.latency.bounds == lab.service.buckets
        cumulative = 0.0
        for i, count in enumerate(got.latency.counts):
            cumulative += after[variant][2][i] - before[variant][2][i]
            assert count == pytest.approx(cumulative, abs=tolerance(cumulative, span)), i


@pytest.mark.prometheus
def test_counts_through_prometheus_match_the_simulator(lab: Lab) -> None:
    src = lab.source(
        custom={
            "server_errors": 'sum by ({{ variant_label }}) (increase(http_requests_total{ {{ matchers }}, code="500" }[{{ window }}]))'
        }
    )
    window = 10.0
    t0 = time.time()
    before = truth(lab.service, t0)
    time.sleep(window)
    t1 = time.time()
    after = truth(lab.service, t1)
    time.sleep(SCRAPE_S)  # let the last scrape at or before t1 land in the TSDB
    sample = src.fetch(t0, t1)
    assert_counts_match(lab, sample, before, after, least=500)  # ~2800 baseline, ~1200 canary
    for got in (sample.baseline, sample.canary):
        assert got is not None
        assert got.custom["server_errors"] == pytest.approx(got.errors, abs=2.0)


@pytest.mark.prometheus
def test_past_windows_through_prometheus_match_the_simulator(lab: Lab) -> None:
    """Two 3 s windows read back with range queries: each matches the simulator's counts of
    its own seconds, and together they tile the span."""
    src = lab.source(min_range="3s")
    step = 3.0
    start = math.ceil(time.time() * 1000) / 1000  # evaluation times are whole milliseconds
    bounds = [start + k * step for k in range(3)]
    totals = []
    for at in bounds:  # the simulator's totals at each window's edge, taken as it passes
        time.sleep(max(0.0, at - time.time()))
        totals.append(truth(lab.service, at))
    time.sleep(SCRAPE_S)  # let the last scrape at or before the span's end land in the TSDB
    windows = src.fetch_windows(start, bounds[-1], 1.0)  # 1 s: widened to min_range
    assert [(w.start, w.end) for w in windows] == pytest.approx(list(itertools.pairwise(bounds)))
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))  # no gap, no overlap
    for window, (before, after) in zip(windows, itertools.pairwise(totals), strict=True):
        assert_counts_match(lab, window, before, after, least=150)  # ~840 and ~360


@pytest.mark.prometheus
def test_bad_query_is_no_data(lab: Lab) -> None:
    src = lab.source(
        custom={"broken": "sum by (version) (increase(http_requests_total[{{ window }}]"}
    )
    sample = src.fetch(time.time() - 5, time.time())
    assert sample.problem is not None
    assert sample.problem.startswith(
        f"prometheus at {lab.prom.url}: HTTP 400 bad query (custom metric broken): "
    )
    assert "parse error" in sample.problem


@pytest.mark.prometheus
def test_empty_result_is_no_data(lab: Lab) -> None:
    now = time.time()
    sample = lab.source(job="nobody").fetch(now - 5, now)
    assert sample.problem == (
        f'prometheus at {lab.prom.url}: no series for baseline (version="{STABLE}") or canary '
        f'(version="{CANARY}") in http_requests_total over the last 5 s'
    )


@pytest.mark.prometheus
def test_counter_reset_is_no_data(lab: Lab) -> None:
    src = lab.source(job="reset")
    t0 = time.time()
    assert src.fetch(t0 - 3, t0).ok
    with lab.resetting._lock:  # the canary's process restarts: its counters start over
        lab.resetting._advance_to(time.time())
        lab.resetting.totals["canary"] = _Totals(buckets=[0.0] * len(lab.resetting.buckets))
    time.sleep(3 * SCRAPE_S)
    t1 = time.time()
    sample = src.fetch(t1 - 4, t1)
    assert sample.problem is not None
    assert "counter reset in the canary series of http_requests_total" in sample.problem


@pytest.mark.prometheus
def test_stopped_server_is_no_data(lab: Lab) -> None:
    with PrometheusServer({"sim": lab.exporters[0].target}) as prom:
        src = PrometheusSource(settings(url=prom.url, scrape_interval=SCRAPE_S))
        answered = src.fetch(time.time() - 5, time.time())
        assert answered.problem is not None and "no series" in answered.problem  # it answered
    sample = src.fetch(time.time() - 5, time.time())
    assert sample.problem == f"prometheus at {prom.url}: connection refused"
