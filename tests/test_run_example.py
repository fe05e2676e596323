"""The example project end to end on DuckDB: every model builds, re-runs are idempotent, artifacts are written."""

from __future__ import annotations

import json

import duckdb
import pytest

from skewless import FeatureStore


@pytest.fixture
def store(example_copy):
    with FeatureStore(example_copy) as fs:
        yield fs


def table_rows(store: FeatureStore, sql: str) -> list[tuple]:
    return store.adapter.connection.execute(sql).fetchall()


def test_run_builds_every_model(store, example_copy):
    results = store.run()
    assert results.ok, [r.message for r in results.failed]
    compiled = store.compile()
    built = {r.name for r in results.results}
    assert built == {n for n, node in compiled.nodes.items() if node.builds}
    assert "payment_context" not in built  # on-demand: computed per request, never stored
    assert len(built) >= 8
    counts = dict(table_rows(store, "select table_name, table_type from information_schema.tables "
                                    "where table_schema = 'features'"))
    assert counts["stg_chargebacks"] == "VIEW" and counts["user_spend"] == "BASE TABLE"
    # duplicates in the raw data are removed by the ephemeral staging model
    raw = table_rows(store, "select count(*), count(distinct txn_id) from raw.transactions")[0]
    assert raw[0] > raw[1]
    assert table_rows(store, "select count(*) from features.user_spend")[0][0] == raw[1]
    run_results = json.loads((example_copy / "target" / "run_results.json").read_text())
    assert {r["status"] for r in run_results["results"]} == {"success"}
    assert all(r["rows"] for r in run_results["results"] if r["materialized"] == "feature_table")


def test_rolling_counts_match_a_python_oracle(example_copy):
    store = FeatureStore(example_copy, vars={"replay": False})  # the recorded dates, as in raw.transactions
    store.run(select=["user_transaction_counts"], online=False)
    events = table_rows(store, "select user_id, event_ts from (select *, row_number() over "
                               "(partition by txn_id order by created_ts) rn from raw.transactions) where rn = 1")
    by_user: dict[int, list] = {}
    for user, ts in events:
        by_user.setdefault(user, []).append(ts)
    user = max(by_user, key=lambda u: len(by_user[u]))
    got = table_rows(store, f"select event_ts, user__txn_count__7d from features.user_transaction_counts "
                            f"where user_id = {user} order by event_ts")
    from datetime import timedelta
    for ts, count in got:
        expected = sum(1 for other in by_user[user] if ts - timedelta(days=7) <= other <= ts)
        assert count == expected


def test_second_run_is_idempotent(store):
    assert store.run().ok
    before = {t: table_rows(store, f"select * from features.{t} order by all")
              for t in ("user_spend", "merchant_volume", "merchant_fraud_rate")}
    assert store.run().ok
    after = {t: table_rows(store, f"select * from features.{t} order by all") for t in before}
    assert before == after


def test_incremental_appends_only_new_rows_and_full_refresh_rebuilds(store, example_copy):
    assert store.run(select=["merchant_volume"]).ok
    total = table_rows(store, "select count(*) from features.merchant_volume")[0][0]
    # Drop the newest days, as if they had not happened yet; the next run must bring exactly them back.
    store.adapter.connection.execute(
        "delete from features.merchant_volume where event_ts > (select max(event_ts) - interval 10 day "
        "from features.merchant_volume)")
    again = store.run(select=["merchant_volume"])
    assert again.ok
    merged = again.results[0]
    assert 0 < merged.rows < total
    assert table_rows(store, "select count(*) from features.merchant_volume")[0][0] == total
    assert any(statement.startswith("DELETE FROM") for statement in merged.sql)
    refreshed = store.run(select=["merchant_volume"], full_refresh=True)
    assert refreshed.results[0].rows == total


def test_run_writes_executed_sql_and_manifest_types(store, example_copy):
    store.run(select=["+user_spend"])
    executed = (example_copy / "target" / "run" / "models" / "user" / "user_spend.sql").read_text()
    assert "ALTER TABLE \"features\".\"user_spend__skewless_tmp\"\nRENAME TO \"user_spend\"" in executed
    assert "information_schema" not in executed
    manifest = json.loads((example_copy / "target" / "manifest.json").read_text())
    feature = manifest["features"]["user__amount_sum__7d"]
    assert feature["type"] == "DOUBLE" and feature["entity"] == "user" and feature["ttl"] == "30d"


def test_selection_runs_only_chosen_models(store):
    results = store.run(select=["tag:profile"])
    assert sorted(r.name for r in results.results) == ["merchant_profile", "user_profile"]


def test_upstream_failure_skips_dependents_only(make_project):
    files = {
        "models/base.sql": "select cast('x' as integer) as user_id\n",
        "models/child.sql": "select * from {{ ref('base') }}\n",
    }
    with FeatureStore(make_project(files)) as fs:
        results = fs.run()
    status = {r.name: r.status for r in results.results}
    assert status == {"base": "error", "child": "skipped", "user_amounts": "success"}
    assert not results.ok


def test_view_replaces_table_and_back(make_project):
    root = make_project()
    model = root / "models" / "user_amounts.sql"
    with FeatureStore(root) as fs:
        assert fs.run().ok
    model.write_text(model.read_text().replace("online=true", "online=false, materialized='view'"))
    with FeatureStore(root) as fs:
        assert fs.run().ok
        assert fs.adapter.relation_kind(fs.compile().nodes["user_amounts"].relation) == "view"
    model.write_text(model.read_text().replace("online=false, materialized='view'", "online=true"))
    with FeatureStore(root) as fs:
        assert fs.run().ok
        assert fs.adapter.relation_kind(fs.compile().nodes["user_amounts"].relation) == "table"


def test_duckdb_file_from_profile_env_var(example_copy, monkeypatch, tmp_path):
    path = tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("SKEWLESS_DUCKDB_PATH", str(path))
    with FeatureStore(example_copy) as fs:
        assert fs.run(select=["merchant_profile"]).ok
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from features.merchant_profile").fetchone()[0] == 150
