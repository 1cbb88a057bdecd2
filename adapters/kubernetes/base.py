"""The base of every Kubernetes router: the read-modify-write loop with optimistic
concurrency, read-back, and Events (settings in `settings`, object helpers in `objects`,
the watch-fed cache in `informer`).

A router describes *what* it wants (`compute(objects) -> [Write]`, empty when the cluster
already says so); `KubeRouter._converge` does the rest: writes carry the resourceVersion they
were computed from, a 409 re-reads and recomputes, 5xx/timeouts back off within a budget
(longer for kill), and afterwards the objects are read back and turned into a RoutingState.

Reads are served from a cache that a watch per object keeps current (one GET at start, then
events), so the engine's read() each tick costs no request and a change made by someone else
reaches `subscribe()`rs within milliseconds. Without watch permission it falls back to GETs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from adapters.kubernetes.connection import JSON, KubeApi, ObjectRef

__all__ = [
    "JSON",
    "KubeRouter",
    "ObjectCache",
    "ObjectWatcher",
    "RouterOptions",
    "Write",
    "config_error",
    "dig",
    "resource_version",
    "with_rv",
]
from adapters.kubernetes.errors import KubeError, NotFound, RetryPolicy, retry
from adapters.kubernetes.events import EventRecorder
from adapters.kubernetes.informer import ObjectCache, ObjectWatcher
from adapters.kubernetes.objects import Write, dig, resource_version, with_rv
from adapters.kubernetes.settings import RouterOptions, config_error
from canary_tui.core.ports import RouterError, RoutingState

Listener = Callable[[RoutingState], None]
Compute = Callable[[Mapping[ObjectRef, JSON]], list[Write]]
Mirror = int | bool | None  # a percentage, off (False), or leave it (None)


class KubeRouter:
    """Base of the four routers. Subclasses implement `_collect`, `_state` and the verbs."""

    kind = "kubernetes"

    def __init__(self, api: KubeApi, options: RouterOptions) -> None:
        self.api = api
        self.options = options
        self.events = EventRecorder(api, enabled=options.events)
        self.cache = ObjectCache()
        self._watchers: dict[ObjectRef, ObjectWatcher] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()
        self._closed = False

    # --- what subclasses provide -----------------------------------------------------------
    def describe(self) -> str:
        raise NotImplementedError

    def event_ref(self) -> ObjectRef:
        """The object Events are attached to."""
        raise NotImplementedError

    def _collect(self, fresh: bool) -> dict[ObjectRef, JSON]:
        """Every object the state is made from (fresh: GET, else the watch cache)."""
        raise NotImplementedError

    def _state(self, objs: Mapping[ObjectRef, JSON]) -> RoutingState:
        raise NotImplementedError

    # --- reading ---------------------------------------------------------------------------
    def _get(self, ref: ObjectRef, *, fresh: bool) -> JSON:
        watcher = self._watcher(ref)
        if not fresh and watcher is not None and watcher.live:
            cached = self.cache.get(ref)
            if cached is not None:
                return cached
        obj = self.api.get(ref)
        self.cache.offer(ref, obj)
        return self.cache.get(ref) or obj

    def _watcher(self, ref: ObjectRef) -> ObjectWatcher | None:
        if not self.options.watch or self._closed:
            return None
        with self._lock:
            watcher = self._watchers.get(ref)
            if watcher is None:
                watcher = ObjectWatcher(self.api, ref, self.cache, self._changed)
                self._watchers[ref] = watcher
                watcher.start()
            return watcher

    def read(self) -> RoutingState:
        def attempt(n: int) -> RoutingState:
            return self._state(self._snapshot(fresh=n > 0))

        return retry(attempt, RetryPolicy(budget_s=1.0), what=f"reading {self.describe()}")

    def _read_back(self) -> RoutingState:
        """What the cluster says right after a write (a fresh GET, not the cache)."""
        try:
            return retry(
                lambda _n: self._state(self._snapshot(fresh=True)),
                RetryPolicy(budget_s=1.0),
                what=f"reading back {self.describe()}",
            )
        except KubeError as exc:
            cached = self._cached_snapshot()
            if cached is None:
                raise
            state = self._state(cached)
            note = f"applied; read-back failed ({exc}), showing the write's answer"
            return RoutingState(**{**state.to_dict(), "detail": f"{state.detail}; {note}"})

    def _cached_snapshot(self) -> dict[ObjectRef, JSON] | None:
        try:
            objs = self._snapshot_from_cache()
        except KeyError:
            return None
        return objs

    def _snapshot_from_cache(self) -> dict[ObjectRef, JSON]:
        """The cached objects of the last snapshot; KeyError when one is missing."""
        out: dict[ObjectRef, JSON] = {}
        for ref in self._last_refs:
            obj = self.cache.get(ref)
            if obj is None:
                raise KeyError(ref)
            out[ref] = obj
        return out

    _last_refs: tuple[ObjectRef, ...] = ()

    def _snapshot(self, fresh: bool) -> dict[ObjectRef, JSON]:
        objs = self._collect(fresh)
        self._last_refs = tuple(objs)
        return objs

    # --- writing ---------------------------------------------------------------------------
    def _converge(
        self,
        verb: str,
        compute: Compute,
        *,
        kill: bool = False,
    ) -> RoutingState:
        policy = self.options.kill_retry if kill else self.options.retry

        def attempt(n: int) -> None:
            objs = self._snapshot(fresh=n > 0)
            for write in compute(objs):
                self._write(write)

        retry(attempt, policy, what=f"{verb} on {self.describe()}")
        return self._read_back()

    def _write(self, write: Write) -> JSON:
        try:
            out = self.api.patch(write.ref, write.body, subresource=write.subresource)
        except NotFound:
            if write.fallback is None:
                raise
            fallback = write.fallback
            out = self.api.patch(fallback.ref, fallback.body, subresource=fallback.subresource)
        self.cache.offer(write.ref, out)
        return out

    # --- events and watch-driven refresh ---------------------------------------------------
    def record_event(self, verb: str, actor: str, message: str) -> None:
        """Emit a Kubernetes Event on the router's object (async; never raises)."""
        ref = self.event_ref()
        self.events.record(ref, self.cache.get(ref), verb, actor, message)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(state)` whenever a watched object changes (from a watch thread)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _changed(self, _ref: ObjectRef) -> None:
        with self._lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        cached = self._cached_snapshot()
        if cached is None:
            return
        try:
            state = self._state(cached)
        except (RouterError, KeyError, ValueError, TypeError):
            return
        for listener in listeners:
            try:
                listener(state)
            except Exception:  # a listener's bug must not stop the watch
                continue

    def notes(self) -> list[str]:
        """Things a person should know: watches off, Events failing."""
        out = [w.disabled for w in self._watchers.values() if w.disabled]
        if self.events.last_error:
            out.append(self.events.last_error)
        return out

    def _detail(self, text: str) -> str:
        notes = self.notes()
        return text + ("; " + "; ".join(notes) if notes else "")

    def close(self) -> None:
        """Stop the watches and the Event thread."""
        self._closed = True
        with self._lock:
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for watcher in watchers:
            watcher.stop()
        self.events.close()

    # --- the TrafficRouter verbs ------------------------------------------------------------
    def _writes_for(self, *, weight: int | None = None, mirror: Mirror = None) -> Compute:
        """The writes that take the watched objects to this weight and mirror (None: leave
        it), computed from their current state at each attempt. Routers that write routes
        or replicas implement it; one that drives a controller overrides the verbs instead."""
        raise NotImplementedError

    def set_weight(self, weight: int) -> RoutingState:
        if not 0 <= weight <= 100:
            raise RouterError(f"weight {weight} is outside 0..100", retryable=False)
        return self._converge("set weight", self._writes_for(weight=weight))

    def set_mirror(self, on: bool) -> RoutingState:
        mirror: int | bool = self.options.mirror_percent if on else False
        return self._converge("shadow", self._writes_for(mirror=mirror))

    def set_paused(self, paused: bool) -> RoutingState:
        """Only Argo Rollouts has a controller to pause; the others just report."""
        return self.read()

    def abort(self) -> RoutingState:
        return self._converge("kill", self._writes_for(weight=0, mirror=False), kill=True)

    def promote(self) -> RoutingState:
        return self._converge("promote", self._writes_for(weight=100, mirror=False))

    def shadow_unsupported(self) -> str | None:
        raise NotImplementedError


class SingleObjectRouter(KubeRouter):
    """A router whose state is read from one object, `self.ref` (Istio's VirtualService, the
    Gateway API's HTTPRoute, Argo's Rollout); Events are attached to it too."""

    object_kind = ""  # as `kubectl get` names it: "VirtualService"
    ref: ObjectRef

    def describe(self) -> str:
        return f"{self.object_kind} {self.ref.namespace}/{self.ref.name}"

    def event_ref(self) -> ObjectRef:
        return self.ref

    def _collect(self, fresh: bool) -> dict[ObjectRef, JSON]:
        return {self.ref: self._get(self.ref, fresh=fresh)}
