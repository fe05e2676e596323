"""An in-process DuckDB over files and Arrow tables, in UTC: where another engine's inputs or results are handled
with DuckDB's semantics. Seed files are read here for every engine that cannot scan files itself (so all engines
load the same values), and a training set's on-demand features are computed here over the query's result on
engines that leave them out of the query (with the online evaluator's semantics)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

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
