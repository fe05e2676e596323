"""get_historical_features and datasets on a real project: spines of every kind, order, errors, options."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.core.errors import SkewlessError

MODELS = {
    "models/user_amounts.sql": """\
        {{ config(entity='user', timestamp='event_ts', ttl='2d') }}
        select user_id, event_ts, amount as user__amount, merchant_id as user__merchant
        from {{ source('app', 'events') }}
    """,
    "models/merchant_amounts.sql": """\
        {{ config(entity='merchant', timestamp='event_ts', delay='1h') }}
        select merchant_id, event_ts, sum(amount) over (partition by merchant_id order by event_ts) as merchant__total
        from {{ source('app', 'events') }}
    """,
    "datasets/train.yml": """\
        feature_services:
          - name: basic
            features: [user__amount, merchant_amounts:*]
        datasets:
          - name: train
            spine: {file: data/spine.csv, timestamp: ts}
            features: [service:basic, user__merchant]
    """,
    "data/spine.csv": """\
        user_id,merchant_id,ts,label
        1,10,2026-01-02 10:00:00,1
        1,10,2026-01-02 10:00:00,1
        2,10,2026-01-05 09:30:00,0
        2,99,2026-01-09 00:00:00,0
        3,10,2025-12-31 00:00:00,1
    """,
}
# events: (1,10,5.0,01-01 10:00) (1,11,7.5,01-02 10:00) (2,10,3.0,01-02 11:00) (2,10,4.0,01-05 09:00)


@pytest.fixture
def store(make_project):
    with FeatureStore(make_project(MODELS)) as fs:
        assert fs.run(online=False).ok
        yield fs


def spine_frame():
    return pd.DataFrame({
        "user_id": [1, 1, 2, 2, 3],
        "merchant_id": [10, 10, 10, 99, 10],
        "ts": pd.to_datetime(["2026-01-02 10:00", "2026-01-02 10:00", "2026-01-05 09:30", "2026-01-09 00:00",
                              "2025-12-31 00:00"]),
        "label": [1, 1, 0, 0, 1],
    })


EXPECTED = {
    "user__amount": [7.5, 7.5, 4.0, None, None],          # inclusive at 01-02 10:00; ttl 2d: 01-09 is too late
    "merchant__total": [5.0, 5.0, 8.0, None, None],       # delay 1h: the 01-05 09:00 row counts from 10:00
    "user__merchant": [11, 11, 10, None, None],
}


def test_dataframe_spine_keeps_rows_order_and_columns(store):
    result = store.get_historical_features(spine_frame(), ["user__amount", "merchant__total", "user__merchant"],
                                           timestamp="ts").to_pandas()
    assert list(result.columns) == ["user_id", "merchant_id", "ts", "label", "user__amount", "merchant__total",
                                    "user__merchant"]
    assert result["label"].tolist() == [1, 1, 0, 0, 1]
    for name, values in EXPECTED.items():
        assert [None if pd.isna(v) else v for v in result[name]] == values, name


def test_feature_order_follows_the_request_across_models(store):
    job = store.get_historical_features(spine_frame(), ["user__merchant", "merchant__total", "user__amount"])
    assert job.to_arrow().column_names[-3:] == ["user__merchant", "merchant__total", "user__amount"]


def test_arrow_spine_with_time_zone_is_compared_in_utc(store):
    berlin = timezone(timedelta(hours=1))
    table = pa.table({
        "user_id": [1, 1],
        "ts": pa.array([datetime(2026, 1, 2, 10, 59, tzinfo=berlin), datetime(2026, 1, 2, 11, 0, tzinfo=berlin)],
                       type=pa.timestamp("us", tz="+01:00")),
    })
    result = store.get_historical_features(table, ["user__amount"]).to_arrow()
    assert result.column("user__amount").to_pylist() == [5.0, 7.5]  # 09:59 UTC and 10:00 UTC


def test_date_spine_counts_from_the_start_of_the_day(store):
    table = pa.table({"user_id": [1, 1], "day": [date(2026, 1, 2), date(2026, 1, 3)]})
    result = store.get_historical_features(table, ["user__amount"]).to_arrow()
    assert result.column("user__amount").to_pylist() == [5.0, 7.5]


def test_sql_and_table_spines(store):
    query = "select user_id, merchant_id, event_ts + interval 1 second as t from raw.events"
    result = store.get_historical_features(query, ["user__amount"], timestamp="t").to_arrow()
    assert result.num_rows == 4 and result.column("user__amount").to_pylist() == [5.0, 7.5, 3.0, 4.0]
    by_name = store.get_historical_features("raw.events", ["user__merchant"], timestamp="event_ts").to_arrow()
    assert by_name.column_names == ["user_id", "merchant_id", "amount", "event_ts", "user__merchant"]


def test_as_known_hides_values_created_later(make_project):
    files = {
        **MODELS,
        "sources.yml": """\
            sources:
              - name: app
                schema: raw
                tables:
                  - name: events
                    file: data/events.csv
                    timestamp: event_ts
                    columns: [user_id, merchant_id, amount, event_ts, created_ts]
        """,
        "data/events.csv": """\
            user_id,merchant_id,amount,event_ts,created_ts
            1,10,5.0,2026-01-01 10:00:00,2026-01-01 10:00:00
            1,10,6.0,2026-01-01 10:00:00,2026-01-03 00:00:00
        """,
        "models/user_amounts.sql": """\
            {{ config(entity='user', timestamp='event_ts', created_timestamp='created_ts') }}
            select user_id, event_ts, created_ts, amount as user__amount from {{ source('app', 'events') }}
        """,
        "models/merchant_amounts.sql": None,
        "datasets/train.yml": None,
    }
    with FeatureStore(make_project(files)) as fs:
        assert fs.run(online=False).ok
        spine = pd.DataFrame({"user_id": [1, 1], "ts": pd.to_datetime(["2026-01-02", "2026-01-04"])})
        as_was = fs.get_historical_features(spine, ["user__amount"]).to_pandas()["user__amount"].tolist()
        as_known = fs.get_historical_features(spine, ["user__amount"], as_known=True).to_pandas()["user__amount"]
    assert as_was == [6.0, 6.0]                 # the correction (created later) wins the tie: "as it was then"
    assert as_known.tolist() == [5.0, 6.0]      # "as it was known then": the correction is not seen before 01-03


def test_errors(store):
    with pytest.raises(SkewlessError, match="did you mean 'user__amount'"):
        store.get_historical_features(spine_frame(), ["user__amout"])
    with pytest.raises(SkewlessError, match="lacks join key 'merchant_id'"):
        store.get_historical_features(spine_frame().drop(columns=["merchant_id"]), ["merchant__total"])
    with pytest.raises(SkewlessError, match="say which spine column"):
        store.get_historical_features(spine_frame().assign(ts2=pd.Timestamp("2026-01-01")), ["user__amount"])
    with pytest.raises(SkewlessError, match="already has columns named user__amount"):
        store.get_historical_features(spine_frame().assign(user__amount=1), ["user__amount"], timestamp="ts")
    with pytest.raises(SkewlessError, match="no feature service named 'basics'"):
        store.get_historical_features(spine_frame(), ["service:basics"])
    with pytest.raises(SkewlessError, match="features are names") as raised:
        store.get_historical_features(spine_frame(), [{"user__amount": 1}])
    assert "features come second" in (raised.value.hint or "")
    with pytest.raises(SkewlessError, match="neither a table name nor a SELECT"):
        store.get_historical_features("", ["user__amount"])
    with pytest.raises(SkewlessError, match="spine DataFrame cannot be read: .*column user_id") as raised:
        store.get_historical_features(spine_frame().assign(user_id=[1, "x", 2, 2, 3]), ["user__amount"])
    assert "astype" in (raised.value.hint or "")
    with pytest.raises(SkewlessError) as raised:  # a time column of text that is no time: the warehouse says so
        store.get_historical_features(spine_frame().assign(ts="soon"), ["user__amount"], timestamp="ts").to_arrow()
    assert "soon" in str(raised.value) and "column ts" in str(raised.value) and "__skewless" not in str(raised.value)


def test_a_training_set_over_models_not_built_says_which_and_the_run_that_builds_them(make_project):
    """The warehouse's "table does not exist" for a model never run (a new project, a model just added) becomes
    the models to build and the command; as a table (a dataset) and as Arrow."""
    with FeatureStore(make_project(MODELS)) as fs:
        assert fs.run(["user_amounts"], online=False).ok
        with pytest.raises(SkewlessError) as raised:
            fs.get_historical_features(spine_frame(), ["user__amount", "merchant__total"]).to_arrow()
        assert "not built in the warehouse yet: 'merchant_amounts'" in str(raised.value)
        assert "user_amounts" not in raised.value.message
        assert "skewless run -s '+merchant_amounts'" in (raised.value.hint or "")
        built = CliRunner().invoke(cli, ["dataset", "build", "train", "--project-dir", str(fs.config.root)])
        assert built.exit_code == 1, built.output
        assert "not built in the warehouse yet: 'merchant_amounts'" in built.output
        assert "Traceback" not in built.output and "Catalog Error" not in built.output
        with pytest.raises(SkewlessError, match="Conversion Error"):  # any other failure: the warehouse's error
            fs.get_historical_features("select 1 as user_id, 'x' as ts", ["user__amount"], timestamp="ts").to_arrow()


def test_to_sql_in_other_dialects(store):
    job = store.get_historical_features(spine_frame(), ["service:basic"])
    assert "ASOF LEFT JOIN" in job.to_sql()
    assert "MATCH_CONDITION" in job.to_sql("snowflake")
    assert "LATERAL" in job.to_sql("postgres")
    assert "LAST_VALUE" in job.to_sql("spark")
    job.close()


def test_dataset_build_cli(store):
    root = store.config.root
    runner = CliRunner()
    built = runner.invoke(cli, ["dataset", "build", "train", "--project-dir", str(root)])
    assert built.exit_code == 0, built.output
    assert "5 rows x 7 columns" in built.output
    rows = store.adapter.connection.execute(
        "select user__amount, merchant__total, user__merchant from datasets.train order by user_id, merchant_id"
    ).fetchall()
    assert rows == list(zip(*EXPECTED.values(), strict=True))
    parquet = root / "out.parquet"
    assert runner.invoke(cli, ["dataset", "build", "train", "-o", "parquet", "--path", str(parquet),
                               "--project-dir", str(root)]).exit_code == 0
    assert pa.parquet.read_table(parquet).num_rows == 5
    shown = runner.invoke(cli, ["show", "dataset:train", "--dialect", "trino", "--project-dir", str(root)])
    assert shown.exit_code == 0 and "IGNORE NULLS" in shown.output
    missing = runner.invoke(cli, ["dataset", "build", "trian", "--project-dir", str(root)])
    assert missing.exit_code == 2 and "did you mean 'train'" in missing.output


def test_a_compressed_csv_spine_file_is_read_like_the_plain_one(store):
    """The UTF-8 check reads plain CSV spines; a .csv.gz one is still inflated by the reader."""
    import gzip

    root = store.config.root
    (root / "data" / "spine.csv.gz").write_bytes(gzip.compress((root / "data" / "spine.csv").read_bytes()))
    datasets = root / "datasets" / "train.yml"
    datasets.write_text(datasets.read_text().replace("data/spine.csv", "data/spine.csv.gz"))
    with FeatureStore(root) as fs:
        fs.build_dataset("train")
        rows = fs.adapter.connection.execute(
            "select user__amount, merchant__total, user__merchant from datasets.train order by user_id, merchant_id"
        ).fetchall()
    assert rows == list(zip(*EXPECTED.values(), strict=True))


def test_prepared_feature_tables_give_the_same_training_set_as_query_time_dedup(example_copy):
    with FeatureStore(example_copy) as fs:
        assert fs.run(online=False).ok
        prepared = fs.get_historical_features("features.labelled_payments", ["service:fraud_v1"], timestamp="event_ts")
        prepared_sql, prepared_rows = prepared.to_sql(), prepared.to_arrow()
        for node in fs.compile().nodes.values():  # forget the build-time preparation: dedup in the query
            node.prepare = None
        plain = fs.get_historical_features("features.labelled_payments", ["service:fraud_v1"], timestamp="event_ts")
        assert plain.to_sql() != prepared_sql
        assert plain.to_arrow().equals(prepared_rows)


def test_unordered_result_has_the_same_rows(store):
    features = ["user__amount", "merchant__total", "user__merchant"]
    ordered = store.get_historical_features(spine_frame(), features, timestamp="ts").to_pandas()
    job = store.get_historical_features(spine_frame(), features, timestamp="ts", preserve_order=False)
    assert "ORDER BY" not in job.to_sql().split("ASOF LEFT JOIN")[-1]
    unordered = job.to_pandas()
    key = ["user_id", "merchant_id", "ts", "label"]
    pd.testing.assert_frame_equal(ordered.sort_values(key).reset_index(drop=True),
                                  unordered.sort_values(key).reset_index(drop=True))


@pytest.mark.parametrize(("dataset", "message"), [
    ("  - name: d\n    spine: {timestamp: ts}\n    features: [user__amount]\n", "exactly one of: source, model"),
    ("  - name: d\n    spine: {file: data/spine.csv, timestamp: ts}\n    featurs: [a]\n", "unknown key 'featurs'"),
    ("  - name: d\n    spine: {sql: 'select (1', timestamp: ts, columns: [a]}\n    features: [user__amount]\n",
     "the spine query does not parse"),
    ("  - name: d\n    spine: {sql: 'select {:{a}}', timestamp: ts, columns: [a]}\n    features: [user__amount]\n",
     "the spine query does not parse: the SQL parser cannot read it near"),  # the parser fails inside itself
    ("  - name: d\n    spine: {sql: 'drop table x', timestamp: ts, columns: [a]}\n    features: [user__amount]\n",
     "a spine query must be a SELECT, not DROP"),
])
def test_dataset_definition_errors(make_project, dataset, message):
    root = make_project({**MODELS, "datasets/train.yml": "datasets:\n" + dataset})
    result = CliRunner().invoke(cli, ["dataset", "build", "d", "--project-dir", str(root)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "train.yml:" in result.output


def test_a_compile_only_target_shows_a_dataset_whose_spine_is_not_a_file(make_project):
    # Showing SQL needs no adapter; only a file spine needs the target's way of scanning a file.
    profiles = "mini:\n  target: pg\n  outputs:\n    pg: {type: postgres, schema: features}\n"
    files = {**MODELS, "profiles.yml": profiles, "datasets/train.yml": MODELS["datasets/train.yml"].replace(
        "spine: {file: data/spine.csv, timestamp: ts}",
        "spine: {source: app.events, timestamp: event_ts, columns: [user_id, merchant_id, event_ts]}")}
    with FeatureStore(make_project(files)) as store:
        assert "LEFT JOIN LATERAL" in store.dataset_sql("train")
