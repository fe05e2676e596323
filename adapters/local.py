"""An in-process DuckDB over files and Arrow tables, in UTC: where another engine's inputs or results are handled
with DuckDB's semantics. Seed files are read here for every engine that cannot scan files itself (so all engines
load the same values), and a training set's on-demand features are computed here over the query's result on
engines that leave them out of the query (with the online evaluator's semantics)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from skewless.core.errors import AdapterError
from skewless.core.sqlbuild import UTC

from .base import driver_message

RESULT = "result"  # the name a query over a result reads it by


@contextlib.contextmanager
def _local(what: str, hint: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        connection.execute(UTC.sql(dialect="duckdb"))
        try:
            yield connection
        except duckdb.Error as error:
            raise AdapterError(f"{what}: {type(error).__name__}: {driver_message(error)}", hint=hint) from None


def read_file(path: Path, types: Mapping[str, str] | None = None) -> pa.Table:
    """A seed file's rows as Arrow, read as the DuckDB adapter reads it in place."""
    from .duckdb_adapter import DuckDBAdapter

    with _local(f"reading {path.name} failed") as connection:
        return connection.sql(DuckDBAdapter.file_scan(path, types).sql(dialect="duckdb")).to_arrow_table()


def query_arrow(table: pa.Table, query: exp.Query) -> pa.Table:
    """Run `query` (reading the table `result`) over `table`."""
    with _local("computing on-demand features failed",
                hint="the same values fail online: see the feature's expression") as connection:
        connection.register(RESULT, table)
        return connection.sql(query.sql(dialect="duckdb")).to_arrow_table()


def query_tables(tables: Mapping[str, tuple[list[Mapping[str, Any]], Mapping[str, str | None]]],
                 query: exp.Query) -> list[dict[str, Any]]:
    """Run `query` over small tables of rows (a unit test's given inputs), each column cast to its declared
    type (a column the rows leave out is NULL); the result's rows."""
    with _local("the unit test's query failed", hint="the model's SQL over the given rows: check the rows' "
                "columns and values") as connection:
        for name, (rows, types) in tables.items():
            raw = f"{name}__rows"
            columns = list(dict.fromkeys([*types, *(c for row in rows for c in row)]))
            if rows:
                values = {c: _typed([row.get(c) for row in rows], types.get(c)) for c in columns}
                connection.register(raw, pa.Table.from_pylist([{c: values[c][i] for c in columns}
                                                               for i in range(len(rows))]))
            select = exp.select(*[
                exp.alias_(exp.cast(exp.column(c, table=raw if rows else None) if rows else exp.null(),
                                    exp.DataType.build(types[c]) if types.get(c) else "VARCHAR"), c, quoted=True)
                if types.get(c) or not rows else exp.alias_(exp.column(c, table=raw, quoted=True), c, quoted=True)
                for c in columns])
            select = select.from_(raw) if rows else select.where(exp.false())
            connection.execute(exp.Create(this=exp.to_table(name), kind="VIEW", expression=select)
                               .sql(dialect="duckdb"))
        result = connection.sql(query.sql(dialect="duckdb")).to_arrow_table()
        return result.to_pylist()


def _typed(values: list[Any], declared: str | None) -> list[Any]:
    """A column of YAML or CSV values: as text when a declared type casts them; else, when every value reads as
    one, whole numbers, numbers or times (CSV gives only text)."""
    plain = [v if v is None or isinstance(v, (bool, int, float, str)) else str(v) for v in values]
    if declared is not None or not all(v is None or isinstance(v, str) for v in plain):
        return plain
    for convert in (int, float, datetime.fromisoformat):
        try:
            return [None if v is None else convert(v) for v in plain]
        except ValueError:
            continue
    return plain
