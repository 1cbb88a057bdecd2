"""The watch-fed object cache: the newest version seen of each object, kept current by one
watch per object (one GET at start, then events), with a GET fallback when watching is not
allowed. Reads each tick then cost no request, and changes made by others arrive at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from adapters.kubernetes.connection import JSON, KubeApi, ObjectRef
from adapters.kubernetes.errors import Forbidden, KubeError
from adapters.kubernetes.objects import _rv_int, resource_version


class ObjectCache:
    """The newest version seen of each object (from GETs, PATCH answers and watch events)."""

    def __init__(self) -> None:
        self._objs: dict[ObjectRef, JSON] = {}
        self._lock = threading.Lock()

    def offer(self, ref: ObjectRef, obj: JSON) -> bool:
        """Keep `obj` unless an equal or newer version is cached. True if it was kept."""
        with self._lock:
            old = self._objs.get(ref)
            new_rv, old_rv = _rv_int(obj), _rv_int(old)
            if old is not None and new_rv is not None and old_rv is not None and new_rv <= old_rv:
                return False
            self._objs[ref] = obj
            return True

    def forget(self, ref: ObjectRef) -> None:
        with self._lock:
            self._objs.pop(ref, None)

    def get(self, ref: ObjectRef) -> JSON | None:
        with self._lock:
            return self._objs.get(ref)


class ObjectWatcher:
    """Keeps one object's cache entry current with a watch; `live` while the watch runs."""

    def __init__(
        self,
        api: KubeApi,
        ref: ObjectRef,
        cache: ObjectCache,
        on_change: Callable[[ObjectRef], None],
        *,
        timeout_s: int = 60,
    ) -> None:
        self.api, self.ref, self.cache, self.on_change = api, ref, cache, on_change
        self.timeout_s = timeout_s
        self.live = False
        self.disabled: str | None = None  # why watching is off for good (RBAC)
        self._stop = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{ref.resource.plural}-{ref.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.live = False
        stream = self._stream
        if stream is not None:
            stream.close()

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                obj = self.api.get(self.ref)
                if self.cache.offer(self.ref, obj):
                    self.on_change(self.ref)
                rv = resource_version(obj)
                while not self._stop.is_set():
                    self._stream = self.api.open_watch(self.ref, rv, timeout_s=self.timeout_s)
                    self.live = True
                    for etype, item in self._stream:
                        rv = resource_version(item) or rv
                        if etype == "BOOKMARK":
                            continue
                        if etype == "DELETED":
                            self.cache.forget(self.ref)
                        elif not self.cache.offer(self.ref, item):
                            continue
                        self.on_change(self.ref)
                    backoff = 0.2
            except Forbidden as exc:
                self.disabled = f"not watching {self.ref} ({exc}); reading with GET each time"
                self.live = False
                return
            except KubeError as exc:
                self.live = False
                if exc.status == 410:
                    continue  # too old: re-read and watch again
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug here must not kill the console; GETs still work
                self.live = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._stream = None
        self.live = False
