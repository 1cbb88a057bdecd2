"""`canary-tui demo --prometheus URL`: the demo's counts go through a real Prometheus."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.session.conftest import Watcher, make_daemon
from tests.support.processes import child_setup, free_port, stop
from tests.support.prometheus_server import PrometheusServer
from tests.test_prometheus_source import prometheus_or_skip

pytestmark = pytest.mark.prometheus


async def test_demo_reads_its_metrics_back_through_prometheus(tmp_path: Path) -> None:
    prometheus_or_skip()
    port = free_port()
    with PrometheusServer({"canary-tui-demo": f"127.0.0.1:{port}"}, scrape_interval_s=1.0) as prom:
        d = make_daemon(tmp_path)
        proc_args = ["serve", "--demo", "--audit", str(tmp_path / "audit.jsonl"), "--prometheus",
                     prom.url, "--exporter-port", str(port)]  # fmt: skip
        import subprocess
        import sys

        from tests.session.conftest import REPO

        with d.log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "canary_tui.cli", *proc_args],
                                    cwd=REPO, env=d.env, stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, preexec_fn=child_setup)  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not d.socket.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            w = await Watcher(d.socket).attach()
            assert w.last.info.metrics == f"prometheus {prom.url}"
            assert any("canary-tui-demo" in e.text for f in w.frames for e in f.activity)
            await w.until(lambda: w.last.verdicts and not w.last.no_data
                          and w.last.sample is not None and w.last.sample.ok
                          and w.last.sample.canary is not None
                          and w.last.sample.canary.requests > 0,
                          "counts read back through Prometheus", timeout=45)  # fmt: skip
            await w.session.detach()
        finally:
            stop(proc)
