"""A real, throw-away Kubernetes control plane (etcd + kube-apiserver) for tests.

``KubeCluster`` starts Debian's ``etcd`` and a ``kube-apiserver`` built from Debian's own
``kubernetes`` source package (see ``.ci/kube/build-apiserver.sh``), both bound to 127.0.0.1 on
free ports, with RBAC and two static-token users:

* ``admin``  (group ``system:masters``: may do everything)
* ``nobody`` (no grants: every resource request is answered 403)

There are no controllers, scheduler or kubelets: objects are stored and validated, nothing
reconciles them. That is what tests of a traffic-router adapter need: real API semantics
(CRD schemas, status subresources, resourceVersion conflicts, RBAC denials).

Usage (a pytest fixture can simply do this)::

    with KubeCluster() as k:
        k.apply_manifest(Path("rollout-crd.yaml"))
        api = k.api_client()           # kubernetes.client.ApiClient as admin
        yield k

Environment:
    CANARY_KUBE_APISERVER  path of a kube-apiserver binary (skips the build script)
    CANARY_ETCD            path of the etcd binary (default: ``etcd`` on PATH, /usr/bin/etcd)
    CANARY_KUBE_KEEP_TMP   1 = keep the temp dir (logs, kubeconfigs) after stop, for debugging
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import yaml

from tests.support.processes import Running, child_setup, free_ports, reset_signals

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "kube" / "build-apiserver.sh"

ADMIN_USER = "admin"
NOBODY_USER = "nobody"


class KubeClusterError(RuntimeError):
    """The control plane could not be built, started or used."""


def find_apiserver(build_timeout: float = 1800.0) -> Path:
    """Return the kube-apiserver binary: ``$CANARY_KUBE_APISERVER`` or the build script's output.

    The script is idempotent and returns in about a second when its cached binary exists;
    the first build takes about 7 minutes on 2 cores.
    """
    env_path = os.environ.get("CANARY_KUBE_APISERVER")
    if env_path:
        path = Path(env_path)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise KubeClusterError(f"CANARY_KUBE_APISERVER={env_path} is not an executable file")
        return path
    try:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=build_timeout,
            check=False,
            preexec_fn=reset_signals,  # bash may build in a thread: no PDEATHSIG
        )
    except subprocess.TimeoutExpired as exc:
        raise KubeClusterError(f"{BUILD_SCRIPT} did not finish in {build_timeout:.0f}s") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise KubeClusterError(
            f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{_tail(proc.stderr, 60)}"
        )
    path = Path(lines[-1])
    if not path.is_file():
        raise KubeClusterError(f"{BUILD_SCRIPT} printed {path}, which does not exist")
    return path


def find_etcd() -> Path:
    """Return Debian's etcd (package etcd-server), or ``$CANARY_ETCD``."""
    candidate = os.environ.get("CANARY_ETCD") or shutil.which("etcd") or "/usr/bin/etcd"
    path = Path(candidate)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise KubeClusterError(
            f"etcd not found ({candidate}): run .ci/kube/build-apiserver.sh"
            " (or apt-get install etcd-server)"
        )
    return path


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _load_documents(source: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Parse a manifest given as a path or as YAML text; flattens ``kind: List``."""
    text: str
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and Path(source).is_file()
    ):
        text = Path(source).read_text(encoding="utf-8")
    else:
        text = str(source)
    docs: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if doc.get("kind", "").endswith("List") and "items" in doc:
            docs.extend(item for item in doc["items"] if item)
        else:
            docs.append(doc)
    return docs


class KubeCluster(Running):
    """etcd + kube-apiserver on loopback, as a context manager.

    Attributes set by :meth:`start`: ``server_url``, ``admin_token``, ``nobody_token``,
    ``kubeconfig_admin``, ``kubeconfig_nobody``, ``ca_file``, ``workdir``, ``apiserver_log``.
    """

    def __init__(
        self,
        apiserver: str | os.PathLike[str] | None = None,
        etcd: str | os.PathLike[str] | None = None,
        start_timeout: float = 90.0,
        extra_apiserver_args: Iterable[str] = (),
    ) -> None:
        self._apiserver_arg = Path(apiserver) if apiserver else None
        self._etcd_arg = Path(etcd) if etcd else None
        self.start_timeout = start_timeout
        self.extra_apiserver_args = list(extra_apiserver_args)

        self.workdir: Path | None = None
        self._etcd_dir: Path | None = None
        self._etcd: subprocess.Popen[bytes] | None = None
        self._apiserver: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._clients: dict[str, Any] = {}

        self.server_url: str = ""
        self.etcd_url: str = ""
        self.admin_token: str = secrets.token_hex(16)
        self.nobody_token: str = secrets.token_hex(16)
        self.ca_file: Path | None = None
        self.kubeconfig_admin: Path | None = None
        self.kubeconfig_nobody: Path | None = None
        self.apiserver_log: Path | None = None
        self.etcd_log: Path | None = None
        self.startup_seconds: float = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Build/find the binaries, start etcd and kube-apiserver, wait until ready."""
        t0 = time.monotonic()
        apiserver = self._apiserver_arg or find_apiserver()
        etcd = self._etcd_arg or find_etcd()
        try:
            self._start(apiserver, etcd)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    def _start(self, apiserver: Path, etcd: Path) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="canary-kube-"))
        # etcd fsyncs every write: keep its data on tmpfs where there is one.
        shm = Path("/dev/shm")
        etcd_base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self._etcd_dir = Path(tempfile.mkdtemp(prefix="canary-etcd-", dir=etcd_base))
        etcd_port, peer_port, secure_port = free_ports(3)

        # --- etcd
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self.etcd_log = self.workdir / "etcd.log"
        self._etcd = self._spawn(
            [
                str(etcd),
                "--name=canary",
                f"--data-dir={self._etcd_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=canary={peer_url}",
                "--initial-cluster-state=new",
                "--log-level=warn",
                "--logger=zap",
            ],
            self.etcd_log,
        )
        self._wait_http(
            f"{self.etcd_url}/health",
            self._etcd,
            self.etcd_log,
            "etcd",
            ok=lambda b: b'"true"' in b,
        )

        # --- credentials
        sa_key = self.workdir / "sa.key"
        sa_pub = self.workdir / "sa.pub"
        self._openssl("genrsa", "-out", str(sa_key), "2048")
        self._openssl("rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},{ADMIN_USER},uid-admin,"system:masters"\n'
            f"{self.nobody_token},{NOBODY_USER},uid-nobody\n",
            encoding="utf-8",
        )
        tokens.chmod(0o600)
        cert_dir = self.workdir / "certs"
        cert_dir.mkdir()

        # --- kube-apiserver
        self.server_url = f"https://127.0.0.1:{secure_port}"
        self.apiserver_log = self.workdir / "kube-apiserver.log"
        self._apiserver = self._spawn(
            [
                str(apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={secure_port}",
                # no TLS files given: the server writes a self-signed CA + cert for 127.0.0.1 here
                f"--cert-dir={cert_dir}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/24",
                # an Endpoints object may not hold a loopback address: do not write one
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=1",
                *self.extra_apiserver_args,
            ],
            self.apiserver_log,
        )
        self.ca_file = cert_dir / "apiserver.crt"
        deadline = time.monotonic() + self.start_timeout
        # the file appears before its content does (on a loaded machine, long enough for an
        # SSL context to read it empty): wait for the whole certificate
        while not _whole_pem(self.ca_file):
            self._check_alive(self._apiserver, self.apiserver_log, "kube-apiserver")
            if time.monotonic() > deadline:
                raise self._failure(
                    "kube-apiserver wrote no serving certificate", self.apiserver_log
                )
            time.sleep(0.1)
        self._wait_http(
            f"{self.server_url}/readyz",
            self._apiserver,
            self.apiserver_log,
            "kube-apiserver",
            ok=lambda b: b.strip() == b"ok",
            token=self.admin_token,
            deadline=deadline,
        )
        self.kubeconfig_admin = self._write_kubeconfig(ADMIN_USER, self.admin_token)
        self.kubeconfig_nobody = self._write_kubeconfig(NOBODY_USER, self.nobody_token)

    def stop(self) -> None:
        """Terminate (then kill) both processes and remove the temp dirs. Safe to call twice."""
        for client in self._clients.values():
            with contextlib.suppress(Exception):  # best effort at teardown
                client.close()
        self._clients.clear()
        for proc in (self._apiserver, self._etcd):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        self._apiserver = self._etcd = None
        for fh in self._logs:
            fh.close()
        self._logs.clear()
        if self._etcd_dir is not None:
            shutil.rmtree(self._etcd_dir, ignore_errors=True)
            self._etcd_dir = None
        if self.workdir is not None and os.environ.get("CANARY_KUBE_KEEP_TMP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ clients
    def api_client(self, user: str = ADMIN_USER) -> Any:
        """A ``kubernetes.client.ApiClient`` for ``admin`` or ``nobody``.

        Cached per user and closed by :meth:`stop`.
        """
        from kubernetes import config

        if user not in self._clients:
            kubeconfigs = {ADMIN_USER: self.kubeconfig_admin, NOBODY_USER: self.kubeconfig_nobody}
            kubeconfig = kubeconfigs[user]
            if kubeconfig is None:
                raise KubeClusterError("cluster is not started")
            self._clients[user] = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig)
            )
        return self._clients[user]

    def dynamic_client(self, user: str = ADMIN_USER) -> Any:
        """A ``kubernetes.dynamic.DynamicClient`` whose discovery cache lives in the temp dir."""
        from kubernetes.dynamic import DynamicClient

        assert self.workdir is not None, "cluster is not started"
        return DynamicClient(  # type: ignore[no-untyped-call]
            self.api_client(user), cache_file=str(self.workdir / f"discovery-{user}.json")
        )

    def apply_manifest(
        self,
        source: str | os.PathLike[str],
        namespace: str = "default",
        user: str = ADMIN_USER,
        establish_timeout: float = 30.0,
    ) -> list[Any]:
        """Create (or replace, if it exists) every object of a manifest; returns them as stored.

        ``source`` is a file path or YAML text (multi-document allowed). A
        CustomResourceDefinition is waited on until ``Established`` before the next object,
        so a manifest may hold a CRD followed by objects of its kind.
        """
        from kubernetes.client.exceptions import ApiException

        dyn = self.dynamic_client(user)
        created: list[Any] = []
        for doc in _load_documents(source):
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            ns = None
            if resource.namespaced:
                ns = doc.get("metadata", {}).get("namespace") or namespace
            try:
                obj = resource.create(body=doc, namespace=ns)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = resource.get(name=doc["metadata"]["name"], namespace=ns)
                doc = {
                    **doc,
                    "metadata": {
                        **doc["metadata"],
                        "resourceVersion": current.metadata.resourceVersion,
                    },
                }
                obj = resource.replace(body=doc, namespace=ns)
            created.append(obj)
            if doc["kind"] == "CustomResourceDefinition":
                self.wait_crd_established(doc["metadata"]["name"], timeout=establish_timeout)
                dyn.resources.invalidate_cache()  # discovery must see the new kind
        return created

    def wait_crd_established(self, name: str, timeout: float = 30.0) -> None:
        """Wait until the CRD ``name`` has condition Established=True."""
        from kubernetes import client

        api = client.ApiextensionsV1Api(self.api_client())
        deadline = time.monotonic() + timeout
        while True:
            crd = api.read_custom_resource_definition(name)
            conditions = (crd.status and crd.status.conditions) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise KubeClusterError(f"CRD {name} not Established after {timeout}s: {conditions}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ internals
    def _spawn(self, argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        in_main = threading.current_thread() is threading.main_thread()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            # PDEATHSIG is tied to the forking *thread*: only safe from the main thread.
            preexec_fn=child_setup if in_main else reset_signals,
        )

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, preexec_fn=reset_signals)  # fmt: skip
        if proc.returncode != 0:
            raise KubeClusterError(f"openssl {' '.join(args)} failed: {proc.stderr}")

    def _failure(self, message: str, log_path: Path | None) -> KubeClusterError:
        tail = ""
        if log_path is not None and log_path.exists():
            tail = _tail(log_path.read_text(encoding="utf-8", errors="replace"), 40)
        return KubeClusterError(f"{message}\n--- last lines of {log_path} ---\n{tail}")

    def _check_alive(self, proc: subprocess.Popen[bytes], log_path: Path, name: str) -> None:
        if proc.poll() is not None:
            raise self._failure(f"{name} exited with code {proc.returncode}", log_path)

    def _wait_http(
        self,
        url: str,
        proc: subprocess.Popen[bytes],
        log_path: Path,
        name: str,
        ok: Any,
        token: str | None = None,
        deadline: float | None = None,
    ) -> None:
        deadline = deadline or time.monotonic() + self.start_timeout
        context: ssl.SSLContext | None = None
        if url.startswith("https"):
            context = ssl.create_default_context(cafile=str(self.ca_file))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        last = "no answer yet"
        while True:
            self._check_alive(proc, log_path, name)
            try:
                req = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(req, timeout=5, context=context) as resp:
                    body = resp.read()
                if ok(body):
                    return
                last = body.decode(errors="replace")
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read().decode(errors='replace')[-2000:]}"
            except (OSError, ssl.SSLError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise self._failure(
                    f"{name} not ready at {url} in time; last answer: {last}", log_path
                )
            time.sleep(0.2)

    def _write_kubeconfig(self, user: str, token: str) -> Path:
        assert self.workdir is not None and self.ca_file is not None
        path = self.workdir / f"kubeconfig-{user}.yaml"
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "canary-test",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": f"{user}@canary-test",
                    "context": {"cluster": "canary-test", "user": user, "namespace": "default"},
                }
            ],
            "current-context": f"{user}@canary-test",
        }
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path


def _whole_pem(path: Path) -> bool:
    """The file holds at least one whole PEM certificate."""
    try:
        return b"-----END CERTIFICATE-----" in path.read_bytes()
    except OSError:
        return False
