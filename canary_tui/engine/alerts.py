"""Alerts out of the loop: Slack-compatible webhooks for rollbacks, FAIL verdicts and silent
metrics. Sent from a background thread with a bounded queue: a slow or failing webhook is
retried a bounded number of times and never blocks the loop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from canary_tui.core.alerting import distinct_alerts
from canary_tui.core.frames import Frame

log = logging.getLogger("canary_tui.alerts")


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
    host = rest.split("/", 1)[0].split("@")[-1]
    return f"{head}{sep}{host}/…" if sep else "…"


def slack_body(canary: str, text: str, at: float) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    return {"text": f"[canary-tui] {canary}: {text} ({stamp})", "username": "canary-tui"}


class WebhookAlerter:
    """Subscribe it to an engine: every new `alert` activity entry is posted to each webhook."""

    def __init__(self, webhooks: Sequence[Webhook], *, queue_size: int = 100,
                 post: Callable[[Webhook, dict[str, Any]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.webhooks = tuple(webhooks)
        self._queue: queue.Queue[tuple[Webhook, dict[str, Any]] | None] = queue.Queue(queue_size)
        self._post = post or self._http_post
        self._sleep = sleep
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="canary-alerts", daemon=True)
        self._client: httpx.Client | None = None
        if self.webhooks:
            self._thread.start()

    def on_frame(self, frame: Frame) -> None:
        """Engine subscriber: never blocks; drops (and counts) when the queue is full."""
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
        response = self._client.post(hook.url, json=body, timeout=hook.timeout_s)
        response.raise_for_status()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            hook, body = item
            for attempt in range(1, hook.attempts + 1):
                try:
                    self._post(hook, body)
                    self.sent += 1
                    break
                except Exception as exc:  # any failure of the webhook: retry, then give up
                    log.warning("webhook %r attempt %d/%d failed: %s", hook, attempt,
                                hook.attempts, exc)  # fmt: skip
                    if attempt == hook.attempts:
                        self.failed += 1
                    else:
                        self._sleep(hook.backoff_s * 2 ** (attempt - 1))
            self._queue.task_done()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued alert was sent or given up (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(5)
        if self._client is not None:
            self._client.close()
