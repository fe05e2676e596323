"""The example project, unchanged, on every executing engine: equal feature tables and equal training sets.

Models are written in DuckDB's dialect and compiled to each target's. Rows are compared after a stable sort;
floating-point aggregates within a relative 1e-9 (engines sum in different orders), and a model's round(x, n) of
one within one unit of its last place; everything else exactly.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from sqlglot import exp

from skewless import FeatureStore

RELATIVE = 1e-9


def project_on(tmp: Path, name: str, target: dict[str, Any]) -> Path:
    from conftest import EXAMPLE

    root = tmp / name
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    profile = {"payments": {"target": name, "outputs": {name: {"schema": "features", **target}}}}
    (root / "profiles.yml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return root


ONLINE_DATABASES = {"duckdb": 4, "postgres": 5, "spark": 6}  # each engine's project writes its own Redis database


@pytest.fixture(scope="module")
def built(tmp_path_factory, postgres_database) -> dict[str, FeatureStore]:
    from conftest import REDIS_SERVER, require_spark

    tmp = tmp_path_factory.mktemp("engines")
    targets = {"duckdb": {"type": "duckdb", "path": "target/payments.duckdb"},
               "postgres": {"type": "postgres", **postgres_database},
               "spark": require_spark()}
    stores = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, target in targets.items():
            if REDIS_SERVER:
                url = f"redis://127.0.0.1:6379/{ONLINE_DATABASES[name]}"
                import redis

                redis.Redis.from_url(url).flushdb()
                patch.setenv("SKEWLESS_REDIS_URL", url)
            else:
                patch.delenv("SKEWLESS_REDIS_URL", raising=False)
            store = FeatureStore(project_on(tmp, name, target))
            results = store.run()
            assert results.ok, (name, [(r.name, r.message) for r in results.failed], results.hook_errors)
            stores[name] = store
    yield stores
    for store in stores.values():
        store.close()


def sorted_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    rows = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
    return sorted(rows, key=lambda row: [(value is None, str(type(value)), value) for value in row])


def same_value(a: Any, b: Any) -> bool:
    """Equal values. Numbers compare by value: an integer SUM is HUGEINT (a Decimal here) on DuckDB and BIGINT
    on Postgres, and floating-point aggregates may differ in their last bits."""
    if isinstance(a, float) or isinstance(b, float):
        if not all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in (a, b)):
            return False
        a, b = float(a), float(b)
        if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-12):
            return True
        return one_unit_apart_after_rounding(a, b)
    if all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in (a, b)):
        return a == b
    return a == b and type(a) is type(b)


def one_unit_apart_after_rounding(a: float, b: float) -> bool:
    """round(x, n) of a floating-point aggregate: when the engines' aggregates differ in their last bits, a value
    next to a rounding boundary rounds one way on one engine and the other way on the other (one unit apart)."""
    for places in range(7):
        unit = 10.0 ** -places
        if a == round(a, places) and b == round(b, places):
            return abs(a - b) <= unit * 1.000001
    return False


def assert_same_rows(name: str, left: pa.Table, right: pa.Table) -> None:
    assert left.column_names == right.column_names, name
    a, b = sorted_rows(left), sorted_rows(right)
    assert len(a) == len(b), (name, len(a), len(b))
    for row_a, row_b in zip(a, b, strict=True):
        differ = [(column, x, y) for column, x, y in zip(left.column_names, row_a, row_b, strict=True)
                  if not same_value(x, y)]
        assert not differ, (name, row_a[:3], differ)


def test_every_feature_table_is_equal_on_every_engine(built):
    reference = built["duckdb"]
    compiled = reference.compile(write=False)
    tables = [n for n in compiled.order if compiled.nodes[n].relation is not None and compiled.nodes[n].builds]
    assert len(tables) == 11
    for name in tables:
        relation = compiled.nodes[name].relation
        expected = reference.adapter.fetch_arrow(exp.select("*").from_(relation.copy()), log=False)
        for engine, store in built.items():
            got = store.adapter.fetch_arrow(exp.select("*").from_(relation.copy()), log=False)
            assert_same_rows(f"{engine}:{name}", expected, got)


def test_window_features_are_equal_on_every_engine(built):
    """window_agg features at each spine row's instant: the same integer arithmetic on every engine (epoch
    microseconds, floors to the window's granularity), at payment times and one microsecond around hop boundaries."""
    reference = built["duckdb"]
    node = reference.compile(write=False).nodes["user_txn_windows"]
    payments = reference.adapter.fetch_arrow(
        exp.select("user_id", "event_ts").from_(node.relation.copy()).order_by("event_ts").limit(3000), log=False)
    hop = timedelta(minutes=5)
    times = payments.column("event_ts").to_pylist()
    edges = [datetime(t.year, t.month, t.day, t.hour, t.minute - t.minute % 5) + hop + delta
             for t in times[::50] for delta in (-timedelta(microseconds=1), timedelta(0), timedelta(microseconds=1))]
    users = payments.column("user_id").to_pylist()
    spine = pa.table({"user_id": pa.array(users + users[::50] * 3, pa.int64()),
                      "at": pa.array(times + edges, pa.timestamp("us"))})
    features = list(node.features)
    expected = reference.get_historical_features(spine, features, timestamp="at").to_arrow()
    assert sum(expected.column("user__payments__7d").to_pylist()) > 0
    for engine, store in built.items():
        got = store.get_historical_features(spine, features, timestamp="at").to_arrow()
        assert_same_rows(engine, expected, got)


def test_the_training_set_is_equal_on_every_engine(built):
    reference = built["duckdb"]
    dataset = reference.catalog.dataset("fraud_training")
    relation = reference.compile(write=False).nodes[dataset.spine.value].relation
    columns = [exp.column(c, quoted=True) for c in dataset.spine.columns]
    spine = reference.adapter.fetch_arrow(exp.select(*columns).from_(relation.copy()), log=False)
    expected = reference.get_historical_features(spine, list(dataset.features), timestamp="event_ts").to_arrow()
    assert expected.num_rows == spine.num_rows > 1000
    for engine, store in built.items():
        got = store.get_historical_features(spine, list(dataset.features), timestamp="event_ts").to_arrow()
        assert_same_rows(engine, expected, got)


def test_a_sql_spine_in_any_order_gives_the_same_training_set_on_every_engine(built):
    # The spine's rows get the engine's own row id (Spark's ROW_NUMBER needs an order: a unique id, written once
    # with the spine, since a spine read twice after a shuffle need not come back in the same order).
    reference = built["duckdb"]
    query = ("select p.user_id, p.merchant_id, p.event_ts, p.is_fraud from features.labelled_payments p "
             "join (select distinct user_id from features.labelled_payments) u on p.user_id = u.user_id")
    features = ["user__txn_count__7d", "merchant__fraud_rate__30d"]
    # A table named, read in place (its rows come back in one order wherever the query reads it).
    for spine, timestamp in ((query, None), ("raw.transactions", "event_ts")):
        expected = reference.get_historical_features(spine, features, timestamp=timestamp).to_arrow()
        assert expected.num_rows > 1000
        for engine, store in built.items():
            for ordered in (False, True):
                got = store.get_historical_features(spine, features, timestamp=timestamp,
                                                    preserve_order=ordered).to_arrow()
                assert_same_rows(engine, expected, got)


def test_online_values_are_equal_on_every_engine(built):
    reference = built["duckdb"]
    rows = [{"user_id": u, "merchant_id": m} for u, m in zip(range(1, 400), range(1, 400), strict=True)]
    features = [f for f in reference.resolve_features(["service:fraud_v1", "merchant__category", "user__country"])]
    expected = reference.get_online_features(rows, features)
    assert sum(v is not None for v in expected["user__txn_count__7d"]) > 50
    for engine, store in built.items():
        got = store.get_online_features(rows, features)
        for feature in features:
            pairs = zip(expected[feature], got[feature], strict=True)
            assert all(same_value(a, b) for a, b in pairs), (engine, feature)


def test_on_demand_features_are_served_alike_on_every_engine(built):
    # The manifest holds on-demand expressions in the evaluator's dialect whatever the target: a Postgres project
    # serves them with the same meaning (before, they were written in Postgres SQL and read back changed).
    from datetime import datetime, timedelta

    now = datetime.now().replace(microsecond=0)
    rows = [{"user_id": u, "merchant_id": 1 + u % 150, "amount": 10.0 * u, "channel": ["web", "pos", "app"][u % 3],
             "event_ts": now - timedelta(hours=u)} for u in range(1, 60)]
    reference = built["duckdb"]
    features = reference.resolve_features(["payment_context:*"])
    expected = reference.get_online_features(rows, features)
    assert sum(v is not None for v in expected["payment__account_age_days"]) > 10
    for engine, store in built.items():
        got = store.get_online_features(rows, features)
        for feature in features:
            pairs = zip(expected[feature], got[feature], strict=True)
            assert all(same_value(a, b) for a, b in pairs), (engine, feature)


def test_the_manifest_holds_on_demand_expressions_in_the_evaluators_dialect(built):
    from skewless.project import artifacts

    expressions = {}
    for engine, store in built.items():
        manifest = artifacts.manifest(store.compile(write=False), store.feature_services())
        expressions[engine] = {name: feature["on_demand"]["expression"] for name, feature in
                               manifest["features"].items() if feature.get("on_demand")}
    assert expressions["duckdb"]["payment__burst_level__1d"] == "COALESCE(user__txn_count__1d, 0) // 5"
    assert expressions["postgres"] == expressions["spark"] == expressions["duckdb"]


def test_postgres_finds_the_newest_row_by_its_index_without_sorting_the_entitys_rows(built):
    # Feature tables are indexed on (keys, time DESC NULLS LAST, created DESC NULLS LAST): the order the LATERAL
    # join asks for, so each look-up reads the index in order (only exact ties are sorted further).
    store = built["postgres"]
    spine = "select user_id, event_ts from features.labelled_payments"
    query = store.get_historical_features(spine, ["user__txn_count__7d"], preserve_order=False).to_sql("postgres")
    plan = "\n".join(row[0] for row in store.adapter.connection.execute(b"EXPLAIN " + query.encode()).fetchall())
    assert "Index Scan" in plan and "__pit_" in plan, plan
    assert "Presorted Key" in plan or "Sort" not in plan, plan
