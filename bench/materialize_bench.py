"""Online materialization: skewless's post-hook vs Feast's materialize(), with a raw redis-py floor.

One run, one data set: a feature table of N rows over E users with 5 float features (default 10M x 100k).
- skewless: the online post-hook end to end (newest row per entity from the DuckDB table that `skewless run`
  built, encoding, and the monotonic upsert into Redis), in a fresh process; and its Redis write alone.
- Feast 0.67 (its own venv under bench/.work): materialize() from the same data as parquet, with its duckdb
  offline store, into the same Redis server (another database).
- Floor: a raw redis-py pipelined HSET loop writing the same newest rows (5 fields each).
Prints wall time, rows/s, peak memory (max RSS of each process) and the ratios.

    python bench/materialize_bench.py            # 10M rows, 100k users (needs Redis on 127.0.0.1:6379)
    python bench/materialize_bench.py --small    # 500k rows, 10k users: well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK, peer_python  # noqa: E402
from _projects import user_features_project  # noqa: E402

FEAST_REQUIREMENTS = ["feast[redis,duckdb]==0.67.0"]
REDIS = "127.0.0.1:6379"
DB_SKEWLESS, DB_FEAST, DB_RAW = 11, 12, 13
ROOT = WORK / "materialize"


def make_data(rows: int, entities: int) -> Path:
    """Deterministic features over the last 20 days: each user has rows/entities events."""
    import duckdb

    path = ROOT / "data" / f"features_{rows}_{entities}.parquet"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(f"""
        copy (
            select
                (i % {entities})::bigint as user_id,
                (date_trunc('day', now()::timestamp) - interval 20 day
                    + to_microseconds((hash(i, 1) % 1728000000000)::bigint)) as event_ts,
                event_ts as created_ts,
                (hash(i, 2) % 1000000) / 1000.0 as f1,
                (hash(i, 3) % 1000000) / 1000.0 as f2,
                (hash(i, 4) % 1000000) / 1000.0 as f3,
                (hash(i, 5) % 1000000) / 1000.0 as f4,
                (hash(i, 6) % 1000000) / 1000.0 as f5
            from range({rows}) t(i)
        ) to '{path}' (format parquet, row_group_size 1000000)
    """)
    return path


def make_project(parquet: Path) -> Path:
    return user_features_project(ROOT / "skewless_project", "mbench", parquet, "online=true",
                                 f"online_store:\n  url: redis://{REDIS}/{DB_SKEWLESS}\n")


SKEWLESS_PHASE = """
import json, resource, sys, time
from skewless import FeatureStore
store = FeatureStore(sys.argv[1])
writer = store.online_writer()
model = writer.models["user_features"]
started = time.perf_counter()
report = writer.write(["user_features"])
total = time.perf_counter() - started
# The Redis write alone, on the same rows, into a flushed database:
store.online_store.client.flushdb()
table = store.adapter.fetch_arrow(writer.snapshot_query(model))
rows = writer.encode(model, table)
started = time.perf_counter()
written = store.online_store.write(rows, generation=1)
write_only = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": total, "rows": report["user_features"]["sent"], "write_seconds": write_only,
                  "written": written, "peak": peak}))
"""

FEAST_PHASE = """
import json, resource, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64
repo, parquet = Path(sys.argv[1]), sys.argv[2]
repo.mkdir(parents=True, exist_ok=True)
(repo / "feature_store.yaml").write_text(
    "project: bench\\nregistry: registry.db\\nprovider: local\\nentity_key_serialization_version: 3\\n"
    "offline_store:\\n  type: duckdb\\n"
    "online_store:\\n  type: redis\\n  connection_string: \\"%s\\"\\n" % sys.argv[3])
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(path=parquet, timestamp_field="event_ts", created_timestamp_column="created_ts")
view = FeatureView(name="user_features", entities=[user], ttl=timedelta(days=90), online=True, source=source,
                   schema=[Field(name=f"f{i}", dtype=Float64) for i in range(1, 6)])
store = FeatureStore(repo_path=str(repo))
store.apply([user, view])
end = datetime.utcnow() + timedelta(days=1)
started = time.perf_counter()
store.materialize(start_date=end - timedelta(days=60), end_date=end)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak}))
"""


def run_phase(python: str, code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    result = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, env=env)
    if result.returncode < 0:
        raise SystemExit(f"phase killed by signal {-result.returncode} (out of memory, if 9)")
    if result.returncode != 0:
        raise SystemExit(f"phase failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def raw_floor(project: Path) -> dict:
    """redis-py pipelined HSET of the same newest rows, 1000 per round trip."""
    import redis

    from skewless import FeatureStore

    with FeatureStore(project) as store:
        writer = store.online_writer()
        model = writer.models["user_features"]
        table = store.adapter.fetch_arrow(writer.snapshot_query(model))
    ids = table.column("user_id").to_pylist()
    features = [table.column(f).to_pylist() for f in model.features]
    client = redis.Redis.from_url(f"redis://{REDIS}/{DB_RAW}")
    client.flushdb()
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for index, user in enumerate(ids):
        pipe.hset(f"raw:user:{user}", mapping={model.features[k]: features[k][index] for k in range(5)})
        if index % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return {"seconds": time.perf_counter() - started, "rows": len(ids)}


def mb(value: float) -> str:
    return f"{value / 2**20:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--small", action="store_true", help="500k rows over 10k users")
    parser.add_argument("--skip-feast", action="store_true")
    args = parser.parse_args()
    if args.small:
        args.rows, args.entities = 500_000, 10_000

    import redis

    for db in (DB_SKEWLESS, DB_FEAST, DB_RAW):
        redis.Redis.from_url(f"redis://{REDIS}/{db}").flushdb()
    parquet = make_data(args.rows, args.entities)
    project = make_project(parquet)
    from skewless import FeatureStore

    print(f"{args.rows:,} rows over {args.entities:,} users, 5 float features", file=sys.stderr)
    with FeatureStore(project) as store:  # `skewless run` builds the feature table (not timed here)
        assert store.run(online=False).ok
    ours = run_phase(sys.executable, SKEWLESS_PHASE, str(project))
    floor = raw_floor(project)
    feast = None
    if not args.skip_feast:
        feast_python = peer_python("feast-0.67", FEAST_REQUIREMENTS)
        shutil.rmtree(ROOT / "feast_repo", ignore_errors=True)
        feast = run_phase(str(feast_python), FEAST_PHASE, str(ROOT / "feast_repo"), str(parquet),
                          f"{REDIS},db={DB_FEAST}", env={**os.environ, "FEAST_USAGE": "False"})

    rows = ours["rows"]
    print(f"\n{'':<34} {'seconds':>9} {'rows/s':>11} {'peak memory':>12}")
    print(f"{'skewless post-hook, end to end':<34} {ours['seconds']:>9.2f} {rows / ours['seconds']:>11,.0f} "
          f"{mb(ours['peak']):>12}")
    print(f"{'skewless monotonic Redis write':<34} {ours['write_seconds']:>9.2f} "
          f"{rows / ours['write_seconds']:>11,.0f}")
    floor_rate = floor["rows"] / floor["seconds"]
    print(f"{'raw redis-py pipelined HSET loop':<34} {floor['seconds']:>9.2f} {floor_rate:>11,.0f}")
    if feast:
        print(f"{'Feast 0.67 materialize (duckdb)':<34} {feast['seconds']:>9.2f} {rows / feast['seconds']:>11,.0f} "
              f"{mb(feast['peak']):>12}")
        print(f"\nend to end: skewless {feast['seconds'] / ours['seconds']:.1f}x faster than Feast (target >= 10x); "
              f"peak memory {ours['peak'] / feast['peak']:.2f}x Feast's (target < 1)")
    print(f"monotonic write: {floor['seconds'] / ours['write_seconds']:.2f}x the raw HSET loop's rate (target >= 1)")
    print(f"rows written {ours['written']:,} of {rows:,}; peak RSS measured per process "
          f"(this process: {mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)})")


if __name__ == "__main__":
    main()
