"""A scrape target for the `watch` tests: counters that grow with the wall clock, per variant,
under whatever label names and values a test says (so a real Prometheus holds exactly the
series a cluster's pods would report, e.g. `version="v1"` or `destination_version="v2"`).

Each variant serves `rate` requests per second since the target started, 1% of them errors,
with latencies spread over three buckets. The values are a pure function of the elapsed time,
so they never reset and `increase()` over any range is positive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.processes import Running


@dataclass
class Family:
    """One preset's metric names and label conventions."""

    requests: str
    buckets: str
    code_label: str
    bounds: tuple[str, ...]  # `le` values, last "+Inf"
    labels: Mapping[str, str] = field(default_factory=dict)  # on every series


GENERIC = Family("http_requests_total", "http_request_duration_seconds_bucket", "code",
                 ("0.1", "0.25", "+Inf"))  # fmt: skip


def istio(namespace: str, service: str) -> Family:
    return Family(
        "istio_requests_total", "istio_request_duration_milliseconds_bucket", "response_code",
        ("100", "250", "+Inf"),
        {"reporter": "destination", "destination_workload_namespace": namespace,
         "destination_service_name": service},
    )  # fmt: skip


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


class GrowingTarget(Running):
    """`with GrowingTarget(GENERIC, "version", ["v1", "v2"]) as t: t.address`."""

    def __init__(
        self, family: Family, label: str, values: list[str], *, rate: float = 50.0
    ) -> None:
        self.family, self.label, self.values, self.rate = family, label, values, rate
        self.started = time.monotonic()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("not started")
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def render(self) -> str:
        f, elapsed = self.family, time.monotonic() - self.started
        total = self.rate * elapsed
        out = []
        for value in self.values:
            base = {**f.labels, self.label: value}
            out.append(f"{f.requests}{_labels({**base, f.code_label: '200'})} {total * 0.99:.3f}")
            out.append(f"{f.requests}{_labels({**base, f.code_label: '500'})} {total * 0.01:.3f}")
            for bound, share in zip(f.bounds, (0.6, 0.9, 1.0), strict=True):
                out.append(f"{f.buckets}{_labels({**base, 'le': bound})} {total * share:.3f}")
        return "\n".join(out) + "\n"

    def start(self) -> GrowingTarget:
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = target.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
