"""offline/monitoring.py and `skewless monitor`: PSI on data with a known shift (numeric bins and categories),
null rates, freshness against a frozen clock, and the online-vs-training-set check catching a corrupted online
value."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.online import format as fmt

NOW = datetime(2026, 3, 1, 12, 0, 0)
EPS = 0.0001


def _events() -> str:
    lines = ["user_id,amount,channel,event_ts"]
    for i in range(100):  # reference window: amounts 0..99 (ten per bin), half web, half app
        when = NOW - timedelta(days=10, minutes=i)
        lines.append(f"{i},{i},{'web' if i % 2 else 'app'},{when:%Y-%m-%d %H:%M:%S}")
    for i in range(100):  # current window: every amount in the first bin, 90% web, 10 NULL amounts
        when = NOW - timedelta(hours=6, minutes=i)
        amount = "" if i < 10 else str(i % 9)
        lines.append(f"{1000 + i},{amount},{'app' if i < 10 else 'web'},{when:%Y-%m-%d %H:%M:%S}")
    return "\n".join(lines) + "\n"


def _project(make_project, monitor: str = "") -> FeatureStore:
    root = make_project({
        "sources.yml": """\
            sources:
              - name: app
                schema: raw
                tables:
                  - name: events
                    file: data/events.csv
                    timestamp: event_ts
                    columns: [{name: user_id, type: BIGINT}, {name: amount, type: DOUBLE},
                              {name: channel, type: VARCHAR}, {name: event_ts, type: TIMESTAMP}]
        """,
        "data/events.csv": _events(),
        "models/user_amounts.sql": None,
        "models/payments.sql": """\
            {{ config(entity='user', timestamp='event_ts', online=true) }}
            select user_id, event_ts, amount as user__amount, channel as user__channel
            from {{ source('app', 'events') }}
        """,
        "models/schema.yml": "models:\n  - name: payments\n" + monitor,
    })
    return FeatureStore(root)


def _psi(reference: list[float], current: list[float]) -> float:
    return sum((max(c, EPS) - max(r, EPS)) * math.log(max(c, EPS) / max(r, EPS))
               for r, c in zip(reference, current, strict=True))


def test_psi_of_a_known_shift(make_project):
    with _project(make_project) as store:
        store.run(online=False)
        report = store.monitor(now=NOW, check_online=False)
    health = {h.feature: h for h in report.features}
    amount, channel = health["user__amount"], health["user__channel"]
    # 90 non-NULL current amounts, all below 9.9: the first of ten equal-width bins over the reference's 0..99
    assert amount.psi == pytest.approx(_psi([0.1] * 10, [1.0] + [0.0] * 9), rel=1e-12)
    assert channel.psi == pytest.approx(_psi([0.5, 0.5], [0.1, 0.9]), rel=1e-12)
    assert amount.null_rate == pytest.approx(0.1) and channel.null_rate == 0.0
    assert (amount.rows_reference, amount.rows_current) == (100, 100)
    assert amount.status == "error" and channel.status == "error" and report.status == "error"
    assert amount.newest == NOW - timedelta(hours=6) and amount.age_seconds == 6 * 3600


def test_thresholds_and_freshness_from_yaml_against_a_frozen_clock(make_project):
    monitor = "    monitor: {psi_warn: 50, psi_error: 100, warn_after: 1d, error_after: 3d}\n"
    with _project(make_project, monitor) as store:
        store.run(online=False)
        fresh = store.monitor(now=NOW, check_online=False)
        stale = store.monitor(now=NOW + timedelta(days=2), current_window="3d", check_online=False)
        gone = store.monitor(now=NOW + timedelta(days=4), current_window="5d", check_online=False)
    assert fresh.status == "ok"  # a shift under the raised PSI thresholds, six hours old
    assert {h.status for h in stale.features} == {"warn"} and "older than 1d" in stale.features[0].reasons[0]
    assert gone.status == "error"


def test_the_online_check_catches_a_corrupted_value(make_project):
    with _project(make_project) as store:
        store.run()
        clean = store.monitor(now=NOW, check_online=True, sample=20)
        (check,) = clean.consistency
        assert check.checked == 40 and check.mismatches == []
        # the newest event online is the newest offline: the online store is as fresh as the warehouse
        assert check.newest_online == NOW - timedelta(hours=6)
        assert {h.newest_online for h in clean.features} == {NOW - timedelta(hours=6)}
        # entity 1015's stored value replaced by entity 1016's: a valid value, the wrong one
        model = store.serving_catalog().models["payments"]
        field = fmt.field_name("payments", model.version)
        client = store.online_store.client
        keys = [fmt.entity_key(store.config.name, "user", [user]) for user in (1015, 1016)]
        client.hset(keys[0], field, client.hget(keys[1], field))
        report = store.monitor(now=NOW, check_online=True, sample=20)
    (check,) = report.consistency
    assert report.status == "error"
    assert {m["feature"] for m in check.mismatches} == {"user__amount"}  # both are on the web channel
    assert check.mismatches[0]["entity"] == {"user_id": 1015}


def test_the_online_check_covers_window_features(make_project):
    """A window model's values merged at one instant online and in a training set are equal (its float sums
    are left out: the order of addition may differ); tiles of the wrong entity are caught."""
    now = datetime.now().replace(microsecond=0)  # run writes the tiles windows need at the real time
    lines = ["user_id,amount,channel,event_ts"]
    for user in range(12):
        for event in range(1 + user % 3):  # 1, 2 or 3 events each, in the last 2 hours
            when = now - timedelta(minutes=7 * user + 31 * event)
            lines.append(f"{user},{user + event * 0.5},web,{when:%Y-%m-%d %H:%M:%S}")
    with _project(make_project) as store:
        root = store.config.root
    (root / "data" / "events.csv").write_text("\n".join(lines) + "\n")
    (root / "models" / "user_windows.sql").write_text(
        "{{ config(entity='user', timestamp='event_ts', online=true) }}\n"
        "{{ skewless.window_agg(source('app', 'events'), aggs=[('*', 'count'), ('amount', 'sum'), ('amount', 'max')],"
        " windows=['1h', '1d'], hop='5m') }}\n")
    with FeatureStore(root) as store:
        assert store.run().ok
        clean = {c.model: c for c in store.monitor(select=["user_windows"], sample=20).consistency}["user_windows"]
        assert clean.not_compared == ["user__amount_sum__1h", "user__amount_sum__1d"]
        assert clean.checked == 12 * 4 and clean.mismatches == []
        # user 0's tiles (one event) replaced by user 2's (three): valid tiles, the wrong entity's
        client = store.online_store.client
        prefix = store.serving_catalog().models["user_windows"].tile_prefix
        first, third = (fmt.entity_key(store.config.name, "user", [user]) for user in (0, 2))
        client.hdel(first, *[f for f in client.hkeys(first) if f.startswith(prefix)])
        client.hset(first, mapping={f: v for f, v in client.hgetall(third).items() if f.startswith(prefix)})
        check = {c.model: c for c in store.monitor(select=["user_windows"], sample=20).consistency}["user_windows"]
    assert [(m["feature"], m["entity"], m["online"], m["offline"]) for m in check.mismatches] == [
        ("user__count__1h", {"user_id": 0}, 2, 1), ("user__count__1d", {"user_id": 0}, 3, 1),
        ("user__amount_max__1h", {"user_id": 0}, 2.5, 0.0), ("user__amount_max__1d", {"user_id": 0}, 3.0, 0.0)]


def test_the_command_prints_a_table_or_json_and_exits_1_past_an_error(make_project):
    with _project(make_project) as store:
        store.run(online=False)
        root = store.config.root
    runner = CliRunner()
    table = runner.invoke(cli, ["monitor", "--project-dir", str(root), "--sample", "0", "--reference-window",
                                "400d", "--current-window", "400d"])
    assert table.exit_code == 0, table.output  # everything in the current window: nothing to compare with
    assert "user__amount" in table.output and "status" in table.output
    result = runner.invoke(cli, ["monitor", "--project-dir", str(root), "--sample", "0", "-o", "json",
                                 "--current-window", "400d", "--reference-window", "1d"])
    data = json.loads(result.output)
    assert {f["feature"] for f in data["features"]} == {"user__amount", "user__channel"}


def test_a_dataset_as_the_reference(make_project):
    """A training set over the reference window's payments: the same shift as measured against the window."""
    with _project(make_project) as store:
        root = store.config.root
    (root / "models" / "reference_spine.sql").write_text(
        "{{ config(materialized='view') }}\n"
        "select user_id, event_ts from {{ source('app', 'events') }} where user_id < 100\n")
    (root / "datasets").mkdir()
    (root / "datasets" / "history.yml").write_text(
        "datasets:\n  - name: history\n    spine: {model: reference_spine, timestamp: event_ts, columns: [user_id, "
        "event_ts]}\n    features: [user__amount, user__channel]\n")
    with FeatureStore(root) as store:
        store.run(online=False)
        by_window = {h.feature: h.psi for h in store.monitor(now=NOW, check_online=False).features}
        report = store.monitor(now=NOW, check_online=False, reference="dataset:history")
    health = {h.feature: h for h in report.features}
    assert set(health) == {"user__amount", "user__channel"} and health["user__amount"].rows_reference == 100
    assert health["user__amount"].psi == pytest.approx(by_window["user__amount"], rel=1e-12)
    assert health["user__channel"].psi == pytest.approx(by_window["user__channel"], rel=1e-12)


@pytest.mark.parametrize(("monitor", "words"), [
    ("    monitor: {psi_warn: high}\n", "psi_warn must be a number"),
    ("    monitor: {warn_after: soon}\n", "monitor: warn_after"),
    ("    monitor: {psi_wran: 0.2}\n", "unknown key 'psi_wran'"),
])
def test_bad_thresholds_are_located_errors(make_project, monitor, words):
    from skewless.core.errors import ProjectError

    with _project(make_project, monitor) as store:
        with pytest.raises(ProjectError) as raised:
            store.monitor(now=NOW, check_online=False)
    assert words in str(raised.value) and raised.value.location is not None
    assert str(raised.value.location.path).endswith("schema.yml") and raised.value.location.line == 3


def test_a_bad_window_is_a_clear_error(make_project):
    from skewless.core.errors import SkewlessError

    with _project(make_project) as store:
        with pytest.raises(SkewlessError, match="--current-window"):
            store.monitor(now=NOW, current_window="a while", check_online=False)
