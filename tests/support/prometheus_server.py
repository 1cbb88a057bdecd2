"""A real, throw-away Prometheus server (Debian's ``prometheus`` package) for tests.

``PrometheusServer`` writes a config that scrapes the given targets every second, starts
Prometheus on a free loopback port with a temporary TSDB, waits for ``/-/ready`` (bounded), and
tears everything down on exit. Startup failures raise with the tail of Prometheus' log.

Usage::

    with PrometheusServer({"sim": "127.0.0.1:9479"}) as prom:
        prom.url            # http://127.0.0.1:PORT
        prom.wait_for_samples('http_requests_total{job="sim"}', 2)

Environment:
    CANARY_PROMETHEUS        path of the prometheus binary (default: /usr/bin/prometheus, PATH)
    CANARY_PROMETHEUS_KEEP   1 = keep the temp dir (config, log, TSDB) after stop
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import yaml

from tests.support.processes import Running, child_setup, free_port, reset_signals

DEBIAN_BINARY = Path("/usr/bin/prometheus")


class PrometheusServerError(RuntimeError):
    """Prometheus could not be found, started or queried."""


def find_prometheus() -> Path | None:
    """The prometheus binary: $CANARY_PROMETHEUS, Debian's /usr/bin/prometheus, or PATH."""
    env = os.environ.get("CANARY_PROMETHEUS")
    if env:
        return Path(env) if os.access(env, os.X_OK) else None
    if os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    found = shutil.which("prometheus")
    return Path(found) if found else None


class PrometheusServer(Running):
    """Prometheus scraping `targets` (job name -> host:port) every `scrape_interval_s`."""

    def __init__(
        self,
        targets: Mapping[str, str],
        *,
        scrape_interval_s: float = 1.0,
        start_timeout_s: float = 30.0,
        binary: Path | None = None,
    ) -> None:
        self.targets = dict(targets)
        self.scrape_interval_s = scrape_interval_s
        self.start_timeout_s = start_timeout_s
        self.binary = binary
        self.port = 0
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        binary = self.binary or find_prometheus()
        if binary is None:
            raise PrometheusServerError(
                "prometheus not found: apt-get install -y prometheus (or set CANARY_PROMETHEUS)"
            )
        self.workdir = Path(tempfile.mkdtemp(prefix="canary-prometheus-"))
        config = self.workdir / "prometheus.yml"
        interval = f"{self.scrape_interval_s:g}s"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": interval,
                        "scrape_timeout": interval,
                        "evaluation_interval": interval,
                    },
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [target]}]}
                        for job, target in self.targets.items()
                    ],
                }
            ),
            encoding="utf-8",
        )
        last_error: PrometheusServerError | None = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            try:
                self._spawn(binary, config)
                self._wait_ready()
                return
            except PrometheusServerError as exc:
                last_error = exc
                self._terminate()
                if "address already in use" not in str(exc):
                    break
        self.stop()
        assert last_error is not None
        raise last_error

    def _spawn(self, binary: Path, config: Path) -> None:
        assert self.workdir is not None
        self._log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop
        in_main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.console.templates=/nonexistent",  # Debian's defaults point to /etc
                "--web.console.libraries=/nonexistent",
                "--log.level=info",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            # PDEATHSIG is tied to the forking *thread*: only safe from the main thread.
            preexec_fn=child_setup if in_main else reset_signals,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last = "no answer yet"
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._failure(f"prometheus exited with code {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except OSError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise self._failure(
                    f"prometheus not ready at {self.url} after {self.start_timeout_s:g} s "
                    f"(last answer: {last})"
                )
            time.sleep(0.1)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop Prometheus (idempotent) and remove its temp dir unless asked to keep it."""
        self._terminate()
        if self.workdir is not None and os.environ.get("CANARY_PROMETHEUS_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ helpers
    def log_tail(self, lines: int = 40) -> str:
        if self.workdir is None or not (self.workdir / "prometheus.log").exists():
            return ""
        text = (self.workdir / "prometheus.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _failure(self, message: str) -> PrometheusServerError:
        return PrometheusServerError(
            f"{message}\n--- last lines of prometheus.log ---\n{self.log_tail()}"
        )

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query straight through the HTTP API (for test setup, not the adapter)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for_samples(self, selector: str, count: int, timeout_s: float = 15.0) -> None:
        """Wait until every series of `selector` has `count` samples in the last minute."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.query(f"count_over_time({selector}[1m])")
            if got and min(float(r["value"][1]) for r in got) >= count:
                return
            if time.monotonic() > deadline:
                raise self._failure(f"{selector}: fewer than {count} samples after {timeout_s} s")
            time.sleep(0.2)
