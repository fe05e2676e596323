"""An in-process DuckDB over Arrow tables: where another engine's results are finished with DuckDB's semantics
(on-demand features of a training set, evaluated exactly as the online evaluator does)."""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlglot import exp

from skewless.core.errors import AdapterError

RESULT = "result"  # the name the query reads the table by


def query_arrow(table: pa.Table, query: exp.Query) -> pa.Table:
    """Run `query` (reading the table `result`) over `table` in a DuckDB of its own, in UTC."""
    with duckdb.connect() as connection:
        utc = exp.SetItem(this=exp.EQ(this=exp.to_identifier("TimeZone"), expression=exp.Literal.string("UTC")))
        connection.execute(exp.Set(expressions=[utc]).sql(dialect="duckdb"))
        connection.register(RESULT, table)
        try:
            return connection.sql(query.sql(dialect="duckdb")).to_arrow_table()
        except duckdb.Error as error:
            raise AdapterError(f"computing on-demand features failed: {type(error).__name__}: "
                               f"{str(error).strip().splitlines()[0]}",
                               hint="the same values fail online: see the feature's expression") from None
