"""Alerts: the loop raises them, webhooks carry them (retried, never blocking), the TUI rings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from canary_tui.config.demo import demo_config
from canary_tui.core.alerting import distinct_alerts
from canary_tui.engine.alerts import Webhook, WebhookAlerter, redact_url
from tests.conftest import make_rig
from tests.tui_support import app_on, settle


class Receiver:
    """A real HTTP server on loopback that records posts and answers with `status`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.release.wait(30)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/SECRET"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.release.set()
    r.server.shutdown()


def test_the_loop_raises_alerts_for_fail_rollback_and_silence(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "error-regression", seed=1)
    frames = []
    rig.engine.subscribe(frames.append)
    rig.ticks(200, until=lambda e: e.state.terminal)
    alerts = [a.text for f in frames for a in f.activity if a.kind == "alert"]
    assert any(t.startswith("verdict FAIL: errors") for t in alerts)
    assert any(t.startswith("ROLLED BACK automatically") for t in alerts)
    rig2 = make_rig(tmp_path / "b", "metrics-outage")
    frames2 = []
    rig2.engine.subscribe(frames2.append)
    rig2.ticks(60)
    assert any(a.text.startswith("metrics went silent") for f in frames2 for a in f.activity
               if a.kind == "alert")  # fmt: skip


def test_webhook_gets_a_slack_compatible_body(tmp_path: Path, receiver: Receiver) -> None:
    cfg = demo_config("error-regression", 1, judge="threshold")
    cfg = cfg.model_copy(update={"alerts": cfg.alerts.model_validate(
        {"webhooks": [{"url": receiver.url}]})})  # fmt: skip
    rig = make_rig(tmp_path, config=cfg)
    rig.ticks(200, until=lambda e: e.state.terminal)
    alerter = rig_alerter(rig)
    alerter.drain()
    texts = [b["text"] for b in receiver.bodies]
    assert any("[canary-tui] checkout: ROLLED BACK automatically" in t for t in texts)
    rollback = next(t for t in texts if "ROLLED BACK automatically" in t)
    assert not [
        t for t in texts if "verdict FAIL: " in t and t.split("verdict FAIL: ")[1] in rollback
    ]
    assert all(set(b) == {"text", "username"} for b in receiver.bodies)


def rig_alerter(rig: Any) -> WebhookAlerter:
    subscribers = rig.engine._subscribers
    alerter = next(s.__self__ for s in subscribers if isinstance(getattr(s, "__self__", None),
                                                                 WebhookAlerter))  # fmt: skip
    return alerter


def test_failing_webhook_is_retried_a_bounded_number_of_times(receiver: Receiver) -> None:
    receiver.status = 500
    slept: list[float] = []
    alerter = WebhookAlerter([Webhook(receiver.url, attempts=3, backoff_s=0.5)], sleep=slept.append)
    _fire(alerter)
    alerter.drain()
    assert len(receiver.bodies) == 3 and alerter.failed == 1 and alerter.sent == 0
    assert slept == [0.5, 1.0]
    alerter.close()


def test_a_stuck_webhook_never_blocks_the_loop(tmp_path: Path, receiver: Receiver) -> None:
    receiver.release.clear()  # the webhook accepts and then hangs
    cfg = demo_config("error-regression", 1, judge="threshold")
    cfg = cfg.model_copy(update={"alerts": cfg.alerts.model_validate(
        {"webhooks": [{"url": receiver.url, "timeout": 30}]})})  # fmt: skip
    rig = make_rig(tmp_path, config=cfg)
    ticks = rig.ticks(200, until=lambda e: e.state.terminal)
    # The whole regression ran and was rolled back while the webhook still hangs.
    assert rig.engine.state.terminal and ticks > 10 and receiver.bodies == []
    receiver.release.set()
    rig_alerter(rig).drain()
    assert receiver.bodies


def test_webhook_urls_are_never_printed_whole() -> None:
    hook = Webhook("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    assert "SECRET" not in repr(hook) and "hooks.slack.com" in repr(hook)
    assert redact_url("https://user:pw@example.com/x?token=1") == "https://example.com/…"


def _fire(alerter: WebhookAlerter) -> None:
    from canary_tui.core.frames import ActivityEntry

    class FakeFrame:
        info = type("I", (), {"name": "checkout"})()
        activity = (ActivityEntry(1.0, "alert", "loop", "metrics went silent"),)

    alerter.on_frame(FakeFrame())  # type: ignore[arg-type]


def test_a_rollback_is_one_toast_not_one_per_failing_verdict() -> None:
    fail_errors = "verdict FAIL: errors: canary 2.8% vs baseline 0.5%, ratio 5.4x: FAIL"
    fail_slo = "verdict FAIL: availability SLO: canary errors 1.7%, above the 1.00%: FAIL"
    rollback = (
        "ROLLED BACK automatically: errors: canary 2.8% vs baseline 0.5%, ratio 5.4x: FAIL; "
        "availability SLO: canary errors 1.7%, above the 1.00%: FAIL"
    )
    assert distinct_alerts([fail_errors, fail_slo, rollback]) == [rollback]
    assert distinct_alerts([fail_errors]) == [fail_errors]  # no rollback (disarmed): it speaks
    silent = "metrics went silent: no samples for 30 s"
    assert distinct_alerts([silent, silent, fail_errors]) == [silent, fail_errors]


async def test_the_dashboard_rings_once_and_shows_a_rollback_as_one_toast(tmp_path: Path) -> None:
    app, rig = app_on(tmp_path, "error-regression", seed=1, ticks=5)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert bells == []  # history on attach does not ring
        while not rig.engine.state.terminal:  # frame by frame, as a live loop delivers them
            rig.ticks(1)
            await settle(pilot, 1)
        await settle(pilot)
        toasts = [n.message for n in app._notifications if n.title == "canary alert"]
        rollbacks = [t for t in toasts if t.startswith("ROLLED BACK automatically")]
        assert len(rollbacks) == 1 and bells, toasts
        said = rollbacks[0].split(": ", 1)[1]
        assert not [t for t in toasts if t != rollbacks[0] and t.split(": ", 1)[1] in said]
        log = "\n".join(e.text for e in app.dashboard.model.activity)
        assert "verdict FAIL: " in log  # the activity pane keeps every alert
