"""Compile time: skewless vs dbt on the same generated project, cold and warm, side by side in one run.

Generates N models (window functions, 1-3 refs each) as a skewless project and as the equivalent dbt project
(dbt-core 1.11 + dbt-duckdb in their own venv under bench/.work), then times each tool's `compile` as a fresh
process: cold (no target/ folder: no caches) and warm (second run, caches kept). Also checks that a SQL syntax
error is caught at compile time.

    python bench/compile_bench.py            # 500 models
    python bench/compile_bench.py --small    # 50 models, one repetition: under a minute once the venv exists
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK, peer_python  # noqa: E402

DBT_REQUIREMENTS = ["dbt-core>=1.11,<1.12", "dbt-duckdb>=1.11,<1.12"]
BASES = 10


def model_sql(index: int, refs: list[int], rng: random.Random) -> str:
    """One model (the same text for both tools): joins its refs on (user_id, event_ts), adds window features."""
    ref_call = "{{{{ ref('{name}') }}}}"
    window = rng.choice([3, 7, 14, 30])
    if not refs:
        source = "{{ source('app', 'events') }}"
        return (
            f"select user_id, event_ts, amount * {index + 1} as user__v{index},\n"
            f"    sum(amount) over (partition by user_id order by event_ts\n"
            f"        range between interval '{window}' day preceding and current row) as user__f{index}__{window}d\n"
            f"from {source}\n"
        )
    first = refs[0]
    joins = "".join(
        f"join {ref_call.format(name=f'm{r}')} as r{r} on r{r}.user_id = r{first}.user_id "
        f"and r{r}.event_ts = r{first}.event_ts\n" for r in refs[1:]
    )
    total = " + ".join(f"r{r}.user__v{r}" for r in refs)
    return (
        f"select r{first}.user_id, r{first}.event_ts, {total} as user__v{index},\n"
        f"    avg({total}) over (partition by r{first}.user_id order by r{first}.event_ts\n"
        f"        rows between {window} preceding and current row) as user__f{index}__{window}r,\n"
        f"    row_number() over (partition by r{first}.user_id order by r{first}.event_ts desc) as user__rank{index}\n"
        f"from {ref_call.format(name=f'm{first}')} as r{first}\n{joins}"
        f"where r{first}.user__v{first} is not null\n"
    )


def generate(root: Path, models: int, seed: int = 3) -> tuple[Path, Path]:
    rng = random.Random(seed)
    skw, dbt = root / "skewless_project", root / "dbt_project"
    for folder in (skw, dbt):
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "models").mkdir(parents=True)
    (skw / "skewless_project.yml").write_text("name: bench\nprofile: bench\n")
    (skw / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/bench.duckdb, schema: main}\n")
    (skw / "entities.yml").write_text("entities:\n  - name: user\n    join_keys: [user_id]\n")
    columns = "[{name: user_id, type: BIGINT}, {name: event_ts, type: TIMESTAMP}, {name: amount, type: DOUBLE}]"
    (skw / "sources.yml").write_text(
        f"sources:\n  - name: app\n    schema: raw\n    tables:\n      - name: events\n"
        f"        timestamp: event_ts\n        columns: {columns}\n")
    (dbt / "dbt_project.yml").write_text(
        "name: bench\nversion: '1.0'\nprofile: bench\nmodel-paths: [models]\n"
        "flags:\n  send_anonymous_usage_stats: false\n  use_colors: false\n"
        "models:\n  bench:\n    +materialized: table\n")
    (dbt / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/bench.duckdb, schema: main}\n")
    (dbt / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: app\n    schema: raw\n    tables:\n      - name: events\n")
    for index in range(models):
        refs = [] if index < BASES else sorted(rng.sample(range(index), k=rng.randint(1, 3)))
        body = model_sql(index, refs, rng)
        (skw / "models" / f"m{index}.sql").write_text("{{ config(entity='user', timestamp='event_ts') }}\n" + body)
        (dbt / "models" / f"m{index}.sql").write_text("{{ config(materialized='table') }}\n" + body)
    return skw, dbt


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, result.returncode, result.stdout + result.stderr


def measure(name: str, command: list[str], project: Path, env: dict[str, str], repeat: int) -> dict[str, float]:
    cold, warm = [], []
    for _ in range(repeat):
        shutil.rmtree(project / "target", ignore_errors=True)
        os.sync()  # let the disk settle after the delete, so neither tool pays for it
        time.sleep(1)
        seconds, code, output = timed(command, project, env)
        if code != 0:
            raise SystemExit(f"{name} compile failed:\n{output[-3000:]}")
        cold.append(seconds)
        seconds, code, output = timed(command, project, env)
        warm.append(seconds)
    return {"cold": statistics.median(cold), "warm": statistics.median(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="50 models, one repetition")
    args = parser.parse_args()
    if args.small:
        args.models, args.repeat = 50, 1

    dbt_python = peer_python("dbt-1.11", DBT_REQUIREMENTS)
    dbt_bin = dbt_python.parent / "dbt"
    root = WORK / "compile_bench"
    skw, dbt = generate(root, args.models)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    skewless_cmd = [sys.executable, "-m", "skewless", "compile", "--project-dir", str(skw)]
    dbt_cmd = [str(dbt_bin), "--no-version-check", "compile", "--project-dir", str(dbt), "--profiles-dir", str(dbt)]

    print(f"{args.models} models, median of {args.repeat} run(s), wall time of a fresh process", file=sys.stderr)
    ours = measure("skewless", skewless_cmd, skw, env, args.repeat)
    theirs = measure("dbt", dbt_cmd, dbt, env, args.repeat)

    # A syntax error: skewless must stop at compile time; dbt compile does not parse SQL.
    broken = skw / "models" / f"m{args.models - 1}.sql"
    broken.write_text(broken.read_text().replace("select", "select (", 1))
    dbt_broken = dbt / "models" / f"m{args.models - 1}.sql"
    dbt_broken.write_text(dbt_broken.read_text().replace("select", "select (", 1))
    _, skw_code, skw_out = timed(skewless_cmd, skw, env)
    _, dbt_code, _ = timed(dbt_cmd, dbt, env)

    rows = [
        ("cold", ours["cold"], theirs["cold"]),
        ("warm", ours["warm"], theirs["warm"]),
    ]
    print(f"\n{'compile':<8} {'skewless':>10} {'dbt 1.11':>10} {'dbt/skewless':>13}")
    for label, a, b in rows:
        print(f"{label:<8} {a:>9.2f}s {b:>9.2f}s {b / a:>12.1f}x")
    caught = "caught (exit 2)" if skw_code == 2 and "SQL syntax error" in skw_out else f"NOT caught (exit {skw_code})"
    print(f"\nsyntax error at compile time: skewless {caught}; dbt exit {dbt_code}"
          f" ({'not caught' if dbt_code == 0 else 'caught'})")
    print(f"target: skewless >= 8x faster cold: {'met' if theirs['cold'] / ours['cold'] >= 8 else 'NOT met'}")


if __name__ == "__main__":
    main()
