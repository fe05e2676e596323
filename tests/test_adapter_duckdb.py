"""DuckDB adapter specifics: its newest-row query agrees with the portable formulation."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.adapters.base import WarehouseAdapter
from skewless.core.sqlbuild import relation_table

ROWS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 4), st.one_of(st.none(), st.integers(0, 2)),
              st.one_of(st.none(), st.integers(-2, 2)), st.one_of(st.none(), st.sampled_from(["a", "b"]))),
    max_size=40,
)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from skewless.adapters.duckdb_adapter import DuckDBAdapter

    class Config:  # the few fields the adapter reads
        class target:  # noqa: N801
            settings = {"path": ":memory:"}
        root = tmp_path_factory.mktemp("duck")
        target_path = root
        name = "t"

    instance = DuckDBAdapter(Config)
    yield instance
    instance.close()


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_newest_rows_same_in_both_formulations(adapter, rows):
    con: duckdb.DuckDBPyConnection = adapter.connection
    con.execute("create or replace table t (k int, ts int, created int, f int, s varchar)")
    if rows:
        con.executemany("insert into t values (?, ?, ?, ?, ?)", rows)
    table = relation_table("t", "main")
    columns, order = ["k", "ts", "created", "f", "s"], ["ts", "created", "f", "s"]
    portable = adapter.fetch_all(WarehouseAdapter.newest_rows(adapter, table, ["k"], order, columns), log=False)
    native = adapter.fetch_all(adapter.newest_rows(table, ["k"], order, columns), log=False)
    assert sorted(portable, key=repr) == sorted(native, key=repr)
    # and both pick the documented row: greatest (ts, created, f, s) with NULLs lowest
    best = {}
    for row in rows:
        rank = tuple((v is not None, v) for v in row[1:])
        if row[0] not in best or rank > best[row[0]][0]:
            best[row[0]] = (rank, row)
    assert sorted(native, key=repr) == sorted((r for _, r in best.values()), key=repr)
