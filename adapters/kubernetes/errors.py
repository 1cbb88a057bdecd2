"""Kubernetes API failures as RouterErrors a person can act on, and the retry loop.

- 403: names the user, the verb, the resource (with subresource) and the namespace RBAC denied.
- 404: names the object that is missing, or the API that is not served (CRD not installed).
- 409: `Conflict`, retried by re-reading the object (optimistic concurrency).
- 429, 5xx, timeouts, refused connections: `Unavailable`, retried with capped exponential
  backoff within a time budget (longer for kill).
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from canary_tui.core.ports import RouterError

T = TypeVar("T")


class _ResourceLike(Protocol):
    @property
    def group(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def plural(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Call:
    """What was attempted: the RBAC verb, the resource, where, and on what."""

    verb: str
    resource: _ResourceLike
    namespace: str
    name: str = ""
    subresource: str | None = None

    @property
    def rbac_resource(self) -> str:
        plural = self.resource.plural
        return f"{plural}/{self.subresource}" if self.subresource else plural

    @property
    def api_group(self) -> str:
        return self.resource.group or "core"

    @property
    def target(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.kind} {where}{self.name}" if self.name else self.resource.kind


class KubeError(RouterError):
    """A Kubernetes API call failed; `status` is the HTTP status (0: no answer)."""

    def __init__(
        self, message: str, *, status: int = 0, retryable: bool = True, call: Call | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.status = status
        self.call = call


class Forbidden(KubeError):
    """RBAC denied the call."""


class Unauthorized(KubeError):
    """The credentials were rejected."""


class NotFound(KubeError):
    """The object, or its API, does not exist."""


class Conflict(KubeError):
    """Someone else changed the object since it was read (409)."""


class Invalid(KubeError):
    """The API server rejected the request as malformed or invalid (400, 422)."""


class Unavailable(KubeError):
    """No usable answer: timeouts, refused connections, 429 and 5xx. Worth retrying."""


_FORBIDDEN_USER = re.compile(r'User "([^"]*)"')


def _status_body(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body.startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def translate(exc: BaseException, call: Call) -> KubeError:
    """Turn whatever the client raised into a KubeError with a readable message."""
    if isinstance(exc, KubeError):
        return exc
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return _from_api_exception(exc, call)
    name = type(exc).__name__
    text = str(exc) or name
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return Unavailable(
            f"the API server did not answer {call.verb} {call.target} in time ({text})",
            call=call,
        )
    if isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3"):
        return Unavailable(
            f"cannot reach the API server for {call.verb} {call.target}: {text}", call=call
        )
    return KubeError(
        f"{call.verb} {call.target} failed: {name}: {text}", retryable=False, call=call
    )


def _from_api_exception(exc: Any, call: Call) -> KubeError:
    status = int(getattr(exc, "status", 0) or 0)
    body = _status_body(exc)
    server = str(body.get("message") or getattr(exc, "reason", "") or "").strip()
    if status == 403:
        user = _FORBIDDEN_USER.search(server)
        who = f'user "{user.group(1)}"' if user else "these credentials"
        where = f' in namespace "{call.namespace}"' if call.namespace else " (cluster scope)"
        return Forbidden(
            f"RBAC denied: {who} may not {call.verb} {call.rbac_resource} "
            f"(API group {call.api_group}){where}; grant verb {call.verb!r} on "
            f"{call.rbac_resource!r} in the Role "
            "(see docs/routers/ for each router's Role)",
            status=status,
            retryable=False,
            call=call,
        )
    if status == 401:
        return Unauthorized(
            "the API server rejected the credentials (401): the token or certificate is"
            " missing, expired or revoked; refresh your kubeconfig",
            status=status,
            retryable=False,
            call=call,
        )
    if status == 404:
        if body.get("reason") == "NotFound" and body.get("details"):
            text = f"not found: {call.target} ({call.resource.group or 'core'}/"
            text += f"{call.resource.version}); check the name and the namespace"
        else:
            text = (
                f"the API {call.resource.group or 'core'}/{call.resource.version} "
                f"{call.rbac_resource} is not served by this cluster (is its CRD installed, "
                f"and at this version?)"
            )
        return NotFound(text, status=status, retryable=False, call=call)
    if status == 409:
        return Conflict(
            f"conflict: {call.target} was changed by someone else since it was read",
            status=status,
            call=call,
        )
    if status in (400, 422):
        return Invalid(
            f"the API server rejected {call.verb} {call.target}: {server}",
            status=status,
            retryable=False,
            call=call,
        )
    if status == 429 or status >= 500:
        return Unavailable(
            f"the API server answered {status} to {call.verb} {call.target}: {server or 'no'}"
            " detail",
            status=status,
            call=call,
        )
    return KubeError(
        f"{call.verb} {call.target} failed with HTTP {status}: {server}",
        status=status,
        retryable=False,
        call=call,
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to keep trying: a time budget, capped exponential backoff with jitter."""

    budget_s: float = 3.0
    backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    max_conflicts: int = 10

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        return base * (0.5 + random.random() / 2)  # jitter, not crypto


def retry(
    fn: Callable[[int], T],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call fn(attempt) until it returns. Conflicts retry at once (fn re-reads when
    attempt > 0); retryable errors back off; permanent errors and the exhausted budget raise."""
    start = clock()
    attempt = conflicts = failures = 0
    while True:
        try:
            return fn(attempt)
        except Conflict as exc:
            conflicts += 1
            if conflicts > policy.max_conflicts or clock() - start > policy.budget_s:
                raise Conflict(
                    f"{what}: {exc} (still conflicting after {conflicts} attempts; retry)",
                    status=409,
                    call=exc.call,
                ) from exc
        except KubeError as exc:
            if not exc.retryable:
                raise
            delay = policy.delay(failures)
            failures += 1
            if clock() - start + delay > policy.budget_s:
                elapsed = clock() - start
                raise type(exc)(
                    f"{what}: {exc} (gave up after {attempt + 1} attempts in {elapsed:.1f} s)",
                    status=exc.status,
                    retryable=True,
                    call=exc.call,
                ) from exc
            sleep(delay)
        attempt += 1
