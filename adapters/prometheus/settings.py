"""The `source:` section for `kind: prometheus`, as a pydantic model: every error names its
setting, and no value of a secret-looking key is ever echoed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, model_validator

from adapters.prometheus.presets import _LABEL_NAME, _METRIC_KEY, PRESETS, VariantAxis
from adapters.settings_types import (
    AdapterConfigError,
    AdapterSettings,
    FieldProblem,
    bounded,
    refuse_secrets,
)


def _safe_url(url: str) -> str:
    """`url` without user info, query or fragment (they may hold credentials)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=netloc, query="", fragment="").geturl()
    except ValueError:
        return "(unparsable URL)"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _url(value: Any) -> str:
    """An http(s) URL with a host and no credentials, query or fragment."""
    url = _text(value).strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{_safe_url(url)!r} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use username with password_file")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    return url


def _preset(value: Any) -> str:
    if not isinstance(value, str) or value not in PRESETS:
        raise ValueError(f"unknown preset {value!r} (known: {', '.join(PRESETS)})")
    return value


def _label(value: Any) -> str:
    if not isinstance(value, str) or not _LABEL_NAME.match(value):
        raise ValueError(f"{value!r} is not a label name")
    return value


def _selector(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip().strip(",")


def _custom(value: Any) -> dict[str, str]:
    """Custom metrics: names to PromQL templates (rendered, and so checked, by the model)."""
    if not isinstance(value, Mapping):
        raise ValueError("must map metric names to PromQL templates")
    for name, template in value.items():
        if not isinstance(name, str) or not _METRIC_KEY.match(name):
            raise ValueError(f"{name!r} is not a metric name (letters, digits, ._-)")
        if not isinstance(template, str) or not template.strip():
            raise FieldProblem("must be a non-empty string", name)
    return dict(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


Text = Annotated[str, BeforeValidator(_text)]


def _canary_field(canary: Any, name: str) -> str | None:
    value = canary.get(name) if isinstance(canary, Mapping) else getattr(canary, name, None)
    return value if isinstance(value, str) and value else None


class PrometheusSettings(AdapterSettings):
    """The `source:` section for `kind: prometheus`. Holds no secret: only where to read one."""

    kind: Literal["prometheus"] = "prometheus"
    SECRET_KEYS: ClassVar[frozenset[str]] = frozenset(
        {"bearer_token", "token", "password", "basic_auth_password"}
    )
    SECRET_ADVICE: ClassVar[str] = (
        "secrets are never read from the config file; use bearer_token_file or "
        "bearer_token_env (or username with password_file or password_env)"
    )

    url: Annotated[str, BeforeValidator(_url)] = Field(
        description="Prometheus' base URL (http or https, e.g. "
        "`http://prometheus.monitoring:9090`), without credentials, query or fragment."
    )
    preset: Annotated[str, BeforeValidator(_preset)] = Field(
        default="generic",
        description="Which metrics and labels to query: "
        + ", ".join(f"`{name}`" for name in PRESETS)
        + " (see [Prometheus](../sources/prometheus.md)).",
    )
    variant_by: str = Field(
        default="",
        description="How the preset tells the variants apart (its default axis when empty).",
    )
    variant_label: Annotated[str, BeforeValidator(_label)] = Field(
        default="",
        description="The label that tells the variants apart (the axis' label when empty).",
    )
    namespace: Text = Field(
        default="default", description="`{{ namespace }}` in queries (default: `canary.namespace`)."
    )
    service: Text = Field(
        default="",
        description="`{{ service }}` in queries (default: `canary.service`, else `canary.name`).",
    )
    stable_workload: Text = Field(
        default="", description="The stable workload's name (default: the service)."
    )
    canary_workload: Text = Field(
        default="", description="The canary workload's name (default: the service + `-canary`)."
    )
    stable_version: Text = Field(
        default="stable", description="The stable version (default: `canary.stable_version`)."
    )
    canary_version: Text = Field(
        default="canary", description="The canary version (default: `canary.canary_version`)."
    )
    stable_value: Text = Field(
        default="",
        description="The variant label's stable value (default: by the axis, the stable version "
        "or workload).",
    )
    canary_value: Text = Field(default="", description="The variant label's canary value.")
    selector: Annotated[str, BeforeValidator(_selector)] = Field(
        default="", description='Extra label matchers (a template), e.g. `job="checkout"`.'
    )
    custom: Annotated[dict[str, str], BeforeValidator(_custom)] = Field(
        default_factory=dict,
        description="Custom counts: metric name to a PromQL template, for `metrics[].numerator`"
        " and `denominator`.",
    )
    scrape_interval: Annotated[float, bounded(0.0, 3600.0, above=True)] = Field(
        default=15.0, description="Prometheus' scrape interval for these series."
    )
    min_range: Annotated[float, bounded(0.0, 86400.0)] = Field(
        default=0.0,
        description="The least range of `increase()` (0: 4 x `scrape_interval`; at least 2 x).",
    )
    timeout: Annotated[float, bounded(0.0, 300.0, above=True)] = Field(
        default=3.0, description="One tick's queries."
    )
    tls_verify: Annotated[bool, BeforeValidator(_flag)] = Field(
        default=True, description="Verify the server's TLS certificate."
    )
    ca_file: Text = Field(default="", description="A CA bundle to verify the server with.")
    bearer_token_file: Text = Field(default="", description="Read a bearer token from this file.")
    bearer_token_env: Text = Field(
        default="", description="Read a bearer token from this environment variable."
    )
    username: Text = Field(default="", description="Basic auth: the user name.")
    password_file: Text = Field(
        default="", description="Basic auth: read the password from this file."
    )
    password_env: Text = Field(
        default="", description="Basic auth: read the password from this environment variable."
    )

    @classmethod
    def noun(cls) -> str:
        return "prometheus source"

    @classmethod
    def canary_defaults(cls, canary: Mapping[str, Any]) -> dict[str, Any]:
        """namespace, service and the versions default to the config's canary section."""
        defaults = {
            "namespace": _canary_field(canary, "namespace"),
            "service": _canary_field(canary, "service") or _canary_field(canary, "name"),
            "stable_version": _canary_field(canary, "stable_version"),
            "canary_version": _canary_field(canary, "canary_version"),
        }
        return {name: value for name, value in defaults.items() if value}

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any] | AdapterSettings, canary: Any = None
    ) -> PrometheusSettings:
        """Validate settings outside a config file (`canary`, the config's canary section,
        gives defaults) and check the files and variables they name. Every error is an
        AdapterConfigError naming the setting; no value of a secret-looking key is echoed."""
        if isinstance(raw, AdapterSettings):
            raw = raw.settings()
        defaults = cls.canary_defaults(canary) if canary is not None else {}
        return cls.parse({**defaults, **raw}, "source").check_environment()

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, raw: Any) -> Any:
        return refuse_secrets(cls, raw)

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

    @model_validator(mode="after")
    def _check(self) -> PrometheusSettings:
        axes = PRESETS[self.preset].axes
        if self.variant_by and self.variant_by not in axes:
            raise FieldProblem(
                f"the {self.preset} preset tells variants apart by {' or '.join(axes)}, "
                f"not {self.variant_by!r}",
                "variant_by",
            )
        if self.min_range and self.min_range < 2 * self.scrape_interval:
            raise FieldProblem(
                f"{self.min_range:g} s is less than 2 x scrape_interval "
                f"({self.scrape_interval:g} s): increase() needs two samples in its range",
                "min_range",
            )
        stable, canary = self.values
        if not (stable and canary):
            raise FieldProblem(
                f"the {self.preset} preset tells variants apart by {self.label}: set service "
                "(or stable_workload and canary_workload, or stable_value and canary_value)",
                "service",
            )
        if "{{ service }}" in self.axis.matchers and not self.service:
            raise FieldProblem(f"the {self.preset} preset filters by service: set it", "service")
        if stable == canary:
            raise FieldProblem(
                f"stable and canary have the same {self.label} value {stable!r}: "
                "the variants cannot be told apart",
                "canary_value",
            )
        if self.bearer_token_file and self.bearer_token_env:
            why = "set bearer_token_file or bearer_token_env, not both"
            raise FieldProblem(why, "bearer_token_env")
        if self.password_file and self.password_env:
            raise FieldProblem("set password_file or password_env, not both", "password_env")
        has_password = bool(self.password_file or self.password_env)
        if has_password != bool(self.username):
            raise FieldProblem(
                "basic auth needs username and one of password_file, password_env",
                "username" if has_password else "password_file",
            )
        if self.username and (self.bearer_token_file or self.bearer_token_env):
            why = "use either a bearer token or basic auth, not both"
            raise FieldProblem(why, "username")
        # Render every template once, so that unknown placeholders fail with the config.
        from adapters.prometheus.queries import render_queries  # (queries builds on settings)

        render_queries(self, 60)
        return self

    def check_environment(self) -> PrometheusSettings:
        """The files and environment variables the settings name exist (checked when the
        source is built, not when a config is read); an AdapterConfigError names the setting."""
        for name in ("bearer_token_file", "password_file", "ca_file"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise AdapterConfigError(f"{path} is not a readable file", name, section="source")
        for name in ("bearer_token_env", "password_env"):
            var = getattr(self, name)
            if var and not os.environ.get(var):
                why = f"environment variable {var} is not set or empty"
                raise AdapterConfigError(why, name, section="source")
        return self
