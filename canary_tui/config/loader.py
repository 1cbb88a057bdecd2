"""Load and validate a YAML config; every error names the file, the line and the field.

The file is read and parsed with limits, so that no input can crash or exhaust the console:
at most `MAX_BYTES` of text, collections nested at most `MAX_DEPTH` deep, and at most
`MAX_VALUES` values once aliases are expanded (an alias that contains itself is refused). The
YAML event stream is built into plain Python values here, without recursion, instead of by
PyYAML's recursive composer and constructor.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from adapters.settings_types import AdapterConfigError, FieldProblem, error_text, problem_message
from canary_tui.config.schema import ROUTER_KINDS, SOURCE_KINDS, Config

PathKey = tuple[str | int, ...]

#: Limits on a config file (a real one is a few KiB, a few hundred values, 5 levels deep).
MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_VALUES = 20_000
#: Problems listed at most, one a line; the rest are counted.
MAX_PROBLEMS = 10

_Y = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_Y}{t}" for t in ("null", "bool", "int", "float", "str", "timestamp")}
_KIND = {"mapping": f"{_Y}map", "list": f"{_Y}seq"}
_TOO_LARGE = f"too large for a config file (more than {MAX_BYTES // 1024} KiB)"


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the message a person reads."""


class _Problem(Exception):
    def __init__(self, line: int, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.line, self.path, self.message = line, path, message


class _Merge:
    """The `<<` key of a mapping: its value's keys are merged into the mapping."""


_MERGE = _Merge()
_NO_KEY = object()


@dataclass
class _Open:
    """A list or mapping whose end event has not arrived yet."""

    path: PathKey
    line: int
    value: dict[Any, Any] | list[Any]
    anchor: str | None
    size: int = 1
    key: Any = _NO_KEY
    key_line: int = 0
    key_lines: dict[Any, int] = field(default_factory=dict)
    merges: list[tuple[int, Any]] = field(default_factory=list)


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _tag(tag: object) -> str:
    return _short(str(tag).replace(_Y, "!!"))


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Builder:
    """Plain values (dicts, lists, scalars) from the YAML events, with every field's line."""

    def __init__(self) -> None:
        self.lines: dict[PathKey, int] = {}
        self.nulls: set[PathKey] = set()
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()
        self.values = 0
        self.aliases = 0
        self.documents = 0
        self.result: Any = None
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    # --- where the next value goes -------------------------------------------------------------
    def _slot(self, line: int, what: str) -> PathKey:
        """The path of the value that starts now; a list or mapping may not be a key."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        if top.key is _NO_KEY:
            if what != "scalar":
                raise _Problem(line, top.path, f"a key must be a plain name, not a {what}")
            return top.path
        if top.key is _MERGE:
            return (*top.path, "<<")
        return (*top.path, top.key)

    def _count(self, line: int, path: PathKey, size: int) -> None:
        self.values += size
        if self.values > MAX_VALUES:
            why = (
                f"more than {MAX_VALUES} values once aliases are expanded (is this an alias bomb?)"
                if self.aliases
                else f"more than {MAX_VALUES} values (a config needs a few hundred)"
            )
            raise _Problem(line, path, why)

    def _place(self, value: Any, size: int, line: int, raw_key: str | None = None) -> None:
        if not self.stack:
            self.result = value
            self.lines[()] = line
            if value is None:
                self.nulls.add(())
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.value, list):
            path = (*top.path, len(top.value))
            top.value.append(value)
            self.lines[path] = line
            if value is None:
                self.nulls.add(path)
            return
        if top.key is _NO_KEY:  # this value is a key
            if raw_key is None:
                why = "a key must be a plain name, not an alias of a list or mapping"
                raise _Problem(line, top.path, why)
            top.key, top.key_line = raw_key, line
            if raw_key == "<<" and value is _MERGE:
                top.key = _MERGE
            elif raw_key in top.key_lines:
                first = top.key_lines[raw_key]
                raise _Problem(line, (*top.path, raw_key), f"appears twice (first on line {first})")
            return
        key, top.key = top.key, _NO_KEY
        if key is _MERGE:
            top.merges.append((top.key_line, value))
            return
        path = (*top.path, key)
        top.value[key] = value
        top.key_lines[key] = top.key_line
        self.lines[path] = top.key_line
        if value is None:
            self.nulls.add(path)

    # --- events ----------------------------------------------------------------------------------
    def scalar(self, event: yaml.ScalarEvent) -> None:
        line = _line(event)
        path = self._slot(line, "scalar")
        self._count(line, path, 1)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        top = self.stack[-1] if self.stack else None
        at_key = top is not None and isinstance(top.value, dict) and top.key is _NO_KEY
        if tag == f"{_Y}merge":
            value: Any = _MERGE if at_key else event.value
        elif tag == f"{_Y}str":
            value = event.value
        elif tag not in _SCALAR_TAGS:
            raise _Problem(line, path, f"the tag {_tag(event.tag)} is not allowed in a config")
        else:
            node = yaml.ScalarNode(tag, event.value, style=event.style)
            try:
                value = self.constructor.yaml_constructors[tag](self.constructor, node)
            except (yaml.YAMLError, ValueError, TypeError, LookupError, AttributeError,
                    ArithmeticError) as exc:  # fmt: skip  # PyYAML's own, for '!!bool maybe'...
                kind = tag.removeprefix(_Y)
                why = f"{_short(event.value)!r} is not a valid {kind}"
                raise _Problem(line, path, why) from exc
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._place(value, 1, line, raw_key=event.value)

    def alias(self, event: yaml.AliasEvent) -> None:
        line = _line(event)
        name = str(event.anchor)
        path = self._slot(line, "scalar")
        if name in self.open_anchors:
            why = f"the alias *{_short(name)} is inside the value it names (a recursive alias)"
            raise _Problem(line, path, why)
        if name not in self.anchors:
            why = f"the alias *{_short(name)} has no &{_short(name)} before it"
            raise _Problem(line, path, why)
        value, size = self.anchors[name]
        self.aliases += 1
        self._count(line, path, size)
        top = self.stack[-1] if self.stack else None
        if value is _MERGE and not (
            top is not None and isinstance(top.value, dict) and top.key is _NO_KEY
        ):
            value = "<<"

        is_scalar = not isinstance(value, dict | list)
        raw = None
        if is_scalar and value is not _MERGE:
            raw = value if isinstance(value, str) else str(value)
        self._place(value, size, line, raw_key=raw)

    def start(self, event: yaml.CollectionStartEvent, kind: str) -> None:
        line = _line(event)
        path = self._slot(line, kind)
        if len(self.stack) >= MAX_DEPTH:
            raise _Problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
        if event.tag not in (None, "!", _KIND[kind]):
            raise _Problem(line, path, f"the tag {_tag(event.tag)} is not allowed in a config")
        self._count(line, path, 1)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        value: dict[Any, Any] | list[Any] = {} if kind == "mapping" else []
        self.stack.append(_Open(path, line, value, event.anchor))

    def end(self) -> None:
        done = self.stack.pop()
        if isinstance(done.value, dict):
            self._merge(done)
        if done.anchor is not None:
            self.open_anchors.discard(done.anchor)
            self.anchors[done.anchor] = (done.value, done.size)
        self._place(done.value, done.size, done.line)

    def _merge(self, done: _Open) -> None:
        """`<<: *base` (or a list of them): keys not given in the mapping itself."""
        target = done.value
        if not isinstance(target, dict):
            return
        for line, merged in done.merges:
            sources = merged if isinstance(merged, list) else [merged]
            for source in sources:
                if not isinstance(source, dict):
                    why = "merges only mappings (<<: *name, or a list of them)"
                    raise _Problem(line, (*done.path, "<<"), why)
                for key, value in source.items():
                    if key not in target:
                        target[key] = value
                        self.lines[(*done.path, key)] = line


def parse_yaml(text: str, name: str) -> tuple[Any, dict[PathKey, int]]:
    """The YAML document and a map from each field's path to its line."""
    data, lines, _ = _parse(text, name)
    return data, lines


def _parse(text: str, name: str) -> tuple[Any, dict[PathKey, int], set[PathKey]]:
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{name}: {_TOO_LARGE}")
    b = _Builder()
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.ScalarEvent):
                b.scalar(event)
            elif isinstance(event, yaml.AliasEvent):
                b.alias(event)
            elif isinstance(event, yaml.MappingStartEvent):
                b.start(event, "mapping")
            elif isinstance(event, yaml.SequenceStartEvent):
                b.start(event, "list")
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                b.end()
            elif isinstance(event, yaml.DocumentStartEvent):
                b.documents += 1
                if b.documents > 1:
                    raise _Problem(
                        _line(event), (), "a second YAML document ('---'); a config is one"
                    )
    except _Problem as p:
        where = f"{_field(p.path)}: " if p.path else ""
        raise ConfigError(f"{name}:{p.line}: {where}{_one_line(p.message)}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        why = exc.problem or exc.context or "cannot be parsed"
        raise ConfigError(f"{where}: not valid YAML: {_one_line(why)}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise ConfigError(
            f"{name}:{line}: not valid YAML: the character {char!r} is not allowed"
            " (control characters cannot appear in YAML)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML: {_one_line(str(exc))}") from None
    if b.documents == 0 or b.result is None:
        raise ConfigError(f"{name}: the file is empty (or holds only comments)")
    return b.result, b.lines, b.nulls


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _name(part: str | int) -> str:
    text = str(part)
    if text.isprintable() and len(text) <= 40 and text.strip() == text and text:
        return text
    return repr(_short(text))


def _field(loc: PathKey) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{_name(part)}" if out else _name(part))
    if len(out) > 60:
        out = out[:57] + "..."
    return out or "(top level)"


def _line_of(loc: PathKey, lines: dict[PathKey, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


_TYPE_MESSAGES = {
    "model_type": "should be a mapping of fields (name: value lines)",
    "model_attributes_type": "should be a mapping of fields (name: value lines)",
    "dict_type": "should be a mapping (name: value lines)",
    "list_type": "should be a list (- item lines)",
}


#: The adapter sections: each is a union on `kind` of the registry's settings models.
_ADAPTERS = {"source": ("metric source", SOURCE_KINDS), "router": ("traffic router", ROUTER_KINDS)}


def _located(err: Any) -> tuple[PathKey, str | None]:
    """The error's path in the file, and its own words when it is about an adapter's
    settings (pydantic puts the union's tag, the adapter's kind, after the section)."""
    loc: PathKey = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        loc = (*loc, *cause.loc)
    if not loc or loc[0] not in _ADAPTERS:
        return loc, None
    noun, kinds = _ADAPTERS[str(loc[0])]
    if err["type"] == "union_tag_invalid":
        given = err["input"].get("kind") if isinstance(err["input"], dict) else None
        known = ", ".join(sorted(kinds))
        return (loc[0], "kind"), f"unknown {noun} {_short(repr(given))} (known: {known})"
    if len(loc) > 1 and loc[1] in kinds:
        model = kinds[str(loc[1])]
        loc = (loc[0], *loc[2:])
        if len(loc) > 1:
            return loc, problem_message(model, err)
    return loc, None


def _message(err: Any, loc: PathKey, nulls: set[PathKey]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field (check its spelling)"
    if loc in nulls and err["type"] != "missing":
        return "is empty (write a value after the colon, or remove the line to use the default)"
    if err["type"] in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[err["type"]]
    return _one_line(error_text(err))


def validate(
    data: Any, lines: dict[PathKey, int], name: str, nulls: set[PathKey] | None = None
) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{name}:{lines.get((), 1)}: the top level must be a mapping of sections"
            " (canary:, plan:, ...)"
        )
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, own = _located(err)
            line = _line_of(loc, lines)
            where = f"{name}:{line}" if line else name
            why = _one_line(own) if own and loc not in (nulls or set()) else None
            problems.append(f"{where}: {_field(loc)}: {why or _message(err, loc, nulls or set())}")
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS], f"{name}: ... and {more} more problems"]
        raise ConfigError("\n".join(problems)) from None
    adapter_lines = {k: v for k, v in lines.items() if k and k[0] in _ADAPTERS}
    _ORIGINS[id(config)] = (weakref.ref(config), name, adapter_lines)
    weakref.finalize(config, _ORIGINS.pop, id(config), None)
    return config


#: Where each validated config came from (its file, its adapter settings' lines), so that a
#: problem found when an adapter is built (a missing file, an unset variable) names its line;
#: an entry goes with its config.
_ORIGINS: dict[int, tuple[weakref.ref[Config], str, dict[PathKey, int]]] = {}


def adapter_error(config: Config, exc: AdapterConfigError) -> ConfigError:
    """`exc` (raised while `config`'s adapters were built) as `file:line: source.x: message`
    when the config came from a file and the setting is known, else as it reads."""
    origin = _ORIGINS.get(id(config))
    if origin is None or origin[0]() is not config or not exc.section:
        return ConfigError(str(exc))
    _, name, lines = origin
    loc: PathKey = (exc.section, *exc.loc)
    line = _line_of(loc, lines)
    where = f"{name}:{line}" if line else name
    return ConfigError(f"{where}: {_field(loc)}: {_one_line(exc.message)}")


def read_text(path: Path) -> str:
    """The file's text, read with a size limit (a FIFO without a writer reads as empty)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ConfigError(f"{path}: is a directory, not a config file")
        with contextlib.suppress(OSError):  # block again: a pipe's writer may be slow
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: {_TOO_LARGE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None


def load_config(path: Path) -> Config:
    """Read and validate `path`, or raise ConfigError with every problem located."""
    text = read_text(path)
    data, lines, nulls = _parse(text, str(path))
    return validate(data, lines, str(path), nulls)
