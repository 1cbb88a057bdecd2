"""Adapter settings are validated by their pydantic models, inside the config's schema: every
bad setting, of every adapter kind the registry knows, is one `file:line: source.<key>:` (or
`router.<key>:`) message, like any other field of the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.registry import ROUTERS, SOURCES
from canary_tui.config.build import build_engine
from canary_tui.config.loader import ConfigError, load_config
from canary_tui.core.clock import VirtualClock
from scripts import gen_docs
from tests.test_cli import canary

#: The least valid settings of each kind: a backend added to the registry must be added here.
MINIMAL: dict[str, dict[str, Any]] = {
    "simulator": {},
    "prometheus": {"url": "http://prometheus.test:9090"},
    "argo-rollouts": {"name": "checkout"},
    "istio": {"name": "checkout"},
    "gateway-api": {"name": "checkout"},
    "deployments": {"stable": "checkout", "canary": "checkout-canary"},
}
#: A setting of each kind given a value of the wrong type, and what the message says.
WRONG_TYPE: dict[str, tuple[str, str, str]] = {
    "simulator": ("seed", "[1, 2]", "must be a whole number, got [1, 2]"),
    "prometheus": ("tls_verify", "'no'", "must be true or false"),
    "argo-rollouts": ("watch", "[yes]", "Input should be a valid boolean"),
    "istio": ("mirror_percent", "lots", "Input should be a valid integer"),
    "gateway-api": ("timeout_s", "5s", "must be a number of seconds, got '5s'"),
    "deployments": ("replicas", "many", "Input should be a valid integer"),
}
ADAPTERS = [("source", kind) for kind in SOURCES] + [("router", kind) for kind in ROUTERS]


def config_text(section: str, kind: str, extra: str = "", drop: str = "") -> str:
    """A config whose `section` is `kind` with its minimal settings, each on its own line
    from line 4, then `extra` (a `key: value` line) on the last line."""
    lines = ["canary:", "  name: checkout", f"{section}:", f"  kind: {kind}"]
    lines += [f"  {k}: {v}" for k, v in MINIMAL[kind].items() if k != drop]
    if extra:
        lines.append(f"  {extra}")
    return "\n".join(lines) + "\n"


def error_of(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, str(info.value)


def test_every_registered_kind_is_covered_here() -> None:
    assert set(SOURCES) | set(ROUTERS) == set(MINIMAL) == set(WRONG_TYPE)


@pytest.mark.parametrize(("section", "kind"), ADAPTERS)
def test_minimal_settings_load(tmp_path: Path, section: str, kind: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(config_text(section, kind))
    adapter = getattr(load_config(path), section)
    assert adapter.kind == kind
    for key, value in MINIMAL[kind].items():
        assert adapter.settings()[key] == value


@pytest.mark.parametrize(("section", "kind"), ADAPTERS)
def test_an_unknown_setting_is_one_message_listing_the_known_ones(
    tmp_path: Path, section: str, kind: str
) -> None:
    text = config_text(section, kind, "wieght: 3")
    path, message = error_of(tmp_path, text)
    line = len(text.splitlines())
    model = (SOURCES if section == "source" else ROUTERS)[kind].settings
    known = ", ".join(model.known())
    assert message == (
        f"{path}:{line}: {section}.wieght: unknown {model.noun()} setting (known: {known})"
    )


@pytest.mark.parametrize(("section", "kind"), ADAPTERS)
def test_a_wrong_type_is_one_message_saying_what_is_expected(
    tmp_path: Path, section: str, kind: str
) -> None:
    key, value, expected = WRONG_TYPE[kind]
    text = config_text(section, kind, f"{key}: {value}")
    path, message = error_of(tmp_path, text)
    line = len(text.splitlines())
    assert message.startswith(f"{path}:{line}: {section}.{key}: ")
    assert expected in message and "\n" not in message


@pytest.mark.parametrize(
    ("section", "kind", "key"),
    [
        ("source", "prometheus", "url"),
        ("router", "argo-rollouts", "name"),
        ("router", "istio", "name"),
        ("router", "gateway-api", "name"),
        ("router", "deployments", "canary"),
    ],
)
def test_a_missing_required_setting_is_named(
    tmp_path: Path, section: str, kind: str, key: str
) -> None:
    path, message = error_of(tmp_path, config_text(section, kind, drop=key))
    noun = (SOURCES if section == "source" else ROUTERS)[kind].settings.noun()
    assert message == f"{path}:3: {section}.{key}: is required by the {noun}"


@pytest.mark.parametrize("key", ["bearer_token", "token", "password", "basic_auth_password"])
def test_a_secret_is_refused_and_never_echoed(tmp_path: Path, key: str) -> None:
    text = config_text("source", "prometheus", f"{key}: hunter2-s3cret")
    path, message = error_of(tmp_path, text)
    assert message == (
        f"{path}:6: source.{key}: secrets are never read from the config file; use"
        " bearer_token_file or bearer_token_env (or username with password_file or password_env)"
    )
    assert "hunter2" not in message


def test_an_unknown_kind_is_named_at_its_line(tmp_path: Path) -> None:
    text = "canary: {name: checkout}\nrouter:\n  kind: linkerd\n"
    path, message = error_of(tmp_path, text)
    assert message == (
        f"{path}:3: router.kind: unknown traffic router 'linkerd' (known: argo-rollouts,"
        " deployments, gateway-api, istio, simulator)"
    )


def test_prometheus_defaults_come_from_the_canary_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "canary: {name: checkout, namespace: shop, stable_version: v1, canary_version: v2}\n"
        "source: {kind: prometheus, url: 'http://p:9090', preset: istio, namespace: other}\n"
    )
    source = load_config(path).source
    assert (source.namespace, source.service) == ("other", "checkout")  # type: ignore[attr-defined]
    assert source.values == ("v1", "v2")  # type: ignore[attr-defined]


def test_a_setting_checked_when_the_source_is_built_names_its_line(tmp_path: Path) -> None:
    text = config_text("source", "prometheus", f"bearer_token_file: {tmp_path / 'nope'}")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    config = load_config(path)
    with pytest.raises(ConfigError) as info:
        build_engine(config, VirtualClock(), audit_path=tmp_path / "a.jsonl")
    assert str(info.value) == (
        f"{path}:6: source.bearer_token_file: {tmp_path / 'nope'} is not a readable file"
    )


def test_run_reports_a_bad_router_setting_once_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(config_text("router", "istio", "mirror_percent: 0"))
    out = canary("run", "--config", str(path), "--headless")
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr
    problems = [line for line in out.stderr.splitlines() if "router." in line]
    assert problems == [
        f"canary-tui: {path}:6: router.mirror_percent: Input should be greater than or equal to 1"
    ]


def test_the_configuration_reference_documents_every_kind() -> None:
    page = gen_docs.configuration_page()
    for section, kind in ADAPTERS:
        assert f"## `{section}` kind: `{kind}` {{#{section}-kind-{kind}}}" in page
    for kind, adapter in {**SOURCES, **ROUTERS}.items():
        for name in adapter.settings.known():
            assert f"| `{name}` |" in page, (kind, name)
    assert "| `timeout` | duration | `3 s` | > `0s`, <= `5m` |" in page
