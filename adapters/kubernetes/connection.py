"""How the console reaches a cluster: like kubectl (kubeconfig, --context, --namespace) or
in-cluster, plus a small typed REST layer over the official client's ApiClient.

The official client is untyped and generated per kind; the routers only need five verbs on
any object (get, merge/JSON patch, create, watch), so `KubeApi` speaks REST paths built from
a `Resource` and returns plain JSON dicts. Every failure is translated by `errors.translate`
into a RouterError that names the verb, the resource and the namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from adapters.kubernetes.errors import Call, KubeError, translate

JSON = dict[str, Any]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MERGE_PATCH = "application/merge-patch+json"


class KubeConfigError(KubeError):
    """The cluster cannot even be addressed (no kubeconfig, unknown context, bad file)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True, slots=True)
class Resource:
    """A kind of object: where its REST collection lives."""

    group: str  # "" for the core API
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection_path(self, namespace: str) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One namespaced object."""

    resource: Resource
    namespace: str
    name: str

    def path(self, subresource: str | None = None) -> str:
        tail = f"/{subresource}" if subresource else ""
        return f"{self.resource.collection_path(self.namespace)}/{self.name}{tail}"

    def __str__(self) -> str:
        return f"{self.resource.kind} {self.namespace}/{self.name}"


ROLLOUT = Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout")
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
REPLICASET = Resource("apps", "v1", "replicasets", "ReplicaSet")
EVENT = Resource("", "v1", "events", "Event")
SERVICE = Resource("", "v1", "services", "Service")
ANALYSISRUN = Resource("argoproj.io", "v1alpha1", "analysisruns", "AnalysisRun")
CRD = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition"
)


def istio_virtualservice(version: str = "v1beta1") -> Resource:
    return Resource("networking.istio.io", version, "virtualservices", "VirtualService")


def gateway_httproute(version: str = "v1") -> Resource:
    return Resource("gateway.networking.k8s.io", version, "httproutes", "HTTPRoute")


def istio_destinationrule(version: str = "v1beta1") -> Resource:
    return Resource("networking.istio.io", version, "destinationrules", "DestinationRule")


def pick_version(served: tuple[str, ...], preferred: tuple[str, ...]) -> str | None:
    """The first of `preferred` the server serves, else its first served version, else None."""
    for version in preferred:
        if version in served:
            return version
    return served[0] if served else None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where to connect. None means: do what kubectl does."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    in_cluster: bool | None = None  # None: in-cluster only when no kubeconfig is found
    timeout_s: float = 5.0


def _kubeconfig_paths(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _in_cluster_available() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and (SERVICE_ACCOUNT_DIR / "token").is_file()
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the console acts as in the cluster: the kubeconfig's user and context, or the pod's
    service account (read from its token's subject, unverified: for the record only)."""

    user: str = ""
    context: str = ""

    def __str__(self) -> str:
        parts = [f"user {self.user or '?'}"]
        if self.context:
            parts.append(f"context {self.context}")
        return ", ".join(parts)


def _token_subject(path: Path) -> str:
    """The `sub` claim of a service account token (a JWT), or ''."""
    import base64

    try:
        payload = path.read_text(encoding="utf-8").strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return ""
    return str(claims.get("sub") or "") if isinstance(claims, dict) else ""


def _load_kubeconfig(settings: ConnectionSettings) -> tuple[Any, str, str, Identity]:
    """(ApiClient, namespace, description, identity) from a kubeconfig, with kubectl's rules."""
    from kubernetes import config as _kconfig
    from kubernetes.config.config_exception import ConfigException

    kconfig = cast(Any, _kconfig)  # the client is untyped
    paths = _kubeconfig_paths(settings.kubeconfig)
    existing = [p for p in paths if p.is_file()]
    if not existing:
        shown = ", ".join(str(p) for p in paths)
        raise KubeConfigError(
            f"no kubeconfig found (looked at {shown}); pass router.kubeconfig or --kubeconfig,"
            " set KUBECONFIG, or run inside a cluster"
        )
    config_file = os.pathsep.join(str(p) for p in existing) if len(existing) > 1 else None
    single = str(existing[0]) if len(existing) == 1 else None
    try:
        contexts, active = kconfig.list_kube_config_contexts(config_file=single or config_file)
    except ConfigException as exc:
        raise KubeConfigError(f"cannot read kubeconfig {existing[0]}: {exc}") from exc
    names = [c["name"] for c in contexts or []]
    wanted = settings.context or (active or {}).get("name")
    if not wanted:
        raise KubeConfigError(
            f"kubeconfig {existing[0]} has no current-context; pass --context"
            f" (known: {', '.join(names) or 'none'})"
        )
    if wanted not in names:
        raise KubeConfigError(
            f"context {wanted!r} is not in {existing[0]} (known: {', '.join(names) or 'none'})"
        )
    context = next(c for c in contexts if c["name"] == wanted)
    try:
        client = kconfig.new_client_from_config(
            config_file=single or config_file, context=wanted, persist_config=False
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"cannot use context {wanted!r}: {exc}") from exc
    namespace = settings.namespace or context.get("context", {}).get("namespace") or "default"
    user = str((context.get("context") or {}).get("user") or "")
    return client, namespace, f"context {wanted}", Identity(user=user, context=str(wanted))


def _load_in_cluster(settings: ConnectionSettings) -> tuple[Any, str, str, Identity]:
    """The pod's service account (token, CA and namespace under SERVICE_ACCOUNT_DIR)."""
    from kubernetes import client as kclient
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = kclient.Configuration()
    loader = cast(Any, InClusterConfigLoader)(
        token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
        cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        environ=os.environ,
    )
    try:
        loader.load_and_set(configuration)
    except ConfigException as exc:
        raise KubeConfigError(f"in-cluster configuration failed: {exc}") from exc
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    namespace = settings.namespace or (
        ns_file.read_text(encoding="utf-8").strip() if ns_file.is_file() else "default"
    )
    identity = Identity(user=_token_subject(SERVICE_ACCOUNT_DIR / "token"), context="in-cluster")
    return kclient.ApiClient(configuration), namespace, "in-cluster service account", identity


def connect(settings: ConnectionSettings) -> KubeApi:
    """Open a connection as kubectl would. Raises KubeConfigError with a readable reason.

    Only local files are read here; the first request goes out on the first router call.
    """
    found = any(p.is_file() for p in _kubeconfig_paths(settings.kubeconfig))
    if settings.in_cluster is True or (
        settings.in_cluster is None and not found and _in_cluster_available()
    ):
        client, namespace, where, identity = _load_in_cluster(settings)
    else:
        client, namespace, where, identity = _load_kubeconfig(settings)
    _tune(client)
    return KubeApi(client, namespace, where, timeout_s=settings.timeout_s, identity=identity)


def _tune(client: Any) -> None:
    """Our own retry loop decides about retries: urllib3 only retries failed connects."""
    import urllib3

    client.configuration.retries = urllib3.Retry(
        total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False
    )
    client.rest_client.pool_manager.connection_pool_kw["retries"] = client.configuration.retries


class KubeApi:
    """Typed REST verbs on any object. Thread-safe (urllib3 pools are)."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        where: str,
        *,
        timeout_s: float = 5.0,
        identity: Identity | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.where = where
        self.timeout_s = timeout_s
        self.identity = identity or Identity()

    # --- raw --------------------------------------------------------------------------------
    def _request(
        self,
        call: Call,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
    ) -> Any:
        headers: dict[str, str] = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        resource_path = path + (f"?{urlencode(dict(query))}" if query else "")
        try:
            _method, url, hdrs, data, _post = self.client.param_serialize(
                method=method,
                resource_path=resource_path,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.client.call_api(
                _method,
                url,
                header_params=hdrs,
                body=data,
                _request_timeout=timeout or self.timeout_s,
            )
            if stream:
                if not 200 <= response.status <= 299:
                    response.read()
                    _raise_for(response)
                return response
            raw = response.read()
            if not 200 <= response.status <= 299:
                _raise_for(response)
        except Exception as exc:
            raise translate(exc, call) from exc
        return json.loads(raw) if raw else {}

    # --- verbs ------------------------------------------------------------------------------
    def get(self, ref: ObjectRef) -> JSON:
        call = Call("get", ref.resource, ref.namespace, ref.name)
        return cast(JSON, self._request(call, "GET", ref.path()))

    def list(self, resource: Resource, namespace: str, *, label_selector: str = "") -> list[JSON]:
        call = Call("list", resource, namespace)
        query = {"labelSelector": label_selector} if label_selector else None
        out = self._request(call, "GET", resource.collection_path(namespace), query=query)
        return list(cast(list[JSON], out.get("items") or []))

    def patch(
        self,
        ref: ObjectRef,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> JSON:
        """A JSON merge patch (RFC 7386), on the object or one of its subresources."""
        call = Call("patch", ref.resource, ref.namespace, ref.name, subresource)
        return cast(
            JSON,
            self._request(
                call,
                "PATCH",
                ref.path(subresource),
                body=body,
                content_type=MERGE_PATCH,
                query={"fieldManager": "canary-tui"},
            ),
        )

    def create(self, resource: Resource, namespace: str, body: JSON) -> JSON:
        call = Call("create", resource, namespace)
        return cast(
            JSON,
            self._request(
                call,
                "POST",
                resource.collection_path(namespace),
                body=body,
                content_type="application/json",
            ),
        )

    def served_versions(self, group: str) -> tuple[str, ...]:
        """The versions of an API group the server serves (discovery: GET /apis/GROUP), the
        preferred one first. A group the server does not know raises NotFound."""
        call = Call("get", Resource(group, "", "", f"API group {group}"), "")
        out = self._request(call, "GET", f"/apis/{group}")
        preferred = str((out.get("preferredVersion") or {}).get("version") or "")
        versions = [str(v.get("version")) for v in out.get("versions") or [] if v.get("version")]
        return tuple(sorted(versions, key=lambda v: v != preferred))

    def get_cluster_object(self, resource: Resource, name: str) -> JSON:
        """A cluster-scoped object (a CRD, to read its schema)."""
        base = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        call = Call("get", resource, "", name)
        return cast(JSON, self._request(call, "GET", f"{base}/{resource.plural}/{name}"))

    def open_watch(
        self, ref: ObjectRef, resource_version: str, *, timeout_s: int = 60
    ) -> WatchStream:
        """Watch one object from `resource_version` on (list+watch with a name field selector).

        The server ends the stream after `timeout_s`; `WatchStream.close()` ends it earlier.
        """
        call = Call("watch", ref.resource, ref.namespace, ref.name)
        query = {
            "watch": "true",
            "fieldSelector": f"metadata.name={ref.name}",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        response = self._request(
            call,
            "GET",
            ref.resource.collection_path(ref.namespace),
            query=query,
            timeout=(self.timeout_s, timeout_s + 15.0),
            stream=True,
        )
        return WatchStream(response.response, call)


class WatchStream:
    """Iterates (type, object) events of a watch; ERROR events raise KubeError (410: re-list)."""

    def __init__(self, raw: Any, call: Call) -> None:
        self._raw = raw
        self._call = call
        self._closed = False

    def __iter__(self) -> Iterator[tuple[str, JSON]]:
        buffer = b""
        try:
            for chunk in self._raw.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    etype = str(event.get("type", ""))
                    obj = cast(JSON, event.get("object") or {})
                    if etype == "ERROR":
                        raise KubeError(
                            f"watch on {self._call.target} ended: {obj.get('message', '')}",
                            status=int(obj.get("code") or 500),
                            call=self._call,
                        )
                    yield etype, obj
        except KubeError:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise translate(exc, self._call) from exc
        finally:
            self._raw.release_conn()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):  # best effort: the socket may be gone already
            self._raw.shutdown()
        with contextlib.suppress(Exception):
            self._raw.close()


def _raise_for(response: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    raise ApiException.from_response(
        http_resp=response,
        body=(response.data or b"").decode("utf-8", errors="replace"),
        data=None,
    )


def shared_api(conn: ConnectionSettings, shared: dict[str, Any]) -> KubeApi:
    """One KubeApi per (kubeconfig, context, namespace, in_cluster) in the adapter context."""
    key = f"kube-api:{conn.kubeconfig}:{conn.context}:{conn.namespace}:{conn.in_cluster}"
    api = shared.get(key)
    if not isinstance(api, KubeApi):
        api = connect(conn)
        shared[key] = api
    return api
