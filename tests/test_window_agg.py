"""window_agg(): features named by the convention, located errors, and training-set values at each spine instant
equal to a brute-force statement of the window rule (tests/window_oracle.py) on random events, with instants on
hop boundaries and one microsecond either side."""

from __future__ import annotations

import itertools
import math
import shutil
import tempfile
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from window_oracle import expected_rows, same

from skewless import FeatureStore
from skewless.core.errors import CompileError

MINUTE = 60_000_000
HOUR = 60 * MINUTE
HOP = 5 * MINUTE
BASE = datetime(2026, 3, 1)
BASE_US = int((BASE - datetime(1970, 1, 1)) / timedelta(microseconds=1))
WINDOWS = {"5m": 5 * MINUTE, "1h": HOUR, "13h": 13 * HOUR}  # granularities 5m, 5m, 1h
AGGS = [("*", "count", "n"), ("amount", "sum", None), ("amount", "avg", None), ("amount", "min", None),
        ("amount", "max", None), ("amount", "last", None), ("price", "sum", None), ("price", "last", None),
        ("price", "min", None), ("price", "max", None), ("price", "count", None),
        ("merchant_id", "count_distinct", None)]
SCHEMA = pa.schema([("user_id", pa.int64()), ("event_ts", pa.timestamp("us")), ("created_ts", pa.timestamp("us")),
                    ("amount", pa.int64()), ("price", pa.float64()), ("merchant_id", pa.int64())])


def _feature_list() -> list[tuple[str, str, str | None, int]]:
    features = []
    for column, function, name in AGGS:
        middle = name or f"{column}_{function}"
        for text, window in WINDOWS.items():
            features.append((f"user__{middle}__{text}", function, None if column == "*" else column, window))
    return features


FEATURES = _feature_list()


DUCKDB = "{type: duckdb, path: target/w.duckdb, schema: features}"


def _write_project(root: Path, name: str, target: str = DUCKDB) -> None:
    aggs = ", ".join(f"('{c}', '{f}'" + (f", '{n}')" if n else ")") for c, f, n in AGGS)
    files = {
        "skewless_project.yml": f"name: {name}\nprofile: sim\nonline_store:\n"
                                "  url: \"{{ env_var('SKEWLESS_REDIS_URL', '') }}\"\n",
        "profiles.yml": f"sim:\n  target: dev\n  outputs:\n    dev: {target}\n",
        "entities.yml": "entities:\n  - name: user\n    join_keys: [{name: user_id, type: bigint}]\n",
        "sources.yml": textwrap.dedent("""\
            sources:
              - name: sim
                tables:
                  - name: events
                    file: data/events.parquet
                    timestamp: event_ts
                    columns:
                      - {name: user_id, type: BIGINT}
                      - {name: event_ts, type: TIMESTAMP}
                      - {name: created_ts, type: TIMESTAMP}
                      - {name: amount, type: BIGINT}
                      - {name: price, type: DOUBLE}
                      - {name: merchant_id, type: BIGINT}
        """),
        "models/user_windows.sql": (
            "{{ config(entity='user', timestamp='event_ts', created_timestamp='created_ts', online=true) }}\n"
            f"{{{{ window_agg(source('sim', 'events'), aggs=[{aggs}], windows={list(WINDOWS)}, hop='5m') }}}}\n"
        ),
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def _instant(us: int | None) -> datetime | None:
    return None if us is None else BASE + timedelta(microseconds=us - BASE_US)


# Instants near hop and hour boundaries (±1 µs), over about a day.
_near_boundary = st.builds(lambda k, d: BASE_US + k * HOP + d, st.integers(0, 300), st.sampled_from([-1, 0, 1]))
_anywhere = st.integers(BASE_US, BASE_US + 26 * HOUR)
instants = st.one_of(_near_boundary, _anywhere)


@st.composite
def histories(draw: Any) -> dict[str, Any]:
    events = []
    for _ in range(draw(st.integers(0, 40))):
        ts = draw(instants)
        events.append({
            "key": draw(st.integers(1, 3)), "ts": ts,
            "created": ts + draw(st.sampled_from([0, 1, HOP, 2 * HOUR])),
            "amount": draw(st.one_of(st.none(), st.integers(-5, 5), st.integers(-(2**40), 2**40))),
            "price": draw(st.one_of(st.none(), st.sampled_from([0.25, -1.5, 3.0, 1024.75, math.nan]))),
            "merchant_id": draw(st.one_of(st.none(), st.integers(1, 4))),
        })
    # Instants at, and one microsecond around, each event (the rule's new end) and random ones; a NULL instant.
    around = [e["ts"] + d for e in events[:8] for d in (-1, 0, 1)]
    spine = [(draw(st.integers(1, 4)), at) for at in around + draw(st.lists(instants, max_size=12))]
    spine.append((1, None))
    return {"events": events, "spine": spine, "as_known": draw(st.booleans())}


_names = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_training_set_follows_the_window_rule(history: dict[str, Any]) -> None:
    check_history(history, DUCKDB)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_training_set_follows_the_window_rule_on_postgres(history: dict[str, Any], postgres_database) -> None:
    import psycopg

    with psycopg.connect(**postgres_database, autocommit=True) as connection:  # each example starts empty
        for schema in ("features", "sim"):
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    settings = ", ".join(f"{k}: {v}" for k, v in postgres_database.items())
    check_history(history, f"{{type: postgres, {settings}, schema: features}}")


_spark_schemas = itertools.count()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_training_set_follows_the_window_rule_on_spark(history: dict[str, Any]) -> None:
    import json

    from conftest import require_spark

    check_history(history, json.dumps({**require_spark(), "schema": f"windows_{next(_spark_schemas)}"}))


def check_history(history: dict[str, Any], target: str) -> None:
    name = f"windows_{next(_names)}"
    root = Path(tempfile.mkdtemp(prefix=name))
    try:
        _write_project(root, name, target)
        (root / "data").mkdir()
        rows = [{"user_id": e["key"], "event_ts": _instant(e["ts"]), "created_ts": _instant(e["created"]),
                 "amount": e["amount"], "price": e["price"], "merchant_id": e["merchant_id"]}
                for e in history["events"]]
        pq.write_table(pa.Table.from_pylist(rows, SCHEMA), root / "data" / "events.parquet")
        spine = pa.table({"user_id": pa.array([k for k, _ in history["spine"]], pa.int64()),
                          "at": pa.array([_instant(t) for _, t in history["spine"]], pa.timestamp("us"))})
        names = [f[0] for f in FEATURES]
        with FeatureStore(root) as store:
            assert store.run(online=False).ok
            got = store.get_historical_features(spine, names, timestamp="at",
                                                as_known=history["as_known"]).to_arrow()
        want = expected_rows(history["events"], history["spine"], FEATURES, HOP, as_known=history["as_known"])
        for feature, function, _, _ in FEATURES:
            kind = got.schema.field(feature).type
            assert kind == (pa.float64() if function == "avg" or "price" in feature and function != "count"
                            else pa.int64()), feature
            for index, value in enumerate(got.column(feature).to_pylist()):
                assert same(value, want[index][feature]), (feature, history["spine"][index], value,
                                                           want[index][feature])
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- compile ----------------------------------------------------------------------------------------------


WINDOW_MODEL = """\
{{ config(entity='user', timestamp='event_ts', online=true) }}
{{ skewless.window_agg(source('app', 'events'), aggs=AGGS, windows=WINDOWS, hop='5m') }}
"""
TYPED_SOURCES = """\
    sources:
      - name: app
        schema: raw
        tables:
          - name: events
            file: data/events.csv
            timestamp: event_ts
            columns:
              - {name: user_id, type: BIGINT}
              - {name: merchant_id, type: BIGINT}
              - {name: amount, type: DOUBLE}
              - {name: event_ts, type: TIMESTAMP}
"""


def _model(aggs: str = "[('amount', 'sum'), ('*', 'count', 'txn_count')]", windows: str = "['5m', '7d']") -> str:
    return WINDOW_MODEL.replace("AGGS", aggs).replace("WINDOWS", windows)


def test_features_are_named_by_the_convention(make_project):
    root = make_project({"sources.yml": TYPED_SOURCES, "models/user_windows.sql": _model()})
    compiled = FeatureStore(root).compile()
    node = compiled.nodes["user_windows"]
    assert node.features == ["user__amount_sum__5m", "user__amount_sum__7d", "user__txn_count__5m",
                             "user__txn_count__7d"]
    assert list(node.columns) == ["user_id", "event_ts", "amount"]
    assert node.feature_column("user__amount_sum__7d").type == "DOUBLE"
    assert node.feature_column("user__txn_count__5m").type == "BIGINT"


@pytest.mark.parametrize(("aggs", "windows", "message"), [
    ("[('amount', 'median')]", "['1h']", "unknown aggregation function 'median'"),
    ("[('nope', 'sum')]", "['1h']", "column 'nope' is not a column of the events"),
    ("[('amount', 'sum')]", "['7m']", "window 7m is not a whole number of hops (5m)"),
    ("[('amount', 'sum'), ('amount', 'sum')]", "['1h']", "two aggregations are named 'amount_sum'"),
    ("[('*', 'sum')]", "['1h']", "only count takes '*'"),
    ("['amount']", "['1h']", "each aggregation is (column, function)"),
    ("[('amount', 'sum')]", "'1h'", "windows must be a list of durations"),
])
def test_bad_arguments_are_located(make_project, aggs, windows, message):
    root = make_project({"sources.yml": TYPED_SOURCES, "models/user_windows.sql": _model(aggs, windows)})
    with pytest.raises(CompileError) as caught:
        FeatureStore(root).compile()
    assert message in str(caught.value)
    assert caught.value.location.line == 2 and caught.value.location.col is not None


def test_sum_of_text_and_ttl_are_refused(make_project):
    sources = TYPED_SOURCES.replace("{name: amount, type: DOUBLE}", "{name: amount, type: VARCHAR}")
    root = make_project({"sources.yml": sources, "models/user_windows.sql": _model("[('amount', 'sum')]")})
    with pytest.raises(CompileError, match="needs an integer or floating-point column, not VARCHAR"):
        FeatureStore(root).compile()
    with_ttl = _model().replace("online=true", "online=true, ttl='30d'")
    root = make_project({"sources.yml": TYPED_SOURCES, "models/user_windows.sql": with_ttl}, name="ttl")
    with pytest.raises(CompileError, match="takes no ttl"):
        FeatureStore(root).compile()
