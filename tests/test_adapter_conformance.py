"""The warehouse adapter conformance suite: what every engine must do, run once per engine that executes.

An engine joins by adding a factory to ADAPTERS (an adapter in a schema of its own, dropped afterwards); every
engine of the engine table marked `executes_in_tests` must have one. Data goes in through the adapter's own
interface (Arrow spines, CREATE TABLE AS), so nothing here is written for one engine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pit_oracle import DURATION, FEATURE_ROW, OTHER_ROW, SPINE_ROW, oracle
from sqlglot import exp

from skewless.adapters import adapter_class
from skewless.adapters.base import WarehouseAdapter
from skewless.core.engines import ENGINES
from skewless.core.errors import AdapterError
from skewless.core.sqlbuild import quoted_column, relation_table
from skewless.offline import pit


class _Target:
    def __init__(self, kind: str, settings: dict[str, Any]) -> None:
        self.type, self.settings, self.name, self.schema = kind, settings, "conformance", "main"


class _Config:
    """The few project fields an adapter reads when it opens."""

    def __init__(self, root: Path, kind: str, settings: dict[str, Any]) -> None:
        self.root = self.target_path = root
        self.name = "conformance"
        self.target = _Target(kind, settings)


def _duckdb(root: Path) -> Iterator[WarehouseAdapter]:
    adapter = adapter_class("duckdb")(_Config(root, "duckdb", {"path": str(root / "conformance.duckdb")}))
    yield adapter
    adapter.close()


def _postgres(root: Path) -> Iterator[WarehouseAdapter]:
    from conftest import require_postgres

    adapter = adapter_class("postgres")(_Config(root, "postgres", require_postgres()))
    yield adapter
    adapter.close()


def _spark(root: Path) -> Iterator[WarehouseAdapter]:
    from conftest import require_spark

    adapter = adapter_class("spark")(_Config(root, "spark", require_spark()))
    yield adapter
    adapter.close()


def _spark_connect(root: Path) -> Iterator[WarehouseAdapter]:
    from spark_processes import spark_connect_url

    adapter = adapter_class("spark")(_Config(root, "spark", {"method": "connect", "url": spark_connect_url()}))
    yield adapter
    adapter.close()


ADAPTERS: dict[str, Callable[[Path], Iterator[WarehouseAdapter]]] = {
    "duckdb": _duckdb, "postgres": _postgres, "spark": _spark,
}
EXECUTING = [name for name, engine in ENGINES.items() if engine.executes_in_tests]
# Other ways of reaching an engine, run through the same suite: Spark through a Spark Connect server.
METHODS = {"spark_connect": _spark_connect}


def test_every_executing_engine_runs_the_suite():
    assert EXECUTING and set(EXECUTING) <= set(ADAPTERS)


@pytest.fixture(scope="module", params=[*EXECUTING, *METHODS])
def adapter(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarehouseAdapter]:
    yield from {**ADAPTERS, **METHODS}[request.param](tmp_path_factory.mktemp(request.param))


# Property tests run fewer examples where each statement is a distributed job (Spark: about a second each).
_EXAMPLE_SHARE = {"spark": 0.25}


def examples(adapter: WarehouseAdapter, count: int) -> int:
    return max(10, int(count * _EXAMPLE_SHARE.get(type(adapter).engine.target_type, 1.0)))


_schemas = itertools.count()


@pytest.fixture
def schema(adapter: WarehouseAdapter) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards."""
    name = f"conformance_{next(_schemas)}"
    adapter.ensure_schema(name)
    yield name
    adapter.execute(exp.Drop(this=exp.Table(this=exp.to_identifier(name, quoted=True)), kind="SCHEMA", exists=True,
                             cascade=True), log=False)


_arrow_names = itertools.count()


def load(adapter: WarehouseAdapter, table: exp.Table, data: pa.Table) -> None:
    """A table with these rows, through the adapter's interface (an Arrow spine, then CREATE TABLE AS)."""
    name = f"conformance_arrow_{next(_arrow_names)}"
    source = adapter.register_arrow(name, data)
    try:
        adapter.drop(table)
        adapter.create_table_as(table, exp.select(*[quoted_column(c) for c in data.column_names]).from_(source))
    finally:
        adapter.unregister_arrow(name)


def rows(adapter: WarehouseAdapter, table: exp.Table, *order: str) -> list[tuple[Any, ...]]:
    query = exp.select("*").from_(table.copy())
    if order:
        query = query.order_by(*[quoted_column(c) for c in order])
    return [tuple(r) for r in adapter.fetch_all(query, log=False)]


def values_query(data: list[tuple[int, str]]) -> exp.Select:
    """SELECT of literal rows (k, v), as a model's query would be."""
    selects = [
        exp.select(exp.alias_(exp.Literal.number(k), "k", quoted=True), exp.alias_(exp.Literal.string(v), "v",
                                                                                    quoted=True))
        for k, v in data
    ]
    query: exp.Query = selects[0]
    for other in selects[1:]:
        query = exp.union(query, other, distinct=False)
    return exp.select(quoted_column("k"), quoted_column("v")).from_(query.subquery("data"))


def failing_query() -> exp.Select:
    """A query that parses and plans but fails while it runs: a text that is no integer, cast."""
    bad = exp.cast(exp.Literal.string("not a number"), "int")
    return exp.select(exp.alias_(bad, "k", quoted=True), exp.alias_(exp.Literal.string("x"), "v", quoted=True))


# -- the engine table and the adapter agree ------------------------------------------------------------------


def test_adapter_implements_what_its_engine_row_says(adapter):
    engine = type(adapter).engine
    assert adapter.dialect == engine.dialect and adapter.supports_transactions == engine.transactional_ddl
    overrides = {
        "swap": ("rename", "swap_in"),
        "merge": ("delete_insert", "merge_rows"),
    }
    for attribute, (base_way, step) in overrides.items():
        if getattr(engine, attribute) != base_way:  # the base adapter does it the base way; others override it
            assert getattr(type(adapter), step) is not getattr(WarehouseAdapter, step), (attribute, step)


# -- materializations ---------------------------------------------------------------------------------------


def test_feature_table_builds_and_replaces(adapter, schema):
    table = relation_table("features", schema)
    assert adapter.replace_table(table, values_query([(1, "a"), (2, "b")])).rows == 2
    assert rows(adapter, table, "k") == [(1, "a"), (2, "b")]
    assert adapter.replace_table(table, values_query([(3, "c")])).rows == 1
    assert rows(adapter, table, "k") == [(3, "c")]
    assert adapter.relation_kind(table) == "table"
    assert adapter.relation_kind(adapter.staging_table(table)) is None  # nothing left behind


def test_view_replaces_a_table_and_a_table_replaces_a_view(adapter, schema):
    table = relation_table("thing", schema)
    adapter.replace_table(table, values_query([(1, "a")]))
    assert adapter.replace_view(table, values_query([(2, "b")])).rows is None
    assert adapter.relation_kind(table) == "view" and rows(adapter, table) == [(2, "b")]
    adapter.replace_view(table, values_query([(3, "c")]))
    assert rows(adapter, table) == [(3, "c")]
    adapter.replace_table(table, values_query([(4, "d")]))
    assert adapter.relation_kind(table) == "table" and rows(adapter, table) == [(4, "d")]


def test_columns_in_order_with_types(adapter, schema):
    table = relation_table("typed", schema)
    adapter.replace_table(table, values_query([(1, "a")]))
    columns = adapter.columns(table)
    assert list(columns) == ["k", "v"] and all(columns.values())
    assert adapter.columns(relation_table("missing", schema)) == {}


def test_a_failing_build_leaves_the_previous_table_and_its_rows(adapter, schema):
    table = relation_table("kept", schema)
    adapter.replace_table(table, values_query([(1, "a"), (2, "b")]))
    with pytest.raises(AdapterError):
        adapter.replace_table(table, failing_query())
    assert adapter.relation_kind(table) == "table"
    assert rows(adapter, table, "k") == [(1, "a"), (2, "b")]
    with pytest.raises(AdapterError):
        adapter.replace_view(table, exp.select("nope").from_(relation_table("no_such_table", schema)))
    assert adapter.relation_kind(table) == "table" and rows(adapter, table, "k") == [(1, "a"), (2, "b")]


def test_incremental_merge_by_unique_key(adapter, schema):
    table = relation_table("incremental", schema)
    adapter.replace_table(table, values_query([(1, "a"), (2, "b")]))
    result = adapter.merge_incremental(table, values_query([(2, "B"), (3, "c")]), ["k"])
    assert result.rows == 2
    assert rows(adapter, table, "k") == [(1, "a"), (2, "B"), (3, "c")]
    adapter.merge_incremental(table, values_query([(3, "c")]), None)  # no unique key: rows are appended
    assert rows(adapter, table, "k", "v") == [(1, "a"), (2, "B"), (3, "c"), (3, "c")]
    assert adapter.relation_kind(adapter.staging_table(table)) is None


def test_incremental_refuses_changed_columns_and_rolls_back(adapter, schema):
    table = relation_table("changing", schema)
    adapter.replace_table(table, values_query([(1, "a")]))
    changed = exp.select(quoted_column("k"), quoted_column("v"), exp.alias_(exp.Literal.number(1), "extra",
                                                                             quoted=True))
    changed = changed.from_(values_query([(2, "b")]).subquery("new"))
    with pytest.raises(AdapterError, match=r"columns changed \(k, v -> k, v, extra\).*") as raised:
        adapter.merge_incremental(table, changed, ["k"])
    assert "--full-refresh" in (raised.value.hint or "")
    assert rows(adapter, table) == [(1, "a")]
    assert list(adapter.columns(table)) == ["k", "v"]
    assert adapter.relation_kind(adapter.staging_table(table)) is None or not adapter.supports_transactions


def test_a_failing_merge_keeps_every_row(adapter, schema):
    table = relation_table("merge_kept", schema)
    adapter.replace_table(table, values_query([(1, "a")]))
    with pytest.raises(AdapterError):
        adapter.merge_incremental(table, failing_query(), ["k"])
    assert rows(adapter, table) == [(1, "a")]


def test_seed_files_load(adapter, schema, tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "seed.parquet"
    pq.write_table(pa.table({"k": [1, 2], "v": ["a", "b"]}), path)
    table = relation_table("seed", schema)
    assert adapter.load_file(path, table) == 2
    assert rows(adapter, table, "k") == [(1, "a"), (2, "b")]


def test_a_text_seed_is_read_with_its_declared_types_and_a_bad_one_keeps_the_table(adapter, schema, tmp_path):
    path = tmp_path / "seed.csv"
    path.write_text("k,v,t\n1,007,2026-01-02 03:04:05\n2,x,2026-01-03 00:00:00\n")
    table = relation_table("typed_seed", schema)
    declared = {"k": "BIGINT", "v": "VARCHAR", "t": "TIMESTAMP"}
    assert adapter.load_file(path, table, declared) == 2
    assert rows(adapter, table, "k") == [(1, "007", datetime(2026, 1, 2, 3, 4, 5)), (2, "x", datetime(2026, 1, 3))]
    path.write_text("k,v,t\n1,a,2026-01-02 03:04:05\nlots,b,2026-01-03 00:00:00\n")
    with pytest.raises(AdapterError, match="lots"):
        adapter.load_file(path, table, declared)
    path.write_text("k,t\n1,2026-01-02 03:04:05\n")
    with pytest.raises(AdapterError, match="v"):
        adapter.load_file(path, table, declared)
    assert rows(adapter, table, "k") == [(1, "007", datetime(2026, 1, 2, 3, 4, 5)), (2, "x", datetime(2026, 1, 3))]


# -- spines, time zones ---------------------------------------------------------------------------------


def test_register_arrow_spines(adapter):
    data = pa.table({"k": pa.array([3, 1, 2], pa.int64()), "t": pa.array([datetime(2026, 1, 1, 12)] * 3,
                                                                         pa.timestamp("us"))})
    relation = adapter.register_arrow("conformance_spine", data)
    try:
        got = adapter.fetch_arrow(exp.select("k", "t").from_(relation).order_by("k"), log=False)
        assert got.column("k").to_pylist() == [1, 2, 3]
        assert got.column("t").to_pylist() == [datetime(2026, 1, 1, 12)] * 3
    finally:
        adapter.unregister_arrow("conformance_spine")


def test_the_session_runs_in_utc(adapter):
    # A time with a zone, taken as a plain timestamp, is its UTC time: the contract every comparison relies on.
    aware = exp.cast(exp.Literal.string("2026-03-29 01:30:00+02:00"), "timestamptz")
    query = exp.select(exp.alias_(exp.cast(aware, "timestamp"), "utc", quoted=True),
                       exp.alias_(exp.cast(exp.cast(exp.Literal.string("2026-03-29 12:00:00"), "timestamp"),
                                           "timestamptz"), "back", quoted=True))
    (utc, back), = adapter.fetch_all(query, log=False)
    assert utc == datetime(2026, 3, 28, 23, 30)
    assert back.utcoffset() == timedelta(0) and back.replace(tzinfo=None) == datetime(2026, 3, 29, 12)


# -- newest rows and the point-in-time join against brute-force oracles ---------------------------------------

NEWEST_ROWS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 4), st.one_of(st.none(), st.integers(0, 2)),
              st.one_of(st.none(), st.integers(-2, 2)), st.one_of(st.none(), st.sampled_from(["a", "b"]))),
    max_size=40,
)
NEWEST_SCHEMA = pa.schema([("k", pa.int64()), ("ts", pa.int64()), ("created", pa.int64()), ("f", pa.int64()),
                           ("s", pa.string()), ("z", pa.float64())])


def _signed_zero(ts: int) -> float:
    """A payload column that follows the ranked ones (ties pick equal rows), alternating -0.0 and +0.0."""
    return -0.0 if ts % 2 == 0 else 0.0


def test_newest_rows_match_the_oracle(adapter):
    @settings(max_examples=examples(adapter, 120), deadline=None)
    @given(data=NEWEST_ROWS)
    def check(data):
        table = relation_table("newest", "conformance_fixed")
        adapter.ensure_schema("conformance_fixed")
        full = [(*r, _signed_zero(r[1])) for r in data]
        load(adapter, table, pa.Table.from_pylist([dict(zip(NEWEST_SCHEMA.names, r, strict=True)) for r in full],
                                                  NEWEST_SCHEMA))
        columns, order = ["k", "ts", "created", "f", "s", "z"], ["ts", "created", "f", "s"]
        got = adapter.fetch_all(adapter.newest_rows(table, ["k"], order, columns), log=False)
        best: dict[int, tuple[Any, ...]] = {}
        for row in full:  # the greatest (ts, created, f, s) per key, NULLs lowest
            rank = tuple((v is not None, v) for v in row[1:5])
            if row[0] not in best or rank > tuple((v is not None, v) for v in best[row[0]][1:5]):
                best[row[0]] = row
        assert sorted(map(tuple, got), key=repr) == sorted(best.values(), key=repr)
        # every value keeps its bits: -0.0 stays -0.0
        assert {r[0]: math.copysign(1, r[5]) for r in got} == {k: math.copysign(1, r[5]) for k, r in best.items()}

    check()


PIT_FEATURES = pa.schema([("k", pa.int64()), ("ts", pa.timestamp("us")), ("created", pa.timestamp("us")),
                          ("v1", pa.int64()), ("v2", pa.string())])
PIT_OTHERS = pa.schema([("k2", pa.int64()), ("ts", pa.timestamp("us")), ("w", pa.float64())])
PIT_SPINE = pa.schema([("row_id", pa.int64()), ("k", pa.int64()), ("k2", pa.int64()), ("t", pa.timestamp("us"))])


def _pit(adapter: WarehouseAdapter, spine, features, others, ttl, delay, as_known: bool,
         alone: bool = False) -> list[tuple[Any, ...]]:
    schema = "conformance_pit"
    adapter.ensure_schema(schema)
    feats, other, spine_table = (relation_table(n, schema) for n in ("feats", "others", "spine"))
    load(adapter, feats, pa.Table.from_pylist([dict(zip(PIT_FEATURES.names, r, strict=True)) for r in features],
                                              PIT_FEATURES))
    load(adapter, other, pa.Table.from_pylist([dict(zip(PIT_OTHERS.names, r, strict=True)) for r in others],
                                              PIT_OTHERS))
    load(adapter, spine_table, pa.Table.from_pylist(
        [dict(zip(PIT_SPINE.names, (i, *r), strict=True)) for i, r in enumerate(spine)], PIT_SPINE))
    sources = (
        pit.FeatureSource(feats, ("k",), "ts", ("v1", "v2"), created_timestamp="created", ttl=ttl, delay=delay),
        pit.FeatureSource(other, ("k2",), "ts", ("w",)),
    )[:1 if alone else 2]
    query = pit.PitQuery(spine=pit.spine_query(spine_table, ["k", "k2", "t"], "t", row_number="row_id"),
                         spine_columns=("k", "k2", "t"), sources=sources, as_known=as_known)
    return [tuple(r) for r in adapter.fetch_all(pit.build(query, adapter.dialect), log=False)]


def test_point_in_time_join_matches_the_oracle(adapter):
    # The engine's own formulation (its as-known one when as_known): ties, NULLs, late rows, ttl and delay edges.
    @settings(max_examples=examples(adapter, 60), deadline=None)
    @given(st.lists(SPINE_ROW, max_size=12), st.lists(FEATURE_ROW, max_size=25), st.lists(OTHER_ROW, max_size=8),
           DURATION, DURATION, st.booleans(), st.booleans())
    def check(spine, features, others, ttl, delay, as_known, alone):
        # alone: one source (a formulation may then read the result off its stream, without a join back)
        expected = oracle(spine, features, [] if alone else others, ttl, delay, as_known=as_known)
        if alone:
            expected = [row[:-1] for row in expected]
        assert _pit(adapter, spine, features, others, ttl, delay, as_known, alone) == expected

    check()


def test_a_refused_build_keeps_the_previous_table(adapter, schema):
    # The runner's column check runs on the built table before the swap: refusing it keeps the old one.
    def refuse(columns: dict[str, str]) -> None:
        assert list(columns) == ["k", "v"]
        raise AdapterError("refused by the check")

    table = relation_table("checked", schema)
    adapter.replace_table(table, values_query([(1, "a")]))
    with pytest.raises(AdapterError, match="refused by the check"):
        adapter.replace_table(table, values_query([(2, "b")]), refuse)
    assert rows(adapter, table) == [(1, "a")]
    assert adapter.relation_kind(adapter.staging_table(table)) is None
    with pytest.raises(AdapterError, match="refused by the check"):
        adapter.merge_incremental(table, values_query([(3, "c")]), ["k"], refuse)
    assert rows(adapter, table) == [(1, "a")]


# -- the semantics the README documents, written once in DuckDB's dialect and run on each engine -----------------

SEMANTICS = """
select -7 // 2 as int_div, 7 // -2 as int_div_negative, -7 % 2 as modulo,
       'a' < 'B' as upper_before_lower, 'é' > 'z' as code_point_order,
       cast('2026-01-02 03:04:05.123456' as timestamp) as micros,
       date_diff('day', cast('2026-01-01' as date), cast('2026-03-01' as date)) as days_between,
       concat('a', null, 'b') as concat_null, 'a' || null as pipe_null
"""


def test_documented_semantics_are_the_same_on_every_engine(adapter):
    import sqlglot

    query = sqlglot.parse_one(SEMANTICS, read="duckdb")
    (row,) = adapter.fetch_all(query, log=False)
    assert row == (-3, -3, -1, False, True, datetime(2026, 1, 2, 3, 4, 5, 123456), 59, "ab", None)


def test_nulls_sort_where_the_generated_sql_says(adapter):
    data = exp.select(exp.alias_(exp.Literal.number(1), "v", quoted=True))
    for value in (exp.null(), exp.Literal.number(2)):
        data = exp.union(data, exp.select(exp.alias_(value, "v", quoted=True)), distinct=False)
    source = data.subquery("data")
    for desc, nulls_first, expected in ((False, False, [1, 2, None]), (True, False, [2, 1, None]),
                                        (False, True, [None, 1, 2])):
        order = exp.Ordered(this=quoted_column("v"), desc=desc, nulls_first=nulls_first)
        got = adapter.fetch_all(exp.select(quoted_column("v")).from_(source.copy()).order_by(order), log=False)
        assert [r[0] for r in got] == expected, (desc, nulls_first)


def test_a_large_result_comes_back_whole_in_batches(adapter, schema):
    # Small batches, so that an engine reading a result back piece by piece (Spark: a bucket at a time) does so.
    table = relation_table("batched", schema)
    data = [(k, f"v{k % 7}") for k in range(1, 58)]
    adapter.replace_table(table, values_query(data))
    adapter.batch_rows = 10
    try:
        batches = list(adapter.fetch_arrow_batches(exp.select("*").from_(table.copy())))
    finally:
        del adapter.batch_rows
    assert all(batch.num_rows <= 25 for batch in batches) and len(batches) >= 3
    got = sorted(row for batch in batches for row in zip(*(c.to_pylist() for c in batch.columns), strict=True))
    assert got == data
    assert adapter.relation_kind(relation_table("batched", schema)) == "table"
