"""Streaming window features: skewless stream vs the raw floor of the same Redis, side by side in one run.

One Redis server (127.0.0.1:6379, database 14), a project with one streamed window_agg model of 10 features
(count, sum, max, avg and last of an amount, over 5 minutes and 1 hour; hop 5m) and one plain model of 10
features for the read comparison, over E entities (default 100k).

- Sustained rate, events/s of skewless stream (apply to tiles with the server-side script, exactly once) vs the raw
  floor (the same entries read and acknowledged with no processing), with one consumer and with two (two processes):
  N events pre-loaded into the stream, then drained (floor: XREADGROUP + XACK); and N events XADDed by a producer
  process while the consumers run (floor: XADD + XREADGROUP + XACK). Three rounds, one and two consumers
  alternating within each: the medians, and each round's two-consumers-over-one ratio as a median and range.
- CPU: µs per event of the skewless consumers (their process time from when they are ready) and of the Redis
  server (INFO cpu), the cores they keep busy, and the rate the machine's cores and the server's one thread bound
  any number of consumers to.
- Delay: a producer process XADDs at half the sustained one-consumer rate while one consumer runs; p50/p99
  milliseconds from XADD (the entry id's time) to the event applied, i.e. servable.
- Reads: p50/p99 of reading 100 entities x 10 window features (merged from tiles at the read's instant) vs 100
  entities x 10 plain features, one library call each, the two kinds alternating (2,000 rounds; 1,000 with --small).
  Each read draws its own 100 entities, and the kind read first alternates: read the same entities, the second
  read would find them in the server's and the client's caches (worth ~80 us of a ~400 us read here).

    python bench/stream_bench.py            # 100k entities, 200k events
    python bench/stream_bench.py --small    # 10k entities, 20k events: well under a minute
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import WORK  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/14"
ROOT = WORK / "stream"
NOW = datetime.now(timezone.utc).replace(tzinfo=None)


def make_project(entities: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = ROOT / "project"
    shutil.rmtree(root, ignore_errors=True)
    (root / "models").mkdir(parents=True)
    (root / "data").mkdir()
    files = {
        "skewless_project.yml": "name: streambench\nprofile: bench\nonline_store:\n  url: " + REDIS_URL + "\n",
        "profiles.yml": "bench:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: target/w.duckdb}\n",
        "entities.yml": "entities:\n  - name: user\n    join_keys: [{name: user_id, type: bigint}]\n",
        "sources.yml": textwrap.dedent("""\
            sources:
              - name: app
                tables:
                  - name: payments
                    file: data/payments.parquet
                    timestamp: event_ts
                    columns:
                      - {name: user_id, type: BIGINT}
                      - {name: event_ts, type: TIMESTAMP}
                      - {name: amount, type: DOUBLE}
                  - name: profiles
                    file: data/profiles.parquet
                    timestamp: event_ts
        """),
        "models/user_windows.sql": textwrap.dedent("""\
            {{ config(entity='user', timestamp='event_ts', online=true, stream='payments') }}
            {{ window_agg(source('app', 'payments'),
                 aggs=[('*', 'count', 'n'), ('amount', 'sum'), ('amount', 'max'), ('amount', 'avg'),
                       ('amount', 'last')], windows=['5m', '1h'], hop='5m', allowed_lateness='10m') }}
        """),
        "models/user_plain.sql": "{{ config(entity='user', timestamp='event_ts', online=true) }}\nselect user_id, "
                                 "event_ts, " + ", ".join(f"f{i} as user__plain_{i}" for i in range(10))
                                 + " from {{ source('app', 'profiles') }}\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    pq.write_table(pa.table({"user_id": pa.array([0], pa.int64()), "event_ts": pa.array([NOW - timedelta(days=1)]),
                             "amount": [1.0]}), root / "data" / "payments.parquet")
    columns = {"user_id": pa.array(range(entities), pa.int64()),
               "event_ts": pa.array([NOW - timedelta(hours=1)] * entities, pa.timestamp("us"))}
    columns.update({f"f{i}": pa.array([random.random() for _ in range(entities)]) for i in range(10)})
    pq.write_table(pa.table(columns), root / "data" / "profiles.parquet")
    return root


def events(count: int, entities: int, seed: int = 1) -> list[dict[str, str]]:
    rng = random.Random(seed)
    start = NOW - timedelta(minutes=5)
    return [{"user_id": str(rng.randrange(entities)),
             "event_ts": (start + timedelta(microseconds=i * 300_000_000 // count)).isoformat(),
             "amount": repr(round(rng.random() * 100, 2))} for i in range(count)]


def _flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _load(key: str, rows: list[dict[str, str]]) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for start in range(0, len(rows), 5000):
        pipe = client.pipeline(transaction=False)
        for row in rows[start:start + 5000]:
            pipe.xadd(key, row)
        pipe.execute()


def _count(done: "multiprocessing.Value", finished: "multiprocessing.Value", events: int, total: int) -> bool:
    """Add a consumer's acknowledged events to the shared count; the one that completes it notes the time (the
    clock is the machine's: perf_counter is CLOCK_MONOTONIC), so that neither a consumer waiting on an empty
    stream nor the processes' exit is timed. True once all are done."""
    with done.get_lock():
        done.value += events
        if done.value >= total and not finished.value:
            finished.value = time.perf_counter()
        return done.value >= total


def _raw_consume(key: str, consumer: str, total: int, done: "multiprocessing.Value", ready: "multiprocessing.Barrier",
                 spent: "multiprocessing.Value", finished: "multiprocessing.Value") -> None:
    """The floor: entries read and acknowledged, nothing else (`spent`: unused, the floor's CPU is not reported)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    ready.wait()
    while done.value < total:
        reply = client.xreadgroup("raw", consumer, {key: ">"}, count=500, block=5)
        if not reply:
            continue
        ids = [entry_id for entry_id, _ in reply[0][1]]
        client.xack(key, "raw", *ids)
        _count(done, finished, len(ids), total)


def _skewless_consume(root: str, consumer: str, total: int, done: "multiprocessing.Value",
                      ready: "multiprocessing.Barrier", spent: "multiprocessing.Value",
                      finished: "multiprocessing.Value") -> None:
    from skewless import FeatureStore

    with FeatureStore(root) as store:
        worker = store.stream_consumer("payments", consumer=consumer, batch_size=500)
        counted = 0

        def stop() -> bool:  # run() is what `skewless stream` runs: it writes a batch while preparing the next
            nonlocal counted
            events, counted = worker.stats.events - counted, worker.stats.events
            return _count(done, finished, events, total)

        ready.wait()
        started = time.process_time()
        worker.run(stop, block_ms=5)  # an empty stream answers within 5 ms: stop() is asked
        with spent.get_lock():
            spent.value += time.process_time() - started


def _server_cpu() -> float:
    """CPU seconds the Redis server has used (it runs on this machine: the bench's URL is local)."""
    import redis

    info = redis.Redis.from_url(REDIS_URL).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def rate(target: object, args: tuple, consumers: int, total: int,
         produce: tuple[str, list[dict[str, str]]] | None = None, cpu: dict[str, float] | None = None) -> float:
    """Events/s of `consumers` processes consuming `total` events, timed from when all are ready: events
    pre-loaded, or with `produce` (stream key, rows) XADDed by a producer process meanwhile. `cpu` gets the
    CPU µs per event of the consumers (from when they are ready) and of the Redis server."""
    done = multiprocessing.Value("q", 0)
    spent = multiprocessing.Value("d", 0.0)
    finished = multiprocessing.Value("d", 0.0)
    ready = multiprocessing.Barrier(consumers + 1)
    shared = (total, done, ready, spent, finished)
    processes = [multiprocessing.Process(target=target, args=(*args, f"c{i}", *shared)) for i in range(consumers)]
    for process in processes:
        process.start()
    server = _server_cpu()
    ready.wait()
    started = time.perf_counter()
    if produce is not None:
        processes.append(multiprocessing.Process(target=_load, args=produce))
        processes[-1].start()
    for process in processes:
        process.join()
    elapsed = finished.value - started
    if cpu is not None:
        cpu["clients"] = spent.value / total * 1e6
        cpu["server"] = (_server_cpu() - server) / total * 1e6
    return total / elapsed


def sustained(root: Path, rows: list[dict[str, str]], rounds: int) -> dict[Any, list[Any]]:
    """Per mode (pre-loaded: XREADGROUP + XACK; produced: XADD + XREADGROUP + XACK at once) and number of
    consumers, the rates of the raw floor and of skewless stream in each of `rounds` rounds: one and two consumers
    alternate within a round, so that both see the same moments of the machine."""
    import redis

    from skewless.online.events import stream_key

    client = redis.Redis.from_url(REDIS_URL)
    key = stream_key("streambench", "payments")
    results: dict[Any, list[Any]] = {}
    for mode in ("pre-loaded", "produced"):
        for _ in range(rounds):
            for consumers in (1, 2):
                _flush()
                if mode == "pre-loaded":
                    _load("raw:payments", rows)
                client.xgroup_create("raw:payments", "raw", id="0", mkstream=True)
                results.setdefault((mode, "raw", consumers), []).append(
                    rate(_raw_consume, ("raw:payments",), consumers, len(rows),
                         ("raw:payments", rows) if mode == "produced" else None))
                _flush()
                if mode == "pre-loaded":
                    _load(key, rows)
                cpu: dict[str, float] = {}
                results.setdefault((mode, "skewless", consumers), []).append(
                    rate(_skewless_consume, (str(root),), consumers, len(rows),
                         (key, rows) if mode == "produced" else None, cpu))
                results.setdefault((mode, "cpu", consumers), []).append(cpu)
    return results


def _produce_paced(key: str, rows: list[dict[str, str]], per_second: float) -> None:
    """XADD the rows at `per_second`, 100 pipelines a second (a producer is a process of its own)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    chunk = max(1, int(per_second / 100))
    started = time.perf_counter()
    for index in range(0, len(rows), chunk):
        pipe = client.pipeline(transaction=False)
        for row in rows[index:index + chunk]:
            pipe.xadd(key, row)
        pipe.execute()
        wait = started + (index + chunk) / per_second - time.perf_counter()
        if wait > 0:
            time.sleep(wait)


def delay(root: Path, rows: list[dict[str, str]], per_second: float) -> tuple[int | None, int | None]:
    """p50/p99 ms from XADD to applied, a producer process XADDing at `per_second` while one consumer runs."""
    from skewless import FeatureStore
    from skewless.online.events import stream_key

    _flush()
    with FeatureStore(root) as store:
        worker = store.stream_consumer("payments", consumer="d", batch_size=500)
        stop = threading.Event()
        thread = threading.Thread(target=lambda: worker.run(stop.is_set, block_ms=5))
        thread.start()
        producer = multiprocessing.Process(target=_produce_paced,
                                           args=(stream_key("streambench", "payments"), rows, per_second))
        producer.start()
        producer.join()
        deadline = time.monotonic() + 30
        while worker.stats.events < len(rows) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        thread.join()
        return worker.stats.delay_ms(0.5), worker.stats.delay_ms(0.99)


def reads(root: Path, entities: int, rounds: int) -> dict[str, tuple[float, float]]:
    from skewless import FeatureStore
    from skewless.online.reader import OnlineReader

    with FeatureStore(root) as store:
        reader = OnlineReader(store.serving_catalog(), store.online_store)
        window = [f"user__{n}__{w}" for n in ("n", "amount_sum", "amount_max", "amount_avg", "amount_last")
                  for w in ("5m", "1h")]
        plain = [f"user__plain_{i}" for i in range(10)]
        rng = random.Random(2)
        times: dict[str, list[float]] = {"window": [], "plain": []}
        kinds = [("window", window), ("plain", plain)]
        for _ in range(rounds):  # alternating, so that both kinds see the same moments of the machine
            kinds.reverse()
            for label, features in kinds:
                rows = [{"user_id": rng.randrange(entities)} for _ in range(100)]
                started = time.perf_counter()
                reader.read(rows, features)
                times[label].append(time.perf_counter() - started)
        result = {}
        for label, taken in times.items():
            taken.sort()
            result[label] = (statistics.median(taken) * 1000, taken[int(0.99 * len(taken))] * 1000)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="10k entities, 20k events")
    options = parser.parse_args()
    entities, count = (10_000, 20_000) if options.small else (100_000, 200_000)
    from skewless import FeatureStore

    root = make_project(entities)
    rows = events(count, entities)
    print(f"stream bench: {entities:,} entities, {count:,} events, 10 window features (5 aggregations x 2 windows)")
    _flush()
    with FeatureStore(root) as store:
        assert store.run().ok
    rounds = 3
    results = sustained(root, rows, rounds)
    median = statistics.median
    print(f"\nsustained rate (events/s, the median of {rounds} rounds; pre-loaded: the events are in the stream before"
          "\nthe consumers start, the floor is XREADGROUP + XACK; produced: a producer XADDs them meanwhile, the floor"
          "\nis XADD + XREADGROUP + XACK)")
    print(f"  {'events':<12}{'consumers':>10}{'raw floor':>14}{'skewless':>14}{'skewless/raw':>14}")
    for mode in ("pre-loaded", "produced"):
        for consumers in (1, 2):
            raw, ours = median(results[mode, "raw", consumers]), median(results[mode, "skewless", consumers])
            print(f"  {mode:<12}{consumers:>10}{raw:>14,.0f}{ours:>14,.0f}{ours / raw:>13.0%}")
        scaling = [two / one for one, two in zip(results[mode, "skewless", 1], results[mode, "skewless", 2],
                                                 strict=True)]
        floor = [two / one for one, two in zip(results[mode, "raw", 1], results[mode, "raw", 2], strict=True)]
        print(f"  {mode:<12} two consumers / one, per round: skewless {_spread(scaling)}, raw floor {_spread(floor)}")
    cores = os.cpu_count() or 1
    print(f"\nCPU per event of skewless stream (pre-loaded, medians; us), {cores} cores here")
    print(f"  {'consumers':>10}{'their CPU':>12}{'redis-server':>14}{'cores busy':>12}{'bound ev/s':>12}")
    bounds = {}
    for consumers in (1, 2):
        runs = results["pre-loaded", "cpu", consumers]
        clients, server = median(c["clients"] for c in runs), median(c["server"] for c in runs)
        busy = median((c["clients"] + c["server"]) * r / 1e6
                      for c, r in zip(runs, results["pre-loaded", "skewless", consumers], strict=True))
        bounds[consumers] = min(cores / (clients + server), 1 / server) * 1e6
        print(f"  {consumers:>10}{clients:>12.1f}{server:>14.1f}{busy:>12.2f}{bounds[consumers]:>12,.0f}")
    print("  bound: events/s if the cores did nothing but this, shared by the consumers and the server, and the\n"
          "  server's one thread did its share: at these costs, however many consumers")
    print(f"  two consumers can reach {bounds[2] / median(results['pre-loaded', 'skewless', 1]):.2f}x one here at most "
          f"(their bound over one consumer's rate)")

    half = median(results["pre-loaded", "skewless", 1]) / 2
    p50, p99 = delay(root, events(min(count, int(half * 10)), entities, seed=3), half)
    print(f"\nXADD to servable at {half:,.0f} events/s (half the sustained rate): p50 {p50} ms, p99 {p99} ms")

    _flush()
    with FeatureStore(root) as store:
        assert store.run().ok
    _load_for_reads(root, rows)
    timings = reads(root, entities, 1000 if options.small else 2000)
    (w50, w99), (p50r, p99r) = timings["window"], timings["plain"]
    print("\nreads of 100 entities x 10 features (ms)")
    print(f"  {'':<16}{'p50':>8}{'p99':>8}")
    print(f"  {'window features':<16}{w50:>8.2f}{w99:>8.2f}")
    print(f"  {'plain features':<16}{p50r:>8.2f}{p99r:>8.2f}")
    print(f"  window / plain: p50 {w50 / p50r:.2f}x, p99 {w99 / p99r:.2f}x")


def _spread(ratios: list[float]) -> str:
    """Ratios as their median and range: the machine's speed moves between rounds."""
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def _load_for_reads(root: Path, rows: list[dict[str, str]]) -> None:
    """Tiles for the read comparison: the events applied by one consumer."""
    from skewless import FeatureStore
    from skewless.online.events import stream_key

    _load(stream_key("streambench", "payments"), rows)
    with FeatureStore(root) as store:
        worker = store.stream_consumer("payments", consumer="r", batch_size=1000)
        while worker.step(block_ms=10):
            pass


if __name__ == "__main__":
    main()
