"""Load and validate a YAML config; every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from canary_tui.config.schema import Config

PathKey = tuple[str | int, ...]


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the message a person reads."""


def _construct(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                yaml.safe_load(yaml.serialize(key_node))
                if not isinstance(key_node, yaml.ScalarNode)
                else key_node.value
            )
            if key in out:
                raise ConfigError(f"{key_node.start_mark.line + 1}: key {key!r} appears twice")
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return (
        yaml.SafeLoader(yaml.serialize(node)).get_single_data()
        if node.tag != "tag:yaml.org,2002:str"
        else node.value
    )


def parse_yaml(text: str, name: str) -> tuple[Any, dict[PathKey, int]]:
    """The YAML document and a map from each field's path to its line."""
    lines: dict[PathKey, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        raise ConfigError(f"{where}: not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from exc
    if node is None:
        raise ConfigError(f"{name}: the file is empty")
    try:
        data = _construct(node, (), lines)
    except ConfigError as exc:
        raise ConfigError(f"{name}:{exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {exc}") from exc
    return data, lines


def _field(loc: PathKey) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(loc: PathKey, lines: dict[PathKey, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def validate(data: Any, lines: dict[PathKey, int], name: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}:1: the top level must be a mapping of sections (canary:, plan:, ...)"
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            line = _line_of(loc, lines)
            where = f"{name}:{line}" if line else name
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check its spelling)"
            problems.append(f"{where}: {_field(loc)}: {msg}")
        raise ConfigError("\n".join(problems)) from exc


def load_config(path: Path) -> Config:
    """Read and validate `path`, or raise ConfigError with every problem located."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, not a config file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    data, lines = parse_yaml(text, str(path))
    return validate(data, lines, str(path))
