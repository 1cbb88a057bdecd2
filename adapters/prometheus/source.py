"""The Prometheus metric source: one instant query per metric for both variants each tick
(one range query per metric for the past windows), counts scaled to the window, failures
turned into no-data with a reason a person can read, and credentials re-read every tick and
scrubbed from every message."""

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from adapters.prometheus.presets import PRESETS, Preset
from adapters.prometheus.queries import Queries, range_for, render_queries
from adapters.prometheus.settings import PrometheusSettings
from adapters.settings_types import AdapterSettings
from canary_tui.core.metrics import Histogram, Sample, VariantCounts

if TYPE_CHECKING:
    from adapters.registry import AdapterContext
    from canary_tui.core.ports import ReadsWindows, SmoothsTicks

log = logging.getLogger("canary_tui.adapters.prometheus")


class NoData(Exception):
    """Why a tick has no data; becomes Sample.no_data at the adapter's boundary."""


class _Gap(NoData):
    """One evaluation time lacks a variant's series or holds a counter reset: `fetch` says
    so, `fetch_windows` leaves that window out."""


#: Prometheus' limit of points per series in one range query's answer.
MAX_POINTS = 11_000


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
            return self._failed(start, end, exc, "fetch")

    # --- ReadsWindows -----------------------------------------------------------------------
    def fetch_windows(self, start: float, end: float, step_s: float) -> list[Sample]:
        """The past span [start, end) as consecutive windows of `step` seconds, read with one
        range query per metric (requests, resets, errors, latency buckets, each custom metric).

        The step is `range_for(settings, step_s)`: whole seconds, never shorter than
        `min_range`, and the window equals the range, so counts are not scaled and the
        `increase()` windows do not overlap. The queries are evaluated at t = start + step,
        start + 2 step, ... <= end (on whole milliseconds, Prometheus' resolution); each t is
        the window [t - step, t). Only windows where both variants have requests and latency
        buckets and no counter reset become Samples (built as `fetch` builds one); the others
        are left out. Prometheus answers at most 11,000 points per series: a longer span is
        cut to its most recent 11,000 windows (the step, i.e. the window length the judge
        measures at, is never widened). One `timeout` covers all the queries together.

        Never raises: a failure of the whole read (an HTTP error, a timeout, a bad answer, a
        span shorter than one step, times that are not finite, no window with data at all) is
        one no-data Sample over [start, end) that says why, secrets scrubbed.
        """
        try:
            return self._fetch_windows(start, end, step_s)
        except Exception as exc:  # the boundary: nothing escapes, everything is explained
            return [self._failed(start, end, exc, "fetch_windows")]

    # --- SmoothsTicks -------------------------------------------------------------------------
    def resolution_s(self, tick_s: float) -> float:
        """A tick's counts are an `increase()` over `range_for(tick)` seconds (at least
        `min_range`) scaled down to the tick: consecutive ticks overlap when that is longer."""
        return float(range_for(self.settings, tick_s))

    def _failed(self, start: float, end: float, exc: Exception, what: str) -> Sample:
        reason = describe_failure(exc, what, self.settings.timeout)
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
        deadline = time.monotonic() + s.timeout

        def read(promql: str, what: str) -> Series:
            return self._query(promql, end, deadline, what)

        return self._sample(start, end, render_queries(s, range_s), window / range_s, read)

    def _fetch_windows(self, start: float, end: float, step_s: float) -> list[Sample]:
        s = self.settings
        if not (math.isfinite(start) and math.isfinite(end)):
            raise NoData(f"the span from {start:g} to {end:g} is not finite")
        if not (math.isfinite(step_s) and step_s > 0):
            raise NoData(f"the step ({step_s:g} s) is not a positive duration")
        step = range_for(s, step_s)
        # evaluation times t0 + k * step (k = 1 .. count) in whole milliseconds
        step_ms = step * 1000
        t0_ms = math.ceil(start * 1000 - 1e-3)
        count = (math.floor(end * 1000 + 1e-3) - t0_ms) // step_ms
        if count < 1:
            raise NoData(f"the span of {end - start:g} s is shorter than one step of {step} s")
        first = max(1, count - MAX_POINTS + 1)
        self._authenticate()
        q = render_queries(s, step)
        deadline = time.monotonic() + s.timeout
        answers = {
            what: self._query_range(promql, (t0_ms, step_ms, first, count), deadline, what)
            for what, promql in (
                ("requests query", q.requests),
                ("resets query", q.resets),
                ("errors query", q.errors),
                ("latency query", q.latency),
                *((f"custom metric {name}", promql) for name, promql in q.custom.items()),
            )
        }
        samples: list[Sample] = []
        gap = ""
        for k in range(first, count + 1):

            def read(promql: str, what: str, k: int = k) -> Series:
                return answers[what].get(k, [])

            t_ms = t0_ms + k * step_ms
            try:
                samples.append(self._sample((t_ms - step_ms) / 1000, t_ms / 1000, q, 1.0, read))
            except _Gap as exc:  # this window lacks a variant or holds a reset: left out
                gap = str(exc)
        if not samples:
            raise NoData(f"no window of {step} s has data for both variants (the latest: {gap})")
        return samples

    def _sample(
        self,
        start: float,
        end: float,
        q: Queries,
        scale: float,
        read: Callable[[str, str], Series],
    ) -> Sample:
        """One evaluation time's Sample from its series, which `read(promql, what)` gives (in
        this order, so that a missing variant fails before the other queries run)."""
        s = self.settings
        range_s = q.range_s
        preset = PRESETS[s.preset]

        requests_by = self._by_variant(read(q.requests, "requests query"))
        missing = [v for v in ("baseline", "canary") if v not in requests_by]
        if missing:
            stable, canary = s.values
            value = {"baseline": stable, "canary": canary}
            which = " or ".join(f'{v} ({s.label}="{value[v]}")' for v in missing)
            raise _Gap(
                f"no series for {which} in {preset.requests_metric} over the last {range_s} s"
            )
        resets_by = self._by_variant(read(q.resets, "resets query"))
        for variant in ("baseline", "canary"):
            if resets_by.get(variant, 0.0) > 0:
                raise _Gap(
                    f"counter reset in the {variant} series of {preset.requests_metric} within "
                    f"the last {range_s} s (a process restarted?): this tick's counts are "
                    "unreliable"
                )
        errors_by = self._by_variant(read(q.errors, "errors query"))
        latency_series = read(q.latency, "latency query")
        histograms = self._histograms(latency_series, scale, preset)
        customs: dict[str, dict[str, float]] = {"baseline": {}, "canary": {}}
        for name, promql in q.custom.items():
            got = self._by_variant(read(promql, f"custom metric {name}"), custom=name)
            for variant in customs:
                customs[variant][name] = got.get(variant, 0.0) * scale

        counts: dict[str, VariantCounts] = {}
        for variant in ("baseline", "canary"):
            if variant not in histograms:
                raise _Gap(
                    f"no latency buckets for {variant} in {preset.buckets_metric} "
                    f"over the last {range_s} s"
                )
            req = requests_by[variant] * scale
            # errors are a subset of the requests series: more can only be extrapolation
            err = min(errors_by.get(variant, 0.0) * scale, req)
            counts[variant] = VariantCounts(req, err, histograms[variant], customs[variant])
        return Sample(start, end, counts["baseline"], counts["canary"])

    def _call(self, what: str, deadline: float, call: Callable[[float], Any]) -> list[Any]:
        """`call(remaining seconds)`'s answer, a list; every failure becomes NoData."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoData(f"timed out after {self.settings.timeout:g} s ({what})")
        try:
            result: Any = call(remaining)
        except Exception as exc:  # every failure becomes this read's no-data reason
            reason = describe_failure(exc, what, self.settings.timeout)
            if reason.startswith("unexpected error"):
                self._trace_once(exc)
            raise NoData(reason) from exc
        if not isinstance(result, list):
            raise NoData(f"not a Prometheus API answer ({what}): expected a list of series")
        return result

    def _query(self, promql: str, end: float, deadline: float, what: str) -> Series:
        result = self._call(
            what,
            deadline,
            lambda remaining: self._client.custom_query(
                promql,
                params={"time": f"{end:.3f}"},
                timeout=remaining,  # type: ignore[arg-type]  # annotated int; requests takes float
            ),
        )
        out: Series = []
        for item in result:
            try:
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                raise NoData(f"not a Prometheus API answer ({what}): {str(item)[:120]}") from None
            out.append((labels, value))
        return out

    def _query_range(
        self, promql: str, times: tuple[int, int, int, int], deadline: float, what: str
    ) -> dict[int, Series]:
        """The series of a range query evaluated at t0 + k * step for k = first .. count
        (`times` = (t0 ms, step ms, first, count)), by k."""
        t0_ms, step_ms, first, count = times
        first_s, last_s = (t0_ms + first * step_ms) / 1000, (t0_ms + count * step_ms) / 1000
        result = self._call(
            what,
            deadline,
            lambda remaining: self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(first_s, UTC),
                end_time=datetime.fromtimestamp(last_s, UTC),
                step=str(step_ms // 1000),
                # the client rounds start and end to whole seconds; these parameters win
                params={"start": f"{first_s:.3f}", "end": f"{last_s:.3f}"},
                timeout=remaining,  # type: ignore[arg-type]  # annotated int; requests takes float
            ),
        )
        out: dict[int, Series] = {}
        for item in result:
            try:
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                points = [(float(t), float(v)) for t, v in item["values"]]
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                raise NoData(f"not a Prometheus API answer ({what}): {str(item)[:120]}") from None
            for t, value in points:
                offset_ms = t * 1000 - t0_ms
                k = round(offset_ms / step_ms) if math.isfinite(offset_ms) else 0
                if not first <= k <= count or abs(offset_ms - k * step_ms) > 1:
                    raise NoData(
                        f"not a Prometheus API answer ({what}): a point at {t:g} is not one "
                        "of the evaluation times asked for"
                    )
                out.setdefault(k, []).append((labels, value))
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


def build_prometheus_source(
    settings: Mapping[str, Any] | AdapterSettings, ctx: AdapterContext
) -> PrometheusSource:
    """Registry builder: ``SOURCES["prometheus"]``. Placeholder defaults (namespace, service,
    versions) come from ``ctx.shared["canary"]`` (the config's canary section) when present;
    files and environment variables the settings name are checked here."""
    if isinstance(settings, PrometheusSettings):
        checked = settings.check_environment()
    else:
        checked = PrometheusSettings.from_mapping(settings, ctx.shared.get("canary"))
    return PrometheusSource(checked)


if TYPE_CHECKING:  # mypy checks that the source has the optional capability
    _reads_windows: type[ReadsWindows] = PrometheusSource
    _smooths_ticks: type[SmoothsTicks] = PrometheusSource
