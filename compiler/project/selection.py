"""dbt-style node selection: `model`, `+model`, `model+`, `tag:x`, `path:dir`, `config.key:value`,
`state:modified` (models changed since an earlier manifest, given with --state).

Space-separated selectors are a union, comma-joined ones an intersection, `--exclude` subtracts.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Protocol

from skewless.core.errors import SelectionError, did_you_mean
from skewless.core.graph import Graph


class Selectable(Protocol):
    name: str
    rel_path: str

    @property
    def tags(self) -> tuple[str, ...]: ...

    def config_value(self, key: str) -> Any: ...


def select(
    nodes: Mapping[str, Selectable],
    graph: Graph,
    include: Iterable[str] | None,
    exclude: Iterable[str] | None = None,
    modified: set[str] | None = None,
) -> set[str]:
    """Names of the selected nodes; no include means every node. A selection that was asked for and matches
    nothing is an error (a run that silently does nothing looks like success). `modified`: the models changed
    since the --state manifest, for `state:modified`."""
    asked = include is not None and list(include) != []
    specs = _split(include)
    if asked and not specs:
        raise SelectionError("the selection is empty (-s '')", hint="leave -s out to select every model")
    chosen = set(nodes) if not specs else set().union(*(_intersection(nodes, graph, s, modified) for s in specs))
    for spec in _split(exclude):
        chosen -= _intersection(nodes, graph, spec, modified)
    if not chosen and (asked or _split(exclude)) and nodes and not any("state:" in s for s in specs):
        what = " ".join(specs) if specs else "every model"
        raise SelectionError(
            f"the selection {what!r}{' minus --exclude' if _split(exclude) else ''} matches no model",
            hint="`skewless ls` lists the models with their tags and paths")
    return chosen


def _split(specs: Iterable[str] | None) -> list[str]:
    return [part for spec in specs or () for part in spec.split() if part]


def _intersection(nodes: Mapping[str, Selectable], graph: Graph, spec: str, modified: set[str] | None) -> set[str]:
    parts = [p for p in spec.split(",") if p]
    result = _one(nodes, graph, parts[0], modified)
    for part in parts[1:]:
        result &= _one(nodes, graph, part, modified)
    return result


def _one(nodes: Mapping[str, Selectable], graph: Graph, spec: str, modified: set[str] | None) -> set[str]:
    up = spec.startswith("+")
    down = spec.endswith("+")
    core = spec.strip("+")
    if not core:
        raise SelectionError(f"empty selector {spec!r}", hint="e.g. -s my_model, -s +my_model, -s tag:fraud")
    base = _match(nodes, core, modified)
    result = set(base)
    for name in base:
        if up:
            result |= graph.ancestors(name) & nodes.keys()
        if down:
            result |= graph.descendants(name) & nodes.keys()
    return result


def _match(nodes: Mapping[str, Selectable], core: str, modified: set[str] | None) -> set[str]:
    method, _, value = core.partition(":") if ":" in core else ("", "", core)
    if method and not value:
        raise SelectionError(f"selector {core!r} needs a value after the colon",
                             hint="e.g. tag:fraud, path:models/user, config.online:true")
    if method == "tag":
        return {n for n, node in nodes.items() if value in node.tags}
    if method == "path":
        prefix = PurePosixPath(value.rstrip("/"))
        return {
            n for n, node in nodes.items()
            if PurePosixPath(node.rel_path) == prefix or prefix in PurePosixPath(node.rel_path).parents
            or fnmatch.fnmatch(node.rel_path, value)
        }
    if method == "state":
        if value != "modified":
            raise SelectionError(f"unknown state selector {core!r}", hint="state:modified (with --state PATH)")
        if modified is None:
            raise SelectionError("state:modified compares with an earlier manifest: give --state PATH",
                                 hint="e.g. --state prod-target/manifest.json -s state:modified+")
        return modified & nodes.keys()
    if method.startswith("config."):
        key = method.split(".", 1)[1]
        return {n for n, node in nodes.items() if _same(node.config_value(key), value)}
    if method:
        raise SelectionError(
            f"unknown selector method {method!r}",
            hint=did_you_mean(method, ["tag", "path", "config.online", "state"]) or "use tag:, path:, config.KEY: or "
            "state:modified",
        )
    if any(ch in core for ch in "*?["):
        return {n for n in nodes if fnmatch.fnmatch(n, core)}
    if core not in nodes:
        raise SelectionError(
            f"no model named {core!r}",
            hint=did_you_mean(core, nodes) or "`skewless ls` lists the models",
        )
    return {core}


def _same(actual: Any, wanted: str) -> bool:
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, (list, tuple)):
        return wanted in [str(a) for a in actual]
    return str(actual) == wanted
