"""The replay consistency test, on both runners: the example project's transactions (late, out-of-order and re-sent
events included) replayed in arrival order through XADD while `skewless stream` runs, or landing as JSON files read
by `skewless stream --engine spark` (Spark Structured Streaming); the consumer killed with SIGKILL midway and
started again. Then, at instants on hop boundaries and one microsecond either side, after a gap without events
and past the longest window:

- online equals the training set over the events the stream applied (every event but the late ones it
  reported: each applied exactly once);
- after `run` (which owns the tiles up to its cutoff and covers the late events from the warehouse), online
  equals the training set over every event.

Counts, max, last and count_distinct are equal; float sums and averages within the README's bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from skewless import FeatureStore
from skewless.online.events import stream_key
from skewless.online.reader import OnlineReader

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
HOP = 5 * 60_000_000
MODEL = "user_txn_windows"


def _shifted(table: pa.Table) -> tuple[pa.Table, timedelta]:
    """The transactions moved so that the last one is 30 days from now (Redis expires keys on its own clock)."""
    newest = pc.max(table["event_ts"]).as_py()
    target = datetime.now(timezone.utc).replace(tzinfo=None, second=0, microsecond=0) + timedelta(days=30)
    shift = target - newest
    for column in ("event_ts", "created_ts"):
        index = table.schema.get_field_index(column)
        table = table.set_column(index, column, pc.add(table[column], pa.scalar(shift, pa.duration("us"))))
    return table, shift


def _compare(store: FeatureStore, instants: list[datetime], users: list[int]) -> int:
    features = [f for f in store.compile(write=False).nodes[MODEL].features]
    reader = OnlineReader(store.serving_catalog(), store.online_store)
    cells = 0
    for at in instants:
        online = reader.read([{"user_id": u} for u in users], features, now=at)
        spine = pa.table({"user_id": pa.array(users, pa.int64()), "at": pa.array([at] * len(users),
                                                                                 pa.timestamp("us"))})
        offline = store.get_historical_features(spine, features, timestamp="at").to_arrow().to_pydict()
        for feature in features:
            for user, got, want in zip(users, online[feature], offline[feature], strict=True):
                assert type(got) is type(want), (feature, user, at, got, want)
                if isinstance(got, float) and ("__spend__" in feature or "__avg_amount__" in feature):
                    assert got == pytest.approx(want, rel=1e-12), (feature, user, at)
                else:
                    assert got == want, (feature, user, at, got, want)
                cells += 1
    return cells


def _replay_through_redis(store: FeatureStore, root: Path, arriving: list[dict], environment: dict[str, str]) -> None:
    """XADD in arrival order while `skewless stream` runs; SIGKILL it midway, start it again, then drain."""
    command = [sys.executable, "-m", "skewless", "stream", "--project-dir", str(root), "--consumer", "replay",
               "--batch-size", "200", "--report-every", "1"]
    consumer = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed = False
        for start in range(0, len(arriving), 2000):
            store.push("transactions", arriving[start:start + 2000])
            if not killed and start >= len(arriving) // 2:
                time.sleep(0.3)
                consumer.kill()  # SIGKILL midway, whatever it was doing
                consumer.wait()
                killed = True
                consumer = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
    finally:
        consumer.kill()
        consumer.wait()
    finished = subprocess.run([*command, "--until-idle"], env=environment, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr


def _replay_through_spark(store: FeatureStore, root: Path, arriving: list[dict], environment: dict[str, str],
                          client) -> None:
    """Event files (JSON lines, in arrival order) read by `skewless stream --engine spark`, one file per
    micro-batch; SIGKILL it once a few batches are applied, then run it again until every file is applied."""
    folder = root / "landing"
    folder.mkdir()
    for number, start in enumerate(range(0, len(arriving), 2000)):
        lines = [json.dumps({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()})
                 for row in arriving[start:start + 2000]]
        (folder / f"part-{number:04d}.json").write_text("\n".join(lines) + "\n")
    command = [sys.executable, "-m", "skewless", "stream", "--project-dir", str(root), "--engine", "spark",
               "--target", "spark", "--files", str(folder), "--batch-size", "1", "--report-every", "1"]
    # A Spark Connect session earlier in this test process leaves SPARK_CONNECT_MODE_ENABLED in its environment,
    # which would make the job's own local session a Connect client: the job starts from a clean one.
    environment = {k: v for k, v in environment.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
    log_path = root / "spark-job.log"
    with log_path.open("wb") as log_file:
        job = subprocess.Popen(command, env=environment, stdout=log_file, stderr=subprocess.STDOUT)
    log = stream_key("payments", "transactions") + ":spark"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and int(client.hget(log, "batch") or -1) < 4 and job.poll() is None:
            time.sleep(0.05)
        assert int(client.hget(log, "batch") or -1) >= 4, log_path.read_text(errors="replace")[-3000:]
    finally:
        job.kill()  # SIGKILL in the middle of the job
        job.wait()
    finished = subprocess.run([*command, "--until-idle"], env=environment, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr


@pytest.mark.parametrize("runner", ["redis", "spark"])
def test_replayed_transactions_with_a_killed_consumer_equal_the_training_set(tmp_path: Path, redis_url: str | None,
                                                                             runner: str) -> None:
    if redis_url is None:
        pytest.skip("needs the Redis server on 127.0.0.1:6379: the stream runs in other processes (CI requires one)")
    import redis

    root = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    table, _ = _shifted(pq.read_table(EXAMPLE / "data" / "transactions.parquet"))
    pq.write_table(table, root / "data" / "transactions.parquet")
    client = redis.Redis.from_url(redis_url)
    key = stream_key("payments", "transactions")
    environment = {**os.environ, "SKEWLESS_REDIS_URL": redis_url}
    arriving = table.sort_by([("created_ts", "ascending"), ("txn_id", "ascending")]).to_pylist()
    if runner == "spark":
        from conftest import require_spark

        settings = {**require_spark(), "warehouse_dir": str(tmp_path / "spark-warehouse"), "schema": "features"}
        profiles = yaml.safe_load((root / "profiles.yml").read_text())
        profiles["payments"]["outputs"]["spark"] = settings
        (root / "profiles.yml").write_text(yaml.safe_dump(profiles))
    with FeatureStore(root) as store:
        assert store.run(online=False).ok
        if runner == "redis":
            _replay_through_redis(store, root, arriving, environment)
            assert client.xpending(key, "skewless")["pending"] == 0
        else:
            _replay_through_spark(store, root, arriving, environment, client)

        # The late events the stream reported, by (txn_id, created_ts): the training set over all the others.
        late = {(int(fields[b"txn_id"]), fields[b"created_ts"].decode())
                for _, fields in client.xrange(key + ":late")}
        assert late, "the example's transactions hold events that arrive days late"
        applied = table.filter(pa.array([(row["txn_id"], row["created_ts"].isoformat()) not in late
                                         for row in table.to_pylist()]))
        newest = pc.max(table["event_ts"]).as_py()
        boundary = datetime(1970, 1, 1) + timedelta(microseconds=(int((newest - datetime(1970, 1, 1))
                                                                      / timedelta(microseconds=1)) // HOP + 1) * HOP)
        us = timedelta(microseconds=1)
        instants = [newest, newest + us, boundary - us, boundary, boundary + us, boundary + timedelta(hours=3),
                    newest + timedelta(days=2), newest + timedelta(days=8)]
        active = pc.unique(table.filter(pc.greater(table["event_ts"], pa.scalar(newest - timedelta(days=8))))
                           ["user_id"]).to_pylist()
        users = sorted(active)[:60] + [10**9]

        pq.write_table(applied, root / "data" / "transactions.parquet")
        assert store.run(online=False).ok
        assert _compare(store, instants, users) > 0

        # run covers the late events from the warehouse: online then equals the training set over all of them.
        pq.write_table(table, root / "data" / "transactions.parquet")
        assert store.run(online=False).ok
        store.online_writer(now=newest + timedelta(minutes=1)).write([MODEL])
        assert _compare(store, instants, users) > 0
