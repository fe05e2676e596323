"""Column-level lineage of a feature: which columns of which models and source tables feed it, and how.

Each step is one model's column: the SQL that computes it there (through the model's CTEs and subqueries, traced
with sqlglot's lineage) and the columns of other models or source tables it reads, each labelled with its role:
`value` (the feature's value is computed from it), `window key` (it partitions or orders a window the value is
computed over) or `filter` (it decides which rows count: WHERE, HAVING, QUALIFY, JOIN ON, window_agg's where=).
Ephemeral models are steps like the others; window_agg and on-demand models are described by their declarations.
The window lengths each step reads (RANGE frames over intervals, window_agg windows) are kept: the naming check
compares them with the feature's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage

from skewless.core.errors import CompileError, did_you_mean
from skewless.core.windowagg import format_duration_us
from skewless.core.windows import range_frame_micros

from .nodes import ModelNode
from .relations import EPHEMERAL_PREFIX

if TYPE_CHECKING:
    from .compile import CompiledProject

ROLES = ("value", "window key", "filter")


@dataclass(frozen=True)
class ColumnLineage:
    """One column of a model or source table, and the columns it is computed from."""

    relation: str  # a model's name, or "<source>.<table>" for a source table
    kind: str  # "model", "ephemeral", "window_agg", "on_demand" or "source"
    column: str
    role: str  # how it feeds the column that reads it (the feature itself: "value")
    expression: str | None = None  # how the model computes it (None: a source column, or a column passed on)
    windows: tuple[int, ...] = ()  # window lengths (µs) its expression reads
    inputs: tuple["ColumnLineage", ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "kind": self.kind, "column": self.column, "role": self.role,
                "expression": self.expression, "windows": [format_duration_us(w) for w in self.windows],
                "inputs": [child.to_json() for child in self.inputs],
                **({"sources": [{"relation": s.relation, "column": s.column, "role": s.role}
                                for s in self.sources()]} if self.role == "value" else {})}

    def walk(self) -> Iterator[tuple[int, "ColumnLineage"]]:
        """Every step, depth first, with its depth."""
        stack = [(0, self)]
        while stack:
            depth, step = stack.pop()
            yield depth, step
            stack.extend((depth + 1, child) for child in reversed(step.inputs))

    def sources(self) -> list["ColumnLineage"]:
        """The source-table columns at the end of every path, each with the role it has for this column (a value
        read through a filter is a filter input), deduplicated."""
        found: dict[tuple[str, str, str], ColumnLineage] = {}

        def visit(step: ColumnLineage, role: str) -> None:
            if step.kind == "source":
                found.setdefault((step.relation, step.column, role), ColumnLineage(
                    step.relation, "source", step.column, role))
            for child in step.inputs:
                visit(child, max(role, child.role, key=ROLES.index))  # a filter's inputs are filters

        visit(self, "value")
        return sorted(found.values(), key=lambda s: (ROLES.index(s.role), s.relation, s.column))

    def nearest_windows(self) -> tuple[int, ...]:
        """The windows of the first step along value inputs that reads any (a column passed on unchanged shows
        the window of the model that computed it)."""
        step: ColumnLineage | None = self
        while step is not None:
            if step.windows:
                return step.windows
            values = [child for child in step.inputs if child.role == "value"]
            step = values[0] if len(values) == 1 and step.kind != "source" else None
        return ()


def feature_lineage(compiled: CompiledProject, feature: str) -> ColumnLineage:
    """The lineage of a feature (by name), across the project's models down to source tables."""
    owners = compiled.features()
    if feature not in owners:
        raise CompileError(f"no feature named {feature!r}",
                           hint=did_you_mean(feature, owners) or "`skewless ls` lists the features")
    return _Tracer(compiled).column(owners[feature].name, feature, "value")


class _Tracer:
    def __init__(self, compiled: CompiledProject) -> None:
        self.compiled = compiled
        self.sources = {(t.schema, t.identifier): f"{t.source}.{t.name}" for t in compiled.config.sources.values()}
        self.columns: dict[tuple[str, str, str], ColumnLineage] = {}
        # every relation's columns, for sqlglot to expand SELECT * and qualify columns
        self.schema: dict[str, dict[str, dict[str, str]]] = {}
        for table in compiled.config.sources.values():
            if table.columns:
                self.schema.setdefault(table.schema, {})[table.identifier] = dict.fromkeys(table.columns, "VARCHAR")
        for (db, name), node in compiled.by_relation.items():
            if node.columns_known and node.columns:
                self.schema.setdefault(db or "", {})[name] = dict.fromkeys(node.columns, "VARCHAR")

    def column(self, model: str, column: str, role: str) -> ColumnLineage:
        key = (model, column, role)
        if key not in self.columns:
            self.columns[key] = self._column(self.compiled.nodes[model], column, role)
        return self.columns[key]

    def _column(self, node: ModelNode, column: str, role: str) -> ColumnLineage:
        if node.on_demand is not None:
            return self._on_demand(node, column, role)
        kind = "ephemeral" if node.config.materialized == "ephemeral" else "model"
        if node.window is not None and column not in node.key_columns:
            return self._window_agg(node, column, role)
        tree = node.body if node.body is not None else node.query
        try:
            root = lineage(column, tree, self.schema, dialect=self.compiled.dialect)
        except (SqlglotError, ValueError, KeyError):  # a column sqlglot cannot follow (e.g. SELECT * of a file)
            return ColumnLineage(node.name, kind, column, role)
        inputs: list[ColumnLineage] = []
        windows: list[int] = []
        self._steps(root, "value", tree, inputs, windows)
        expression = root.expression
        if isinstance(expression, exp.Alias):
            expression = expression.this
        text = None if isinstance(expression, exp.Column) else _readable(expression, self.compiled.dialect)
        return ColumnLineage(node.name, kind, column, role, text, tuple(dict.fromkeys(windows)),
                             tuple(_unique(inputs)))


    def _steps(self, step: Node, role: str, tree: exp.Expression, inputs: list[ColumnLineage],
               windows: list[int]) -> None:
        """Follow one sqlglot lineage node inside a model: into its CTEs and subqueries, out to other relations."""
        if isinstance(step.source, exp.Table) and not step.downstream:
            inputs.append(self._relation_column(step.source, step.name.split(".")[-1], role))
            return
        keys = _window_keys(step.expression)
        windows.extend(w for window in step.expression.find_all(exp.Window)
                       if (w := range_frame_micros(window)) is not None)
        for child in step.downstream:
            child_role = role
            if role == "value" and child.name in keys[0] and child.name not in keys[1]:
                child_role = "window key"
            self._steps(child, child_role, tree, inputs, windows)
        if isinstance(step.source, exp.Select):
            for column in _filter_columns(step.source):
                inputs.extend(self._filter_input(step.source, column, tree))

    def _filter_input(self, select: exp.Select, column: exp.Column, tree: exp.Expression) -> list[ColumnLineage]:
        """A column a select filters on, traced to the relations behind it."""
        source = _from_alias(select, column.table)
        if isinstance(source, exp.Table):
            cte = _cte(tree, source.name) if not source.args.get("db") else None
            if cte is None:
                return [self._relation_column(source, column.name, "filter")]
            select = cte
        elif isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
            select = source.this
        else:
            return []
        try:
            inner = lineage(column.name, select, self.schema, dialect=self.compiled.dialect)
        except (SqlglotError, ValueError, KeyError):
            return []
        found: list[ColumnLineage] = []
        self._steps(inner, "filter", tree, found, [])
        return [ColumnLineage(c.relation, c.kind, c.column, "filter", c.expression, c.windows, c.inputs)
                for c in found]

    def _relation_column(self, table: exp.Table, column: str, role: str) -> ColumnLineage:
        key = (table.db, table.name)
        node = self.compiled.by_relation.get(key)
        if node is None and table.name.startswith(EPHEMERAL_PREFIX):
            node = self.compiled.nodes.get(table.name[len(EPHEMERAL_PREFIX):])
        if node is not None:
            return self.column(node.name, column, role)
        name = self.sources.get(key, ".".join(p for p in key if p))
        return ColumnLineage(name, "source", column, role)

    def _window_agg(self, node: ModelNode, column: str, role: str) -> ColumnLineage:
        assert node.window is not None and node.config.entity is not None
        feature = next((f for f in node.window.features(node.config.entity) if f.name == column), None)
        if feature is None:
            return ColumnLineage(node.name, "window_agg", column, role)
        events = [(feature.aggregation.column, "value")] if feature.aggregation.column else []
        events += [(key, "window key") for key in (*node.join_keys, node.config.timestamp or "")]
        inputs = [self._event_column(node, name, child) for name, child in events if name]
        if node.window.where:
            try:
                condition = exp.condition(node.window.where, dialect=self.compiled.dialect)
                inputs += [self._event_column(node, c.name, "filter") for c in condition.find_all(exp.Column)]
            except SqlglotError:
                pass
        function = feature.aggregation.function
        text = f"{function}({feature.aggregation.column or '*'}) over the last {_duration(feature.window)}"
        return ColumnLineage(node.name, "window_agg", column, role, text, (feature.window,), tuple(_unique(inputs)))

    def _event_column(self, node: ModelNode, column: str, role: str) -> ColumnLineage:
        """A column of a window_agg model's events relation, traced through it."""
        tree = node.body if node.body is not None else node.query
        try:
            root = lineage(column, tree, self.schema, dialect=self.compiled.dialect)
        except (SqlglotError, ValueError, KeyError):
            return ColumnLineage(node.name, "window_agg", column, role)
        found: list[ColumnLineage] = []
        self._steps(root, role, tree, found, [])
        return found[0] if len(found) == 1 else ColumnLineage(node.name, "window_agg", column, role,
                                                              inputs=tuple(found))

    def _on_demand(self, node: ModelNode, column: str, role: str) -> ColumnLineage:
        assert node.on_demand is not None
        feature = next((f for f in node.on_demand.features if f.name == column), None)
        if feature is None:
            return ColumnLineage(node.name, "on_demand", column, role)
        owners = self.compiled.features()
        inputs = [self.column(owners[name].name, name, "value") for name in feature.inputs if name in owners]
        inputs += [ColumnLineage("request", "source", name, "value") for name in feature.request]
        return ColumnLineage(node.name, "on_demand", column, role, feature.sql, (), tuple(inputs))


def _window_keys(expression: exp.Expression) -> tuple[set[str], set[str]]:
    """Qualified names of the columns inside windows' PARTITION BY / ORDER BY, and of those used elsewhere."""
    keys: set[str] = set()
    keyed: set[int] = set()
    for window in expression.find_all(exp.Window):
        for part in (*(window.args.get("partition_by") or []), window.args.get("order")):
            if part is None:
                continue
            for column in part.find_all(exp.Column):
                keys.add(column.sql())
                keyed.add(id(column))
    others = {c.sql() for c in expression.find_all(exp.Column) if id(c) not in keyed}
    return {k.replace('"', "") for k in keys}, {o.replace('"', "") for o in others}


def _filter_columns(select: exp.Select) -> list[exp.Column]:
    parts: list[exp.Expression] = [select.args[k] for k in ("where", "having", "qualify") if select.args.get(k)]
    parts += [join.args["on"] for join in select.args.get("joins") or [] if join.args.get("on")]
    return [column for part in parts for column in part.find_all(exp.Column)]


def _from_alias(select: exp.Select, alias: str) -> exp.Expression | None:
    sources = [select.args.get("from_")] + list(select.args.get("joins") or [])
    for holder in sources:
        if holder is None:
            continue
        source = holder.this
        if not alias or source.alias_or_name == alias:
            return source
    return None


def _cte(tree: exp.Expression, name: str) -> exp.Select | None:
    for cte in tree.find_all(exp.CTE):
        if cte.alias == name and isinstance(cte.this, exp.Select):
            return cte.this
    return None


def _unique(items: list[ColumnLineage]) -> list[ColumnLineage]:
    """Each (relation, column, role) once: values first, then window keys, then filters."""
    seen: dict[tuple[str, str, str], ColumnLineage] = {}
    for item in items:
        seen.setdefault((item.relation, item.column, item.role), item)
    return sorted(seen.values(), key=lambda item: ROLES.index(item.role))


def _duration(micros: int) -> str:
    return format_duration_us(micros)


def _readable(expression: exp.Expression, dialect: str) -> str:
    """An expression as the user would write it: an ephemeral model's columns qualified by the model's name."""
    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table.startswith(EPHEMERAL_PREFIX):
            return exp.column(node.name, table=node.table[len(EPHEMERAL_PREFIX):])
        return node

    return expression.transform(rename).sql(dialect=dialect)
