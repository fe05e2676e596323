"""Tests a project declares, compiled like its models: generic tests in the models' YAML, singular SQL tests in
`tests/`, and unit tests of a model (given rows for its inputs, the rows it must return).

A generic or singular test is a query returning the failing rows (none: it passes), built with sqlglot and
written in the target's dialect when run; freshness compares the newest event time with the clock. Unit tests run
on DuckDB whatever the target (offline/testing.py).

    models:
      - name: user_spend
        tests:
          - unique                                   # join keys + timestamp, one row each
          - freshness: {warn_after: 2d, error_after: 7d}
        columns:
          - name: user__amount_sum__7d
            tests: [not_null, {accepted_range: {min_value: 0}}]
    unit_tests:
      - name: sums_over_seven_days
        model: user_spend
        given:
          - input: ref('stg_transactions')
            rows: [{user_id: 1, event_ts: 2026-01-01 10:00:00, amount: 5}]
        expect:
          rows: [{user_id: 1, user__amount_sum__7d: 5}]
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from skewless.core.durations import parse_duration
from skewless.core.errors import CompileError, Location, did_you_mean
from skewless.core.sourcefile import read_source
from skewless.core.sqlbuild import quoted_column
from skewless.core.yamlfile import MarkedDict, expect_list, expect_text

from .nodes import ModelNode

GENERIC = ("not_null", "unique", "accepted_values", "accepted_range", "relationships", "freshness")
MODEL_LEVEL = ("unique", "freshness")
SEVERITIES = ("error", "warn")
_REF = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$""")
_SOURCE = re.compile(r"""^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$""")


@dataclass(frozen=True)
class DataTest:
    """One test over the warehouse: its failing rows are `query`'s (freshness: the newest event time)."""

    name: str
    kind: str  # a GENERIC name, or "singular"
    model: str | None  # the model it tests (singular: None)
    depends_on: tuple[str, ...]  # the models it reads: `build` runs it after them
    location: Location
    query: exp.Query
    severity: str = "error"
    column: str | None = None
    warn_after: int | None = None  # freshness: µs
    error_after: int | None = None


@dataclass(frozen=True)
class UnitInput:
    kind: str  # "model" or "source"
    name: str  # a model's name, or "source.table"
    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class UnitTest:
    name: str
    model: str
    location: Location
    given: tuple[UnitInput, ...]
    expect: tuple[Mapping[str, Any], ...]


@dataclass
class ProjectTests:
    data: list[DataTest] = field(default_factory=list)
    unit: list[UnitTest] = field(default_factory=list)

    def for_models(self, models: set[str]) -> "ProjectTests":
        """The tests of the selected models (a singular test: when every model it reads is selected)."""
        return ProjectTests([t for t in self.data if (t.model in models if t.model else
                                                      set(t.depends_on) <= models and t.depends_on)],
                            [t for t in self.unit if t.model in models])


def generic_tests(nodes: Mapping[str, ModelNode], docs: Mapping[str, MarkedDict], dialect: str) -> list[DataTest]:
    """The generic tests declared in the models' YAML entries, checked and compiled."""
    tests = []
    for name, doc in docs.items():
        node = nodes.get(name)
        if node is None:
            continue
        key, raws = expect_list(doc, ("tests", "data_tests"), f"model {name!r}")
        for raw in raws:
            tests.append(_generic(node, nodes, raw, None, doc.location(key), dialect))
        for column in expect_list(doc, ("columns",), f"model {name!r}")[1]:
            if not isinstance(column, MarkedDict):
                continue
            key, raws = expect_list(column, ("tests", "data_tests"), f"a column of model {name!r}")
            for raw in raws:
                column_name = expect_text(column, "name", "a column entry")
                if column_name is None:
                    raise CompileError("a column entry with tests needs a 'name'", location=column.location())
                tests.append(_generic(node, nodes, raw, column_name, column.location(key), dialect))
    return tests


def _generic(node: ModelNode, nodes: Mapping[str, ModelNode], raw: Any, column: str | None, where: Location,
             dialect: str) -> DataTest:
    if isinstance(raw, str):
        kind, args = raw, {}
    elif isinstance(raw, Mapping) and len(raw) == 1:
        kind, args = next(iter(raw.items()))
        args = args if isinstance(args, Mapping) else {}
        if isinstance(raw, MarkedDict):
            where = raw.location(kind)
    else:
        raise CompileError("a test is a name (not_null) or a mapping of one name to its arguments "
                           "({accepted_values: {values: [a, b]}})", location=where)
    if kind not in GENERIC:
        raise CompileError(f"unknown test {kind!r}", location=where,
                           hint=did_you_mean(str(kind), GENERIC) or f"generic tests: {', '.join(GENERIC)}")
    if column is None and kind not in MODEL_LEVEL:
        raise CompileError(f"{kind} tests a column: declare it under the column's tests", location=where)
    if node.on_demand is not None:
        raise CompileError(f"{node.name} is an on-demand model: it has no rows to test", location=where)
    config = args.get("config") if isinstance(args.get("config"), Mapping) else {}
    severity = str(config.get("severity", args.get("severity", "error"))).lower()
    if severity not in SEVERITIES:
        raise CompileError(f"severity must be error or warn, not {severity!r}", location=where)
    if column is not None and node.columns_known and column not in node.columns:
        raise CompileError(f"{node.name} has no column {column!r} to test", location=where,
                           hint=did_you_mean(column, node.columns) or "check the column's name")
    relation: exp.Expression = node.relation if node.relation is not None else node.query.subquery("tested")
    test_name = "_".join(p for p in (kind, node.name, column) if p)
    build = _BUILDERS[kind]
    query, depends, extra = build(node, nodes, relation, column, args, where)
    tested = extra.pop("column", column)
    return DataTest(test_name, kind, node.name, (node.name, *depends), where, query, severity, tested, **extra)


def _not_null(node: ModelNode, nodes: Any, relation: exp.Expression, column: str | None, args: Mapping[str, Any],
              where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    assert column is not None
    return exp.select("*").from_(relation.copy()).where(quoted_column(column).is_(exp.null())), (), {}


def _unique(node: ModelNode, nodes: Any, relation: exp.Expression, column: str | None, args: Mapping[str, Any],
            where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    if column is not None:
        keys = [column]
    elif args.get("columns"):
        keys = [str(c) for c in args["columns"]]
    else:
        if not node.join_keys or not node.config.timestamp:
            raise CompileError("unique without a column checks the entity's join keys and the timestamp: this "
                               "model has no entity or timestamp", location=where,
                               hint="declare it under a column, or give columns: [a, b]")
        keys = [*node.join_keys, node.config.timestamp]
    columns = [quoted_column(k) for k in keys]
    query = (exp.select(*columns, exp.alias_(exp.Count(this=exp.Star()), "occurrences"))
             .from_(relation.copy()).group_by(*[c.copy() for c in columns])
             .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))))
    if column is not None:
        query = query.where(quoted_column(column).is_(exp.null()).not_())
    return query, (), {}


def _accepted_values(node: ModelNode, nodes: Any, relation: exp.Expression, column: str | None,
                     args: Mapping[str, Any], where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    assert column is not None
    values = args.get("values")
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise CompileError("accepted_values needs values: [a, b, ...]", location=where)
    allowed = [_literal(v) for v in values]
    target = quoted_column(column)
    query = (exp.select(target, exp.alias_(exp.Count(this=exp.Star()), "occurrences")).from_(relation.copy())
             .where(exp.and_(target.copy().is_(exp.null()).not_(), exp.Not(this=exp.In(this=target.copy(),
                                                                                       expressions=allowed))))
             .group_by(target.copy()))
    return query, (), {}


def _accepted_range(node: ModelNode, nodes: Any, relation: exp.Expression, column: str | None,
                    args: Mapping[str, Any], where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    assert column is not None
    low, high = args.get("min_value"), args.get("max_value")
    if low is None and high is None:
        raise CompileError("accepted_range needs min_value, max_value or both", location=where)
    inclusive = args.get("inclusive", True) is not False
    target = quoted_column(column)
    outside: list[exp.Expression] = []
    if low is not None:
        outside.append((exp.LT if inclusive else exp.LTE)(this=target.copy(), expression=_literal(low)))
    if high is not None:
        outside.append((exp.GT if inclusive else exp.GTE)(this=target.copy(), expression=_literal(high)))
    return exp.select("*").from_(relation.copy()).where(exp.or_(*outside)), (), {}


def _relationships(node: ModelNode, nodes: Mapping[str, ModelNode], relation: exp.Expression, column: str | None,
                   args: Mapping[str, Any], where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    assert column is not None
    target = str(args.get("to") or "")
    match = _REF.match(target)
    parent_name = match.group(1) if match else target
    parent = nodes.get(parent_name)
    field_name = str(args.get("field") or column)
    if parent is None:
        raise CompileError(f"relationships: to {target!r} names no model", location=where,
                           hint=did_you_mean(parent_name, nodes) or "to: ref('model'), field: its column")
    parent_relation = parent.relation if parent.relation is not None else parent.query.subquery("parent")
    child = quoted_column(column, "child")
    query = (exp.select(child).from_(exp.alias_(relation.copy(), "child", table=True))
             .join(exp.alias_(parent_relation.copy(), "parent", table=True),
                   on=exp.EQ(this=child.copy(), expression=quoted_column(field_name, "parent")), join_type="left")
             .where(exp.and_(child.copy().is_(exp.null()).not_(), quoted_column(field_name, "parent").is_(exp.null()))))
    return query, (parent.name,), {}


def _freshness(node: ModelNode, nodes: Any, relation: exp.Expression, column: str | None, args: Mapping[str, Any],
               where: Location) -> tuple[exp.Query, tuple[str, ...], dict[str, Any]]:
    timestamp = str(args.get("column") or column or node.config.timestamp or "")
    if not timestamp:
        raise CompileError("freshness reads the model's timestamp: this model has none", location=where,
                           hint="give column: the_event_time")
    bounds = {}
    for key in ("warn_after", "error_after"):
        if args.get(key) is not None:
            try:
                bounds[key] = int(parse_duration(args[key]).total_seconds() * 1_000_000)
            except ValueError as error:
                raise CompileError(f"freshness {key}: {error}", location=where) from None
    if not bounds:
        raise CompileError("freshness needs warn_after, error_after or both (e.g. warn_after: 1d)", location=where)
    query = exp.select(exp.alias_(exp.Max(this=quoted_column(timestamp)), "newest")).from_(relation.copy())
    return query, (), {"warn_after": bounds.get("warn_after"), "error_after": bounds.get("error_after"),
                       "column": timestamp}


_BUILDERS = {"not_null": _not_null, "unique": _unique, "accepted_values": _accepted_values,
             "accepted_range": _accepted_range, "relationships": _relationships, "freshness": _freshness}


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


# -- unit tests ----------------------------------------------------------------------------------------------


def unit_tests(entries: Sequence[tuple[Path, MarkedDict]], nodes: Mapping[str, ModelNode],
               sources: set[tuple[str, str]], root: Path) -> list[UnitTest]:
    """The `unit_tests:` entries of the models' YAML files, checked (a CSV file must be inside `root`, the
    project's folder)."""
    tests = []
    for path, entry in entries:
        where = entry.location("name") if "name" in entry else Location(path)
        name = expect_text(entry, "name", "a unit test") or ""
        model = expect_text(entry, "model", f"unit test {name or '?'!r}") or ""
        if not name or model not in nodes:
            raise CompileError(f"unit test {name or '?'!r}: model {model!r} is not a model of the project",
                               location=where, hint=did_you_mean(model, nodes) or "model: the model it tests")
        given = []
        for raw in entry.get("given") or []:
            if not isinstance(raw, Mapping):
                raise CompileError("given: a list of {input: ref('m') or source('s', 't'), rows: [...]}",
                                   location=where)
            text = str(raw.get("input") or "")
            if (ref := _REF.match(text)) is not None:
                if ref.group(1) not in nodes:
                    raise CompileError(f"unit test {name!r}: {text} names no model", location=where)
                kind, input_name = "model", ref.group(1)
            elif (source := _SOURCE.match(text)) is not None:
                if (source.group(1), source.group(2)) not in sources:
                    raise CompileError(f"unit test {name!r}: {text} names no source table", location=where)
                kind, input_name = "source", f"{source.group(1)}.{source.group(2)}"
            else:
                raise CompileError(f"unit test {name!r}: input {text!r} is not ref('...') or source('...', '...')",
                                   location=where)
            given.append(UnitInput(kind, input_name, _rows(raw, path, root, name, where)))
        expect = entry.get("expect")
        if not isinstance(expect, Mapping):
            raise CompileError(f"unit test {name!r} needs expect: {{rows: [...]}}", location=where)
        tests.append(UnitTest(name, model, where, tuple(given), _rows(expect, path, root, name, where)))
    return tests


def _rows(raw: Mapping[str, Any], path: Path, root: Path, test: str, where: Location
          ) -> tuple[Mapping[str, Any], ...]:
    """`rows: [{...}]`, or `csv:` text (a header line, then rows) or a CSV file (relative to the YAML file)."""
    if raw.get("rows") is not None:
        rows = raw["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise CompileError(f"unit test {test!r}: rows is a list of mappings (column: value)", location=where)
        return tuple(dict(r) for r in rows)
    text = raw.get("csv")
    if isinstance(text, str):
        if "\n" not in text and text.strip().endswith(".csv"):
            file = (path.parent / text.strip()).resolve()
            if not file.is_relative_to(root.resolve()):
                raise CompileError(f"unit test {test!r}: csv file {text!r} is outside the project", location=where,
                                   hint="keep fixtures in the project's folder, e.g. tests/fixtures/rows.csv")
            if not file.is_file():
                raise CompileError(f"unit test {test!r}: no csv file {text!r}", location=where,
                                   hint="a path relative to the YAML file, or the CSV text itself (csv: |)")
            text = read_source(file)
        reader = csv.DictReader(io.StringIO(text.strip()))
        return tuple({k: (None if v == "" else v) for k, v in row.items()} for row in reader)
    raise CompileError(f"unit test {test!r}: give rows: [...] or csv: (text or a file)", location=where)
