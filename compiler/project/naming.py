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

from .lineage import feature_lineage
from .nodes import ModelNode

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
    for node in compiled.nodes.values():
        entity = node.config.entity
        if entity is None or node.on_demand is not None:
            continue  # on-demand features describe a request, not one entity
        if node.window is not None:
            continue  # window_agg names its features itself: entity__name__window
        projections = _projections(node)
        for feature in node.features:
            issue = _check(compiled, node, entity, feature, projections)
            if issue is not None:
                issues.append(issue)
    return issues


def _check(compiled: CompiledProject, node: ModelNode, entity: str, feature: str,
           projections: dict[str, exp.Expression]) -> NamingIssue | None:
    parts = feature.split("__")
    location = _location(node, feature)
    if parts[0] != entity or len(parts) < 2 or not all(parts[1:]):
        middle = "__".join(p for p in (parts[1:] if parts[0] == entity else parts) if p) or "value"
        return NamingIssue(feature, node.name, location, f"does not start with its entity's name ({entity}__)",
                           f"{entity}__{middle}")
    windows = _windows(compiled, node, feature, projections)
    suffix = _WINDOW.match(parts[-1]) if len(parts) >= 3 else None
    if suffix is not None:
        named = int(suffix.group(1)) * _MICROS[suffix.group(2)]
        if windows and named not in windows:
            computed = ", ".join(format_duration_us(w) for w in windows)
            expected = "__".join([*parts[:-1], format_duration_us(windows[0])]) if len(windows) == 1 else None
            return NamingIssue(feature, node.name, location,
                               f"is named for a {parts[-1]} window but its SQL computes over {computed}", expected)
    elif len(windows) == 1:
        return NamingIssue(feature, node.name, location,
                           f"is computed over a {format_duration_us(windows[0])} window its name does not show",
                           f"{feature}__{format_duration_us(windows[0])}")
    return None


def _projections(node: ModelNode) -> dict[str, exp.Expression]:
    """The outer SELECT's output columns by name (empty for a set operation or a SELECT *)."""
    tree = node.body if node.body is not None else node.query
    if not isinstance(tree, exp.Select):
        return {}
    return {projection.alias_or_name: projection.unalias() for projection in tree.expressions}


def _windows(compiled: CompiledProject, node: ModelNode, feature: str,
             projections: dict[str, exp.Expression]) -> tuple[int, ...]:
    """The window lengths the feature's SQL computes over: read from its expression in the outer SELECT, or
    (a column passed on from a CTE, a subquery or another model) from its lineage."""
    expression = projections.get(feature)
    if expression is not None and not isinstance(expression, exp.Column):
        return tuple(dict.fromkeys(w for window in expression.find_all(exp.Window)
                                   if (w := range_frame_micros(window)) is not None))
    return feature_lineage(compiled, feature).nearest_windows()


def _location(node: ModelNode, feature: str) -> Location:
    """Where the model's file names the feature (its alias), else the file."""
    match = re.search(rf"\b{re.escape(feature)}\b", node.raw_sql)
    if match is None:
        return Location(node.path)
    line = node.raw_sql.count("\n", 0, match.start()) + 1
    column = match.start() - (node.raw_sql.rfind("\n", 0, match.start()) + 1) + 1
    return Location(node.path, line, column)
