"""YAML loading that remembers where each key was, so config errors can point at file:line:col."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Location, ProjectError, snippet_at
from .sourcefile import read_source

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MarkedDict(dict):
    """A dict from YAML that knows the file, and the line and column of each key."""

    path: Path
    marks: dict[str, tuple[int, int]]
    start: tuple[int, int]

    def location(self, key: str | None = None) -> Location:
        line, col = self.marks.get(key, self.start) if key is not None else self.start
        return Location(self.path, line, col)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    source_path: Path = Path("<yaml>")

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201
        mapping = MarkedDict(super().construct_mapping(node, deep=True))
        mapping.path = self.source_path
        mapping.start = (node.start_mark.line + 1, node.start_mark.column + 1)
        mapping.marks = {
            key_node.value: (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            for key_node, _ in node.value
            if isinstance(key_node.value, str)
        }
        return mapping


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file (or its already-rendered text); an empty file is an empty mapping."""
    if text is None:
        text = read_source(path)
    loader = _Loader(text)
    loader.source_path = path
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ProjectError(
            f"invalid YAML: {error.problem or error.context}",
            location=Location(path, line, col),
            snippet=snippet_at(text, line, col) if line else None,
            hint="fix the YAML syntax (indentation, colons, quotes) at this place",
        ) from None
    except yaml.YAMLError as error:
        raise ProjectError(f"invalid YAML: {error}", location=Location(path)) from None
    finally:
        loader.dispose()
    if data is None:
        data = MarkedDict()
        data.path, data.start, data.marks = path, (1, 1), {}
    return data


def expect_mapping(value: Any, where: Location, what: str) -> MarkedDict:
    """Fail clearly when a YAML value that must be a mapping is not."""
    if isinstance(value, MarkedDict):
        return value
    if not isinstance(value, dict):
        raise ProjectError(f"{what} must be a mapping, got {type(value).__name__}", location=where)
    marked = MarkedDict(value)
    marked.path, marked.start, marked.marks = Path(where.path), (where.line or 1, where.col or 1), {}
    return marked


def expect_text(data: MarkedDict, key: str, what: str, default: str | None = None) -> str | None:
    """A YAML value that must be text (a name, a path): a list, a mapping or a number is a located error, not
    str() of it (nor a TypeError where it is looked up)."""
    value = data.get(key, default)
    if value is None or isinstance(value, str):
        return value
    raise ProjectError(f"{what}: {key!r} must be text, got {yaml_kind(value)}", location=data.location(key))


def expect_list(data: MarkedDict, keys: tuple[str, ...], what: str) -> tuple[str, list[Any]]:
    """A YAML value that must be a list (tests, columns), under the first of `keys` that holds entries (dbt's
    `tests` and `data_tests` are aliases): absent, null or empty falls through to the next key. Returns the key
    it came from, so errors point at it; anything but a list is a located error, not a TypeError where it is
    iterated."""
    for key in keys:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            raise ProjectError(f"{what}: {key!r} must be a list, got {yaml_kind(value)}",
                               location=data.location(key), hint=f"write {key}: [...], one entry per line with '- '")
        if value:
            return key, value
    return keys[0], []


def yaml_kind(value: Any) -> str:
    return {bool: "true/false", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, dict) else type(value).__name__)
