"""Metrics from Prometheus: counts per variant for a tick's window, via prometheus-api-client.

Each tick runs one instant query per metric for both variants at once (grouped by the variant
label), evaluated at the window's end:

* requests  ``sum by (L) (increase(REQUESTS{matchers}[R]))``
* errors    the same with the preset's error matcher (``code=~"5.."``, ...)
* latency   ``sum by (L, le) (increase(BUCKETS{matchers}[R]))`` (ms buckets become seconds)
* resets    ``sum by (L) (resets(REQUESTS{matchers}[R]))``: a counter reset voids the tick
* one query per custom PromQL template (Flagger-style ``{{ placeholder }}`` templates)

Window alignment: for a window [start, end] of W seconds the range is
R = ceil(max(W, min_range)) whole seconds, and every count is scaled by W / R. When the tick is
longer than ``min_range`` (default 4 scrape intervals: ``increase()`` needs two samples in
range, and four survive a missed scrape) R is W rounded up and the factor is ~1. When the tick
is shorter, the counts are the rate over the last R seconds times W: estimates whose sum over
many ticks matches the real total, where querying ``increase(...[R])`` unscaled would count
every request R / W times and overstate the judge's sample sizes.

``increase()`` extrapolates to the range's edges, so counts are floats (kept as floats), and
each series is extrapolated on its own: tiny inversions between cumulative buckets are
repaired (running maximum) and errors are capped at requests. Real trouble is never repaired:
a bad query (HTTP 400), a timeout, a refused connection, an empty result or a counter reset
makes the tick no data, with a reason a person can read. Nothing here raises out of `fetch`.

Credentials come from a file or an environment variable, are re-read every tick (rotated
tokens keep working), never live in the settings, and are scrubbed from every message.
"""

from __future__ import annotations

import ast
import base64
import json
import logging
import math
import os
import re
import ssl
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from adapters.registry import AdapterConfigError, AdapterContext
from canary_tui.core.metrics import Histogram, Sample, VariantCounts

log = logging.getLogger("canary_tui.adapters.prometheus")

# --------------------------------------------------------------------------------------------
# presets


@dataclass(frozen=True, slots=True)
class VariantAxis:
    """How one preset tells the two variants apart: a label, and where its values come from."""

    label: str
    values_from: str  # "version" (stable_version/canary_version) or "workload"
    matchers: str  # template: the preset's own label matchers for this axis


@dataclass(frozen=True, slots=True)
class Preset:
    """Metric names and label conventions of one mesh, ingress or instrumentation library."""

    name: str
    description: str
    requests_metric: str
    buckets_metric: str
    bucket_unit_s: float  # seconds per unit of the `le` label (0.001 for milliseconds)
    error_matcher: str
    axes: Mapping[str, VariantAxis]
    default_axis: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "generic",
            "http_requests_total / http_request_duration_seconds_bucket with a version label",
            "http_requests_total",
            "http_request_duration_seconds_bucket",
            1.0,
            'code=~"5.."',
            {"version": VariantAxis("version", "version", "")},
            "version",
        ),
        Preset(
            "istio",
            "Istio standard metrics, reported by the destination proxy",
            "istio_requests_total",
            "istio_request_duration_milliseconds_bucket",
            0.001,
            'response_code=~"5.."',
            {
                "version": VariantAxis(
                    "destination_version",
                    "version",
                    'reporter="destination", destination_workload_namespace="{{ namespace }}", '
                    'destination_service_name="{{ service }}"',
                ),
                "workload": VariantAxis(
                    "destination_workload",
                    "workload",
                    'reporter="destination", destination_workload_namespace="{{ namespace }}"',
                ),
            },
            "version",
        ),
        Preset(
            "linkerd",
            "Linkerd proxy metrics, inbound side, by deployment",
            "response_total",
            "response_latency_ms_bucket",
            0.001,
            'classification="failure"',
            {
                "workload": VariantAxis(
                    "deployment", "workload", 'direction="inbound", namespace="{{ namespace }}"'
                )
            },
            "workload",
        ),
        Preset(
            "nginx",
            "ingress-nginx controller metrics, by backend Service (stable and canary Services)",
            "nginx_ingress_controller_requests",
            "nginx_ingress_controller_request_duration_seconds_bucket",
            1.0,
            'status=~"5.."',
            {"workload": VariantAxis("service", "workload", 'namespace="{{ namespace }}"')},
            "workload",
        ),
    )
}

PLACEHOLDERS = (
    "namespace",
    "service",
    "stable_workload",
    "canary_workload",
    "stable_version",
    "canary_version",
    "variant_label",
    "stable_value",
    "canary_value",
    "variant_values",
    "variant_matcher",
    "selector",
    "matchers",
    "window",
)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_regex_alternatives(*values: str) -> str:
    """An RE2 alternation matching exactly these values, escaped for a PromQL string."""
    return promql_string("|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values))


def render_template(template: str, values: Mapping[str, str], where: str) -> str:
    """Replace ``{{ name }}`` placeholders; an unknown one is an AdapterConfigError."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise AdapterConfigError(
                f"prometheus source: {where}: unknown placeholder {{{{ {name} }}}} "
                f"(known: {', '.join(sorted(values))})"
            )
        return values[name]

    return _PLACEHOLDER.sub(sub, template)


# --------------------------------------------------------------------------------------------
# settings


def _err(setting: str, message: str) -> AdapterConfigError:
    return AdapterConfigError(f"prometheus source: {setting}: {message}")


def _duration(setting: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _err(setting, "a duration is a number of seconds or a string like '2s', '500ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise _err(setting, f"{value!r} is not a duration (use e.g. 2, '2s', '500ms', '1m')")
    if not (math.isfinite(seconds) and seconds > 0):
        raise _err(setting, f"must be a positive duration, got {value!r}")
    return seconds


def _text(setting: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise _err(setting, f"must be a{'' if empty_ok else ' non-empty'} string")
    return value


def _safe_url(url: str) -> str:
    """`url` without user info, query or fragment (they may hold credentials)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=netloc, query="", fragment="").geturl()
    except ValueError:
        return "(unparsable URL)"


def _canary_field(canary: Any, name: str) -> str | None:
    if canary is None:
        return None
    value = canary.get(name) if isinstance(canary, Mapping) else getattr(canary, name, None)
    return str(value) if value else None


_SECRET_KEYS = {"bearer_token", "token", "password", "basic_auth_password"}


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """The `source:` section for `kind: prometheus`. Holds no secret: only where to read one."""

    url: str
    preset: str = "generic"
    variant_by: str = ""  # "" = the preset's default axis
    variant_label: str = ""  # "" = the axis' label
    namespace: str = "default"
    service: str = ""
    stable_workload: str = ""  # "" = service
    canary_workload: str = ""  # "" = service + "-canary"
    stable_version: str = "stable"
    canary_version: str = "canary"
    stable_value: str = ""  # "" = the stable version or workload, by the axis
    canary_value: str = ""
    selector: str = ""  # extra label matchers (a template), e.g. 'job="checkout"'
    custom: Mapping[str, str] = field(default_factory=dict)
    scrape_interval: float = 15.0
    min_range: float = 0.0  # 0 = 4 x scrape_interval
    timeout: float = 3.0
    tls_verify: bool = True
    ca_file: str = ""
    bearer_token_file: str = ""
    bearer_token_env: str = ""
    username: str = ""
    password_file: str = ""
    password_env: str = ""

    @property
    def effective_min_range(self) -> float:
        return self.min_range or 4 * self.scrape_interval

    @property
    def axis(self) -> VariantAxis:
        preset = PRESETS[self.preset]
        return preset.axes[self.variant_by or preset.default_axis]

    @property
    def label(self) -> str:
        return self.variant_label or self.axis.label

    @property
    def values(self) -> tuple[str, str]:
        """(stable, canary) values of the variant label."""
        if self.axis.values_from == "version":
            defaults = (self.stable_version, self.canary_version)
        else:
            defaults = (
                self.stable_workload or self.service,
                self.canary_workload or (f"{self.service}-canary" if self.service else ""),
            )
        return (self.stable_value or defaults[0], self.canary_value or defaults[1])

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], canary: Any = None) -> PrometheusSettings:
        """Validate a config's settings; `canary` (the config's canary section) gives defaults.

        Every error is an AdapterConfigError naming the setting; no value of a secret-looking
        key is ever echoed.
        """
        known = {f.name for f in fields(cls)}
        secret = sorted(set(raw) & _SECRET_KEYS)
        if secret:
            raise _err(
                secret[0],
                "secrets are never read from the config file; use bearer_token_file or "
                "bearer_token_env (or username with password_file or password_env)",
            )
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AdapterConfigError(
                f"prometheus source: unknown setting(s): {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        if "url" not in raw:
            raise _err("url", "is required (e.g. http://prometheus.monitoring:9090)")
        kw: dict[str, Any] = {}
        url = _text("url", raw["url"]).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _err("url", f"{_safe_url(url)!r} is not an http:// or https:// URL")
        if parts.username or parts.password:
            raise _err("url", "must not carry credentials; use username with password_file")
        if parts.query or parts.fragment:
            raise _err("url", "must not have a query string or fragment")
        kw["url"] = url

        preset = raw.get("preset", "generic")
        if preset not in PRESETS:
            raise _err("preset", f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        kw["preset"] = preset
        axes = PRESETS[preset].axes
        if "variant_by" in raw and raw["variant_by"] not in axes:
            raise _err(
                "variant_by",
                f"the {preset} preset tells variants apart by {' or '.join(axes)}, "
                f"not {raw['variant_by']!r}",
            )
        if "variant_label" in raw and not _LABEL_NAME.match(str(raw["variant_label"])):
            raise _err("variant_label", f"{raw['variant_label']!r} is not a label name")

        defaults = {
            "namespace": _canary_field(canary, "namespace"),
            "service": _canary_field(canary, "service") or _canary_field(canary, "name"),
            "stable_version": _canary_field(canary, "stable_version"),
            "canary_version": _canary_field(canary, "canary_version"),
        }
        for name in (
            "variant_by",
            "variant_label",
            "namespace",
            "service",
            "stable_workload",
            "canary_workload",
            "stable_version",
            "canary_version",
            "stable_value",
            "canary_value",
            "ca_file",
            "bearer_token_file",
            "bearer_token_env",
            "username",
            "password_file",
            "password_env",
        ):
            if name in raw:
                kw[name] = _text(name, raw[name])
            elif defaults.get(name):
                kw[name] = defaults[name]
        if "selector" in raw:
            kw["selector"] = _text("selector", raw["selector"], empty_ok=True).strip().strip(",")

        for name in ("scrape_interval", "min_range", "timeout"):
            if name in raw:
                kw[name] = _duration(name, raw[name])
        if "tls_verify" in raw:
            if not isinstance(raw["tls_verify"], bool):
                raise _err("tls_verify", "must be true or false")
            kw["tls_verify"] = raw["tls_verify"]

        custom = raw.get("custom", {})
        if not isinstance(custom, Mapping):
            raise _err("custom", "must map metric names to PromQL templates")
        for name, template in custom.items():
            if not isinstance(name, str) or not _METRIC_KEY.match(name):
                raise _err("custom", f"{name!r} is not a metric name (letters, digits, ._-)")
            _text(f"custom.{name}", template)
        kw["custom"] = dict(custom)

        settings = cls(**kw)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.min_range and self.min_range < 2 * self.scrape_interval:
            raise _err(
                "min_range",
                f"{self.min_range:g} s is less than 2 x scrape_interval "
                f"({self.scrape_interval:g} s): increase() needs two samples in its range",
            )
        stable, canary = self.values
        if not (stable and canary):
            raise _err(
                "service",
                f"the {self.preset} preset tells variants apart by {self.label}: set service "
                "(or stable_workload and canary_workload, or stable_value and canary_value)",
            )
        if "{{ service }}" in self.axis.matchers and not self.service:
            raise _err("service", f"the {self.preset} preset filters by service: set it")
        if stable == canary:
            raise _err(
                "canary_value",
                f"stable and canary have the same {self.label} value {stable!r}: "
                "the variants cannot be told apart",
            )
        if self.bearer_token_file and self.bearer_token_env:
            raise _err("bearer_token_env", "set bearer_token_file or bearer_token_env, not both")
        if self.password_file and self.password_env:
            raise _err("password_env", "set password_file or password_env, not both")
        has_password = bool(self.password_file or self.password_env)
        if has_password != bool(self.username):
            raise _err(
                "username" if has_password else "password_file",
                "basic auth needs username and one of password_file, password_env",
            )
        if self.username and (self.bearer_token_file or self.bearer_token_env):
            raise _err("username", "use either a bearer token or basic auth, not both")
        for name in ("bearer_token_file", "password_file", "ca_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise _err(name, f"{path} is not a readable file")
        for name in ("bearer_token_env", "password_env"):
            var = getattr(self, name)
            if var and not os.environ.get(var):
                raise _err(name, f"environment variable {var} is not set or empty")
        # Render every template once, so that unknown placeholders fail at start-up.
        render_queries(self, 60)


# --------------------------------------------------------------------------------------------
# queries


@dataclass(frozen=True, slots=True)
class Queries:
    """The PromQL of one tick; every query returns one series per variant."""

    requests: str
    errors: str
    latency: str
    resets: str
    custom: Mapping[str, str]
    range_s: int


def placeholder_values(settings: PrometheusSettings, range_s: int) -> dict[str, str]:
    """What each ``{{ placeholder }}`` stands for (values escaped for PromQL strings)."""
    stable, canary = settings.values
    label = settings.label
    variant_matcher = f'{label}=~"{promql_regex_alternatives(stable, canary)}"'
    values = {
        "namespace": promql_string(settings.namespace),
        "service": promql_string(settings.service),
        "stable_workload": promql_string(settings.stable_workload or settings.service),
        "canary_workload": promql_string(settings.canary_workload or f"{settings.service}-canary"),
        "stable_version": promql_string(settings.stable_version),
        "canary_version": promql_string(settings.canary_version),
        "variant_label": label,
        "stable_value": promql_string(stable),
        "canary_value": promql_string(canary),
        "variant_values": promql_regex_alternatives(stable, canary),
        "variant_matcher": variant_matcher,
        "window": f"{range_s}s",
    }
    selector = render_template(settings.selector, values | {"selector": ""}, "selector")
    base = render_template(settings.axis.matchers, values, f"preset {settings.preset}")
    values["selector"] = selector
    values["matchers"] = ", ".join(m for m in (base, selector, variant_matcher) if m)
    return values


def render_queries(settings: PrometheusSettings, range_s: int) -> Queries:
    """The preset's queries and the custom templates for a range of `range_s` seconds."""
    preset = PRESETS[settings.preset]
    v = placeholder_values(settings, range_s)
    label, matchers, window = v["variant_label"], v["matchers"], v["window"]
    req = f"{preset.requests_metric}{{{matchers}}}[{window}]"
    err = f"{preset.requests_metric}{{{matchers}, {preset.error_matcher}}}[{window}]"
    buckets = f"{preset.buckets_metric}{{{matchers}}}[{window}]"
    return Queries(
        requests=f"sum by ({label}) (increase({req}))",
        errors=f"sum by ({label}) (increase({err}))",
        latency=f"sum by ({label}, le) (increase({buckets}))",
        resets=f"sum by ({label}) (resets({req}))",
        custom={
            name: render_template(template, v, f"custom.{name}")
            for name, template in settings.custom.items()
        },
        range_s=range_s,
    )


def range_for(settings: PrometheusSettings, window_s: float) -> int:
    """Whole seconds of range for a window: W rounded up (sub-millisecond jitter ignored), and
    never less than `min_range`."""
    return max(1, math.ceil(max(window_s, settings.effective_min_range) - 1e-3))


# --------------------------------------------------------------------------------------------
# the source


class NoData(Exception):
    """Why a tick has no data; becomes Sample.no_data at the adapter's boundary."""


_HTTP_CODE = re.compile(r"HTTP Status Code (\d+) \((.*)\)\s*$", re.DOTALL)


def _http_reason(exc: PrometheusApiClientException, what: str) -> str:
    text = str(exc)
    m = _HTTP_CODE.search(text)
    if not m:
        return f"{what}: {text[:300]}"
    code, body = int(m.group(1)), m.group(2)
    try:
        raw = ast.literal_eval(body)
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    except (ValueError, SyntaxError):
        pass
    detail = body.strip()
    try:
        answer = json.loads(body)
        if isinstance(answer, dict) and answer.get("error"):
            detail = str(answer["error"])
    except ValueError:
        pass
    detail = " ".join(detail.split())[:300]
    kind = {
        400: "bad query",
        401: "unauthorized (check the bearer token or basic auth)",
        403: "forbidden (check the bearer token or basic auth)",
        404: "not found (is url the Prometheus base URL?)",
        422: "query cannot be executed",
        503: "unavailable or query timed out",
    }.get(code, "error")
    return f"HTTP {code} {kind} ({what}): {detail}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        reason = getattr(e, "reason", None)
        todo += [e.__cause__, e.__context__, reason if isinstance(reason, BaseException) else None]
    return seen


def describe_failure(exc: BaseException, what: str, timeout_s: float) -> str:
    """A person's reading of why a query failed (no stack trace, no URL query string)."""
    if isinstance(exc, NoData):
        return str(exc)
    if isinstance(exc, PrometheusApiClientException):
        return _http_reason(exc, what)
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    if isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain
    ):
        return f"timed out after {timeout_s:g} s ({what})"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if isinstance(exc, requests.exceptions.SSLError) or any(
        isinstance(e, ssl.SSLError) for e in chain
    ):
        inner = next((e for e in chain if isinstance(e, ssl.SSLError)), exc)
        return f"TLS error: {str(inner)[:200]} (see tls_verify, ca_file)"
    if isinstance(exc, ValueError) and "JSON" in (str(exc) + "".join(names)):
        return f"not a Prometheus API answer ({what}; is url the Prometheus base URL?)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        root = chain[-1]
        return f"cannot connect: {type(root).__name__}: {str(root)[:200]}"
    return f"unexpected error ({what}): {type(exc).__name__}: {str(exc)[:200]}"


def _read_secret(path: str, var: str, what: str) -> str:
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as exc:
            raise NoData(f"cannot read {what} file {path}: {exc.strerror}") from None
        if not value:
            raise NoData(f"{what} file {path} is empty")
        return value
    value = os.environ.get(var, "").strip()
    if not value:
        raise NoData(f"environment variable {var} ({what}) is not set or empty")
    return value


Series = list[tuple[dict[str, str], float]]


class PrometheusSource:
    """MetricSource over Prometheus' HTTP API. `fetch` never raises."""

    def __init__(
        self,
        settings: PrometheusSettings,
        *,
        client_factory: Callable[..., PrometheusConnect] = PrometheusConnect,
    ) -> None:
        self.settings = settings
        # Credentials and TLS live on our own session (requests merges them into every call).
        self._session = requests.Session()
        self._session.verify = settings.ca_file or settings.tls_verify
        self._client = client_factory(
            settings.url,
            session=self._session,
            # No retry inside a tick: the next tick is the retry, and the budget is `timeout`.
            retry=Retry(total=False),
            timeout=settings.timeout,
        )
        self._secrets: tuple[str, ...] = ()
        self._traced: set[str] = set()

    def __repr__(self) -> str:
        s = self.settings
        auth = "bearer" if (s.bearer_token_file or s.bearer_token_env) else "none"
        if s.username:
            auth = f"basic({s.username})"
        return f"PrometheusSource(url={s.url!r}, preset={s.preset!r}, auth={auth})"

    def close(self) -> None:
        self._client.close()

    # --- MetricSource -----------------------------------------------------------------------
    def fetch(self, start: float, end: float) -> Sample:
        try:
            return self._fetch(start, end)
        except Exception as exc:  # the boundary: nothing escapes, everything is explained
            reason = describe_failure(exc, "fetch", self.settings.timeout)
            if not isinstance(exc, NoData):
                self._trace_once(exc)
            return Sample.no_data(
                start, end, self._scrub(f"prometheus at {self.settings.url}: {reason}")
            )

    def _trace_once(self, exc: BaseException) -> None:
        """Log the traceback of a failure we cannot explain (a bug, ours or the client's),
        scrubbed, once per kind: it would otherwise recur every tick."""
        kind = type(exc).__name__
        if kind in self._traced:
            return
        self._traced.add(kind)
        trace = "".join(traceback.format_exception(exc))
        log.warning("prometheus query failed unexpectedly:\n%s", self._scrub(trace))

    def _scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _remember(self, *secrets: str) -> None:
        """Scrub these from every message from now on (with their encoded forms); a rotated
        secret stays scrubbed for a while, in case a late error quotes it."""
        for secret in secrets:
            encoded = base64.b64encode(secret.encode()).decode()
            for form in (secret, encoded, encoded.rstrip("="), repr(secret)[1:-1]):
                if len(form) >= 4 and form not in self._secrets:
                    self._secrets = (form, *self._secrets)[:32]

    def _authenticate(self) -> None:
        s = self.settings
        if s.bearer_token_file or s.bearer_token_env:
            token = _read_secret(s.bearer_token_file, s.bearer_token_env, "bearer token")
            self._remember(token)
            self._session.headers["Authorization"] = f"Bearer {token}"
        elif s.username:
            password = _read_secret(s.password_file, s.password_env, "password")
            self._remember(password, f"{s.username}:{password}")
            self._session.auth = (s.username, password)

    def _fetch(self, start: float, end: float) -> Sample:
        s = self.settings
        window = end - start
        if not (math.isfinite(window) and window > 0):
            raise NoData(f"empty window ({window:g} s)")
        self._authenticate()
        range_s = range_for(s, window)
        scale = window / range_s
        q = render_queries(s, range_s)
        deadline = time.monotonic() + s.timeout
        preset = PRESETS[s.preset]

        requests_by = self._by_variant(self._query(q.requests, end, deadline, "requests query"))
        missing = [v for v in ("baseline", "canary") if v not in requests_by]
        if missing:
            stable, canary = s.values
            value = {"baseline": stable, "canary": canary}
            which = " or ".join(f'{v} ({s.label}="{value[v]}")' for v in missing)
            raise NoData(
                f"no series for {which} in {preset.requests_metric} over the last {range_s} s"
            )
        resets_by = self._by_variant(self._query(q.resets, end, deadline, "resets query"))
        for variant in ("baseline", "canary"):
            if resets_by.get(variant, 0.0) > 0:
                raise NoData(
                    f"counter reset in the {variant} series of {preset.requests_metric} within "
                    f"the last {range_s} s (a process restarted?): this tick's counts are "
                    "unreliable"
                )
        errors_by = self._by_variant(self._query(q.errors, end, deadline, "errors query"))
        latency_series = self._query(q.latency, end, deadline, "latency query")
        histograms = self._histograms(latency_series, scale, preset)
        customs: dict[str, dict[str, float]] = {"baseline": {}, "canary": {}}
        for name, promql in q.custom.items():
            got = self._by_variant(
                self._query(promql, end, deadline, f"custom metric {name}"), custom=name
            )
            for variant in customs:
                customs[variant][name] = got.get(variant, 0.0) * scale

        counts: dict[str, VariantCounts] = {}
        for variant in ("baseline", "canary"):
            if variant not in histograms:
                raise NoData(
                    f"no latency buckets for {variant} in {preset.buckets_metric} "
                    f"over the last {range_s} s"
                )
            req = requests_by[variant] * scale
            # errors are a subset of the requests series: more can only be extrapolation
            err = min(errors_by.get(variant, 0.0) * scale, req)
            counts[variant] = VariantCounts(req, err, histograms[variant], customs[variant])
        return Sample(start, end, counts["baseline"], counts["canary"])

    def _query(self, promql: str, end: float, deadline: float, what: str) -> Series:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoData(f"timed out after {self.settings.timeout:g} s ({what})")
        try:
            result: Any = self._client.custom_query(
                promql,
                params={"time": f"{end:.3f}"},
                timeout=remaining,  # type: ignore[arg-type]  # annotated int; requests takes float
            )
        except Exception as exc:  # every failure becomes this tick's no-data reason
            reason = describe_failure(exc, what, self.settings.timeout)
            if reason.startswith("unexpected error"):
                self._trace_once(exc)
            raise NoData(reason) from exc
        if not isinstance(result, list):
            raise NoData(f"not a Prometheus API answer ({what}): expected a vector")
        out: Series = []
        for item in result:
            try:
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                raise NoData(f"not a Prometheus API answer ({what}): {str(item)[:120]}") from None
            out.append((labels, value))
        return out

    def _variant_of(self, labels: Mapping[str, str]) -> str | None:
        stable, canary = self.settings.values
        value = labels.get(self.settings.label)
        return "baseline" if value == stable else "canary" if value == canary else None

    def _by_variant(self, series: Series, custom: str | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in series:
            if self.settings.label not in labels and custom is not None:
                raise NoData(
                    f"custom metric {custom}: the result is not grouped by "
                    f"{self.settings.label} (write sum by ({self.settings.label}) (...))"
                )
            variant = self._variant_of(labels)
            if variant is not None:
                out[variant] = out.get(variant, 0.0) + value
        return out

    def _histograms(self, series: Series, scale: float, preset: Preset) -> dict[str, Histogram]:
        buckets: dict[str, dict[float, float]] = {}
        for labels, value in series:
            variant = self._variant_of(labels)
            if variant is None:
                continue
            le = labels.get("le")
            try:
                bound = (
                    math.inf
                    if le in ("+Inf", "Inf", "inf")
                    else float(le or "") * (preset.bucket_unit_s)
                )
            except ValueError:
                raise NoData(f"{preset.buckets_metric}: bad le label {le!r}") from None
            per = buckets.setdefault(variant, {})
            per[bound] = per.get(bound, 0.0) + value * scale
        out: dict[str, Histogram] = {}
        for variant, per in buckets.items():
            if math.inf not in per:
                raise NoData(f'{preset.buckets_metric}: the {variant} buckets lack le="+Inf"')
            bounds = tuple(sorted(per))
            counts: list[float] = []
            for b in bounds:
                # per-series extrapolation can invert neighbours by a hair: keep it cumulative
                counts.append(max(per[b], counts[-1]) if counts else per[b])
            out[variant] = Histogram(bounds, tuple(counts))
        return out


def build_prometheus_source(settings: Mapping[str, Any], ctx: AdapterContext) -> PrometheusSource:
    """Registry builder: ``SOURCES["prometheus"]``. Placeholder defaults (namespace, service,
    versions) come from ``ctx.shared["canary"]`` (the config's canary section) when present."""
    return PrometheusSource(PrometheusSettings.from_mapping(settings, ctx.shared.get("canary")))
