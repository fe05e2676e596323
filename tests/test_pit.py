"""The point-in-time join against a brute-force oracle, on random data, in every formulation DuckDB can run.

Ties, NULL values, NULL keys, spine rows before any feature row, duplicate spine rows, ttl edges to the
microsecond, availability delay, as-known (created <= spine time) and two sources with different keys.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pit_oracle import BASE, DURATION, FEATURE_ROW, OTHER_ROW, SPINE_ROW, oracle

from skewless.core.errors import SkewlessError
from skewless.core.sqlbuild import first_per_group, relation_table
from skewless.offline import pit


def run(con, spine, features, others, ttl, delay, as_known, style, prepared=False, alone=False):
    con.execute("create or replace table feats (k int, ts timestamp, created timestamp, v1 int, v2 varchar)")
    con.execute("create or replace table others (k2 int, ts timestamp, w double)")
    con.execute("create or replace table spine (row_id bigint, k int, k2 int, t timestamp)")
    if features:
        con.executemany("insert into feats values (?, ?, ?, ?, ?)", features)
    if others:
        con.executemany("insert into others values (?, ?, ?)", others)
    if spine:
        con.executemany("insert into spine values (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(spine)])
    feats = relation_table("feats", "main")
    if prepared:  # as a feature_table build leaves it: one row per (k, ts), the winner by the documented rule
        query = first_per_group(feats, ["k", "ts"], ["created", "v1", "v2"], ["k", "ts", "created", "v1", "v2"])
        con.execute(f"create or replace table prepared as {query.sql('duckdb')}")
        feats = relation_table("prepared", "main")
    sources = (
        pit.FeatureSource(feats, ("k",), "ts", ("v1", "v2"), created_timestamp="created",
                          ttl=ttl, delay=delay, unique_per_key_ts=prepared),
        pit.FeatureSource(relation_table("others", "main"), ("k2",), "ts", ("w",)),
    )
    if alone:  # one source: formulations may read the result off the stream without a join back to the spine
        sources = sources[:1]
    query = pit.PitQuery(
        spine=pit.spine_query(relation_table("spine", "main"), ["k", "k2", "t"], "t", row_number="row_id"),
        spine_columns=("k", "k2", "t"), sources=sources, as_known=as_known,
    )
    sql = pit.build(query, "duckdb", style).sql(dialect="duckdb")
    return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@settings(max_examples=200)
@given(st.lists(SPINE_ROW, max_size=12), st.lists(FEATURE_ROW, max_size=25), st.lists(OTHER_ROW, max_size=8),
       DURATION, DURATION)
@pytest.mark.parametrize("style", ["asof", "lateral", "window", "carry", "ranked"])
def test_matches_oracle(con, style, spine, features, others, ttl, delay):
    expected = oracle(spine, features, others, ttl, delay, as_known=False)
    assert run(con, spine, features, others, ttl, delay, False, style) == expected


@settings(max_examples=100)
@given(st.lists(SPINE_ROW, max_size=12), st.lists(FEATURE_ROW, max_size=25), st.lists(OTHER_ROW, max_size=8),
       DURATION, DURATION)
@pytest.mark.parametrize("style", ["asof", "window", "carry"])
def test_prepared_tables_match_oracle(con, style, spine, features, others, ttl, delay):
    expected = oracle(spine, features, others, ttl, delay, as_known=False)
    assert run(con, spine, features, others, ttl, delay, False, style, prepared=True) == expected


@settings(max_examples=150)
@given(st.lists(SPINE_ROW, max_size=12), st.lists(FEATURE_ROW, max_size=25), DURATION, DURATION)
@pytest.mark.parametrize("style", ["asof", "window", "carry"])
def test_one_source_matches_oracle(con, style, spine, features, ttl, delay):
    expected = [row[:-1] for row in oracle(spine, features, [], ttl, delay, as_known=False)]
    got = run(con, spine, features, [], ttl, delay, False, style, alone=True)
    assert got == expected


@settings(max_examples=150)
@given(st.lists(SPINE_ROW, max_size=12), st.lists(FEATURE_ROW, max_size=25), st.lists(OTHER_ROW, max_size=8),
       DURATION, DURATION)
@pytest.mark.parametrize("style", ["lateral", "ranked"])
def test_as_known_matches_oracle(con, style, spine, features, others, ttl, delay):
    expected = oracle(spine, features, others, ttl, delay, as_known=True)
    assert run(con, spine, features, others, ttl, delay, True, style) == expected


def test_every_spine_row_once_in_order_with_duplicates(con):
    spine = [(1, 0, BASE + timedelta(minutes=5))] * 3 + [(None, 0, BASE), (2, 1, BASE - timedelta(days=1))]
    features = [(1, BASE, None, 7, "x"), (1, BASE + timedelta(minutes=5), None, None, "late-null")]
    rows = run(con, spine, features, [], None, None, False, "asof")
    assert rows == [
        (1, 0, BASE + timedelta(minutes=5), None, "late-null", None),  # a NULL value is a value
        (1, 0, BASE + timedelta(minutes=5), None, "late-null", None),
        (1, 0, BASE + timedelta(minutes=5), None, "late-null", None),
        (None, 0, BASE, None, None, None),                              # NULL key matches nothing
        (2, 1, BASE - timedelta(days=1), None, None, None),             # before any feature row
    ]


def test_ttl_edge_is_inclusive(con):
    features = [(1, BASE, None, 1, "a")]
    at_edge = run(con, [(1, 0, BASE + timedelta(minutes=10))], features, [], timedelta(minutes=10), None, False, "asof")
    past = run(con, [(1, 0, BASE + timedelta(minutes=10, microseconds=1))], features, [], timedelta(minutes=10),
               None, False, "asof")
    assert at_edge[0][3:5] == (1, "a") and past[0][3:5] == (None, None)


def test_unknown_dialect():
    with pytest.raises(SkewlessError, match="no point-in-time join for dialect 'mysql'"):
        pit.style_for("mysql")


def test_as_known_forms_per_dialect():
    assert pit.style_for("duckdb", as_known=True) == "lateral"
    assert pit.style_for("spark", as_known=True) == "ranked"
    assert pit.style_for("snowflake") == "asof_match"
