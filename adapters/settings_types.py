"""The one validation vocabulary of settings: durations, the base of every adapter's pydantic
settings model, and the errors that name the setting they are about.

The config schema (canary_tui/config/schema.py) reuses the durations and `FieldProblem`, so
an adapter's `source.timeout` and the loop's `loop.tick` are read and refused alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
DAY = 86400.0
_DURATION_HELP = "a duration is a number of seconds or a string like '30s', '2m', '1h'"


class FieldProblem(ValueError):
    """A problem found by a whole-model check that belongs to one field: `loc` is that field's
    path below the model, so the loader reports the field's own line. `str()` is the message
    alone (pydantic quotes it after the field)."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.message, self.loc = message, loc


class AdapterConfigError(FieldProblem):
    """An adapter's settings are wrong. `section` ('source' or 'router') and `loc` name the
    setting when it is known; `str()` reads `source.url: message` (or just the message)."""

    def __init__(self, message: str, *loc: str | int, section: str = "") -> None:
        super().__init__(message, *loc)
        self.section = section

    def where(self) -> str:
        """`source.url`, `router`, or '' when the setting is not known."""
        parts = [self.section] if self.section else []
        parts += [str(p) for p in self.loc]
        return ".".join(parts)

    def __str__(self) -> str:
        where = self.where() if self.loc else ""
        return f"{where}: {self.message}" if where else self.message


def is_duration(text: str) -> bool:
    """Whether `text` is written like a duration ('30', '30s', '500ms', '2m', '1h', '1d')."""
    return _DURATION.match(text) is not None


def _duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(_DURATION_HELP)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{value[:40]!r} is not a duration (use e.g. 30, '30s', '2m', '1h')")
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(_DURATION_HELP)
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    return seconds


def span(seconds: float) -> str:
    """`seconds` as a person writes it: '5m', '1h', '500ms', '2.5s'."""
    if seconds < 0:
        return f"{seconds:g}s"
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s" if seconds >= 1 or seconds == 0 else f"{seconds * 1000:g}ms"


def bounded_duration(value: Any, low: float, high: float, *, above: bool = False) -> float:
    """`value` (seconds, or '30s', '2m', ...) as seconds from `low` (exclusive when `above`) to
    `high`; a ValueError says what is wrong in words."""
    seconds = float(_duration(value))
    if seconds > high or seconds < low or (above and seconds == low):
        least = f"more than {span(low)}" if above else f"at least {span(low)}"
        raise ValueError(f"must be {least} and at most {span(high)}, got {span(seconds)}")
    return seconds


def within(check: Any, low: float, high: float, *, above: bool = False) -> BeforeValidator:
    """`check` as a before-validator, its bounds written on it for the docs' generator."""
    check.bounds = f"{'>' if above else '>='} `{low:g}`, <= `{high:g}`"
    return BeforeValidator(check)


def bounded(low: float, high: float, *, above: bool = False) -> BeforeValidator:
    """A duration field from `low` (exclusive when `above`) to `high` seconds."""

    def _duration(value: Any) -> float:  # the name tells the docs' generator: a duration
        return bounded_duration(value, low, high, above=above)

    check = BeforeValidator(_duration)
    _duration.bounds = f"{'>' if above else '>='} `{span(low)}`, <= `{span(high)}`"  # type: ignore[attr-defined]
    return check


def seconds(low: float, high: float, *, above: bool = False) -> BeforeValidator:
    """A plain number of seconds (no '30s' string: the setting's name says `_s`), bounded."""

    def _seconds(value: Any) -> float:
        if isinstance(value, str):
            raise ValueError(f"must be a number of seconds, got {value[:40]!r}")
        return bounded_duration(value, low, high, above=above)

    return within(_seconds, low, high, above=above)


#: A hold, window or grace: from zero to 30 days.
Duration = Annotated[float, bounded(0.0, 30 * DAY)]


def shown(value: object) -> str:
    """A value quoted for a message, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class AdapterSettings(BaseModel):
    """The base of every adapter's settings model: `kind` picks the adapter (a Literal in each
    model, the tag of the config's `source:` and `router:` unions), the other fields are its
    settings. Frozen, finite numbers only, and no key it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: str
    #: Keys whose values are secrets: refused, with this advice, and never echoed.
    SECRET_KEYS: ClassVar[frozenset[str]] = frozenset()
    SECRET_ADVICE: ClassVar[str] = "secrets are never read from the config file"

    @classmethod
    def noun(cls) -> str:
        """What messages call this adapter: 'simulator', 'istio router', ..."""
        return str(cls.model_fields["kind"].default)

    @classmethod
    def known(cls) -> list[str]:
        """The settings this adapter knows (not `kind`), sorted."""
        return sorted(set(cls.model_fields) - {"kind"})

    @classmethod
    def canary_defaults(cls, canary: Mapping[str, Any]) -> dict[str, Any]:
        """Settings that default to the config's canary section (none, unless overridden)."""
        return {}

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | AdapterSettings, section: str) -> Self:
        """`raw` validated (a model of this class is taken as it is); an AdapterConfigError
        names the first bad setting of `section`."""
        if isinstance(raw, cls):
            return raw
        if isinstance(raw, AdapterSettings):
            raw = raw.settings()
        kind = cls.model_fields["kind"].default
        try:
            return cls.model_validate({"kind": kind, **raw})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, FieldProblem):
                loc = (*loc, *cause.loc)
            why = problem_message(cls, err) or error_text(err)
            raise AdapterConfigError(why, *loc, section=section) from None

    def settings(self) -> dict[str, Any]:
        """The settings the config gave (not `kind`), validated."""
        return self.model_dump(exclude_unset=True, exclude={"kind"})

    def given(self) -> bool:
        """Whether the config gave any setting besides `kind`."""
        return bool(self.model_fields_set - {"kind"})


def refuse_secrets(model: type[AdapterSettings], raw: Any) -> Any:
    """A `mode="before"` check: a secret key in the file is refused, its value never echoed."""
    if isinstance(raw, Mapping):
        secret = sorted(k for k in raw if k in model.SECRET_KEYS)
        if secret:
            raise FieldProblem(model.SECRET_ADVICE, secret[0])
    return raw


def problem_message(model: type[AdapterSettings], err: Mapping[str, Any]) -> str | None:
    """An adapter's own words for an error pydantic found in its settings: an unknown setting
    lists the known ones, a missing one says it is required. None: pydantic's words will do."""
    if err["type"] == "extra_forbidden":
        return f"unknown {model.noun()} setting (known: {', '.join(model.known())})"
    if err["type"] == "missing":
        return f"is required by the {model.noun()}"
    return None


def error_text(err: Mapping[str, Any]) -> str:
    """The words of a pydantic error: a FieldProblem's own message, else pydantic's."""
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        return cause.message
    return str(err["msg"]).removeprefix("Value error, ")
