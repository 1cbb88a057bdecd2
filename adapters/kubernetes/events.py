"""Kubernetes Events for every console action, so `kubectl describe` shows who did what.

An Event is created (core/v1, the kind `kubectl describe` lists) on the object the router
drives: reason `Canary<Verb>` (CanaryStepForward, CanaryKill, ...), message
`<actor> (as <kube user>, context <context>): <what happened>`, type Warning for kill,
Normal otherwise, source component `canary-tui`; the annotations `canary-tui/actor` (the
person, from the OS or the session's peer credentials), `canary-tui/kube-user` and
`canary-tui/kube-context` (the Kubernetes identity the console acts as, from the kubeconfig
or the pod's service account), so both show up in `kubectl describe`.

Events are posted from one background thread so an action never waits for them, and a
failure to post (RBAC without `create events`, API down) never fails an action: it is kept
in `last_error` and shown in the routing detail.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.kubernetes.connection import EVENT, JSON, Identity, KubeApi, ObjectRef
from adapters.kubernetes.errors import KubeError

COMPONENT = "canary-tui"
ACTOR_ANNOTATION = "canary-tui/actor"
KUBE_USER_ANNOTATION = "canary-tui/kube-user"
KUBE_CONTEXT_ANNOTATION = "canary-tui/kube-context"
WARNING_VERBS = frozenset({"kill", "abort"})
#: How long the interpreter's exit waits for queued Events (the final kill's), if nobody
#: closed the recorder before.
EXIT_WAIT_S = 5.0


def reason_for(verb: str) -> str:
    """`step_forward` -> `CanaryStepForward`."""
    return "Canary" + "".join(part.capitalize() for part in verb.replace("-", "_").split("_"))


@dataclass(frozen=True, slots=True)
class PendingEvent:
    ref: ObjectRef
    involved: JSON | None  # the object as last seen (for uid), or None to read it
    verb: str
    actor: str
    message: str


def event_body(
    pending: PendingEvent,
    obj: JSON,
    *,
    now: datetime,
    host: str,
    identity: Identity | None = None,
) -> JSON:
    """The core/v1 Event for one action on `obj`."""
    meta = obj.get("metadata") or {}
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    warning = pending.verb in WARNING_VERBS
    annotations = {ACTOR_ANNOTATION: pending.actor}
    who = pending.actor
    if identity is not None and (identity.user or identity.context):
        annotations[KUBE_USER_ANNOTATION] = identity.user
        annotations[KUBE_CONTEXT_ANNOTATION] = identity.context
        who += f" (as {identity.user or '?'}" + (
            f", context {identity.context})" if identity.context else ")"
        )
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{pending.ref.name}.",
            "namespace": pending.ref.namespace,
            "annotations": annotations,
        },
        "involvedObject": {
            "apiVersion": pending.ref.resource.api_version,
            "kind": pending.ref.resource.kind,
            "name": pending.ref.name,
            "namespace": pending.ref.namespace,
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason_for(pending.verb),
        "message": f"{who}: {pending.message}"[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT, "host": host},
        "reportingComponent": COMPONENT,
        "reportingInstance": host,
        "action": reason_for(pending.verb).removeprefix("Canary"),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    """Posts Events in order from one daemon thread; `flush()` waits for the queue."""

    def __init__(self, api: KubeApi, *, enabled: bool = True, host: str | None = None) -> None:
        self.api = api
        self.enabled = enabled
        self.host = host or socket.gethostname()
        self.last_error: str | None = None
        self.sent = 0
        self._queue: queue.Queue[PendingEvent | None] = queue.Queue(maxsize=1000)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(
        self, ref: ObjectRef, involved: JSON | None, verb: str, actor: str, message: str
    ) -> None:
        """Queue an Event; never raises, never blocks (drops when 1000 are queued)."""
        if not self.enabled:
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(PendingEvent(ref, involved, verb, actor, message))
        except queue.Full:
            self.last_error = "event queue full: events dropped (is the API server reachable?)"

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued Event was posted (or failed). True if the queue drained."""
        done = threading.Event()
        if self._thread is None:
            return True

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Post what is queued (the final kill's Event too), waiting at most `timeout`
        seconds, then stop the thread. True if everything queued was posted or failed."""
        atexit.unregister(self.close)
        drained = self.flush(timeout)
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        return drained

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:  # the first Event: post what is queued at exit too
                atexit.register(self.close, EXIT_WAIT_S)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="canary-tui-events", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            try:
                if pending is None:
                    return
                self._post(pending)
            finally:
                self._queue.task_done()

    def _post(self, pending: PendingEvent) -> None:
        try:
            obj: Any = pending.involved
            if not obj or not (obj.get("metadata") or {}).get("uid"):
                obj = self.api.get(pending.ref)
            body = event_body(
                pending,
                obj,
                now=datetime.now(UTC),
                host=self.host,
                identity=getattr(self.api, "identity", None),
            )
            self.api.create(EVENT, pending.ref.namespace, body)
            self.sent += 1
            self.last_error = None
        except KubeError as exc:
            self.last_error = f"event not recorded: {exc}"
