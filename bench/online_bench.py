"""Online serving latency: skewless (library call and HTTP) vs Feast's get_online_features vs raw redis-py.

One run, one Redis server (127.0.0.1:6379, one database per contender), E entities (default 100k) with 20 float
features each, materialized by each tool. Then, for 1 and 100 entities x 5 and 20 features, p50 and p99 latency:
- skewless library: FeatureStore.get_online_features (typed values, ttl check) in this process;
- skewless HTTP: POST /get-online-features to a `skewless serve` process, over one keep-alive connection;
- Feast 0.67 (its own venv under bench/.work): FeatureStore.get_online_features against its Redis database;
- floor: raw redis-py, one pipelined HMGET per entity of the feature fields of a plain hash, no decoding.
Then HTTP throughput (requests/s, 100 entities x 5 features) from an asyncio load generator on loopback with
several connections, for 1 and 2 server workers, and the server's CPU profile under that load (cProfile),
showing where a request's time goes and that the manifest was loaded once, not per request.

    python bench/online_bench.py            # 100k entities
    python bench/online_bench.py --small    # 10k entities, fewer rounds: well under a minute (plus Feast setup)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK, peer_python  # noqa: E402

FEAST_REQUIREMENTS = ["feast[redis,duckdb]==0.67.0"]
REDIS = "127.0.0.1:6379"
DB_SKEWLESS, DB_FEAST, DB_RAW = 11, 12, 13
ROOT = WORK / "online"
FEATURES = [f"f{i}" for i in range(1, 21)]
SHAPES = [(1, 5), (1, 20), (100, 5), (100, 20)]


def make_data(entities: int) -> Path:
    import duckdb

    path = ROOT / "data" / f"users_{entities}.parquet"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(f"(hash(i, {k}) % 1000000) / 1000.0 as {f}" for k, f in enumerate(FEATURES, start=2))
    duckdb.connect().execute(f"""
        copy (select i::bigint as user_id, date_trunc('hour', now()::timestamp) - interval 1 hour as event_ts,
                     {columns}
              from range({entities}) t(i)) to '{path}' (format parquet)
    """)
    return path


def make_project(parquet: Path) -> Path:
    folder = ROOT / "skewless_project"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "models").mkdir(parents=True)
    (folder / "skewless_project.yml").write_text(
        f"name: obench\nprofile: obench\nonline_store:\n  url: redis://{REDIS}/{DB_SKEWLESS}\n")
    (folder / "profiles.yml").write_text(
        "obench:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/obench.duckdb, schema: features}\n")
    (folder / "entities.yml").write_text("entities:\n  - name: user\n    join_keys: [user_id]\n")
    (folder / "sources.yml").write_text(textwrap.dedent(f"""\
        sources:
          - name: bench
            tables:
              - name: users
                file: {parquet}
                timestamp: event_ts
    """))
    (folder / "models" / "user_features.sql").write_text(
        "{{ config(entity='user', timestamp='event_ts', ttl='90d', online=true) }}\n"
        "select user_id, event_ts, " + ", ".join(f"{f} as user__{f}" for f in FEATURES)
        + "\nfrom {{ source('bench', 'users') }}\n")
    return folder


FEAST_PHASE = """
import json, sys, time, random, statistics
from datetime import datetime, timedelta
from pathlib import Path
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64
repo, parquet, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[4])
shapes = json.loads(sys.argv[5])
entities = int(sys.argv[6])
repo.mkdir(parents=True, exist_ok=True)
(repo / "feature_store.yaml").write_text(
    "project: obench\\nregistry: registry.db\\nprovider: local\\nentity_key_serialization_version: 3\\n"
    "offline_store:\\n  type: duckdb\\n"
    "online_store:\\n  type: redis\\n  connection_string: \\"%s\\"\\n" % sys.argv[3])
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(path=parquet, timestamp_field="event_ts")
view = FeatureView(name="user_features", entities=[user], ttl=timedelta(days=90), online=True, source=source,
                   schema=[Field(name=f"f{i}", dtype=Float64) for i in range(1, 21)])
store = FeatureStore(repo_path=str(repo))
store.apply([user, view])
end = datetime.utcnow() + timedelta(days=1)
store.materialize(start_date=end - timedelta(days=30), end_date=end)
rng = random.Random(1)
out = {}
for count, width in shapes:
    refs = [f"user_features:f{i}" for i in range(1, width + 1)]
    times = []
    for r in range(rounds // (1 if count == 1 else 4) + 50):
        rows = [{"user_id": rng.randrange(entities)} for _ in range(count)]
        started = time.perf_counter()
        result = store.get_online_features(features=refs, entity_rows=rows).to_dict()
        times.append(time.perf_counter() - started)
        assert result["f1"][0] is not None
    out[f"{count}x{width}"] = times[50:]
print(json.dumps(out))
"""


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def rounds_for(count: int, rounds: int) -> int:
    return rounds if count == 1 else rounds // 4


def time_calls(call, shapes, rounds: int, entities: int) -> dict[str, list[float]]:  # noqa: ANN001
    import random

    rng = random.Random(1)
    out = {}
    for count, width in shapes:
        times = []
        for index in range(rounds_for(count, rounds) + 50):  # the first 50: warm-up
            ids = [rng.randrange(entities) for _ in range(count)]
            started = time.perf_counter()
            call(ids, width)
            if index >= 50:
                times.append(time.perf_counter() - started)
        out[f"{count}x{width}"] = times
    return out


def raw_floor(entities: int, shapes, rounds: int) -> dict[str, list[float]]:  # noqa: ANN001
    """Plain hashes with 20 float fields, read by one pipelined HMGET per entity (values left as bytes)."""
    import pyarrow.parquet as pq
    import redis

    client = redis.Redis.from_url(f"redis://{REDIS}/{DB_RAW}")
    client.flushdb()
    table = pq.read_table(make_data(entities))
    ids = table.column("user_id").to_pylist()
    columns = [table.column(f).to_pylist() for f in FEATURES]
    pipe = client.pipeline(transaction=False)
    for index, user in enumerate(ids):
        pipe.hset(f"raw:user:{user}", mapping={f: columns[k][index] for k, f in enumerate(FEATURES)})
        if index % 2000 == 1999:
            pipe.execute()
    pipe.execute()

    def call(ids: list[int], width: int) -> None:
        fields = FEATURES[:width]
        pipe = client.pipeline(transaction=False)
        for user in ids:
            pipe.hmget(f"raw:user:{user}", fields)
        replies = pipe.execute()
        assert replies[0][0] is not None

    return time_calls(call, shapes, rounds, entities)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Runs `skewless` with every thread profiled (the server reads the online store on worker threads), the profiles
# merged into one pstats file at exit.
PROFILED = """
import atexit, cProfile, pstats, sys, threading
out = sys.argv.pop(1)
profiles = []
def start(*_):
    sys.setprofile(None)
    profile = cProfile.Profile()
    profiles.append(profile)
    profile.enable()
threading.setprofile(start)
def dump():
    for profile in profiles:
        profile.create_stats()
    pstats.Stats(*profiles).dump_stats(out)
atexit.register(dump)
start()
from skewless.cli import main
sys.argv[0] = "skewless"
main()
"""


def start_server(project: Path, port: int, workers: int = 1, profile: Path | None = None) -> subprocess.Popen:
    command = [sys.executable]
    if profile is not None:
        command += ["-c", PROFILED, str(profile)]
    else:
        command += ["-m", "skewless"]
    command += ["serve", "--project-dir", str(project), "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise SystemExit(f"server did not start: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def body_for(ids: list[int], width: int) -> bytes:
    return json.dumps({"features": [f"user__{f}" for f in FEATURES[:width]],
                       "entities": {"user_id": ids}}).encode()


def http_latency(port: int, shapes, rounds: int, entities: int) -> dict[str, list[float]]:  # noqa: ANN001
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Content-Type": "application/json"}

    def call(ids: list[int], width: int) -> None:
        connection.request("POST", "/get-online-features", body=body_for(ids, width), headers=headers)
        response = connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload[:300]

    return time_calls(call, shapes, rounds, entities)


async def _load(port: int, seconds: float, connections: int, bodies: list[bytes]) -> tuple[int, list[float]]:
    """Keep-alive POSTs from several connections for `seconds`; returns requests done and their latencies."""
    done = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        while time.perf_counter() < stop:
            body = bodies[index % len(bodies)]
            index += 1
            started = time.perf_counter()
            writer.write(b"POST /get-online-features HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            assert head.startswith(b"HTTP/1.1 200"), head
            latencies.append(time.perf_counter() - started)
            done += 1
        writer.close()

    await asyncio.gather(*[worker(i * 7) for i in range(connections)])
    return done, latencies


def throughput(port: int, seconds: float, connections: int, entities: int) -> tuple[float, float]:
    import random

    rng = random.Random(2)
    bodies = [body_for([rng.randrange(entities) for _ in range(100)], 5) for _ in range(200)]
    done, latencies = asyncio.run(_load(port, seconds, connections, bodies))
    return done / seconds, percentiles(latencies)[1]


def profile_summary(path: Path) -> list[str]:
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    lines = []
    def calls(name: str, file_end: str) -> list[tuple]:  # (calls, own, cumulative) of matching functions
        return [(v[1], v[2], v[3]) for (file, _, fn), v in table.items() if fn == name and file.endswith(file_end)]

    loads = sum(c for c, _, _ in calls("from_manifest", "catalog.py"))
    checks = sum(c for c, _, _ in calls("reload", "server.py"))
    read = calls("read_columns", "/reader.py")
    requests, reads = sum(c for c, _, _ in read), sum(t for _, _, t in read)
    lines.append(f"requests answered: {requests:,}; manifest parsed {loads} time(s) (at start), "
                 f"{checks} cheap change checks (a stat every 2 s)")
    if requests:
        lines.append(f"OnlineReader.read_columns per request: {reads / requests * 1e6:,.0f} us "
                     "(wall time on its thread; cProfile adds overhead to every call)")
    idle = ("acquire' of '_thread.lock", "select' of 'select.epoll")  # threads waiting for work: not CPU
    busy = [kv for kv in table.items() if not any(i in kv[0][2] for i in idle)]
    ranked = sorted(busy, key=lambda kv: kv[1][2], reverse=True)[:12]
    lines.append("top functions by own time:")
    for (file, line, name), (_, calls, own, cumulative, _) in ranked:
        lines.append(f"  {own:7.2f}s own {cumulative:7.2f}s cum {calls:>9,} calls  {Path(file).name}:{line} {name}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=4000, help="calls per 1-entity shape (100-entity: a 4th)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--small", action="store_true", help="10k entities, 800 rounds, 3 s throughput runs")
    parser.add_argument("--skip-feast", action="store_true")
    args = parser.parse_args()
    if args.small:
        args.entities, args.rounds, args.seconds = 10_000, 800, 3.0

    import redis

    for db in (DB_SKEWLESS, DB_FEAST, DB_RAW):
        redis.Redis.from_url(f"redis://{REDIS}/{db}").flushdb()
    parquet = make_data(args.entities)
    project = make_project(parquet)
    from skewless import FeatureStore

    print(f"{args.entities:,} entities x 20 float features; {args.rounds} rounds per 1-entity shape", file=sys.stderr)
    results: dict[str, dict[str, list[float]]] = {}
    with FeatureStore(project) as store:
        run = store.run()
        assert run.ok, run.hook_errors

        def library(ids: list[int], width: int) -> None:
            rows = [{"user_id": i} for i in ids]
            result = store.get_online_features(rows, [f"user__{f}" for f in FEATURES[:width]])
            assert result["user__f1"][0] is not None

        results["skewless library"] = time_calls(library, SHAPES, args.rounds, args.entities)
    port = free_port()
    server = start_server(project, port)
    try:
        results["skewless HTTP"] = http_latency(port, SHAPES, args.rounds, args.entities)
    finally:
        stop_server(server)
    results["raw pipelined HMGET"] = raw_floor(args.entities, SHAPES, args.rounds)
    if not args.skip_feast:
        feast_python = peer_python("feast-0.67", FEAST_REQUIREMENTS)
        shutil.rmtree(ROOT / "feast_repo", ignore_errors=True)
        print("Feast: apply + materialize + reads ...", file=sys.stderr)
        completed = subprocess.run(
            [str(feast_python), "-c", FEAST_PHASE, str(ROOT / "feast_repo"), str(parquet), f"{REDIS},db={DB_FEAST}",
             str(args.rounds), json.dumps(SHAPES), str(args.entities)],
            capture_output=True, text=True, env={**os.environ, "FEAST_USAGE": "False"},
        )
        if completed.returncode != 0:
            raise SystemExit(f"Feast phase failed:\n{completed.stderr[-4000:]}")
        results["Feast 0.67"] = json.loads(completed.stdout.strip().splitlines()[-1])

    print(f"\nlatency in ms (p50 / p99), {args.rounds} calls per 1-entity shape, {args.rounds // 4} per 100-entity")
    header = f"{'':<22}" + "".join(f"{f'{c} ent x {w} feat':>20}" for c, w in SHAPES)
    print(header)
    for name, shapes in results.items():
        cells = []
        for count, width in SHAPES:
            p50, p99 = percentiles(shapes[f"{count}x{width}"])
            cells.append(f"{p50 * 1e3:8.3f} / {p99 * 1e3:7.3f}")
        print(f"{name:<22}" + "".join(f"{c:>20}" for c in cells))
    print()
    floor = results["raw pipelined HMGET"]
    for count, width in SHAPES:
        key = f"{count}x{width}"
        ours = percentiles(results["skewless library"][key])[1]
        line = f"{count:>3} entities x {width:>2} features: library p99 = {ours / percentiles(floor[key])[1]:.2f}x " \
               f"the raw floor's (target <= 1)"
        if "Feast 0.67" in results:
            line += f", {percentiles(results['Feast 0.67'][key])[1] / ours:.1f}x better than Feast's p99"
        http_p99 = percentiles(results["skewless HTTP"][key])[1]
        line += f"; HTTP p99 {http_p99 * 1e3:.2f} ms"
        print(line)

    print("\nHTTP throughput, 100 entities x 5 features per request, asyncio load generator on loopback:")
    for workers, connections in ((1, 8), (2, 16)):
        port = free_port()
        server = start_server(project, port, workers=workers)
        try:
            rate, p99 = throughput(port, args.seconds, connections, args.entities)
        finally:
            stop_server(server)
        print(f"  {workers} worker(s), {connections} connections: {rate:,.0f} requests/s "
              f"({rate * 100:,.0f} entity rows/s), p99 {p99 * 1e3:.2f} ms under load")
    profile = ROOT / "server.prof"
    profile.unlink(missing_ok=True)
    port = free_port()
    server = start_server(project, port, profile=profile)
    try:
        throughput(port, args.seconds, 8, args.entities)
    finally:
        stop_server(server)
    print("\nserver CPU profile under that load (1 worker, cProfile of every thread):")
    for line in profile_summary(profile):
        print("  " + line)
    print("(machine: 2 cores shared by the server, the load generator and Redis)")


if __name__ == "__main__":
    main()
