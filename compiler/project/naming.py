"""The feature naming convention, checked at compile time: `<entity>__<feature>[__<window>]`.

A feature's name starts with its model's entity; a window suffix (`__7d`, `__30m`) names the window its SQL really
computes over, read from the sqlglot tree (RANGE frames over intervals, written by hand or by the window macros;
window_agg's windows), not from the name; a feature computed over one window names it. The project's `naming:`
(error, warn, off) decides what a violation does; each message names the file, line and column and the expected
name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from skewless.core.errors import CompileError, Location
from skewless.core.windowagg import format_duration_us
from skewless.core.windows import range_frame_micros

from .nodes import ModelNode
from .relations import EPHEMERAL_PREFIX

if TYPE_CHECKING:
    from .compile import CompiledProject

_WINDOW = re.compile(r"^(\d+)(us|ms|s|m|h|d|w)$")
_MICROS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
           "w": 604_800_000_000}


@dataclass(frozen=True)
class NamingIssue:
    feature: str
    model: str
    location: Location
    message: str
    expected: str | None

    def __str__(self) -> str:
        hint = f"; expected name: {self.expected}" if self.expected else ""
        return f"{self.location}: feature {self.feature!r} {self.message}{hint}"


def check_naming(compiled: CompiledProject) -> list[str]:
    """Apply the project's `naming:` severity: raise for the first issue (error), or return the warnings."""
    severity = compiled.config.naming
    if severity == "off":
        return []
    issues = naming_issues(compiled)
    if issues and severity == "error":
        first = issues[0]
        raise CompileError(f"feature {first.feature!r} {first.message}", location=first.location,
                           hint=(f"rename it {first.expected}" if first.expected else "rename it")
                           + " (the naming convention is entity__feature__window; naming: warn in "
                           "skewless_project.yml makes this a warning)")
    return [f"{issue} (naming convention entity__feature__window)" for issue in issues]


def naming_issues(compiled: CompiledProject) -> list[NamingIssue]:
    issues = []
    windows = _WindowReader(compiled)
    for node in compiled.nodes.values():
        entity = node.config.entity
        if entity is None or node.on_demand is not None:
            continue  # on-demand features describe a request, not one entity
        if node.window is not None:
            continue  # window_agg names its features itself: entity__name__window
        for feature in node.features:
            issue = _check(node, entity, feature, windows.model_column(node.name, feature))
            if issue is not None:
                issues.append(issue)
    return issues


def _check(node: ModelNode, entity: str, feature: str, windows: tuple[int, ...]) -> NamingIssue | None:
    parts = feature.split("__")
    if parts[0] != entity or len(parts) < 2 or not all(parts[1:]):
        middle = "__".join(p for p in (parts[1:] if parts[0] == entity else parts) if p) or "value"
        return NamingIssue(feature, node.name, _location(node, feature),
                           f"does not start with its entity's name ({entity}__)", f"{entity}__{middle}")
    suffix = _WINDOW.match(parts[-1]) if len(parts) >= 3 else None
    if suffix is not None:
        named = int(suffix.group(1)) * _MICROS[suffix.group(2)]
        if windows and named not in windows:
            computed = ", ".join(format_duration_us(w) for w in windows)
            expected = "__".join([*parts[:-1], format_duration_us(windows[0])]) if len(windows) == 1 else None
            return NamingIssue(feature, node.name, _location(node, feature),
                               f"is named for a {parts[-1]} window but its SQL computes over {computed}", expected)
    elif len(windows) == 1:
        return NamingIssue(feature, node.name, _location(node, feature),
                           f"is computed over a {format_duration_us(windows[0])} window its name does not show",
                           f"{feature}__{format_duration_us(windows[0])}")
    return None


def _select_outputs(tree: exp.Expression) -> dict[str, exp.Expression]:
    if not isinstance(tree, exp.Select):
        return {}
    return {projection.alias_or_name: projection.unalias() for projection in tree.expressions}


class _WindowReader:
    """The window lengths a model's output column computes over, following a column passed on unchanged to the
    CTE, subquery or model it comes from (a walk over the trees: no lineage analysis on the compile path)."""

    def __init__(self, compiled: "CompiledProject") -> None:
        self.compiled = compiled
        self.found: dict[tuple[str, str], tuple[int, ...]] = {}
        self.outputs: dict[int, dict[str, exp.Expression]] = {}  # per SELECT (by id): its outputs by name

    def model_column(self, model: str, column: str, depth: int = 0) -> tuple[int, ...]:
        key = (model, column)
        if key not in self.found:
            self.found[key] = ()  # a cycle reads nothing
            node = self.compiled.nodes[model]
            tree = node.body if node.body is not None else node.query
            self.found[key] = self._in_select(tree, tree, column, depth) if node.on_demand is None else ()
        return self.found[key]

    def _in_select(self, root: exp.Expression, select: exp.Expression, column: str, depth: int) -> tuple[int, ...]:
        outputs = self.outputs.get(id(select))
        if outputs is None:
            outputs = self.outputs[id(select)] = _select_outputs(select)
        expression = outputs.get(column)
        if expression is None or depth > 50:
            return ()
        if not isinstance(expression, exp.Column):
            return tuple(dict.fromkeys(w for window in expression.find_all(exp.Window)
                                       if (w := range_frame_micros(window)) is not None))
        source = _source_of(select, expression.table)
        if isinstance(source, exp.Subquery):
            return self._in_select(root, source.this, expression.name, depth + 1)
        if isinstance(source, exp.Table):
            if not source.db:
                for cte in root.find_all(exp.CTE):
                    if cte.alias == source.name:
                        return self._in_select(root, cte.this, expression.name, depth + 1)
            node = self.compiled.by_relation.get((source.db, source.name))
            if node is None and source.name.startswith(EPHEMERAL_PREFIX):
                node = self.compiled.nodes.get(source.name[len(EPHEMERAL_PREFIX):])
            if node is not None:
                return self.model_column(node.name, expression.name, depth + 1)
        return ()


def _source_of(select: exp.Select, alias: str) -> exp.Expression | None:
    """The FROM or JOIN source a column's qualifier names (the only source when it has none)."""
    holders = [select.args.get("from_"), *(select.args.get("joins") or [])]
    sources = [holder.this for holder in holders if holder is not None]
    if not alias:
        return sources[0] if len(sources) == 1 else None
    return next((s for s in sources if s.alias_or_name == alias), None)


def _location(node: ModelNode, feature: str) -> Location:
    """Where the model's file names the feature (its alias), else the file."""
    match = re.search(rf"\b{re.escape(feature)}\b", node.raw_sql)
    if match is None:
        return Location(node.path)
    line = node.raw_sql.count("\n", 0, match.start()) + 1
    column = match.start() - (node.raw_sql.rfind("\n", 0, match.start()) + 1) + 1
    return Location(node.path, line, column)
