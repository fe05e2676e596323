"""RANGE frames over a time key, rewritten over microseconds for engines that need a numeric key (BigQuery), give
the same rows: checked by running both forms in DuckDB on data with NULL keys, ties and frame edges."""

from __future__ import annotations

import duckdb
import sqlglot

from skewless.core.windows import numeric_range_frames

DATA = """
    select * from (values
        (1, timestamp '2026-01-01 00:00:00', 1.0), (1, timestamp '2026-01-08 00:00:00', 2.0),
        (1, timestamp '2026-01-08 00:00:00', 4.0), (1, timestamp '2026-01-08 00:00:00.000001', 8.0),
        (1, null, 16.0), (1, null, 32.0), (2, timestamp '2026-01-01 12:00:00', 64.0),
        (2, timestamp '2026-01-01 18:00:00', 128.0)
    ) t(u, ts, x)
"""


def both(window: str) -> tuple[list, list]:
    sql = f"select u, ts, x, sum(x) over (partition by u order by {window}) as s from ({DATA}) d"
    query = sqlglot.parse_one(sql, read="duckdb")
    rewritten = numeric_range_frames(query)
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    run = lambda q: sorted(connection.execute(q.sql(dialect="duckdb")).fetchall(), key=repr)  # noqa: E731
    assert "EPOCH_US" in rewritten.sql(dialect="duckdb")  # the frame was rewritten
    return run(query), run(rewritten)


def test_fixed_length_bounds_give_the_same_rows_with_null_keys_ties_and_edges():
    for window in ["ts range between interval '7' day preceding and current row",
                   "ts range between interval 6 hour preceding and current row",
                   "ts desc range between interval '1' week preceding and current row",
                   "ts range between current row and interval '7' day following"]:
        original, rewritten = both(window)
        assert original == rewritten, window


def test_month_bounds_and_row_frames_are_left_alone():
    for window in ["ts range between interval '1' month preceding and current row",
                   "ts rows between 2 preceding and current row"]:
        query = sqlglot.parse_one(f"select sum(x) over (order by {window}) from t", read="duckdb")
        assert numeric_range_frames(query).sql(dialect="duckdb") == query.sql(dialect="duckdb")


def test_the_bigquery_form_orders_by_unix_micros_without_a_nulls_clause():
    query = sqlglot.parse_one("select count(*) over (partition by u order by ts range between interval '7' day "
                              "preceding and current row) from t", read="duckdb")
    text = numeric_range_frames(query).sql(dialect="bigquery")
    assert "ORDER BY UNIX_MICROS(CAST(ts AS TIMESTAMP))" in text and "604800000000" in text and "NULLS" not in text
