"""No secret reaches any log, message or record, and nothing queued is lost at exit.

Secrets are planted in webhook URLs (path, user info, query token), the Prometheus bearer
token and basic-auth password; real HTTP servers on 127.0.0.1 fail in every way (HTTP 401
and 500 that quote the request's credentials back, a hang past the timeout, a refused
connection); the real `canary-tui run --headless` runs against them; then every output (the
audit log, the recording decompressed chunk by chunk, stdout, stderr) is searched for every
secret, raw and encoded.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary_tui.records import chunks
from canary_tui.records.audit import read_head, verify_against
from canary_tui.records.recording import Recording
from tests.support.processes import child_setup

ROOT = Path(__file__).resolve().parents[1]

HOOK_PATH = "T0PATHSECRET1/B0PATHSECRET2/xoxbPathSecret3456"
HOOK_PASSWORD = "hookpassSecret5678"
HOOK_QUERY = "queryTokenSecret9012"
HOOK_401 = "hook401PathSecretAbcd"
HOOK_HANG = "hookHangSecretEfgh"
HOOK_HANG_QUERY = "accessTokenSecretMnop"
HOOK_REFUSED = "hookRefusedSecretIjkl"
HOOK_ENV = "hookFromEnvSecretQrst"
PROM_TOKEN = "promBearerSecret3456xyz"
PROM_USER = "promuser"
PROM_PASSWORD = "promBasicSecret7890abc"
SECRETS = [
    HOOK_PATH, *HOOK_PATH.split("/"), HOOK_PASSWORD, HOOK_QUERY, HOOK_401, HOOK_HANG,
    HOOK_HANG_QUERY, HOOK_REFUSED, HOOK_ENV, PROM_TOKEN, PROM_PASSWORD,
]  # fmt: skip


def forms(secret: str) -> set[str]:
    """A secret as it could be written: raw, base64 (alone and as basic auth), JSON-escaped."""
    b64 = base64.b64encode(secret.encode()).decode()
    basic = base64.b64encode(f"{PROM_USER}:{secret}".encode()).decode()
    return {secret, b64, b64.rstrip("="), basic, basic.rstrip("="), json.dumps(secret)[1:-1]}


class Server:
    """A real HTTP server on loopback. It answers every request with `status`, and its body
    quotes the request line and Authorization header back (the worst case for a leak), or
    with `hang` it holds the request until released (a timeout for the client)."""

    def __init__(self, status: int = 200, *, hang: bool = False, slow_s: float = 0.0) -> None:
        self.status, self.hang, self.slow_s = status, hang, slow_s
        self.requests: list[tuple[str, str, bytes]] = []
        self.release = threading.Event()
        self.received = threading.Event()  # a request has arrived
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, body))
                server.received.set()
                if server.hang or server.slow_s:  # a slow webhook: it answers late
                    server.release.wait(server.slow_s or 30)
                echo = f"denied {self.requestline} auth={self.headers.get('Authorization')}"
                data = json.dumps({"status": "error", "errorType": "x", "error": echo}).encode()
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def servers() -> Iterator[dict[str, Server]]:
    made = {
        "500": Server(500),
        "401": Server(401),
        "hang": Server(hang=True),
        "ok-slow": Server(200, slow_s=1.5),
    }
    yield made
    for s in made.values():
        s.close()


def webhooks(servers: dict[str, Server]) -> list[dict[str, Any]]:
    host500 = servers["500"].base.removeprefix("http://")
    return [
        {"url": f"http://hookuser:{HOOK_PASSWORD}@{host500}/services/{HOOK_PATH}"
                f"?token={HOOK_QUERY}", "attempts": 2, "timeout": "1s"},
        {"url": f"{servers['401'].base}/services/{HOOK_401}", "attempts": 2, "timeout": "1s"},
        {"url": f"{servers['hang'].base}/hooks/{HOOK_HANG}?access_token={HOOK_HANG_QUERY}",
         "attempts": 2, "timeout": "500ms"},
        {"url": f"http://127.0.0.1:{refused_port()}/hooks/{HOOK_REFUSED}", "attempts": 2},
        {"url_env": "SECRET_TEST_HOOK_URL", "attempts": 2, "timeout": "1s"},
    ]  # fmt: skip


def prometheus_source(mode: str, servers: dict[str, Server], tmp_path: Path) -> dict[str, Any]:
    auth, failure = mode.split("-", 1)
    url = {
        "401": servers["401"].base,
        "500": servers["500"].base,
        "hang": servers["hang"].base,
        "refused": f"http://127.0.0.1:{refused_port()}",
    }[failure]
    source: dict[str, Any] = {"kind": "prometheus", "url": url, "timeout": "500ms",
                              "service": "checkout", "scrape_interval": 1}  # fmt: skip
    if auth == "bearer":
        source["bearer_token_env"] = "SECRET_TEST_PROM_TOKEN"
    else:
        pw = tmp_path / "prom-password"
        pw.write_text(PROM_PASSWORD + "\n")
        source.update(username=PROM_USER, password_file=str(pw))
    return source


def write_config(tmp_path: Path, source: dict[str, Any], hooks: list[dict[str, Any]]) -> Path:
    config = {
        "canary": {"name": "checkout", "service": "checkout"},
        "plan": [{"weight": 5, "hold": "1m"}, {"weight": 50, "hold": "1m"}],
        "loop": {"tick": "500ms", "no_data": {"grace": "1s", "action": "rollback"}},
        "audit": {"path": str(tmp_path / "audit.jsonl")},
        "alerts": {"webhooks": hooks},
        "source": source,
        "router": {"kind": "simulator"},
    }
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(
    tmp_path: Path, *args: str, env: dict[str, str], optimize: bool = False
) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "CANARY_TUI_RECORDINGS": str(tmp_path / "recordings"), **env}
    return subprocess.run(
        [sys.executable, *(["-O"] if optimize else []), "-m", "canary_tui.cli", *args],
        capture_output=True, timeout=120, cwd=ROOT, env=full, stdin=subprocess.DEVNULL,
        preexec_fn=child_setup,
    )  # fmt: skip


def recording_text(path: Path) -> bytes:
    """Every chunk of a recording, decompressed, with the raw bytes of the file."""
    data = path.read_bytes()
    out = [data]
    offset = chunks.PREAMBLE.size
    with path.open("rb") as f:
        while offset < len(data):
            try:
                info, payload = chunks.read_chunk(f, offset, len(data))
            except chunks.ChunkError:
                break
            out.append(json.dumps(info.meta).encode())
            for part in range(len(info.meta.get("z", []))):
                out.append(chunks.decompress(info, payload, part))
            offset = info.end
    return b"\n".join(out)


def leaks(outputs: dict[str, bytes]) -> list[tuple[str, str]]:
    found = []
    for name, data in outputs.items():
        for secret in SECRETS:
            for form in forms(secret):
                if form.encode() in data:
                    found.append((name, form))
    return found


@pytest.mark.parametrize("mode", ["bearer-401", "basic-500", "bearer-hang", "basic-refused"])
def test_no_secret_in_any_output_when_everything_fails(
    tmp_path: Path, servers: dict[str, Server], mode: str
) -> None:
    env_hook = f"{servers['500'].base}/hooks/{HOOK_ENV}"
    config = write_config(tmp_path, prometheus_source(mode, servers, tmp_path), webhooks(servers))
    env = {"SECRET_TEST_PROM_TOKEN": PROM_TOKEN, "SECRET_TEST_HOOK_URL": env_hook}
    # one run under python -O: no assert carries behaviour
    optimize = mode == "basic-refused"
    out = run(tmp_path, "run", "--config", str(config), "--headless", env=env, optimize=optimize)
    stderr = out.stderr.decode(errors="replace")
    assert out.returncode == 1, stderr[-3000:]  # rolled back: no data past the grace
    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert events[-1]["outcome"] == "rolled_back"
    # The failures really happened, and were reported (with no secret in the report):
    assert len(servers["500"].requests) >= 2 and len(servers["401"].requests) >= 2
    assert servers["hang"].requests
    for reason in ("HTTP 500", "HTTP 401", "timed out", "connection refused"):
        assert reason in stderr, stderr[-3000:]
    prometheus = {
        "bearer-401": "HTTP 401",
        "basic-500": "HTTP 500",
        "bearer-hang": "timed out",
        "basic-refused": "connection refused",
    }[mode]
    no_data = [e for e in events if e.get("event") == "activity" and "prometheus" in str(e)]
    assert any(prometheus in str(e) for e in no_data), no_data[-3:]
    recordings = list((tmp_path / "recordings").glob("*.ctrec"))
    assert len(recordings) == 1
    outputs = {
        "stdout": out.stdout,
        "stderr": out.stderr,
        "audit log": (tmp_path / "audit.jsonl").read_bytes(),
        "recording": recording_text(recordings[0]),
    }
    assert b"prometheus" in outputs["recording"] and b"rolled" in outputs["audit log"].lower()
    assert leaks(outputs) == []
    # nothing lost at exit: the recording was closed whole, and anchors the log's last record
    with Recording.open(recordings[0]) as rec:
        assert rec.complete and rec.audit_anchor == read_head(tmp_path / "audit.jsonl")
    assert verify_against(tmp_path / "audit.jsonl", rec.audit_anchors).ok


def test_an_alert_queued_just_before_a_headless_exit_is_sent(
    tmp_path: Path, servers: dict[str, Server]
) -> None:
    """The rollback alert is queued in the very frame that ends the run, behind the "metrics
    went silent" alert that the slow webhook (1.5 s an answer) is still taking: it is
    delivered before the process exits (a bounded wait), not dropped with the sender."""
    ok = servers["ok-slow"]
    source = prometheus_source("bearer-refused", servers, tmp_path)
    config = write_config(tmp_path, source, [{"url": f"{ok.base}/hooks/ok", "attempts": 1}])
    out = run(tmp_path, "run", "--config", str(config), "--headless",
              env={"SECRET_TEST_PROM_TOKEN": PROM_TOKEN})  # fmt: skip
    assert out.returncode == 1, out.stderr[-2000:]
    texts = [json.loads(body)["text"] for _, _, body in ok.requests]
    assert len(texts) >= 2 and any("ROLLED BACK" in t for t in texts[1:]), texts


def test_a_hanging_webhook_delays_the_exit_boundedly_and_says_what_was_lost(
    tmp_path: Path, servers: dict[str, Server]
) -> None:
    hang = servers["hang"]
    source = prometheus_source("bearer-refused", servers, tmp_path)
    hook = {"url": f"{hang.base}/hooks/{HOOK_HANG}", "attempts": 3, "timeout": "60s"}
    config = write_config(tmp_path, source, [hook])
    out = run(tmp_path, "run", "--config", str(config), "--headless",
              env={"SECRET_TEST_PROM_TOKEN": PROM_TOKEN})  # fmt: skip
    stderr = out.stderr.decode(errors="replace")
    assert out.returncode == 1, stderr[-2000:]  # it exited, within run()'s 120 s timeout
    assert hang.requests and "not sent at exit" in stderr
    assert HOOK_HANG not in stderr


# --- the sender's failure descriptions and its bounded close, in process ------------------


def _fire(alerter: Any, text: str = "ROLLED BACK automatically") -> None:
    from canary_tui.core.frames import ActivityEntry

    frame = type("F", (), {})()
    frame.activity = [ActivityEntry(t=0.0, kind="alert", actor="loop", text=text)]
    frame.info = type("I", (), {"name": "checkout"})()
    alerter.on_frame(frame)


@pytest.mark.parametrize(
    ("which", "expected"),
    [("500", "HTTP 500 Internal Server Error"), ("401", "HTTP 401 Unauthorized"),
     ("hang", "timed out after 0.3 s"), ("refused", "connection refused")],
)  # fmt: skip
def test_failures_are_described_by_kind_never_by_the_url(
    servers: dict[str, Server], which: str, expected: str
) -> None:
    import httpx

    from canary_tui.engine.alerts import describe_failure

    base = servers[which].base if which in servers else f"http://127.0.0.1:{refused_port()}"
    url = f"{base}/services/{HOOK_PATH}?token={HOOK_QUERY}"
    with httpx.Client() as client:
        try:
            client.post(url, json={}, timeout=0.3).raise_for_status()
        except Exception as exc:  # the real exception httpx raises for this failure
            assert HOOK_PATH in str(exc) or which in ("hang", "refused")  # httpx quotes the URL
            assert describe_failure(exc, 0.3) == expected
        else:
            pytest.fail("the request should have failed")


def test_close_sends_what_is_queued_then_stops(servers: dict[str, Server]) -> None:
    from canary_tui.engine.alerts import Webhook, WebhookAlerter

    slow = servers["ok-slow"]
    alerter = WebhookAlerter([Webhook(f"{slow.base}/hooks/ok", attempts=1)])
    _fire(alerter, "metrics went silent")
    _fire(alerter, "ROLLED BACK automatically")
    assert alerter.close(timeout=30)
    assert [json.loads(b)["text"].split(": ", 1)[1][:10] for _, _, b in slow.requests] == [
        "metrics we", "ROLLED BAC"]  # fmt: skip
    assert alerter.sent == 2 and alerter.unsent == 0
    assert alerter.close(timeout=1)  # idempotent


def test_close_is_bounded_and_reports_what_it_could_not_send(
    servers: dict[str, Server], caplog: pytest.LogCaptureFixture
) -> None:
    from canary_tui.engine.alerts import Webhook, WebhookAlerter

    hang = servers["hang"]
    url = f"{hang.base}/hooks/{HOOK_HANG}?access_token={HOOK_HANG_QUERY}"
    alerter = WebhookAlerter([Webhook(url, attempts=3, timeout_s=60)])
    hang.received.clear()
    for i in range(3):
        _fire(alerter, f"alert {i}")
    # the first alert is on the wire with its 60 s timeout before close is asked (otherwise,
    # on a loaded machine, the sender may start only after close cut its timeout, give all
    # three up in time and rightly report that as done)
    assert hang.received.wait(10)
    with caplog.at_level("WARNING", logger="canary_tui.alerts"):
        assert not alerter.close(timeout=0.5)
    text = caplog.text
    assert "3 alert(s) not sent at exit" in text
    assert HOOK_HANG not in text and HOOK_HANG_QUERY not in text
    hang.release.set()


def test_no_secret_in_the_daemon_log(tmp_path: Path, servers: dict[str, Server]) -> None:
    """`canary-tui serve` (the session daemon) with the same planted secrets and failures:
    nothing in its log, the audit log or the recording quotes a secret."""
    import signal
    import time

    env_hook = f"{servers['500'].base}/hooks/{HOOK_ENV}"
    source = prometheus_source("bearer-401", servers, tmp_path)
    config = write_config(tmp_path, source, webhooks(servers))
    env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1",
           "CANARY_TUI_RECORDINGS": str(tmp_path / "recordings"),
           "SECRET_TEST_PROM_TOKEN": PROM_TOKEN, "SECRET_TEST_HOOK_URL": env_hook}  # fmt: skip
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "canary_tui.cli", "serve", "--config", str(config)],
            cwd=ROOT, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=child_setup,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(servers["500"].requests) >= 4 and len(servers["401"].requests) >= 2:
                break  # the rollback alert went out, and failed, on every webhook
            time.sleep(0.1)
        assert len(servers["401"].requests) >= 2, log.read_text()[-3000:]
        time.sleep(1.0)  # the retries' failure lines reach the log (backoff 1 s)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    text = log.read_bytes()
    assert b"HTTP 401" in text and b"webhook" in text
    outputs = {"daemon log": text, "audit log": (tmp_path / "audit.jsonl").read_bytes()}
    recordings = sorted((tmp_path / "recordings").glob("*.ctrec"))
    for i, path in enumerate(recordings):
        outputs[f"recording {i}"] = recording_text(path)
    assert leaks(outputs) == []
    assert proc.returncode == 0  # stopped by SIGTERM, cleanly: and nothing lost at exit
    with Recording.open(recordings[-1]) as rec:
        assert rec.complete and rec.audit_anchor == read_head(tmp_path / "audit.jsonl")


def test_an_unexplained_prometheus_failure_logs_its_trace_once_and_scrubbed(
    tmp_path: Path, servers: dict[str, Server], caplog: pytest.LogCaptureFixture
) -> None:
    """A failure nobody foresaw (a bug in a client) keeps its traceback for the log, once per
    kind (not every tick), with the credentials it quotes masked."""
    from adapters.prometheus import PrometheusSettings, PrometheusSource

    class Buggy:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.session = kwargs["session"]

        def custom_query(self, *args: Any, **kwargs: Any) -> Any:
            auth = self.session.headers["Authorization"]
            raise ZeroDivisionError(f"bug while sending {auth}")

        def close(self) -> None:
            pass

    os.environ["SECRET_TEST_PROM_TOKEN"] = PROM_TOKEN
    try:
        settings = PrometheusSettings.from_mapping(
            {"url": servers["500"].base, "service": "checkout",
             "bearer_token_env": "SECRET_TEST_PROM_TOKEN"}
        )  # fmt: skip
        source = PrometheusSource(settings, client_factory=Buggy)
        with caplog.at_level("WARNING", logger="canary_tui.adapters.prometheus"):
            first, second = source.fetch(0, 60), source.fetch(60, 120)
    finally:
        del os.environ["SECRET_TEST_PROM_TOKEN"]
    assert first.problem and "unexpected error" in first.problem and second.problem
    traces = [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert len(traces) == 1 and "ZeroDivisionError" in traces[0].getMessage()
    assert "Traceback" in traces[0].getMessage()
    assert PROM_TOKEN not in caplog.text and PROM_TOKEN not in str(first.problem)
