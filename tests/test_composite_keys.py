"""An entity with a composite key (user_id, merchant_id), end to end: compile, run, training set, the online
write and read (library, CLI, HTTP), and the key parser the CLI and the Python API share."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from skewless import FeatureStore, SkewlessError
from skewless.cli.main import cli

NOW = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
T1, T2, T3 = (NOW - timedelta(hours=h) for h in (30, 20, 10))

FILES = {
    "entities.yml": """\
        entities:
          - name: pair
            join_keys: [{name: user_id, type: BIGINT}, {name: merchant_id, type: BIGINT}]
    """,
    "sources.yml": """\
        sources:
          - name: app
            schema: raw
            tables:
              - name: events
                file: data/events.csv
                timestamp: event_ts
                columns: [user_id, merchant_id, amount, event_ts]
    """,
    "data/events.csv": "user_id,merchant_id,amount,event_ts\n" + "".join(
        f"{u},{m},{a},{t.isoformat(sep=' ')}\n"
        for u, m, a, t in [(1, 10, 5.0, T1), (1, 10, 6.0, T2), (1, 11, 7.0, T1), (2, 10, 8.0, T3), (7, 7, 9.0, T2)]
    ),
    "models/user_amounts.sql": None,
    "models/pair_amounts.sql": """\
        {{ config(entity='pair', timestamp='event_ts', online=true, ttl='7d') }}
        select user_id, merchant_id, event_ts, amount as pair__last_amount,
               count(*) over (partition by user_id, merchant_id order by event_ts) as pair__count
        from {{ source('app', 'events') }}
    """,
}


@pytest.fixture
def store(make_project):
    with FeatureStore(make_project(FILES)) as fs:
        results = fs.run()
        assert results.ok, (results.failed, results.hook_errors)
        assert results.hooks["online"]["pair_amounts"]["sent"] == 4
        yield fs


def test_compiles_with_both_keys(store):
    node = store.compile().nodes["pair_amounts"]
    assert node.join_keys == ("user_id", "merchant_id") and node.features == ["pair__last_amount", "pair__count"]


def test_training_set_joins_on_both_keys(store):
    spine = pd.DataFrame({
        "user_id": [1, 1, 1, 2, 1, 2],
        "merchant_id": [10, 10, 11, 10, 12, 11],
        "ts": [T1, T2 + timedelta(hours=1), NOW, NOW, NOW, NOW],
    })
    got = store.get_historical_features(spine, ["pair__last_amount", "pair__count"], timestamp="ts").to_pandas()
    assert got["pair__last_amount"].tolist()[:4] == [5.0, 6.0, 7.0, 8.0]
    assert got["pair__count"].tolist()[:4] == [1, 2, 1, 1]
    assert got["pair__last_amount"].iloc[4:].isna().all()  # (1, 12) and (2, 11) have no rows


def test_online_read_by_both_keys_equals_the_training_set_now(store):
    rows = [{"user_id": 1, "merchant_id": 10}, {"user_id": 1, "merchant_id": 11}, {"user_id": 2, "merchant_id": 10},
            {"user_id": 2, "merchant_id": 11}]
    online = store.get_online_features(rows, ["pair__last_amount", "pair__count"])
    assert online["pair__last_amount"] == [6.0, 7.0, 8.0, None]
    assert online["pair__count"] == [2, 1, 1, None]
    offline = store.get_historical_features(pd.DataFrame([{**r, "ts": NOW} for r in rows]),
                                            ["pair__last_amount", "pair__count"], timestamp="ts").to_pandas()
    assert offline["pair__count"].tolist()[:3] == online["pair__count"][:3]


def test_cli_and_http_read_composite_keys(store):
    result = CliRunner().invoke(cli, ["get", "pair", "1,10", "2,10", "--project-dir", str(store.config.root),
                                      "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["pair__last_amount"] == [6.0, 8.0] and data["merchant_id"] == [10, 10]  # keys as typed
    server = store.feature_server(reload_interval=0)
    with TestClient(server.app()) as client:
        response = client.post("/get-online-features", json={
            "features": ["pair__count"], "entities": {"user_id": [1, 1], "merchant_id": [10, 11]}})
    assert response.status_code == 200, response.text
    assert response.json()["results"][-1]["values"] == [2, 1]


def test_the_cli_key_parser_and_the_python_api_agree(store):
    # Key text is typed by the key's type, for the CLI and the Python API alike: these keys are integers, so
    # "007" is the entity 7 (a text key keeps "007": test_online.py); text that is no integer is an error.
    parsed = store.entity_rows("pair", ["7,7", "007,7"])
    assert parsed == [{"user_id": "7", "merchant_id": "7"}, {"user_id": "007", "merchant_id": "7"}]
    by_text = store.get_online_features(parsed, ["pair__last_amount"])["pair__last_amount"]
    by_value = store.get_online_features([{"user_id": 7, "merchant_id": 7}, {"user_id": "007", "merchant_id": 7}],
                                        ["pair__last_amount"])["pair__last_amount"]
    assert by_text == by_value == [9.0, 9.0]
    result = CliRunner().invoke(cli, ["get", "pair", "007,7", "x,7", "--project-dir", str(store.config.root),
                                      "-o", "json"])
    assert result.exit_code == 2 and "join key 'user_id': 'x' is not a BIGINT" in result.output, result.output
    with pytest.raises(SkewlessError, match=r"key '1' needs 2 comma-separated values: user_id, merchant_id"):
        store.entity_rows("pair", ["1"])
    with pytest.raises(SkewlessError, match="unknown entity 'pairs'.*"):
        store.entity_rows("pairs", ["1,2"])
