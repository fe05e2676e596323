"""Training sets on each executing engine: skewless's point-in-time join against the engine's own plain
formulation, side by side in one run.

The same deterministic data on every engine (N feature rows over E users, 5 float features, a created timestamp,
ties on event time; a spine of S rows), loaded by `skewless run` from one parquet seed. Per engine:
- skewless: get_historical_features over a spine table (a SQL spine), 5 features, ttl 30 days, to Arrow;
- floor: the engine's plain query by hand over the same tables: DuckDB an ASOF LEFT JOIN; Postgres a LEFT JOIN
  LATERAL (... ORDER BY event_ts DESC, created_ts DESC LIMIT 1) on the same index skewless builds.
Best of three runs each; rows and values are compared.

    python bench/engines_bench.py            # 1M feature rows, 100k users, 100k spine rows
    python bench/engines_bench.py --small    # 100k x 10k x 10k: well under a minute
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK  # noqa: E402
from _projects import FEATURES, user_features_project  # noqa: E402

ROOT = WORK / "engines"
POSTGRES = "{type: postgres, host: 127.0.0.1, port: 5432, user: postgres, dbname: test, schema: features}"
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
    folder = user_features_project(ROOT / f"project_{engine}", "ebench", parquet, "ttl='30d'")
    if engine == "postgres":
        (folder / "profiles.yml").write_text(f"ebench:\n  target: pg\n  outputs:\n    pg: {POSTGRES}\n")
    return folder


def floor_sql(engine: str) -> str:
    features = ", ".join(CASES.format(f=f) for f in FEATURES)
    if engine == "duckdb":
        return (f"select s.user_id, s.ts, s.label, {features} from bench_spine s asof left join "
                "(select * from (select *, row_number() over (partition by user_id, event_ts order by created_ts "
                "desc) rn from features.user_features) where rn = 1) f on s.user_id = f.user_id and s.ts >= f.event_ts")
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
            return store.get_historical_features("select * from bench_spine", features, timestamp="ts",
                                                 preserve_order=False).to_arrow()

        def floor():  # noqa: ANN202
            return adapter._fetch_arrow_sql(floor_sql(engine))  # the hand-written query, as text

        ours_seconds, ours_rows = best(ours)
        floor_seconds, floor_rows = best(floor)
    return {"built": built, "ours": ours_seconds, "floor": floor_seconds, "same": same(ours_rows, floor_rows)}


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
    parser.add_argument("--engines", default="duckdb,postgres")
    args = parser.parse_args()
    rows, entities, spine_rows = (100_000, 10_000, 10_000) if args.small else (1_000_000, 100_000, 100_000)
    features, spine = make_data(rows, entities, spine_rows)
    print(f"{rows:,} feature rows, {entities:,} users, {spine_rows:,} spine rows; best of 3\n")
    print(f"{'engine':10} {'run (load+build)':>17} {'skewless':>10} {'floor':>10} {'ratio':>7}  check")
    for engine in args.engines.split(","):
        folder = project(engine, features)
        try:
            result = measure(engine, folder, spine)
        finally:
            shutil.rmtree(folder / "target", ignore_errors=True)
        ratio = result["ours"] / result["floor"]
        print(f"{engine:10} {result['built']:16.2f}s {result['ours']:9.3f}s {result['floor']:9.3f}s "
              f"{ratio:6.2f}x  {result['same']}")
    print("\ntarget: skewless <= 1.3x each engine's floor")


if __name__ == "__main__":
    main()
