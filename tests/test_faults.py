"""Faults with real processes: a `redis-server` killed during the online write, restored from an older snapshot,
restarted under serving load; the warehouse file locked by another process or its disk full mid-run.

Each test starts (and kills) its own servers on free loopback ports; the shared ones are never touched.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis_processes import RedisProcess, free_port
from warehouse_state import warehouse_state

from skewless import FeatureStore
from skewless.adapters.redis_online import RedisOnlineStore

TEMP_SUFFIX = "__skewless_tmp"


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.kill()


def every_online_value_is_the_newest(project: Path) -> None:
    from test_online import assert_every_online_value_is_the_newest

    with FeatureStore(project) as store:
        assert_every_online_value_is_the_newest(store)


# -- the online write --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("appendonly", [True, False], ids=["restarted-with-its-data", "restarted-empty"])
def test_redis_killed_during_the_online_write_then_a_rerun_completes(example_copy, tmp_path, monkeypatch,
                                                                     appendonly):
    server = RedisProcess(tmp_path / "redis", appendonly=appendonly)
    server.start()
    monkeypatch.setenv("SKEWLESS_REDIS_URL", server.url)
    batches = RedisOnlineStore._batches
    sent: list[int] = []

    def batches_then_die(self, rows):  # noqa: ANN001, ANN202
        for batch in batches(self, rows):
            sent.append(len(batch))
            if len(sent) == 4:
                server.kill()  # between two batches of one model's write
            yield batch

    monkeypatch.setattr(RedisOnlineStore, "_batches", batches_then_die)
    try:
        with FeatureStore(example_copy) as store:
            first = store.run()
        assert [r.status for r in first.results] == ["success"] * len(first.results)  # the warehouse is built
        assert "online" in first.hook_errors and not first.ok
        results = json.loads((example_copy / "target" / "run_results.json").read_text())
        assert results["success"] is False and results["hook_errors"]["online"]
        monkeypatch.setattr(RedisOnlineStore, "_batches", batches)
        server.start()
        with FeatureStore(example_copy) as store:
            second = store.run()
        assert second.ok, second.hook_errors
        every_online_value_is_the_newest(example_copy)  # every entity at its newest value: none regressed or lost
    finally:
        server.kill()


def test_redis_restored_from_an_older_snapshot_is_sent_everything(make_project, tmp_path, monkeypatch):
    from test_online import NO_TTL_MODEL

    server = RedisProcess(tmp_path / "redis", appendonly=False)
    server.start()
    monkeypatch.setenv("SKEWLESS_REDIS_URL", server.url)
    try:
        root = make_project({"models/user_amounts.sql": NO_TTL_MODEL})
        with FeatureStore(root) as store:
            assert store.run().ok
        server.client().save()
        snapshot = (server.directory / "dump.rdb").read_bytes()
        events = root / "data" / "events.csv"
        events.write_text(events.read_text().replace("2,10,4.0,", "2,10,40.0,"))
        with FeatureStore(root) as store:
            assert store.run().hooks["online"]["user_amounts"]["sent"] == 1
        server.kill()
        (server.directory / "dump.rdb").write_bytes(snapshot)  # the operator restores last night's backup
        server.start()
        with FeatureStore(root) as store:
            assert store.get_online_features([{"user_id": 2}], ["user__last_amount"])["user__last_amount"] == [4.0]
            again = store.run()  # the warehouse did not change; the store is older than what was last written
            assert again.hooks["online"]["user_amounts"]["sent"] == 2
            assert store.get_online_features([{"user_id": 2}], ["user__last_amount"])["user__last_amount"] == [40.0]
    finally:
        server.kill()


# -- the warehouse -----------------------------------------------------------------------------------------------


def skewless(project: Path, *arguments: str, limit_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # in the child: writes past the limit fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    return subprocess.run([sys.executable, "-m", "skewless", *arguments, "--project-dir", str(project)],
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit if limit_file_bytes is not None else None)


@pytest.fixture
def built_example(example_copy, redis_url) -> Path:
    result = skewless(example_copy, "run")
    assert result.returncode == 0, result.stdout + result.stderr
    return example_copy


def test_a_full_disk_mid_run_keeps_every_table_and_says_the_run_failed(built_example):
    database = built_example / "target" / "payments.duckdb"
    before = warehouse_state(database)
    (built_example / "data" / "transactions.parquet").touch()
    result = skewless(built_example, "run", "--full-refresh", limit_file_bytes=database.stat().st_size)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "Internal error" not in output, output
    assert "File too large" in output or "file size" in output.lower() or "No space" in output, output
    assert "ERROR" in output and " OK " in output, output  # it failed mid-run, after some models were built
    after = warehouse_state(database)
    bookkeeping = "skewless_state.online_state"  # when the online write last ran: the hook ran after the failure
    assert after.pop(bookkeeping)[:2] == before.pop(bookkeeping)[:2]
    assert after == before  # every table as the last good run left it (rebuilt ones hold the same rows)
    assert not [name for name in after if name.endswith(TEMP_SUFFIX)]
    results = json.loads((built_example / "target" / "run_results.json").read_text())
    assert results["success"] is False


def test_a_warehouse_file_locked_by_another_process_is_a_clear_error(built_example):
    database = built_example / "target" / "payments.duckdb"
    before = warehouse_state(database)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time\n"
                               f"c = duckdb.connect({str(database)!r})\nprint('ready', flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = skewless(built_example, "run")
        output = result.stdout + result.stderr
        assert result.returncode == 1, output  # the environment, not the project: exit 1 as a failed run
        assert "Traceback" not in output and "Internal error" not in output, output
        assert "lock" in output.lower() and str(holder.pid) in output, output
    finally:
        holder.kill()
        holder.wait()
    assert warehouse_state(database) == before
    results = json.loads((built_example / "target" / "run_results.json").read_text())
    assert results["success"] is False


# -- serving through Redis restarts ------------------------------------------------------------------------------


def test_the_server_under_load_rides_out_redis_restarts(example_copy, redis_process, monkeypatch):
    monkeypatch.setenv("SKEWLESS_REDIS_URL", redis_process.url)
    body = {"features": ["user__txn_count__7d", "merchant__category"],
            "entities": {"user_id": [3, 7], "merchant_id": [1, 2]}}
    with FeatureStore(example_copy) as store:
        assert store.run().ok
        expected = store.get_online_features([{"user_id": 3, "merchant_id": 1}, {"user_id": 7, "merchant_id": 2}],
                                             body["features"])
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "skewless", "serve", "--project-dir", str(example_copy),
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "SKEWLESS_REDIS_URL": redis_process.url})
    base = f"http://127.0.0.1:{port}"
    answers: list[tuple[float, float, int, bool]] = []  # (sent, answered, status, values right)
    health: list[tuple[float, int]] = []
    stop = threading.Event()

    def load() -> None:  # a bounded load: four clients, one request in flight each
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                sent = time.monotonic()
                response = client.post(f"{base}/get-online-features", json=body)
                right = response.status_code == 200 and [r["values"] for r in response.json()["results"]][2:] == \
                    [expected[f] for f in body["features"]]
                answers.append((sent, time.monotonic(), response.status_code, right))

    try:
        _wait_for(base, process)
        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        outages: list[tuple[float, float]] = []
        for _ in range(3):
            time.sleep(0.6)
            down = time.monotonic()
            redis_process.kill()
            time.sleep(0.3)
            health.append((time.monotonic(), httpx.get(f"{base}/health", timeout=5).status_code))
            time.sleep(0.5)
            restarting = time.monotonic()
            redis_process.start()
            outages.append((down, restarting, time.monotonic()))
            time.sleep(1.2)
            health.append((time.monotonic(), httpx.get(f"{base}/health", timeout=5).status_code))
        stop.set()
        for client in clients:
            client.join(timeout=10)
        descriptors = len(os.listdir(f"/proc/{process.pid}/fd"))
        connected = redis_process.client().info("clients")["connected_clients"]
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=10)
    assert answers and {status for _, _, status, _ in answers} <= {200, 503}, {a[2] for a in answers}
    assert all(right for _, _, status, right in answers if status == 200)  # a 200 always holds the right values
    for down, restarting, up in outages:
        during = [status for sent, answered, status, _ in answers if down + 0.1 <= sent and answered < restarting]
        after = [status for sent, _, status, _ in answers if up + 1.0 <= sent <= up + 1.2]
        assert during and set(during) == {503}, during  # the outage is a 503, not a hang or a 500
        assert after and set(after) == {200}, after  # back within a second of Redis returning
    assert [status for _, status in health] == [503, 200] * 3  # /health tells the truth throughout
    assert descriptors < 100 and connected <= 20, (descriptors, connected)  # connections stay bounded


def _wait_for(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "the server exited at start"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)
