"""A tiny loopback HTTP proxy in front of the real kube-apiserver, for faults on demand.

The real server cannot be asked to answer 500 or to be slow; this proxy can. It listens on
plain HTTP on 127.0.0.1, forwards every request to the apiserver over TLS (streaming watch
responses as they come), and logs each request with the moment it arrived
(`time.perf_counter()`), its method, path, body and the status returned. Rules inject faults:

    proxy.add_rule(method="PATCH", path="/virtualservices/", status=500, times=2)
    proxy.add_rule(method="PATCH", delay_response_s=1.5)          # applied, answered late
    proxy.add_rule(method="PATCH", before=second_writer)           # race: someone writes first

`write_kubeconfig()` makes a kubeconfig that sends a user's token through the proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.support.processes import Running

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass
class Seen:
    """One request as the proxy saw it."""

    t: float
    method: str
    path: str
    body: bytes
    status: int = 0

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Rule:
    method: str | None = None
    path: str | None = None  # substring of the path (with query)
    status: int | None = None  # answer this instead of forwarding
    body: Any = None  # with status: answer this JSON instead of a Status (e.g. discovery)
    delay_s: float = 0.0  # wait before forwarding
    delay_response_s: float = 0.0  # forward, then wait before answering
    before: Callable[[Seen], None] | None = None  # run before forwarding
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and (self.method is None or self.method == method)
            and (self.path is None or self.path in path)
        )


@dataclass
class _State:
    upstream: tuple[str, int]
    context: ssl.SSLContext
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    upstreams: set[http.client.HTTPSConnection] = field(default_factory=set)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server
    _conn: http.client.HTTPSConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _upstream(self) -> http.client.HTTPSConnection:
        conn = self._conn
        if conn is None:
            host, port = self.server.state.upstream
            conn = http.client.HTTPSConnection(host, port, context=self.server.state.context)
            self._conn = conn
            with self.server.state.lock:
                self.server.state.upstreams.add(conn)
        return conn

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(time.perf_counter(), self.command, self.path, body)
        rule = None
        with state.lock:
            state.seen.append(seen)
            for candidate in state.rules:
                if candidate.matches(self.command, self.path):
                    candidate.hits += 1
                    rule = candidate
                    break
        if rule is not None:
            if rule.before is not None:
                rule.before(seen)
            if rule.delay_s:
                time.sleep(rule.delay_s)
            if rule.status is not None:
                seen.status = rule.status
                self._reply_status(rule.status, rule.body)
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        resp = None
        for _attempt in range(2):  # a pooled upstream connection may have been closed
            conn = self._upstream()
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._conn = None
        if resp is None:
            seen.status = 502
            self._reply_status(502)
            return
        seen.status = resp.status
        if rule is not None and rule.delay_response_s:
            time.sleep(rule.delay_response_s)
        try:
            self._relay(resp)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # the client gave up (timeout), closed a watch, or the proxy is stopping
            conn.close()
            self._conn = None
            self.close_connection = True

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if resp.getheader("Content-Length") is not None:
            data = resp.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _reply_status(self, code: int, body: Any = None) -> None:
        reason = {500: "InternalError", 503: "ServiceUnavailable", 404: "NotFound"}.get(
            code, "Failure"
        )
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": f"injected by fault proxy: {code}",
            "reason": reason,
            "code": code,
        }
        data = json.dumps(status if body is None else body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # connections cut at shutdown are expected


class FaultProxy(Running):
    """Context manager: `with FaultProxy(cluster.server_url, cluster.ca_file) as p: p.url`."""

    def __init__(self, upstream_url: str, ca_file: str | Path) -> None:
        parts = urlsplit(upstream_url)
        context = ssl.create_default_context(cafile=str(ca_file))
        self.state = _State((parts.hostname or "127.0.0.1", parts.port or 443), context)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> FaultProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self.state
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every upstream connection (open watches included)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self.state.lock:
            upstreams = list(self.state.upstreams)
            self.state.upstreams.clear()
        for conn in upstreams:
            with contextlib.suppress(OSError):
                if conn.sock is not None:
                    conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()

    # --- rules and the log ------------------------------------------------------------------
    def add_rule(self, **kwargs: Any) -> Rule:
        rule = Rule(**kwargs)
        with self.state.lock:
            self.state.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule and the request log."""
        with self.state.lock:
            self.state.rules.clear()
            self.state.seen.clear()

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self.state.lock:
            return [
                s
                for s in self.state.seen
                if (method is None or s.method == method) and (path is None or path in s.path)
            ]

    def write_kubeconfig(self, path: Path, token: str, namespace: str = "default") -> Path:
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "proxied", "cluster": {"server": self.url}}],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "proxied",
                    "context": {"cluster": "proxied", "user": "user", "namespace": namespace},
                }
            ],
            "current-context": "proxied",
        }
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        with contextlib.suppress(OSError):
            path.chmod(0o600)
        return path
