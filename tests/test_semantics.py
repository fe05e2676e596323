"""The rules README's semantics section states, each checked online and offline at the same instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from click.testing import CliRunner

from skewless import CompileError, FeatureStore
from skewless.cli.main import cli
from skewless.online.reader import OnlineReader

T = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) + timedelta(days=30)
EVENT = T - timedelta(hours=1)


def _events(rows: list[tuple]) -> str:
    return "user_id,merchant_id,amount,event_ts,created_ts,label\n" + "".join(
        ",".join("" if v is None else (v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)) for v in row)
        + "\n" for row in rows)


def _files(rows: list[tuple], config: str) -> dict[str, str]:
    return {
        "sources.yml": """\
            sources:
              - name: app
                schema: raw
                tables:
                  - name: events
                    file: data/events.csv
                    timestamp: event_ts
                    columns: [{name: user_id, type: BIGINT}, {name: merchant_id, type: BIGINT},
                              {name: amount, type: DOUBLE}, {name: event_ts, type: TIMESTAMP},
                              {name: created_ts, type: TIMESTAMP}, {name: label, type: VARCHAR}]
        """,
        "data/events.csv": _events(rows),
        "models/user_amounts.sql": f"{{{{ config(entity='user', timestamp='event_ts', online=true{config}) }}}}\n"
                                   "select user_id, event_ts, created_ts, label as user__label,\n"
                                   "    amount as user__amount from {{ source('app', 'events') }}\n",
    }


def both(store: FeatureStore, users: list[int], as_known: bool = False) -> tuple[dict, dict]:
    """Online (written and read as of T) and the training set at T, for these users."""
    features = ["user__label", "user__amount"]
    assert store.run(online=False).ok
    store.online_writer(now=T).write(["user_amounts"])
    online = OnlineReader(store.serving_catalog(), store.online_store).read([{"user_id": u} for u in users],
                                                                           features, now=T)
    spine = pa.table({"user_id": pa.array(users, pa.int64()), "at": pa.array([T] * len(users), pa.timestamp("us"))})
    offline = store.get_historical_features(spine, features, timestamp="at", as_known=as_known).to_arrow()
    return {f: online[f] for f in features}, {f: offline.column(f).to_pylist() for f in features}


def test_value_tie_break_is_every_feature_in_select_order_strings_bytewise(make_project):
    # Same key and event time, no created timestamp: the greatest user__label wins (the first feature), compared
    # byte-wise ('é' is 0xC3A9, above 'z'); on a tie of labels the greatest amount; NULLs lowest.
    rows = [(1, 1, 5.0, EVENT, None, "z"), (1, 1, 1.0, EVENT, None, "é"),
            (2, 1, 1.0, EVENT, None, "a"), (2, 1, 9.0, EVENT, None, "a"), (2, 1, None, EVENT, None, "a"),
            (3, 1, 7.0, EVENT, None, None), (3, 1, 2.0, EVENT, None, "b")]
    with FeatureStore(make_project(_files(rows, ""))) as store:
        online, offline = both(store, [1, 2, 3])
    assert online == offline == {"user__label": ["é", "a", "b"], "user__amount": [1.0, 9.0, 2.0]}


def test_a_null_created_timestamp_ranks_lowest_and_is_never_known(make_project):
    rows = [(1, 1, 1.0, EVENT, None, "uncreated"), (1, 1, 2.0, EVENT, EVENT, "created"),
            (2, 1, 3.0, EVENT, None, "only")]
    with FeatureStore(make_project(_files(rows, ", created_timestamp='created_ts'"))) as store:
        online, offline = both(store, [1, 2])
        assert online == offline == {"user__label": ["created", "only"], "user__amount": [2.0, 3.0]}
        _, known = both(store, [1, 2], as_known=True)
    assert known == {"user__label": ["created", None], "user__amount": [2.0, None]}


def test_a_ttl_of_zero_is_refused(make_project):
    root = make_project(_files([(1, 1, 1.0, EVENT, None, "a")], ", ttl='0s'"))
    with FeatureStore(root) as store, pytest.raises(CompileError, match="a ttl must be longer than 0s"):
        store.compile()


def test_a_delay_longer_than_the_ttl_warns(make_project):
    root = make_project(_files([(1, 1, 1.0, EVENT, None, "a")], ", ttl='1h', delay='2h'"))
    result = CliRunner().invoke(cli, ["compile", "--project-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert "Warning:" in result.output and "delay (2h) is longer than ttl (1h)" in result.output
    assert "user_amounts.sql:1:" in result.output


def test_a_null_spine_time_gets_nulls_and_keeps_its_row(make_project):
    with FeatureStore(make_project(_files([(1, 1, 1.0, EVENT, None, "a")], ""))) as store:
        assert store.run(online=False).ok
        spine = pa.table({"user_id": pa.array([1, 1, 1], pa.int64()),
                          "at": pa.array([T, None, T], pa.timestamp("us"))})
        got = store.get_historical_features(spine, ["user__label"], timestamp="at").to_arrow()
    assert got.column("user__label").to_pylist() == ["a", None, "a"]


def test_spine_times_compare_at_microseconds_floored_and_come_back_as_given(make_project):
    import pandas as pd

    # A row at EVENT + 1 µs; a ttl of 1h from a row at EVENT. Spine times in nanoseconds, zoned and not.
    rows = [(1, 1, 1.0, EVENT, None, "edge"), (2, 1, 2.0, EVENT + timedelta(microseconds=1), None, "later")]
    with FeatureStore(make_project(_files(rows, ", ttl='1h'"))) as store:
        assert store.run(online=False).ok
        base = pd.Timestamp(EVENT)
        spine = pd.DataFrame({
            "user_id": [2, 2, 1, 1],
            "at": [base + pd.Timedelta(nanoseconds=500), base + pd.Timedelta(microseconds=1),
                   base + pd.Timedelta(hours=1), base + pd.Timedelta(hours=1, nanoseconds=400)],
        })
        got = store.get_historical_features(spine, ["user__label"], timestamp="at").to_arrow()
        # 500 ns before the row: not yet (rounding would have seen it); at the ttl edge: served; 400 ns past the
        # edge floors to the edge itself, as the online store (microseconds) sees that instant
        assert got.column("user__label").to_pylist() == [None, "later", "edge", "edge"]
        assert got.column("at").to_pandas().tolist() == spine["at"].tolist()  # the spine's own values (ns kept)
        zoned = pd.DataFrame({"user_id": [1], "at": [pd.Timestamp(EVENT, tz="UTC").tz_convert("Europe/Berlin")]})
        back = store.get_historical_features(zoned, ["user__label"], timestamp="at").to_arrow()
        assert back.column("at").type.tz is not None  # a zoned spine time stays zoned...
        sql = store.get_historical_features(
            f"select 1::bigint as user_id, timestamptz '{EVENT.isoformat(sep=' ')}+00' as at", ["user__label"],
            timestamp="at").to_arrow()
        assert sql.column("at").type.tz is not None  # ...from a DataFrame and from SQL alike
        assert back.column("user__label").to_pylist() == sql.column("user__label").to_pylist() == ["edge"]
