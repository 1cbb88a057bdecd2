"""The `source:` section for `kind: prometheus`, validated: every error names its setting,
and no value of a secret-looking key is ever echoed."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from adapters.prometheus.presets import (
    _DURATION,
    _LABEL_NAME,
    _METRIC_KEY,
    _UNITS,
    PRESETS,
    VariantAxis,
)
from adapters.registry import AdapterConfigError


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
_DURATIONS = ("scrape_interval", "min_range", "timeout")
#: Plain text settings; the first four default to the config's canary section.
_TEXTS = (
    "variant_by", "variant_label", "namespace", "service", "stable_workload", "canary_workload",
    "stable_version", "canary_version", "stable_value", "canary_value", "ca_file",
    "bearer_token_file", "bearer_token_env", "username", "password_file", "password_env",
)  # fmt: skip


def _known_keys_only(raw: Mapping[str, Any], known: set[str]) -> None:
    """No secret in the file, and no setting this source does not know."""
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


def _url(raw: Mapping[str, Any]) -> str:
    """An http(s) URL with a host and no credentials, query or fragment."""
    if "url" not in raw:
        raise _err("url", "is required (e.g. http://prometheus.monitoring:9090)")
    url = _text("url", raw["url"]).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _err("url", f"{_safe_url(url)!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise _err("url", "must not carry credentials; use username with password_file")
    if parts.query or parts.fragment:
        raise _err("url", "must not have a query string or fragment")
    return url


def _preset(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The preset, and a variant axis and label it knows."""
    preset = raw.get("preset", "generic")
    if preset not in PRESETS:
        raise _err("preset", f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    axes = PRESETS[preset].axes
    if "variant_by" in raw and raw["variant_by"] not in axes:
        raise _err(
            "variant_by",
            f"the {preset} preset tells variants apart by {' or '.join(axes)}, "
            f"not {raw['variant_by']!r}",
        )
    if "variant_label" in raw and not _LABEL_NAME.match(str(raw["variant_label"])):
        raise _err("variant_label", f"{raw['variant_label']!r} is not a label name")
    return {"preset": preset}


def _texts(raw: Mapping[str, Any], canary: Any) -> dict[str, Any]:
    """The text settings, with defaults from the canary section; and the selector."""
    defaults = {
        "namespace": _canary_field(canary, "namespace"),
        "service": _canary_field(canary, "service") or _canary_field(canary, "name"),
        "stable_version": _canary_field(canary, "stable_version"),
        "canary_version": _canary_field(canary, "canary_version"),
    }
    out: dict[str, Any] = {name: v for name, v in defaults.items() if v}
    out |= {name: _text(name, raw[name]) for name in _TEXTS if name in raw}
    if "selector" in raw:
        out["selector"] = _text("selector", raw["selector"], empty_ok=True).strip().strip(",")
    return out


def _custom(custom: Any) -> dict[str, str]:
    """Custom metrics: names to PromQL templates (rendered, and so checked, by `_check`)."""
    if not isinstance(custom, Mapping):
        raise _err("custom", "must map metric names to PromQL templates")
    for name, template in custom.items():
        if not isinstance(name, str) or not _METRIC_KEY.match(name):
            raise _err("custom", f"{name!r} is not a metric name (letters, digits, ._-)")
        _text(f"custom.{name}", template)
    return dict(custom)


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
        _known_keys_only(raw, {f.name for f in fields(cls)})
        kw: dict[str, Any] = {"url": _url(raw), **_preset(raw)}
        kw |= _texts(raw, canary)
        kw |= {name: _duration(name, raw[name]) for name in _DURATIONS if name in raw}
        if "tls_verify" in raw:
            if not isinstance(raw["tls_verify"], bool):
                raise _err("tls_verify", "must be true or false")
            kw["tls_verify"] = raw["tls_verify"]
        kw["custom"] = _custom(raw.get("custom", {}))
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
        from adapters.prometheus.queries import render_queries  # (queries builds on settings)

        render_queries(self, 60)
