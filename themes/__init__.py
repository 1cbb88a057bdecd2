"""Built-in Textual themes, one YAML file each, and the loader shared with user themes."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from textual.theme import Theme

_FIELDS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "dark",
)


class ThemeError(ValueError):
    """A theme file that cannot be used; the message names the file and the field."""


def theme_from_mapping(data: Any, origin: str) -> Theme:
    if not isinstance(data, dict):
        raise ThemeError(f"{origin}: a theme is a mapping of fields (name:, primary:, ...)")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ThemeError(f"{origin}: name: a theme needs a name")
    unknown = sorted(set(data) - {"name", "variables", *_FIELDS})
    if unknown:
        raise ThemeError(f"{origin}: unknown field(s) {', '.join(unknown)}")
    if not isinstance(data.get("primary"), str):
        raise ThemeError(f"{origin}: primary: a theme needs a primary colour")
    kwargs = {k: data[k] for k in _FIELDS if k in data}
    from textual.color import Color, ColorParseError

    for key, value in kwargs.items():
        if key == "dark":
            if not isinstance(value, bool):
                raise ThemeError(f"{origin}: dark: must be true or false")
            continue
        try:
            Color.parse(str(value))
        except ColorParseError as exc:
            raise ThemeError(f"{origin}: {key}: {value!r} is not a colour") from exc
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeError(f"{origin}: variables: must be a mapping")
    try:
        return Theme(name=name, variables={str(k): str(v) for k, v in variables.items()}, **kwargs)
    except Exception as exc:  # Textual raises various errors for bad colours
        raise ThemeError(f"{origin}: {exc}") from exc


def load_builtin_themes() -> list[Theme]:
    out = []
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            out.append(theme_from_mapping(yaml.safe_load(entry.read_text("utf-8")), entry.name))
    return out
