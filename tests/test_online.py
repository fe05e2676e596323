"""The online post-hook against a real Redis: typed values equal the warehouse's newest rows, monotonic,
incremental, ttl'd, namespaced, versioned, and failures that leave the warehouse intact."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import strategies as st

from skewless import FeatureStore, SkewlessError, UnknownFeature
from skewless.cli.main import cli
from skewless.online.reader import OnlineReader
from skewless.project.online_view import online_models

NO_TTL_MODEL = """\
    {{ config(entity='user', timestamp='event_ts', online=true) }}
    select user_id, event_ts, amount as user__last_amount, merchant_id as user__last_merchant,
           amount > 4 as user__big, cast(event_ts as date) as user__day
    from {{ source('app', 'events') }}
"""


def written_at(store: FeatureStore) -> datetime:
    rows = store.adapter.connection.execute("select max(written_at) from skewless_state.online_state").fetchall()
    return rows[0][0]


def newest_rows(store: FeatureStore, model) -> dict[tuple, list]:
    """Brute force: the newest row per entity (ties: created, then values, as documented), within ttl."""
    con = store.adapter.connection
    columns = [*model.join_keys, model.timestamp, *([model.created_timestamp] if model.created_timestamp else []),
               *model.features]
    rows = con.execute(f'select {", ".join(columns)} from {model.relation.sql("duckdb")}').fetchall()
    now = written_at(store)
    best: dict[tuple, tuple] = {}
    nk = len(model.join_keys)

    def rank(row):
        return tuple((value is not None, value) for value in row[nk:])

    for row in rows:
        key = row[:nk]
        if any(k is None for k in key):
            continue
        if model.ttl is not None and row[nk] < now - model.ttl:
            continue
        if row[nk] + (model.delay or timedelta()) > now:  # not servable yet at the time of the write
            continue
        if key not in best or rank(row) > rank(best[key]):
            best[key] = row
    offset = nk + 1 + (1 if model.created_timestamp else 0)
    return {key: list(row[offset:]) for key, row in best.items()}


def newest_stamps(store: FeatureStore, model) -> dict[tuple, datetime]:
    """The newest event time per entity that the writer saw (within ttl at the time of the write)."""
    keys = ", ".join(model.join_keys)
    now = written_at(store)
    where = f" where {model.timestamp} + interval {(model.delay or timedelta()).total_seconds()} second <= " \
            f"timestamp '{now.isoformat(sep=' ')}'"
    if model.ttl is not None:
        where += f" and {model.timestamp} >= timestamp '{(now - model.ttl).isoformat(sep=' ')}'"
    rows = store.adapter.connection.execute(
        f"select {keys}, max({model.timestamp}) from {model.relation.sql('duckdb')}{where} group by all").fetchall()
    return {tuple(row[:-1]): row[-1] for row in rows if None not in row[:-1]}


def read_all(store: FeatureStore, model, keys, now=None) -> dict[tuple, list]:
    reader = OnlineReader(store.serving_catalog(), store.online_store)
    rows = [dict(zip(model.join_keys, key, strict=True)) for key in keys]
    result = reader.read(rows, list(model.features), now=now)
    return {key: [result[f][i] for f in model.features] for i, key in enumerate(keys)}


@pytest.fixture
def example(example_copy):
    with FeatureStore(example_copy) as store:
        results = store.run()
        assert results.ok, (results.failed, results.hook_errors)
        yield store


def assert_every_online_value_is_the_newest(store: FeatureStore) -> int:
    """Every entity of every online model reads back as the warehouse's newest row at the last write; the count
    of online models. (Window models' tiles: tests/test_window_online.py.)"""
    models = {name: model for name, model in online_models(store.compile(write=False)).items()
              if model.window is None}
    now = written_at(store)
    for model in models.values():
        expected = newest_rows(store, model)
        assert expected, model.name
        assert read_all(store, model, list(expected), now=now) == expected, model.name
    return len(models)


def test_online_values_equal_newest_rows_for_every_online_model(example):
    assert assert_every_online_value_is_the_newest(example) == 8


def test_entities_without_values_read_as_null(example):
    result = example.get_online_features([{"user_id": 10**9}], ["user__txn_count__7d", "user__country"])
    assert result == {"user_id": [10**9], "user__txn_count__7d": [None], "user__country": [None]}


def test_second_run_sends_nothing(example):
    again = example.run()
    assert again.ok
    # (Window tiles are recomputed by every run, for the entities with events within reach of a read.)
    rows = {m: r["sent"] for m, r in again.hooks["online"].items() if m != "user_txn_windows"}
    assert rows == dict.fromkeys(rows, 0) and "user_txn_windows" in again.hooks["online"]


def test_a_correction_that_withdraws_the_newest_rows_is_served(example):
    # The warehouse is the truth: each user's newest days are removed, so older rows are now the newest.
    model = online_models(example.compile())["user_spend"]
    example.adapter.connection.execute(
        "delete from features.user_spend s where event_ts > (select max(event_ts) - interval 3 day "
        "from features.user_spend t where t.user_id = s.user_id)")
    report = example.online_writer().write(["user_spend"])
    assert report["user_spend"]["sent"] > 0 and report["user_spend"]["written"] == report["user_spend"]["sent"]
    after = newest_rows(example, model)
    assert read_all(example, model, list(after), now=written_at(example)) == after


def test_a_racing_older_writer_never_wins(example):
    # Writer A read the warehouse before writer B; B writes first. A's late write must not go back in time.
    model = online_models(example.compile())["user_spend"]
    before = newest_rows(example, model)
    base = written_at(example)
    stale = example.online_writer(now=base + timedelta(seconds=1))  # A: reads the data as it is
    example.adapter.connection.execute(
        "update features.user_spend set user__amount_sum__7d = user__amount_sum__7d + 1")
    fresh = example.online_writer(now=base + timedelta(seconds=2))  # B: reads the corrected data
    assert fresh.write(["user_spend"])["user_spend"]["written"] == len(before)
    example.adapter.connection.execute(
        "update features.user_spend set user__amount_sum__7d = user__amount_sum__7d - 1")
    report = stale.write(["user_spend"])["user_spend"]  # A, late, with the older truth
    assert report["sent"] == len(before) and report["written"] == 0
    served = read_all(example, model, list(before), now=base)
    position = list(model.features).index("user__amount_sum__7d")
    assert all(served[k][position] == pytest.approx(v[position] + 1) for k, v in before.items()
               if v[position] is not None)
    # A's refused snapshot is not trusted as what the store holds: the next run sends everything again
    again = example.online_writer(now=base + timedelta(seconds=3)).write(["user_spend"])["user_spend"]
    assert again["sent"] == len(before) and again["written"] == len(before)
    truth = newest_rows(example, model)  # (+1 then -1 in floats: not always the same bits as before)
    assert read_all(example, model, list(truth), now=base) == truth


def test_ttl_applies_on_read_and_keys_expire(example, redis_url):
    model = online_models(example.compile())["user_transaction_counts"]
    keys = list(newest_rows(example, model))[:20]
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=31)
    assert all(v == [None, None, None] for v in read_all(example, model, keys, now=later).values())
    client = example.online_store.client
    from skewless.online.format import entity_key

    # Each key expires when its freshest value does: the greatest newest event time + ttl over the models that
    # wrote to it; a key holding a model without a ttl never expires.
    models = [m for m in online_models(example.compile()).values() if m.entity == "user"]
    expected: dict[tuple, datetime | None] = {}  # None: kept for ever
    for m in models:
        for key, stamp in newest_stamps(example, m).items():
            if m.ttl is None or (key in expected and expected[key] is None):
                expected[key] = None
            else:
                expected[key] = max(expected.get(key) or stamp + m.ttl, stamp + m.ttl)
    checked = {"expiring": 0, "kept": 0}
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    for key, expire_at in expected.items():
        pttl = client.pttl(entity_key("payments", "user", list(key)))
        if expire_at is None:
            assert pttl == -1, key
            checked["kept"] += 1
            continue
        wanted_ms = (expire_at - datetime(1970, 1, 1)) // timedelta(milliseconds=1) + 1
        assert pttl > 0 and abs(now_ms + pttl - wanted_ms) < 2000, (key, now_ms + pttl, wanted_ms)
        checked["expiring"] += 1
    assert checked["kept"] >= 20, checked  # every example user has a profile (no ttl): the key is kept
    profiles = [m for m in online_models(example.compile()).values() if m.entity == "merchant" and m.ttl is None]
    assert profiles  # merchant_profile has no ttl: every merchant key it wrote is kept
    merchant_keys = [entity_key("payments", "merchant", list(k)) for k in newest_stamps(example, profiles[0])]
    assert merchant_keys and all(client.pttl(k) == -1 for k in merchant_keys)


def test_a_key_expires_with_its_freshest_value(make_project, redis_url):
    # Two ttl'd models write to one user key: it expires at the later of (newest event + ttl), to the millisecond.
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    stamps = [now - timedelta(hours=5), now - timedelta(hours=2)]
    events = "user_id,merchant_id,amount,event_ts\n" + "".join(
        f"{user},10,1.0,{ts.isoformat(sep=' ')}\n" for user, ts in [(1, stamps[0]), (1, stamps[1]), (2, stamps[0])])
    short = NO_TTL_MODEL.replace("online=true", "online=true, ttl='1d'")
    long = ("{{ config(entity='user', timestamp='event_ts', online=true, ttl='3d') }}\n"
            "select user_id, event_ts, amount as user__long from {{ source('app', 'events') }}\n")
    root = make_project({"data/events.csv": events, "models/user_amounts.sql": short, "models/user_long.sql": long})
    with FeatureStore(root) as store:
        assert store.run().ok
        client = store.online_store.client
        from skewless.online.format import entity_key

        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        for user, newest in [(1, stamps[1]), (2, stamps[0])]:
            pttl = client.pttl(entity_key("mini", "user", [user]))
            wanted_ms = (newest + timedelta(days=3) - datetime(1970, 1, 1)) // timedelta(milliseconds=1) + 1
            assert pttl > 0 and abs(now_ms + pttl - wanted_ms) < 2000, (user, pttl)


def test_ttl_boundary_is_inclusive(make_project):
    recent = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(hours=2)
    old = recent - timedelta(days=3)
    events = "user_id,merchant_id,amount,event_ts\n" + "".join(
        f"{user},10,{amount},{ts.isoformat(sep=' ')}\n" for user, amount, ts in [(1, 5.0, old), (2, 4.0, recent)])
    root = make_project({
        "data/events.csv": events,
        "models/user_amounts.sql": NO_TTL_MODEL.replace("online=true", "online=true, ttl='1d'"),
    })
    with FeatureStore(root) as store:
        run = store.run()
        assert run.ok and run.hooks["online"]["user_amounts"]["sent"] == 1  # user 1's value is past ttl already
        reader = OnlineReader(store.serving_catalog(), store.online_store)
        edge = recent + timedelta(days=1)  # exactly ttl after user 2's newest event: still served
        assert reader.read([{"user_id": 2}], ["user__last_amount"], now=edge)["user__last_amount"] == [4.0]
        past = edge + timedelta(microseconds=1)
        assert reader.read([{"user_id": 2}], ["user__last_amount"], now=past)["user__last_amount"] == [None]
        assert reader.read([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [None]


def test_typed_round_trip_and_cli_json(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--project-dir", str(root)]).exit_code == 0
    result = runner.invoke(cli, ["get", "user", "1", "2", "--project-dir", str(root), "-o", "json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data == {
        "user_id": ["1", "2"], "user__last_amount": [7.5, 4.0], "user__last_merchant": [11, 10],
        "user__big": [True, False], "user__day": ["2026-01-02", "2026-01-05"],
    }
    with FeatureStore(root) as store:
        typed = store.get_online_features([{"user_id": 1}], ["user__day", "user__last_merchant"])
    assert typed == {"user_id": [1], "user__day": [datetime(2026, 1, 2).date()], "user__last_merchant": [11]}
    table = runner.invoke(cli, ["get", "user", "1", "--project-dir", str(root)])
    assert "user__last_amount" in table.output and "7.5" in table.output


def test_unknown_and_offline_features(make_project):
    root = make_project({
        "models/user_amounts.sql": NO_TTL_MODEL,
        "models/offline.sql": "{{ config(entity='user', timestamp='event_ts') }}\n"
                              "select user_id, event_ts, amount as user__offline from {{ source('app', 'events') }}\n",
    })
    with FeatureStore(root) as store:
        with pytest.raises(UnknownFeature, match="did you mean 'user__last_amount'"):
            store.get_online_features([{"user_id": 1}], ["user__last_amont"])
        with pytest.raises(SkewlessError, match="is not served online: model 'offline' has online=false"):
            store.get_online_features([{"user_id": 1}], ["user__offline"])
        # the API called wrongly: a clear error, not one from inside the lookup or the read
        with pytest.raises(SkewlessError, match="features are names") as raised:
            store.get_online_features(["user__last_amount"], [{"user_id": 1}])  # the arguments swapped
        assert "features come second" in (raised.value.hint or "")
        for rows, given in (({"user_id": [1, 2]}, "str"), ([1, 2], "int"), ("user_id", "str")):
            with pytest.raises(SkewlessError, match=f"entity rows are mappings of join keys.*not {given}"):
                store.get_online_features(rows, ["user__last_amount"])
        assert store.get_online_features(({"user_id": 1},), "user__last_amount")["user_id"] == [1]


def test_projects_do_not_collide(make_project):
    first = make_project({"models/user_amounts.sql": NO_TTL_MODEL}, name="shop_a")
    second = make_project({
        "skewless_project.yml": "name: shop_b\nprofile: mini\nonline_store:\n"
                                "  url: \"{{ env_var('SKEWLESS_REDIS_URL', '') }}\"\n",
        "models/user_amounts.sql": NO_TTL_MODEL.replace("amount as user__last_amount", "-amount as user__last_amount"),
    }, name="shop_b")
    for root in (first, second):
        with FeatureStore(root) as store:
            assert store.run().ok
    with FeatureStore(first) as a, FeatureStore(second) as b:
        assert a.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [7.5]
        assert b.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [-7.5]


def test_changed_definition_is_not_served_until_rewritten(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    with FeatureStore(root) as store:
        assert store.run().ok
    model = root / "models" / "user_amounts.sql"
    model.write_text(model.read_text().replace("amount as user__last_amount", "amount * 100 as user__last_amount"))
    with FeatureStore(root) as store:
        assert store.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [None]
        assert store.run().ok
        assert store.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [750.0]


def test_no_online_and_select(make_project):
    root = make_project({
        "models/user_amounts.sql": NO_TTL_MODEL,
        "models/user_other.sql": NO_TTL_MODEL.replace("user__", "user__other_"),
    })
    with FeatureStore(root) as store:
        assert store.run(online=False).hooks == {}
        assert store.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [None]
        selected = store.run(select=["user_other"])
        assert list(selected.hooks["online"]) == ["user_other"]
        assert store.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [None]
        assert store.get_online_features([{"user_id": 1}], ["user__other_last_amount"])[
            "user__other_last_amount"] == [7.5]


def test_unreachable_store_keeps_tables_and_next_run_completes(make_project, monkeypatch, redis_url):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    monkeypatch.setenv("SKEWLESS_REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code == 1
    assert "redis://:***@127.0.0.1:1/0" in result.output and "s3cret" not in result.output
    assert "Traceback" not in result.output
    with FeatureStore(root) as store:
        assert store.adapter.connection.execute("select count(*) from features.user_amounts").fetchone() == (4,)
    if redis_url:
        monkeypatch.setenv("SKEWLESS_REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("SKEWLESS_REDIS_URL")
    with FeatureStore(root) as store:
        again = store.run()
        assert again.ok and again.hooks["online"]["user_amounts"]["sent"] == 2


def test_auth_refused_names_url_without_password(make_project, monkeypatch, redis_url):
    if redis_url is None:
        pytest.skip("needs the Redis server on 127.0.0.1:6379 (CI requires it)")
    monkeypatch.setenv("SKEWLESS_REDIS_URL", "redis://nobody:wrong-pass@127.0.0.1:6379/9")
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code == 1
    assert "redis://nobody:***@127.0.0.1:6379/9" in result.output and "wrong-pass" not in result.output


@pytest.mark.parametrize(("expression", "message"), [
    ("[amount, amount]", r"column 'user__last_amount' is DOUBLE\[\]: nested values have no online form"),
    ("{'a': amount}", r"column 'user__last_amount' is STRUCT\(a DOUBLE\): nested values"),
    ("to_seconds(amount::bigint)", r"column 'user__last_amount' is INTERVAL: an interval .* epoch\(\.\.\.\)"),
    ("cast(event_ts as timestamp_ns)", r"column 'user__last_amount' is TIMESTAMP_NS: nanoseconds.*AS TIMESTAMP"),
    ("cast('x' as blob)", r"column 'user__last_amount' is BLOB: bytes have no online form"),
])
def test_types_the_online_format_cannot_hold_are_refused_before_any_write(make_project, expression, message):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL.replace(
        "amount as user__last_amount", f"{expression} as user__last_amount")})
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code in (1, 2), result.output
    output = result.output.replace("\n", " ")
    assert re.search(rf"user_amounts.sql.*online model 'user_amounts': {message}", output), result.output
    assert "Traceback" not in output and "Internal error" not in output


def test_an_event_time_with_nanoseconds_is_refused(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL.replace(
        "select user_id, event_ts,", "select user_id, cast(event_ts as timestamp_ns) + interval 1 microsecond / 1000"
        " as event_ts,")})
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code in (1, 2), result.output
    assert "column 'event_ts' is TIMESTAMP_NS" in result.output.replace("\n", " ")


def test_reads_survive_a_dropped_connection(example):
    """Reads use a connection of their own; when the server drops it, the next read reconnects."""
    store = example.online_store
    rows = [{"user_id": 3}]
    before = example.get_online_features(rows, ["user__txn_count__7d"])
    many = example.get_online_features([{"user_id": i} for i in range(10)], ["user__txn_count__7d"])
    store.client.client_kill_filter(_type="normal", skipme=True)
    assert example.get_online_features(rows, ["user__txn_count__7d"]) == before
    store.client.client_kill_filter(_type="normal", skipme=True)
    assert example.get_online_features([{"user_id": i} for i in range(10)], ["user__txn_count__7d"]) == many


def test_a_flushed_store_gets_everything_again(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    with FeatureStore(root) as store:
        first = store.run()
        assert first.ok and first.hooks["online"]["user_amounts"]["sent"] == 2
        assert store.run().hooks["online"]["user_amounts"]["sent"] == 0  # nothing changed: nothing sent
        marker = store.online_store.marker("mini", "user_amounts")
        store.online_store.client.flushdb()  # the store lost its data (a restart without persistence)
        assert store.get_online_features([{"user_id": 1}], ["user__last_amount"])["user__last_amount"] == [None]
        again = store.run()
        assert again.ok and again.hooks["online"]["user_amounts"] == {"sent": 2, "written": 2}
        assert store.online_store.marker("mini", "user_amounts") not in (None, marker)
        values = store.get_online_features([{"user_id": 1}, {"user_id": 2}], ["user__last_amount"])
        assert values["user__last_amount"] == [7.5, 4.0]


TEXT_MODEL = """\
    {{ config(entity='user', timestamp='event_ts', online=true) }}
    select user_id, event_ts, cast(merchant_id as varchar) as user__a, cast(amount as varchar) as user__b
    from {{ source('app', 'events') }}
"""
ADVERSARIAL = st.one_of(st.none(), st.text(alphabet="\x1f\x01:VN0123 a", max_size=5))


def test_every_change_is_sent_whatever_the_strings(make_project):
    # Change detection must not take a changed row for the old one: separators inside strings, NULL vs text.
    from hypothesis import HealthCheck, given, settings

    root = make_project({"models/user_amounts.sql": TEXT_MODEL})
    with FeatureStore(root) as store:
        assert store.run(online=False).ok
        con = store.adapter.connection
        instant = [datetime(2030, 1, 1)]

        @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(before=st.tuples(ADVERSARIAL, ADVERSARIAL), after=st.tuples(ADVERSARIAL, ADVERSARIAL))
        def check(before, after):
            for a, b in (before, after):
                con.execute("delete from features.user_amounts")
                con.execute("insert into features.user_amounts values (1, timestamp '2026-01-01', ?, ?)", [a, b])
                instant[0] += timedelta(seconds=1)
                store.online_writer(now=instant[0]).write(["user_amounts"])
                got = store.get_online_features([{"user_id": 1}], ["user__a", "user__b"])
                assert (got["user__a"][0], got["user__b"][0]) == (a, b)

        check()


def test_a_longer_ttl_resends_and_keys_expire_on_it(make_project):
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    event = now - timedelta(hours=2)
    events = f"user_id,merchant_id,amount,event_ts\n1,10,5.0,{event.isoformat(sep=' ')}\n"
    short = NO_TTL_MODEL.replace("online=true", "online=true, ttl='3h'")
    root = make_project({"data/events.csv": events, "models/user_amounts.sql": short})
    with FeatureStore(root) as store:
        assert store.run().ok
    model_path = root / "models" / "user_amounts.sql"
    model_path.write_text(model_path.read_text().replace("ttl='3h'", "ttl='2d'"))
    with FeatureStore(root) as store:
        again = store.run()
        assert again.ok and again.hooks["online"]["user_amounts"]["sent"] == 1  # everything again
        from skewless.online.format import entity_key

        pttl = store.online_store.client.pttl(entity_key("mini", "user", [1]))
        assert pttl > timedelta(hours=40) // timedelta(milliseconds=1)  # event + 2d, not + 3h
        at_4h = store.get_online_features([{"user_id": 1}], ["user__last_amount"])
        assert at_4h["user__last_amount"] == [5.0]


def test_a_store_restored_from_an_older_snapshot_is_sent_everything(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    with FeatureStore(root) as store:
        assert store.run().ok
        client = store.online_store.client
        old = {key: client.dump(key) for key in client.keys("sk1:*")}  # a snapshot of the store
        events = root / "data" / "events.csv"
        events.write_text(events.read_text().replace("2,10,4.0,", "2,10,40.0,"))
    with FeatureStore(root) as store:
        assert store.run().hooks["online"]["user_amounts"]["sent"] == 1
        client = store.online_store.client
        for key, value in old.items():  # restored: the older values and the older write marker
            client.restore(key, 0, value, replace=True)
        assert store.get_online_features([{"user_id": 2}], ["user__last_amount"])["user__last_amount"] == [4.0]
        again = store.run()  # nothing changed in the warehouse, but the store is not what it last wrote
        assert again.hooks["online"]["user_amounts"]["sent"] == 2
        assert store.get_online_features([{"user_id": 2}], ["user__last_amount"])["user__last_amount"] == [40.0]


def test_resend_online_sends_everything(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--project-dir", str(root)]).exit_code == 0
    quiet = runner.invoke(cli, ["run", "--project-dir", str(root)])
    assert "0 changed rows sent" in quiet.output
    loud = runner.invoke(cli, ["run", "--project-dir", str(root), "--resend-online"])
    assert loud.exit_code == 0 and "2 changed rows sent" in loud.output, loud.output


def test_a_corrupt_stored_value_names_its_key_and_model(make_project):
    root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
    with FeatureStore(root) as store:
        assert store.run().ok
        from skewless.online.format import entity_key

        key = entity_key("mini", "user", [2])
        field = next(f for f in store.online_store.client.hkeys(key) if not f.endswith(b"#gen"))
        store.online_store.client.hset(key, field, b"\x01garbage")
        message = r"(?s)online value of model 'user_amounts' at key .*mini:user:2.*resend"
        with pytest.raises(SkewlessError, match=message):
            store.get_online_features([{"user_id": 1}, {"user_id": 2}], ["user__last_amount"])


def test_reads_never_wedge_after_many_dropped_connections_or_threads(example):
    # More drops than redis-py's pool has slots (100), and 120 short-lived threads: reads keep answering, and the
    # store never holds more read connections than reads ran at once.
    import threading

    store = example.online_store
    rows = [{"user_id": 3}]
    expected = example.get_online_features(rows, ["user__txn_count__7d"])
    for _ in range(130):
        store.client.client_kill_filter(_type="normal", skipme=True)
        assert example.get_online_features(rows, ["user__txn_count__7d"]) == expected
    answers = []

    def read() -> None:
        answers.append(example.get_online_features(rows, ["user__txn_count__7d"]))

    for _ in range(6):
        threads = [threading.Thread(target=read) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [expected] * 120
    assert len(store._idle) <= 20
    assert store.client.ping()


def test_a_text_key_keeps_its_leading_zeros(make_project):
    # "007" is its own entity when the key is text, from the CLI as from the Python API.
    entities = "entities:\n  - name: account\n    join_keys: [{name: account_id, type: VARCHAR}]\n"
    model = ("{{ config(entity='account', timestamp='event_ts', online=true) }}\n"
             "select lpad(cast(user_id as varchar), 3, '0') as account_id, event_ts, amount as account__amount\n"
             "from {{ source('app', 'events') }}\n")
    root = make_project({"entities.yml": entities, "models/user_amounts.sql": model})
    assert CliRunner().invoke(cli, ["run", "--project-dir", str(root)]).exit_code == 0
    result = CliRunner().invoke(cli, ["get", "account", "001", "1", "--project-dir", str(root), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["account__amount"] == [7.5, None]
    with FeatureStore(root) as store:
        got = store.get_online_features([{"account_id": "001"}, {"account_id": "1"}], ["account__amount"])
        assert got["account__amount"] == [7.5, None]
        with pytest.raises(SkewlessError, match="join key 'account_id': True is not a VARCHAR"):
            store.get_online_features([{"account_id": True}], ["account__amount"])
