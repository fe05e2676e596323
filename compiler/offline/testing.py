"""Running a project's tests: generic and singular tests on the target's warehouse, unit tests on DuckDB.

A test fails when its query returns rows (the first ones are kept to show), a freshness test when the newest
event is older than its bounds, a unit test when the model's output differs from the expected rows. A test of
severity warn reports a warning instead of failing. `skewless build` runs each model's tests right after it and
skips what reads a model whose test failed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from skewless.core.durations import human_duration
from skewless.core.errors import SkewlessError
from skewless.project.compile import CompiledProject
from skewless.project.data_tests import DataTest, ProjectTests, UnitTest
from skewless.project.relations import EPHEMERAL_PREFIX

if TYPE_CHECKING:
    from skewless.adapters.base import WarehouseAdapter

SHOWN_ROWS = 5


@dataclass
class TestResult:
    name: str
    kind: str
    model: str | None
    status: str  # pass | fail | warn | error | skipped
    failures: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # the first failing rows
    message: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"unique_id": f"test.{self.name}", "name": self.name, "kind": self.kind, "model": self.model,
                "status": self.status, "failures": self.failures, "message": self.message,
                "rows": [{k: _json_value(v) for k, v in row.items()} for row in self.rows],
                "execution_time": round(self.seconds, 6)}


@dataclass
class TestResults:
    results: list[TestResult]
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(r.status in ("fail", "error") for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"success": self.ok, "elapsed_time": round(self.elapsed, 6),
                "results": [r.to_json() for r in self.results]}


class TestRunner:
    """Runs tests against one warehouse adapter; `now` is the clock freshness reads (frozen in tests)."""

    def __init__(self, compiled: CompiledProject, adapter: "WarehouseAdapter",
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc).replace(tzinfo=None),
                 report: Callable[[TestResult], None] | None = None) -> None:
        self.compiled = compiled
        self.adapter = adapter
        self.now = now
        self.report = report or (lambda result: None)

    def run(self, tests: ProjectTests) -> TestResults:
        started = time.perf_counter()
        results = [self.data_test(t) for t in tests.data] + [self.unit_test(t) for t in tests.unit]
        return TestResults(results, time.perf_counter() - started)

    def data_test(self, test: DataTest) -> TestResult:
        started = time.perf_counter()
        try:
            if test.kind == "freshness":
                result = self._freshness(test)
            else:
                failing = test.query.subquery("failing")
                count = self.adapter.fetch_all(exp.select(exp.Count(this=exp.Star())).from_(failing))[0][0]
                rows = []
                if count:
                    rows = self.adapter.fetch_arrow(exp.select("*").from_(failing.copy()).limit(SHOWN_ROWS)
                                                    ).to_pylist()
                status = "pass" if not count else ("warn" if test.severity == "warn" else "fail")
                result = TestResult(test.name, test.kind, test.model, status, int(count), rows,
                                    f"{count} failing row{'s' if count != 1 else ''}" if count else None)
        except SkewlessError as error:
            result = TestResult(test.name, test.kind, test.model, "error", message=f"{error}\n(are the models it "
                                "reads built? `skewless build` runs models and their tests in order)")
        result.seconds = time.perf_counter() - started
        self.report(result)
        return result

    def _freshness(self, test: DataTest) -> TestResult:
        newest = self.adapter.fetch_all(test.query)[0][0]
        if newest is None:
            return TestResult(test.name, test.kind, test.model, "fail", 1, message="no rows: nothing is fresh")
        if isinstance(newest, datetime) and newest.tzinfo is not None:
            newest = newest.astimezone(timezone.utc).replace(tzinfo=None)
        if not isinstance(newest, datetime) and isinstance(newest, date):
            newest = datetime(newest.year, newest.month, newest.day)
        age = int((self.now() - newest).total_seconds() * 1_000_000)
        text = f"newest {test.column} is {newest.isoformat(sep=' ')}, {_age(age)} old"
        if test.error_after is not None and age > test.error_after:
            return TestResult(test.name, test.kind, test.model, "fail", 1, message=f"{text} (error after "
                              f"{_age(test.error_after)})")
        if test.warn_after is not None and age > test.warn_after:
            return TestResult(test.name, test.kind, test.model, "warn", 1,
                              message=f"{text} (warn after {_age(test.warn_after)})")
        return TestResult(test.name, test.kind, test.model, "pass", message=text)

    def unit_test(self, test: UnitTest) -> TestResult:
        """The model's SELECT over the given rows (on DuckDB), against the expected rows, as multisets over the
        expected columns."""
        from skewless.adapters.local import query_tables

        started = time.perf_counter()
        try:
            query, tables = unit_query(self.compiled, test)
            actual = query_tables(tables, query)
            missing, unexpected = compare_rows(test.expect, actual)
            if missing or unexpected:
                shown = [{"": "expected, not returned", **r} for r in missing[:SHOWN_ROWS]]
                shown += [{"": "returned, not expected", **r} for r in unexpected[:SHOWN_ROWS]]
                result = TestResult(test.name, "unit", test.model, "fail", len(missing) + len(unexpected), shown,
                                    f"{len(missing)} expected row(s) not returned, {len(unexpected)} returned "
                                    "row(s) not expected")
            else:
                result = TestResult(test.name, "unit", test.model, "pass")
        except SkewlessError as error:
            result = TestResult(test.name, "unit", test.model, "error", message=str(error))
        result.seconds = time.perf_counter() - started
        self.report(result)
        return result


def unit_query(compiled: CompiledProject, test: UnitTest
               ) -> tuple[exp.Query, dict[str, tuple[list[Mapping[str, Any]], dict[str, str | None]]]]:
    """The model's query with each input it reads replaced by a table of the given rows (named by position)."""
    node = compiled.nodes[test.model]
    query = (node.body if node.body is not None else node.query).copy()
    tables: dict[str, tuple[list[Mapping[str, Any]], dict[str, str | None]]] = {}
    given: dict[tuple[str, str], str] = {}
    for index, item in enumerate(test.given):
        name = f"__given_{index}"
        if item.kind == "model":
            parent = compiled.nodes[item.name]
            key = (parent.relation.db, parent.relation.name) if parent.relation is not None else (
                "", EPHEMERAL_PREFIX + parent.name)
            types = {c.name: c.type for c in parent.columns.values()}
        else:
            source = compiled.config.sources[tuple(item.name.split(".", 1))]  # type: ignore[index]
            key = (source.schema, source.identifier)
            types = dict(source.columns)
        tables[name] = (list(item.rows), types)
        given[key] = name
    ctes = {cte.alias for cte in query.find_all(exp.CTE)}
    for table in list(query.find_all(exp.Table)):
        if not table.db and table.name in ctes:
            continue
        key = (table.db, table.name)
        if key not in given:
            what = table.name[len(EPHEMERAL_PREFIX):] if table.name.startswith(EPHEMERAL_PREFIX) else \
                ".".join(p for p in key if p)
            raise UnitTestError(f"unit test {test.name!r}: model {test.model} reads {what}, which given does "
                                "not list", hint="add an input with its rows (rows: [] for none)")
        table.replace(exp.alias_(exp.to_table(given[key]), table.alias_or_name, table=True))
    return query, tables


class UnitTestError(SkewlessError):
    """A unit test that cannot run as written."""


def compare_rows(expected: Iterable[Mapping[str, Any]], actual: Iterable[Mapping[str, Any]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(expected rows not returned, returned rows not expected), over the columns the expected rows name."""
    expected = [dict(r) for r in expected]
    columns = sorted({c for row in expected for c in row})
    remaining = [{c: row.get(c) for c in columns} for row in actual]
    missing = []
    for row in expected:
        match = next((i for i, got in enumerate(remaining)
                      if all(_same(row.get(c), got.get(c)) for c in columns)), None)
        if match is None:
            missing.append(row)
        else:
            remaining.pop(match)
    return missing, remaining


def _same(wanted: Any, got: Any) -> bool:
    if wanted is None or got is None:
        return wanted is None and got is None
    if isinstance(got, bool) or isinstance(wanted, bool):
        return str(wanted).lower() == str(got).lower()
    if isinstance(got, (int, float, Decimal)) and not isinstance(wanted, (datetime, date)):
        try:
            return math.isclose(float(wanted), float(got), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(got, datetime) and isinstance(wanted, (datetime, str)):
        try:
            wanted = wanted if isinstance(wanted, datetime) else datetime.fromisoformat(wanted)
        except ValueError:
            return False
        return wanted.replace(tzinfo=None) == got.replace(tzinfo=None)
    if isinstance(got, date) and isinstance(wanted, (date, str)):
        return str(wanted) == got.isoformat()
    return str(wanted) == str(got)


def _age(micros: int) -> str:
    return human_duration(micros / 1_000_000)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)
