"""The simulator as a real Prometheus target: its cumulative counters on a /metrics endpoint.

Metric names follow the `generic` preset of adapters/prometheus/, so a real Prometheus that
scrapes this endpoint can be read back with ``preset: generic``:

* ``http_requests_total{version, code}``: code "200" (served fine) and "500" (errors)
* ``http_request_duration_seconds_bucket{version, le}``: cumulative buckets (no _sum/_count:
  the simulator does not track the latency sum, and inventing one would mislead)

Every series exists from the first scrape (at 0), as a real instrumented service's would, so
that ``increase()`` never misses a series' first requests. Each scrape first advances the
simulator to its clock's now, so a scrape's values are the ground truth at that instant.

``demo_source_via_prometheus`` wires the demo through a real Prometheus: it serves the
endpoint, and returns a PrometheusSource that reads the counters back from that Prometheus.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from adapters.prometheus import PrometheusSettings, PrometheusSource
from adapters.simulator import SimulatedService

#: Where `canary-tui demo --prometheus URL` serves the simulator's metrics by default.
DEFAULT_EXPORTER_PORT = 9479
#: The job name the demo's scrape config uses and the demo's source filters on.
DEMO_JOB = "canary-tui-demo"


def _le(bound: float) -> str:
    """A bucket's `le` label as prometheus_client writes it ("0.005", "1.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class SimulatorCollector(Collector):
    """Renders the service's cumulative totals at scrape time (after advancing it to now)."""

    def __init__(
        self,
        service: SimulatedService,
        stable_version: str = "stable",
        canary_version: str = "canary",
    ) -> None:
        if stable_version == canary_version:
            raise ValueError("stable_version and canary_version must differ")
        self.service = service
        self.versions = {"baseline": stable_version, "canary": canary_version}

    def snapshot(self) -> dict[str, tuple[float, float, tuple[float, ...]]]:
        """Per variant: (requests, errors, per-bucket counts) at the clock's now."""
        svc = self.service
        with svc._lock:
            svc._advance_to(svc.clock.now())
            return {
                variant: (t.requests, t.errors, tuple(t.buckets))
                for variant, t in svc.totals.items()
            }

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        snap = self.snapshot()
        bounds = self.service.buckets
        requests = CounterMetricFamily(
            "http_requests",
            "Requests served by the simulated service, by version and status code.",
            labels=["version", "code"],
        )
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Latency of the simulated service's requests, by version.",
            labels=["version"],
        )
        for variant, version in self.versions.items():
            total, errors, per_bucket = snap[variant]
            requests.add_metric([version, "200"], total - errors)
            requests.add_metric([version, "500"], errors)
            cumulative, running = [], 0.0
            for bound, count in zip(bounds, per_bucket, strict=True):
                running += count
                cumulative.append((_le(bound), running))
            latency.add_metric([version], cumulative, sum_value=None)
        yield requests
        yield latency


@dataclass
class SimulatorExporter:
    """A running /metrics endpoint; `stop()` shuts it down (idempotent)."""

    server: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape config's static target."""
        return self.url.removeprefix("http://").removesuffix("/metrics")

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=5)
        self.server.server_close()


def start_exporter(
    service: SimulatedService,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    stable_version: str = "stable",
    canary_version: str = "canary",
) -> tuple[SimulatorExporter, int]:
    """Serve `service` on http://host:port/metrics in a daemon thread; port 0 picks a free one.

    Returns the exporter (call `.stop()` or `stop_exporter`) and the port it listens on.
    Binds to loopback unless told otherwise: the demo has no reason to be reachable from afar.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SimulatorCollector(service, stable_version, canary_version))
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])
    return SimulatorExporter(server, thread, host, bound), bound


def stop_exporter(exporter: SimulatorExporter) -> None:
    exporter.stop()


def scrape_config(target: str, job: str = DEMO_JOB, interval_s: float = 15.0) -> str:
    """A prometheus.yml snippet that scrapes the exporter at `target` (host:port)."""
    return (
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        f"    scrape_interval: {interval_s:g}s\n"
        f"    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )


@dataclass
class PrometheusDemo:
    """The demo through a real Prometheus: the exporter Prometheus scrapes, the source reading
    it back, and the scrape config to add to Prometheus. `stop()` stops the exporter."""

    source: PrometheusSource
    exporter: SimulatorExporter
    scrape_config: str

    def stop(self) -> None:
        self.exporter.stop()
        self.source.close()


def demo_source_via_prometheus(
    service: SimulatedService,
    url: str,
    *,
    exporter_host: str = "127.0.0.1",
    exporter_port: int = DEFAULT_EXPORTER_PORT,
    scrape_interval: float = 15.0,
    stable_version: str = "stable",
    canary_version: str = "canary",
    timeout: float = 3.0,
) -> PrometheusDemo:
    """Serve `service`'s metrics and return a source that reads them from Prometheus at `url`.

    Prometheus must scrape the exporter with job name ``canary-tui-demo`` (see
    ``PrometheusDemo.scrape_config``); the source filters on that job. Raises
    AdapterConfigError for a bad url and OSError when the port is taken.
    """
    settings = PrometheusSettings.from_mapping(
        {
            "url": url,
            "preset": "generic",
            "stable_version": stable_version,
            "canary_version": canary_version,
            "selector": f'job="{DEMO_JOB}"',
            "scrape_interval": scrape_interval,
            "timeout": timeout,
        }
    )
    exporter, _ = start_exporter(
        service,
        exporter_host,
        exporter_port,
        stable_version=stable_version,
        canary_version=canary_version,
    )
    return PrometheusDemo(
        PrometheusSource(settings),
        exporter,
        scrape_config(exporter.target, DEMO_JOB, scrape_interval),
    )
