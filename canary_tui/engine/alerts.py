"""Alerts out of the loop: Slack-compatible webhooks for rollbacks, FAIL verdicts and silent
metrics. Sent from a background thread with a bounded queue: a slow or failing webhook is
retried a bounded number of times and never blocks the loop.

A webhook URL is a secret (Slack puts the token in its path): it never reaches a log or an
error message. A failure is described from its kind (HTTP status, timeout, refused
connection), never from the HTTP library's text, which quotes the URL. At exit, `close`
sends what is queued within a bounded wait, and says how many alerts it could not send.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from canary_tui.core.alerting import distinct_alerts
from canary_tui.core.frames import Frame
from canary_tui.records.redact import Scrubber, url_secrets

log = logging.getLogger("canary_tui.alerts")

#: How long the exit waits for queued alerts, when nobody closed the alerter before.
EXIT_WAIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    timeout_s: float = 5.0
    attempts: int = 3
    backoff_s: float = 1.0

    def __repr__(self) -> str:  # the URL may carry a token: never print it whole
        return f"Webhook({redact_url(self.url)})"


def redact_url(url: str) -> str:
    """Keep scheme and host, hide path and query (Slack puts the secret in the path)."""
    head, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split("@")[-1]
    return f"{head}{sep}{host}/…" if sep else "…"


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """Why a post failed, for a person: from the failure's kind, never its text (httpx's
    messages quote the URL, and the URL is a secret)."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {timeout_s:g} s"
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any(isinstance(x, ConnectionRefusedError) for x in chain) or any(
        isinstance(x, OSError) and x.errno == errno.ECONNREFUSED for x in chain
    ):
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect (DNS, network or TLS)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection or answered with something not HTTP"
    if isinstance(exc, httpx.HTTPError):
        return f"HTTP error ({type(exc).__name__})"
    return f"unexpected error ({type(exc).__name__})"


class _ScrubLog(logging.Filter):
    """Scrubs webhook secrets out of the HTTP library's own log records: httpx logs every
    request at INFO with its full URL ("HTTP Request: POST https://hooks.../T0/B0/token")."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self._scrub = Scrubber()

    def add(self, secrets: list[str]) -> None:
        self.secrets.update(secrets)
        self._scrub = Scrubber(self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: drop its arguments, keep nothing secret
            text = str(record.msg)
        record.msg, record.args = self._scrub(text), None
        return True


_HTTP_LOG_FILTER = _ScrubLog()


def _guard_http_logs(secrets: list[str]) -> None:
    """Keep the HTTP library's per-request lines out of our logs (WARNING unless someone set
    a level on purpose), and scrub our secrets from whatever it still logs."""
    _HTTP_LOG_FILTER.add(secrets)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
        if _HTTP_LOG_FILTER not in logger.filters:
            logger.addFilter(_HTTP_LOG_FILTER)


def slack_body(canary: str, text: str, at: float) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return {"text": f"[canary-tui] {canary}: {text} ({stamp})", "username": "canary-tui"}


class WebhookAlerter:
    """Subscribe it to an engine: every new `alert` activity entry is posted to each webhook.

    `flush(timeout)` waits for the queue to drain; `close(timeout)` sends what is queued
    within `timeout` seconds (cutting retries short), then stops. The alerter also closes
    itself at interpreter exit (with `EXIT_WAIT_S`), so an alert queued just before a
    headless run ends is sent, not lost."""

    def __init__(self, webhooks: Sequence[Webhook], *, queue_size: int = 100,
                 post: Callable[[Webhook, dict[str, Any]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.webhooks = tuple(webhooks)
        self._queue: queue.Queue[tuple[Webhook, dict[str, Any]] | None] = queue.Queue(queue_size)
        self._post = post or self._http_post
        self._sleep = sleep
        secrets = [s for hook in self.webhooks for s in url_secrets(hook.url)]
        self._scrub = Scrubber(secrets)
        if self.webhooks:
            _guard_http_logs(secrets)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.unsent = 0  # given up at close, when its bounded wait ran out
        self._deadline: float | None = None  # set by close: retries stop at this time
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="canary-alerts", daemon=True)
        self._client: httpx.Client | None = None
        if self.webhooks:
            self._thread.start()
            atexit.register(self.close, EXIT_WAIT_S)

    def on_frame(self, frame: Frame) -> None:
        """Engine subscriber: never blocks; drops (and counts) when the queue is full."""
        if self._closed:
            return
        alerts = [entry for entry in frame.activity if entry.kind == "alert"]
        news = distinct_alerts([entry.text for entry in alerts])
        for entry in alerts:
            if entry.text not in news:
                continue
            news.remove(entry.text)
            body = slack_body(frame.info.name, entry.text, entry.t)
            for hook in self.webhooks:
                try:
                    self._queue.put_nowait((hook, body))
                except queue.Full:
                    self.dropped += 1
                    log.warning("alert queue full: dropped an alert for %r", hook)

    def _http_post(self, hook: Webhook, body: dict[str, Any]) -> None:
        if self._client is None:
            self._client = httpx.Client()
        timeout = hook.timeout_s
        if self._deadline is not None:
            timeout = max(0.1, min(timeout, self._deadline - time.monotonic()))
        response = self._client.post(hook.url, json=body, timeout=timeout)
        response.raise_for_status()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, hook: Webhook, body: dict[str, Any]) -> None:
        for attempt in range(1, hook.attempts + 1):
            if self._past_deadline():
                self.unsent += 1
                return
            try:
                self._post(hook, body)
                self.sent += 1
                return
            except Exception as exc:  # any failure of the webhook: retry, then give up
                why = self._scrub(describe_failure(exc, hook.timeout_s))
                log.warning("webhook %r attempt %d/%d failed: %s", hook, attempt,
                            hook.attempts, why)  # fmt: skip
                if not isinstance(exc, httpx.HTTPError):  # a bug of ours: its traceback,
                    trace = "".join(traceback.format_exception(exc))  # scrubbed like the rest
                    log.warning("webhook %r: unexpected failure:\n%s", hook, self._scrub(trace))
            if attempt == hook.attempts:
                self.failed += 1
                return
            delay = hook.backoff_s * 2 ** (attempt - 1)
            if self._deadline is not None:
                delay = min(delay, max(0.0, self._deadline - time.monotonic()))
            self._sleep(delay)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was sent or given up, at most `timeout` seconds.
        True if the queue drained."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                done.wait(min(remaining, 0.5))
        return True

    drain = flush  # the older name (tests)

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is queued within `timeout` seconds (retries are cut short to fit), then
        stop the sender. Alerts it could not send are counted in `unsent` and logged.
        Idempotent; True if every queued alert was sent or given up in time."""
        with self._close_lock:
            if self._closed:
                return not self._thread.is_alive()
            self._closed = True
        atexit.unregister(self.close)
        if not self._thread.is_alive():
            return True
        self._deadline = time.monotonic() + max(timeout, 0.0)
        drained = self.flush(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        with self._queue.mutex:
            queued = sum(1 for item in self._queue.queue if item is not None)
        unsent = self.unsent + queued + (1 if self._thread.is_alive() else 0)
        if unsent:
            log.warning(
                "%d alert(s) not sent at exit: webhook(s) %s did not answer within %g s",
                unsent, ", ".join(repr(h) for h in self.webhooks), timeout,
            )  # fmt: skip
        if self._client is not None and not self._thread.is_alive():
            self._client.close()
        return drained and not self._thread.is_alive()
