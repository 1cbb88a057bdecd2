"""Plain helpers on Kubernetes objects: digging into them, their resourceVersion, a merge
patch fenced by it, and one PATCH to send (`Write`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.kubernetes.connection import JSON, ObjectRef


@dataclass(frozen=True, slots=True)
class Write:
    """One PATCH. `fallback` is sent instead when the subresource is not served (404)."""

    ref: ObjectRef
    body: Any
    subresource: str | None = None
    fallback: Write | None = None


def dig(obj: Any, *path: str | int, default: Any = None) -> Any:
    """obj["a"][0]["b"] without KeyErrors: `dig(obj, "a", 0, "b")`."""
    cur = obj
    for key in path:
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return default
            cur = cur[key]
        else:
            if not isinstance(cur, dict) or key not in cur:
                return default
            cur = cur[key]
    return default if cur is None else cur


def resource_version(obj: JSON) -> str:
    return str(dig(obj, "metadata", "resourceVersion", default=""))


def with_rv(obj: JSON, body: JSON) -> JSON:
    """A merge patch that only applies to the version it was computed from (else 409)."""
    meta = dict(body.get("metadata") or {})
    meta["resourceVersion"] = resource_version(obj)
    return {**body, "metadata": meta}


def _rv_int(obj: JSON | None) -> int | None:
    if obj is None:
        return None
    try:
        return int(resource_version(obj))
    except ValueError:
        return None
