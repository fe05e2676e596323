"""Training sets on each executing engine: skewless's point-in-time join against the engine's own plain
formulation, side by side in one run.

The same deterministic data on every engine (N feature rows over E users, 5 float features, a created timestamp,
ties on event time; a spine of S rows), loaded by `skewless run` from one parquet seed. Per engine:
- skewless: get_historical_features over a spine table (named), 5 features, ttl 30 days, to Arrow;
- floor: the engine's plain query by hand over the same tables: DuckDB an ASOF LEFT JOIN; Postgres a LEFT JOIN
  LATERAL (... ORDER BY event_ts DESC, created_ts DESC LIMIT 1) on the same index skewless builds; Spark a
  window query (LAST_VALUE(... IGNORE NULLS) over spine and feature rows in one stream per user).
Best of three runs each; rows and values are compared.

Materialize: the online post-hook end to end on each engine (every newest row read back, encoded and written to
Redis). Then online reads of 1 and 100 entities from a 3-master Redis Cluster (started here, on loopback ports)
and from the standalone server.

    python bench/engines_bench.py                          # 1M feature rows, 100k users, 100k spine rows
    python bench/engines_bench.py --rows 1000000,10000000  # how time grows from 1M to 10M rows
    python bench/engines_bench.py --small                  # 100k x 10k x 10k: about a minute
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK  # noqa: E402
from _projects import FEATURES, user_features_project  # noqa: E402

ROOT = WORK / "engines"
TARGETS = {
    "postgres": "{type: postgres, host: 127.0.0.1, port: 5432, user: postgres, dbname: test, schema: features}",
    "spark": f"{{type: spark, master: 'local[2]', warehouse_dir: '{ROOT / 'spark-warehouse'}', schema: features, "
             "conf: {spark.sql.shuffle.partitions: '4', spark.driver.memory: 4g}}",
}
ONLINE_URL = "redis://127.0.0.1:6379/3"  # the materialize step writes here (flushed first)
SERVING_NOW = "2026-04-15"  # the post-hook's "now": the generated rows end in early April
CASES = "case when f.event_ts >= s.ts - interval '30 days' then f.user__{f} end as user__{f}"


def make_data(rows: int, entities: int, spine_rows: int) -> tuple[Path, Path]:
    import duckdb

    folder = ROOT / f"data_{rows}_{entities}_{spine_rows}"
    features, spine = folder / "features.parquet", folder / "spine.parquet"
    if features.exists() and spine.exists():
        return features, spine
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""
        copy (select (i % {entities})::bigint as user_id,
                     timestamp '2026-01-01' + to_seconds((hash(i, 1) % (90 * 86400))::bigint) as event_ts,
                     event_ts + to_seconds((hash(i, 2) % 7200)::bigint) as created_ts,
                     {", ".join(f"(hash(i, {k + 3}) % 1000000) / 1000.0 as {name}" for k, name in enumerate(FEATURES))}
              from range({rows}) t(i)) to '{features}' (format parquet)""")
    con.execute(f"""
        copy (select (hash(j, 9) % {entities})::bigint as user_id,
                     timestamp '2026-01-15' + to_seconds((hash(j, 10) % (80 * 86400))::bigint) as ts, j as label
              from range({spine_rows}) t(j)) to '{spine}' (format parquet)""")
    return features, spine


def project(engine: str, parquet: Path) -> Path:
    folder = user_features_project(ROOT / f"project_{engine}", "ebench", parquet, "ttl='30d', online=true",
                                   f"online_store:\n  url: {ONLINE_URL}\n")
    if engine in TARGETS:
        (folder / "profiles.yml").write_text(f"ebench:\n  target: other\n  outputs:\n    other: {TARGETS[engine]}\n")
    return folder


def floor_sql(engine: str) -> str:
    features = ", ".join(CASES.format(f=f) for f in FEATURES)
    if engine == "duckdb":
        return (f"select s.user_id, s.ts, s.label, {features} from bench_spine s asof left join "
                "(select * from (select *, row_number() over (partition by user_id, event_ts order by created_ts "
                "desc) rn from features.user_features) where rn = 1) f on s.user_id = f.user_id and s.ts >= f.event_ts")
    if engine == "spark":  # the plain window formulation: spine and feature rows in one ordered stream
        struct = ", ".join(f"'user__{f}', user__{f}" for f in FEATURES)
        picks = ", ".join(f"case when n.event_ts >= ts - interval 30 days then n.user__{f} end as user__{f}"
                          for f in FEATURES)
        return ("with stream as ("
                "select user_id, event_ts as ts, created_ts, 0 as is_spine, cast(null as bigint) as label, "
                f"named_struct('event_ts', event_ts, {struct}) as f from features.user_features "
                "union all select user_id, ts, null, 1, label, null from bench_spine), "
                "ranked as (select *, last_value(case when is_spine = 0 then f end, true) over (partition by user_id "
                "order by ts, is_spine, created_ts rows between unbounded preceding and current row) as n "
                f"from stream) select user_id, ts, label, {picks} from ranked where is_spine = 1")
    columns = ", ".join(f"user__{f}" for f in FEATURES)
    return (f"select s.user_id, s.ts, s.label, {features} from bench_spine s left join lateral "
            f"(select event_ts, {columns} from features.user_features u where u.user_id = s.user_id and "
            "u.event_ts <= s.ts order by u.event_ts desc, u.created_ts desc limit 1) f on true")


def best(run, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(engine: str, folder: Path, spine_path: Path) -> dict[str, object]:
    import pyarrow.parquet as pq
    from sqlglot import exp

    from skewless import FeatureStore

    with FeatureStore(folder) as store:
        started = time.perf_counter()
        assert store.run(online=False).ok
        built = time.perf_counter() - started
        adapter = store.adapter
        spine = pq.read_table(spine_path)
        name = adapter.register_arrow("bench_spine_arrow", spine)
        adapter.drop(exp.to_table("bench_spine"))
        adapter.create_table_as(exp.to_table("bench_spine"), exp.select("*").from_(name))
        adapter.unregister_arrow("bench_spine_arrow")
        features = [f"user__{f}" for f in FEATURES]

        def ours():  # noqa: ANN202
            return store.get_historical_features("bench_spine", features, timestamp="ts",
                                                 preserve_order=False).to_arrow()

        def floor():  # noqa: ANN202
            return adapter._fetch_arrow_sql(floor_sql(engine))  # the hand-written query, as text

        ours_seconds, ours_rows = best(ours)
        floor_seconds, floor_rows = best(floor)
        # Materialize: the online post-hook end to end (newest servable row per user, read back, encoded, written
        # to Redis), every value sent.
        import redis

        redis.Redis.from_url(ONLINE_URL).flushdb()
        writer = store.online_writer(now=datetime.fromisoformat(SERVING_NOW))
        started = time.perf_counter()
        report = writer.write(["user_features"], resend=True)["user_features"]
        materialized = time.perf_counter() - started
    return {"built": built, "ours": ours_seconds, "floor": floor_seconds, "same": same(ours_rows, floor_rows),
            "materialize": materialized, "sent": report["sent"]}


def same(a, b) -> str:  # noqa: ANN001
    key = ["label"]
    left = {r["label"]: r for r in a.sort_by([(k, "ascending") for k in key]).to_pylist()}
    right = {r["label"]: r for r in b.sort_by([(k, "ascending") for k in key]).to_pylist()}
    if left.keys() != right.keys():
        return f"rows differ ({len(left)} vs {len(right)})"
    for label, row in left.items():
        for feature in FEATURES:
            x, y = row[f"user__{feature}"], right[label][f"user__{feature}"]
            if (x is None) != (y is None) or (x is not None and not math.isclose(x, y, rel_tol=1e-12)):
                return f"values differ at label {label}"
    return "same rows and values"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="100k feature rows, 10k users, 10k spine rows")
    parser.add_argument("--rows", default=None,
                        help="feature-row counts to run one after another, e.g. 1000000,10000000 (how time grows); "
                             "users and spine rows are a tenth of each")
    parser.add_argument("--engines", default="duckdb,postgres,spark")
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster vs standalone reads")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")] if args.rows else [100_000 if args.small else 1_000_000]
    for rows in sizes:
        entities = spine_rows = rows // 10
        features, spine = make_data(rows, entities, spine_rows)
        print(f"{rows:,} feature rows, {entities:,} users, {spine_rows:,} spine rows; best of 3\n")
        print(f"{'engine':10} {'run (load+build)':>17} {'skewless':>10} {'floor':>10} {'ratio':>7} "
              f"{'materialize':>12} {'rows/s':>9}  check")
        for engine in args.engines.split(","):
            folder = project(engine, features)
            try:
                result = measure(engine, folder, spine)
            finally:
                shutil.rmtree(folder / "target", ignore_errors=True)
            ratio = result["ours"] / result["floor"]
            print(f"{engine:10} {result['built']:16.2f}s {result['ours']:9.3f}s {result['floor']:9.3f}s "
                  f"{ratio:6.2f}x {result['materialize']:11.2f}s {result['sent'] / result['materialize']:9,.0f}  "
                  f"{result['same']}", flush=True)
        print("\ntarget: skewless <= 1.3x each engine's floor (point-in-time join)\n")
    if not args.no_cluster:
        cluster_reads(10_000 if args.small else 100_000)


def cluster_reads(entities: int) -> None:
    """Reads of 1 and 100 entities (5 features each) from a 3-master Redis Cluster and from the standalone server,
    through the same online store, p50/p99 over many reads."""
    import random
    import statistics
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_processes import RedisClusterProcesses

    from skewless.adapters.redis_online import RedisOnlineStore

    fields = [f"user__{f}".encode() for f in FEATURES]
    rows = [(f"ebench:user:{i}".encode(), field, b"%d" % i, 0) for i in range(entities) for field in fields]
    with tempfile.TemporaryDirectory() as folder:
        cluster = RedisClusterProcesses(Path(folder))
        cluster.start()
        try:
            import redis

            redis.Redis.from_url(ONLINE_URL).flushdb()
            stores = {"standalone": RedisOnlineStore(ONLINE_URL, Path(folder) / "x.db"),
                      "cluster": RedisOnlineStore(cluster.url, Path(folder) / "y.db", cluster=True)}
            print(f"online reads, {entities:,} users x {len(fields)} features; p50 / p99 in ms")
            print(f"{'store':12} {'write':>8} {'1 entity':>18} {'100 entities':>18}")
            results = {}
            for name, store in stores.items():
                started = time.perf_counter()
                store.write(rows, 1)
                written = time.perf_counter() - started
                timings = {}
                for batch, repeat in ((1, 3000), (100, 500)):
                    samples = []
                    for _ in range(repeat):
                        keys = [(f"ebench:user:{random.randrange(entities)}".encode(), fields) for _ in range(batch)]
                        started = time.perf_counter()
                        store.read(keys)
                        samples.append((time.perf_counter() - started) * 1000)
                    samples.sort()
                    timings[batch] = (statistics.median(samples), samples[int(len(samples) * 0.99) - 1])
                results[name] = timings
                print(f"{name:12} {written:7.2f}s {timings[1][0]:8.3f} / {timings[1][1]:6.3f}  "
                      f"{timings[100][0]:8.3f} / {timings[100][1]:6.3f}")
                store.close()
            for batch in (1, 100):
                print(f"cluster / standalone, {batch} entit{'y' if batch == 1 else 'ies'}: p50 "
                      f"{results['cluster'][batch][0] / results['standalone'][batch][0]:.2f}x, p99 "
                      f"{results['cluster'][batch][1] / results['standalone'][batch][1]:.2f}x")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
