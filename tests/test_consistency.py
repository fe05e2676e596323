"""Online equals offline at the same instant: the value served for an entity at T is the training set's value at T,
same type, same bits. Random typed models and configs (ttl, delay, created timestamp), two runs (late rows, and
corrections that withdraw a row, move it to another key or earlier), future rows, and rows on the ttl and delay
edges to the microsecond.

Each example builds a real project (DuckDB and the test Redis), writes online as of T, reads online at T, builds a
training set at T, and compares every cell.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import struct
import tempfile
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewless import FeatureStore
from skewless.online.reader import OnlineReader

# T lies in the future so that Redis key expiry (event time + ttl, on Redis's clock) never runs before T.
T = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) + timedelta(days=30)
USERS = 3
US = timedelta(microseconds=1)
TTLS = [None, timedelta(hours=1), timedelta(hours=6)]
DELAYS = [None, timedelta(minutes=30), timedelta(hours=2)]
COLUMNS = {  # feature column -> Arrow type and values (NULLs, NaN, infinities, signed zeros, Unicode, edges)
    "i": (pa.int64(), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(-3, 3))),
    "d": (pa.float64(), st.one_of(st.none(), st.sampled_from([0.0, -0.0, math.nan, math.inf, -math.inf, 0.1 + 0.2]),
                                  st.floats(allow_nan=False, width=64))),
    "s": (pa.string(), st.one_of(st.none(), st.text(alphabet="aZ é€Σςİßﬁ\u0301", max_size=4))),
    "b": (pa.bool_(), st.one_of(st.none(), st.booleans())),
    "dt": (pa.date32(), st.one_of(st.none(), st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))),
    "ts": (pa.timestamp("us"), st.one_of(st.none(), st.datetimes(min_value=datetime(1, 1, 1),
                                                                   max_value=datetime(9999, 12, 31, 23, 59, 59)))),
}
SCHEMA = pa.schema([("user_id", pa.int64()), ("event_ts", pa.timestamp("us")), ("created_ts", pa.timestamp("us")),
                    *[(name, kind) for name, (kind, _) in COLUMNS.items()]])
STATS = {"examples": 0, "cells": 0}
_names = itertools.count()


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    ttl = draw(st.sampled_from(TTLS))
    delay = draw(st.sampled_from(DELAYS))
    with_created = draw(st.booleans())
    edges = [timedelta(0), US, -US]
    offsets = [-(ttl or timedelta(hours=8)) + e for e in edges] + [-(delay or timedelta(0)) + e for e in edges]
    offset = st.one_of(st.sampled_from(offsets),  # on the ttl and delay edges, to the microsecond
                       st.integers(-10 * 3600, 2 * 3600).map(lambda s: timedelta(seconds=s)))  # incl. future rows
    row = st.tuples(st.integers(0, USERS - 1), offset, st.one_of(st.none(), st.integers(0, 3 * 3600)),
                    *[values for _, values in COLUMNS.values()])
    rows = draw(st.lists(row, min_size=1, max_size=14))
    # rows after this one arrive late: only the second run sees them (often none: corrections are then the change)
    late = draw(st.one_of(st.just(len(rows)), st.integers(0, len(rows))))
    table = []
    for user, event_offset, created_after, *values in rows:
        event = T + event_offset
        created = None if created_after is None else min(event + timedelta(seconds=created_after), T)
        table.append((user, event, created, *values))
    # Corrections the second run sees: a row withdrawn, moved to another key, or moved earlier.
    corrected = []
    for entry in table:
        action = draw(st.sampled_from(["keep", "keep", "keep", "withdraw", "withdraw", "other key", "earlier"]))
        if action == "other key":
            corrected.append(((entry[0] + 1) % USERS, *entry[1:]))
        elif action == "earlier":
            corrected.append((entry[0], entry[1] - timedelta(hours=1), *entry[2:]))
        elif action == "keep":
            corrected.append(entry)
    return {"ttl": ttl, "delay": delay, "created": with_created, "rows": table, "late": late,
            "corrected": corrected or table[:1]}


DUCKDB_TARGET = "{type: duckdb, path: target/warehouse.duckdb, schema: features}"


def _project(root: Path, name: str, scenario: dict[str, Any], target: str = DUCKDB_TARGET) -> None:
    config = ["entity='user'", "timestamp='event_ts'", "online=true"]
    if scenario["created"]:
        config.append("created_timestamp='created_ts'")
    if scenario["ttl"] is not None:
        config.append(f"ttl='{int(scenario['ttl'].total_seconds())}s'")
    if scenario["delay"] is not None:
        config.append(f"delay='{int(scenario['delay'].total_seconds())}s'")
    created = "created_ts, " if scenario["created"] else ""
    features = ", ".join(f"{c} as user__{c}" for c in COLUMNS)
    files = {
        "skewless_project.yml": f"name: {name}\nprofile: sim\nonline_store:\n"
                                "  url: \"{{ env_var('SKEWLESS_REDIS_URL', '') }}\"\n",
        "profiles.yml": f"sim:\n  target: dev\n  outputs:\n    dev: {target}\n",
        "entities.yml": "entities:\n  - name: user\n    join_keys: [user_id]\n",
        "sources.yml": textwrap.dedent("""\
            sources:
              - name: sim
                tables:
                  - name: events
                    file: data/events.parquet
                    timestamp: event_ts
                    columns: [user_id, event_ts, created_ts, i, d, s, b, dt, ts]
        """),
        "models/user_sim.sql": f"{{{{ config({', '.join(config)}) }}}}\nselect user_id, event_ts, {created}"
                               f"{features}\nfrom {{{{ source('sim', 'events') }}}}\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def _write_rows(root: Path, rows: list[tuple[Any, ...]]) -> None:
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist([dict(zip(SCHEMA.names, r, strict=True)) for r in rows], SCHEMA),
                   root / "data" / "events.parquet")


def _same(online: Any, offline: Any) -> bool:
    if isinstance(online, float) or isinstance(offline, float):
        return type(online) is type(offline) and struct.pack("<d", online) == struct.pack("<d", offline)
    return type(online) is type(offline) and online == offline


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_online_equals_the_training_set_at_the_same_instant(scenario, redis_url):
    check_scenario(scenario, DUCKDB_TARGET)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_online_equals_the_training_set_on_postgres(scenario, redis_url, postgres_database):
    import psycopg

    with psycopg.connect(**postgres_database, autocommit=True) as connection:  # each example starts empty
        for schema in ("features", "sim", "skewless_state", "datasets"):
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    settings = ", ".join(f"{k}: {v}" for k, v in postgres_database.items())
    check_scenario(scenario, f"{{type: postgres, {settings}, schema: features}}")


_spark_schemas = itertools.count()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_online_equals_the_training_set_on_spark(scenario, redis_url):
    from conftest import require_spark

    # One local Spark session per process: each example writes a schema of its own in the shared warehouse.
    target = {**require_spark(), "schema": f"consistency_{next(_spark_schemas)}"}
    check_scenario(scenario, json.dumps(target))


def check_scenario(scenario: dict[str, Any], target: str) -> None:
    name = f"consistency_{next(_names)}"
    root = Path(tempfile.mkdtemp(prefix=name))
    try:
        _project(root, name, scenario, target)
        features = [f"user__{c}" for c in COLUMNS]
        rows = scenario["corrected"]
        # A first run sees the rows that had arrived by then; late rows and corrections come with the second.
        _write_rows(root, scenario["rows"][:scenario["late"]] or scenario["rows"][:1])
        with FeatureStore(root) as store:
            assert store.adapter.engine.target_type == yaml.safe_load(target)["type"]
            assert store.run(online=False).ok
            store.online_writer(now=T - timedelta(hours=3)).write(["user_sim"])
            _write_rows(root, rows)
            assert store.run(online=False).ok
            store.online_writer(now=T).write(["user_sim"])

            entities = [{"user_id": u} for u in range(USERS + 1)]  # the last user has no rows
            online = OnlineReader(store.serving_catalog(), store.online_store).read(entities, features, now=T)
            spine = pa.table({"user_id": pa.array(range(USERS + 1), pa.int64()),
                              "at": pa.array([T] * (USERS + 1), pa.timestamp("us"))})
            offline = [store.get_historical_features(spine, features, timestamp="at").to_arrow().to_pydict()]
            if scenario["created"] and all(r[2] is not None for r in rows):
                # Every row was created by T: the data as known at T is all of it, so as_known agrees too.
                offline.append(store.get_historical_features(spine, features, timestamp="at", as_known=True)
                               .to_arrow().to_pydict())
        for training in offline:
            for feature in features:
                for index, (got, want) in enumerate(zip(online[feature], training[feature], strict=True)):
                    assert _same(got, want), (feature, index, got, want, scenario)
                    STATS["cells"] += 1
        STATS["examples"] += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def report() -> Any:
    yield
    print(f"\nconsistency: {STATS['cells']} cells compared online vs offline over {STATS['examples']} projects")
