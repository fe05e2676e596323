"""The stream consumer: events pushed to a Redis Stream and applied to window tiles by a consumer group equal the
training set over the same events at the same instants; a consumer that dies between applying and acknowledging
counts nothing twice when it restarts or when another consumer claims its events; late events are reported, not
applied; pushed events are checked against the source's columns and types."""

from __future__ import annotations

import contextlib
import math
import os
import random
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from window_oracle import expected_rows, same

from skewless import FeatureStore
from skewless.core.errors import SkewlessError
from skewless.core.sourcefile import is_utf8
from skewless.online.reader import OnlineReader

MINUTE = 60_000_000
HOUR = 60 * MINUTE
HOP = 5 * MINUTE
BASE = datetime.now(timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0) + timedelta(days=30)
BASE_US = int((BASE - datetime(1970, 1, 1)) / timedelta(microseconds=1))
AGGS = [("*", "count", "n"), ("amount", "sum", None), ("amount", "max", None), ("amount", "last", None),
        ("price", "sum", None), ("price", "avg", None), ("price", "min", None), ("price", "max", None),
        ("price", "last", None), ("merchant_id", "count_distinct", None)]
WINDOWS = {"5m": 5 * MINUTE, "1h": HOUR, "13h": 13 * HOUR}
FEATURES = [(f"user__{n or f'{c}_{f}'}__{w}", f, None if c == "*" else c, us)
            for c, f, n in AGGS for w, us in WINDOWS.items()]
SCHEMA = pa.schema([("user_id", pa.int64()), ("event_ts", pa.timestamp("us")), ("amount", pa.int64()),
                    ("price", pa.float64()), ("merchant_id", pa.int64())])


def _instant(us: int) -> datetime:
    return BASE + timedelta(microseconds=us - BASE_US)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    aggs = ", ".join(f"('{c}', '{f}'" + (f", '{n}')" if n else ")") for c, f, n in AGGS)
    files = {
        "skewless_project.yml": "name: streamed\nprofile: sim\nonline_store:\n"
                                "  url: \"{{ env_var('SKEWLESS_REDIS_URL', '') }}\"\n",
        "profiles.yml": "sim:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/w.duckdb, "
                        "schema: features}\n",
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
                      - {name: amount, type: BIGINT}
                      - {name: price, type: DOUBLE}
                      - {name: merchant_id, type: BIGINT}
        """),
        "models/user_windows.sql": (
            "{{ config(entity='user', timestamp='event_ts', online=true, stream='payments') }}\n"
            f"{{{{ window_agg(source('sim', 'events'), aggs=[{aggs}], windows={list(WINDOWS)}, hop='5m', "
            "allowed_lateness='10m') }}\n"
        ),
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    return tmp_path


def make_events(seed: int, count: int = 300) -> list[dict[str, Any]]:
    """Events over ~14 hours, some on hop boundaries ±1 µs, with amounts, prices and merchants (NULLs too)."""
    rng = random.Random(seed)
    events = []
    for _ in range(count):
        ts = BASE_US + rng.choice([rng.randrange(0, 14 * HOUR), rng.randrange(0, 160) * HOP + rng.choice([-1, 0, 1])])
        events.append({"key": rng.randint(1, 5), "ts": ts,
                       "amount": rng.choice([None, rng.randint(-50, 50), rng.randint(-(2**40), 2**40)]),
                       "price": rng.choice([None, 0.25, 1.5, -3.75, 1024.5, math.nan]),
                       "merchant_id": rng.choice([None, 1, 2, 3, 4])})
    return events


def arrival_order(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """In event-time order, each event delayed by up to 5 minutes: out of order, within allowed_lateness."""
    rng = random.Random(seed)
    return sorted(events, key=lambda e: e["ts"] + rng.randrange(0, 5 * MINUTE))


def as_row(event: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": event["key"], "event_ts": _instant(event["ts"]), "amount": event["amount"],
            "price": event["price"], "merchant_id": event["merchant_id"]}


def write_warehouse(root: Path, events: list[dict[str, Any]]) -> None:
    (root / "data").mkdir(exist_ok=True)
    pq.write_table(pa.Table.from_pylist([as_row(e) for e in events], SCHEMA), root / "data" / "events.parquet")


def drain(consumer, limit: int = 1000) -> None:
    for _ in range(limit):
        if consumer.step(block_ms=10) == 0:
            return


def assert_online_equals_offline(store: FeatureStore, events: list[dict[str, Any]], instants: list[int]) -> int:
    names = [f[0] for f in FEATURES]
    users = [1, 2, 3, 4, 5, 6]
    reader = OnlineReader(store.serving_catalog(), store.online_store)
    cells = 0
    for at in instants:
        online = reader.read([{"user_id": u} for u in users], names, now=_instant(at))
        spine = pa.table({"user_id": pa.array(users, pa.int64()),
                          "at": pa.array([_instant(at)] * len(users), pa.timestamp("us"))})
        offline = store.get_historical_features(spine, names, timestamp="at").to_arrow().to_pydict()
        want = expected_rows(events, [(u, at) for u in users], FEATURES, HOP)
        for name in names:
            for index, user in enumerate(users):
                got, training = online[name][index], offline[name][index]
                assert type(got) is type(training), (name, user, at, got, training)
                if name.startswith(("user__price_sum", "user__price_avg")) and got is not None:
                    # float sums: within the README's bound (NaN: NaN)
                    assert got == pytest.approx(training, rel=1e-12, nan_ok=True), (name, user, at, got, training)
                    assert got == pytest.approx(want[index][name], rel=1e-12, nan_ok=True), (name, user, at)
                else:
                    assert same(got, training) and same(got, want[index][name]), (name, user, at, got, training)
                cells += 1
    return cells


def _instants_after(events: list[dict[str, Any]]) -> list[int]:
    last = max(e["ts"] for e in events)
    boundary = (last // HOP + 1) * HOP
    return [last, last + 1, boundary - 1, boundary, boundary + 1, last + 2 * HOUR, last + 13 * HOUR + 1]


def test_a_stream_keeps_windows_equal_to_the_training_set(project: Path, redis_url: str | None) -> None:
    events = make_events(1)
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in arrival_order(events, 1)])
        consumer = store.stream_consumer("payments", consumer="c1")
        drain(consumer)
        assert consumer.stats.applied == len(events) and consumer.stats.late == 0
        assert consumer.stats.health == {} or consumer.stats.health["pending"] == 0
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


def test_a_crash_between_applying_and_acknowledging_counts_nothing_twice(project: Path,
                                                                         redis_url: str | None) -> None:
    events = make_events(2, 120)
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in arrival_order(events, 2)])
        dying = store.stream_consumer("payments", consumer="dying", batch_size=50)
        dying.events.ack = lambda ids: (_ for _ in ()).throw(ConnectionError("killed before XACK"))
        with pytest.raises(ConnectionError):
            dying.step(block_ms=10)  # 50 events applied, none acknowledged
        # The same consumer restarted: its pending events come first, and are recognised.
        restarted = store.stream_consumer("payments", consumer="dying", batch_size=50)
        drain(restarted)
        assert restarted.stats.duplicates == 50 and restarted.stats.applied == len(events) - 50
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


def test_another_consumer_claims_a_dead_ones_events(project: Path, redis_url: str | None) -> None:
    events = make_events(3, 120)
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in arrival_order(events, 3)])
        dead = store.stream_consumer("payments", consumer="dead", batch_size=40)
        dead.events.ack = lambda ids: (_ for _ in ()).throw(ConnectionError("killed before XACK"))
        with pytest.raises(ConnectionError):
            dead.step(block_ms=10)
        # A second consumer that never read these events takes them over once they are idle long enough.
        survivor = store.stream_consumer("payments", consumer="survivor", batch_size=40, claim_idle_ms=1)
        drain(survivor)
        assert survivor.stats.claimed >= 40 and survivor.stats.duplicates == 40
        assert survivor.stats.applied == len(events) - 40
        assert survivor.events.health()["pending"] == 0
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


def test_two_consumers_share_the_work(project: Path, redis_url: str | None) -> None:
    events = make_events(4, 200)
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in arrival_order(events, 4)])
        first = store.stream_consumer("payments", consumer="first", batch_size=25)
        second = store.stream_consumer("payments", consumer="second", batch_size=25)
        for _ in range(100):
            if first.step(block_ms=10) + second.step(block_ms=10) == 0:
                break
        assert first.stats.applied > 0 and second.stats.applied > 0
        assert first.stats.applied + second.stats.applied == len(events)
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


def test_late_events_are_reported_not_applied(project: Path, redis_url: str | None) -> None:
    events = sorted(make_events(5, 60), key=lambda e: e["ts"])
    late = {**events[0], "ts": events[-1]["ts"] - 11 * MINUTE, "amount": 7}  # past allowed_lateness (10m)
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in events] + [as_row(late)])
        consumer = store.stream_consumer("payments", consumer="c")
        drain(consumer)
        assert consumer.stats.late == 1 and consumer.stats.applied == len(events)
        reported = store.online_store.client.xrange(consumer.events.late_key)
        assert len(reported) == 1 and reported[0][1][b"__skewless_reason"].startswith(b"late: event time")
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


def test_pushed_events_are_checked_against_the_source(project: Path, redis_url: str | None) -> None:
    write_warehouse(project, [])
    with FeatureStore(project) as store:
        with pytest.raises(SkewlessError, match="stream 'payments' has no column 'amout'"):
            store.push("payments", [{"user_id": 1, "amout": 3}])
        with pytest.raises(SkewlessError, match="column 'amount': 'lots' is not a BIGINT value"):
            store.push("payments", [{"user_id": 1, "amount": "lots"}])
        with pytest.raises(SkewlessError, match="no model is fed by stream 'paymnets'"):
            store.push("paymnets", [{"user_id": 1}])
        with pytest.raises(SkewlessError, match="an event of stream 'payments' has no values"):
            store.push("payments", [{"user_id": 1}, {"amount": None}])  # was the store's DataError (found by fuzzing)
        ids = store.push("payments", [{"user_id": 1, "event_ts": "2026-11-27T10:00:00+01:00", "amount": 3}])
        fields = store.online_store.client.xrange(ids and "sk1:stream:{streamed}:payments")[0][1]
        assert fields == {b"user_id": b"1", b"event_ts": b"2026-11-27T09:00:00", b"amount": b"3"}


def test_run_owns_tiles_up_to_its_cutoff_and_the_stream_after_it(project: Path, redis_url: str | None) -> None:
    events = sorted(make_events(6, 240), key=lambda e: e["ts"])
    landed = events[:150]  # the warehouse has the first ones when run writes; the stream brings the rest
    write_warehouse(project, landed)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        # Batch tiles up to the cutoff: the newest landed event less allowed_lateness, down to the hop.
        store.online_writer(now=_instant(landed[-1]["ts"] + MINUTE)).write(["user_windows"])
        cutoff = store.online_store.cutoffs("sk1:stream:{streamed}:payments", ["user_windows"])["user_windows"]
        assert cutoff % HOP == 0 and cutoff - HOP < landed[-1]["ts"] - 10 * MINUTE <= cutoff
        # The stream replays everything: what run covered is late (its tiles are closed), the rest is applied.
        store.push("payments", [as_row(e) for e in events])
        consumer = store.stream_consumer("payments", consumer="c")
        drain(consumer)
        closed = sum(e["ts"] <= cutoff for e in events)
        assert consumer.stats.late == closed and consumer.stats.applied == len(events) - closed
        write_warehouse(project, events)  # the training set sees every event
        assert store.run(online=False).ok
        instants = _instants_after(events) + [cutoff - 1, cutoff, cutoff + 1, cutoff + HOUR]
        assert assert_online_equals_offline(store, events, [at for at in instants if at >= events[-1]["ts"]])
        # A later run moves the cutoff forward over what the stream applied: nothing is lost or added twice.
        store.online_writer(now=_instant(events[-1]["ts"] + MINUTE)).write(["user_windows"])
        moved = store.online_store.cutoffs("sk1:stream:{streamed}:payments", ["user_windows"])["user_windows"]
        assert moved > cutoff
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0


@st.composite
def logs(draw: Any) -> dict[str, Any]:
    """A random event log, its arrival order (out of order within allowed_lateness, some events re-sent), the
    batch size and the batch after which the consumer dies before acknowledging."""
    seed = draw(st.integers(0, 10**6))
    events = make_events(seed, draw(st.integers(1, 80)))
    arriving = arrival_order(events, seed)
    resent = draw(st.lists(st.integers(0, len(arriving) - 1), max_size=5, unique=True))
    for index in sorted(resent, reverse=True):  # a producer retrying: a second copy, right after the first
        arriving.insert(index + 1, dict(arriving[index]))
    return {"events": arriving, "arriving": arriving,
            "batch": draw(st.sampled_from([1, 7, 50])), "crash_after": draw(st.integers(0, 3))}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(log=logs())
def test_random_logs_with_a_crash_equal_the_training_set(project: Path, redis_url: str | None, log) -> None:
    import redis as redis_client

    if redis_url is not None:
        redis_client.Redis.from_url(redis_url).flushdb()
    write_warehouse(project, log["events"])
    with FeatureStore(project) as store:
        if redis_url is None:
            store.online_store.client.flushdb()
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in log["arriving"]])
        consumer = store.stream_consumer("payments", consumer="victim", batch_size=log["batch"])
        for _ in range(log["crash_after"]):
            consumer.step(block_ms=10)
        consumer.events.ack = lambda ids: (_ for _ in ()).throw(ConnectionError("killed before XACK"))
        with contextlib.suppress(ConnectionError):
            consumer.step(block_ms=10)
        restarted = store.stream_consumer("payments", consumer="victim", batch_size=log["batch"])
        drain(restarted)
        assert consumer.stats.late + restarted.stats.late == 0
        assert consumer.stats.applied + restarted.stats.applied == len(log["events"])
        assert_online_equals_offline(store, log["events"], _instants_after(log["events"]))


_COLUMNS = [b"user_id", b"event_ts", b"amount", b"price", b"merchant_id"]


@st.composite
def _hostile_entries(draw: st.DrawFn) -> list[dict[bytes, bytes]]:
    """Entries as any producer may XADD them: the source's fields or others, values of the right type or not,
    text or bytes that are not UTF-8."""
    good = {b"user_id": st.integers(1, 3).map(str), b"amount": st.integers(-9, 9).map(str),
            b"price": st.sampled_from(["1.5", "nan", "-0.0", "1e308"]), b"merchant_id": st.integers(1, 4).map(str),
            b"event_ts": st.integers(0, 50).map(lambda m: (BASE + timedelta(minutes=m)).isoformat())}
    hostile = st.binary(max_size=6) | st.text(max_size=6).map(str.encode)
    entries = []
    for _ in range(draw(st.integers(1, 8))):
        names = draw(st.lists(st.sampled_from(_COLUMNS) | hostile, min_size=1, max_size=6, unique=True))
        entries.append({name: draw(good[name].map(str.encode) | hostile if name in good else hostile)
                        for name in names})
    return entries


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(entries=_hostile_entries())
def test_any_entry_a_producer_adds_is_applied_or_reported(project: Path, redis_url: str | None,
                                                          entries: list[dict[bytes, bytes]]) -> None:
    """Whatever a producer XADDs straight to the stream (bytes that are not UTF-8 among them), the consumer goes
    on: each entry is applied or reported with its reason, and every one is acknowledged (found: an entry that was
    not UTF-8 stopped the consumer at every restart)."""
    write_warehouse(project, [])
    with FeatureStore(project) as store:
        client = store.online_store.client
        client.flushdb()
        assert store.run(online=False).ok
        consumer = store.stream_consumer("payments", consumer="c", batch_size=3)
        for fields in entries:
            client.xadd(consumer.events.key, fields)
        drain(consumer)
        stats = consumer.stats
        assert stats.events == len(entries)
        assert stats.applied + stats.invalid + stats.late == len(entries)
        reported = client.xrange(consumer.events.late_key)
        assert len(reported) == stats.invalid + stats.late
        assert all(fields[b"__skewless_reason"] for _, fields in reported)
        unreadable = sum(any(not is_utf8(part) for pair in entry.items() for part in pair) for entry in entries)
        flagged = [fields for _, fields in reported if b"__skewless_unreadable" in fields]
        assert len(flagged) == unreadable
        assert all(fields[b"__skewless_reason"].startswith(b"invalid: an event of stream 'payments' has a field")
                   for fields in flagged)
        assert client.xpending(consumer.events.key, "skewless")["pending"] == 0


def test_a_consumer_killed_midway_and_restarted_loses_nothing(project: Path, redis_url: str | None) -> None:
    """The real command, killed with SIGKILL while it works, then run again until the stream is drained."""
    if redis_url is None:
        pytest.skip("needs the Redis server on 127.0.0.1:6379: two processes share the store (CI requires one)")
    import redis as redis_client

    events = make_events(7, 4000)
    write_warehouse(project, events)
    client = redis_client.Redis.from_url(redis_url)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        store.push("payments", [as_row(e) for e in arrival_order(events, 7)])
    command = [sys.executable, "-m", "skewless", "stream", "--project-dir", str(project), "--consumer", "victim",
               "--batch-size", "20"]
    environment = {**os.environ, "SKEWLESS_REDIS_URL": redis_url}
    victim = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = "sk1:stream:{streamed}:payments"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # midway: some events acknowledged, many not yet read
        groups = client.xinfo_groups(key) if client.exists(key) else []
        read = sum(1 for entry in client.xrange(key, "-", groups[0]["last-delivered-id"])) if groups else 0
        if read >= 1000:
            break
        time.sleep(0.05)
    victim.kill()  # SIGKILL: no cleanup, possibly between applying a batch and acknowledging it
    victim.wait()
    assert client.xpending(key, "skewless")["pending"] <= 20
    finished = subprocess.run([*command, "--until-idle"], env=environment, capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert client.xpending(key, "skewless")["pending"] == 0
    with FeatureStore(project) as store:
        assert_online_equals_offline(store, events, _instants_after(events))


class _MicroBatch:
    """A Spark micro-batch as foreachBatch hands it over: what the handler reads of it is its rows as Arrow."""

    def __init__(self, rows: list[dict[str, Any]], file: str) -> None:
        self.table = pa.Table.from_pylist([{**{k: None if v is None else str(v) for k, v in as_row(e).items()},
                                            "__skewless_file": file} for e in rows])

    def toArrow(self) -> pa.Table:  # noqa: N802 - pyspark's name
        return self.table


def test_a_spark_micro_batch_run_again_is_applied_once(project: Path, redis_url: str | None) -> None:
    """Spark runs a batch again, same id and files, when the job died before committing it: each event of it
    counts once, and lateness is judged as in the first run."""
    from skewless.adapters.spark_stream import BatchLog, batch_handler

    events = sorted(make_events(8, 120), key=lambda e: e["ts"])
    write_warehouse(project, events)
    with FeatureStore(project) as store:
        assert store.run(online=False).ok
        consumer = store.stream_consumer("payments", group="spark", consumer="spark")
        consumer.applied_field = b"sk1s:payments#spark"
        side = consumer.events
        apply = batch_handler(consumer, side, BatchLog(side))
        first, second = _MicroBatch(events[:70], "part-0.json"), _MicroBatch(events[70:], "part-1.json")
        apply(first, 0)
        apply(first, 0)  # the job was killed before Spark committed batch 0: it runs again
        apply(second, 1)
        assert consumer.stats.applied == len(events) and consumer.stats.duplicates == 70
        assert consumer.stats.late == 0
        assert assert_online_equals_offline(store, events, _instants_after(events)) > 0
