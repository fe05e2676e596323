"""The HTTP feature server: answers equal to the library's, clear 4xx errors, limits, metrics, manifest reloads,
and a real `skewless serve` process over a socket."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.online import jsonform
from skewless.online.events import stream_key
from skewless.serving.server import Limits


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, redis_url_module):
    import shutil

    from conftest import EXAMPLE

    project = tmp_path_factory.mktemp("serve") / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "*.duckdb*"))
    with FeatureStore(project) as store:
        assert store.run().ok
    return project


@pytest.fixture(scope="module")
def redis_url_module():
    """One Redis database for the module (the per-test fixture would flush it between tests)."""
    from conftest import _redis_server_up

    mp = pytest.MonkeyPatch()
    if _redis_server_up():
        mp.setenv("SKEWLESS_REDIS_URL", "redis://127.0.0.1:6379/8")
        import redis

        redis.Redis.from_url("redis://127.0.0.1:6379/8").flushdb()
    yield os.environ.get("SKEWLESS_REDIS_URL")
    mp.undo()


@pytest.fixture
def redis_url(redis_url_module, monkeypatch):  # overrides the autouse per-test fixture for this module
    if redis_url_module:
        monkeypatch.setenv("SKEWLESS_REDIS_URL", redis_url_module)
    return redis_url_module


@pytest.fixture
def server(example_run):
    instance = FeatureStore(example_run).feature_server(Limits(max_body_bytes=20_000, max_entities=50),
                                                        reload_interval=0)
    yield instance
    instance.close()


@pytest.fixture
def client(server):
    with TestClient(server.app()) as test_client:
        yield test_client


def test_answers_equal_the_library(client, example_run):
    body = {"features": ["user__txn_count__7d", "merchant__category", "user__amount_avg__30d"],
            "entities": {"user_id": [3, 7, 999_999], "merchant_id": [1, 2, 3]}}
    response = client.post("/get-online-features", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    with FeatureStore(example_run) as store:
        expected = store.get_online_features(
            [{"user_id": u, "merchant_id": m} for u, m in zip([3, 7, 999_999], [1, 2, 3], strict=True)],
            body["features"])
    assert payload["metadata"]["feature_names"] == list(expected)
    assert [r["values"] for r in payload["results"]] == [expected[name] for name in expected]
    names = payload["metadata"]["feature_names"]
    assert names[:2] == ["user_id", "merchant_id"]  # the entity columns first, as Feast answers
    assert payload["results"][names.index("user__txn_count__7d")]["values"][2] is None  # an unknown user: null


def test_feature_service_and_on_demand(client, example_run):
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    body = {"feature_service": "fraud_v2",
            "entities": {"user_id": [3, 4], "merchant_id": [7, 8], "amount": [25.0, 0],
                         "channel": ["web", "pos"],
                         "event_ts": [(now - timedelta(hours=1)).isoformat(), now.isoformat()]}}
    response = client.post("/get-online-features", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    values = dict(zip(payload["metadata"]["feature_names"], [r["values"] for r in payload["results"]], strict=True))
    assert values["payment__context"][1] == "in_person"
    with FeatureStore(example_run) as store:
        rows = [{"user_id": 3, "merchant_id": 7, "amount": 25.0, "channel": "web",
                 "event_ts": now - timedelta(hours=1)},
                {"user_id": 4, "merchant_id": 8, "amount": 0, "channel": "pos", "event_ts": now}]
        expected = store.get_online_features(rows, ["service:fraud_v2"])
    for name, column in expected.items():  # the same values, in the documented JSON form (decimals as text)
        assert values[name] == json.loads(jsonform.dumps(jsonform.json_column(column))), name
    assert any(isinstance(v, Decimal) for column in expected.values() for v in column)


def test_json_forms_both_ways(client, example_run):
    # A double request field may be sent as "NaN" / "Infinity" (JSON has no such numbers), as the library takes
    # float('nan'); decimals come back as exact text; timestamps as ISO 8601.
    body = {"features": ["payment__amount_to_avg__30d", "user__large_txn_count__30d", "user__signup_ts"],
            "entities": {"user_id": [3, 3, 3], "amount": ["NaN", "Infinity", 2.5], "channel": ["web"] * 3,
                         "event_ts": ["2026-01-01T00:00:00"] * 3}}
    response = client.post("/get-online-features", json=body)
    assert response.status_code == 200, response.text
    values = dict(zip(response.json()["metadata"]["feature_names"],
                      [r["values"] for r in response.json()["results"]], strict=True))
    with FeatureStore(example_run) as store:
        rows = [{"user_id": 3, "amount": a, "channel": "web", "event_ts": datetime(2026, 1, 1)}
                for a in (math.nan, math.inf, 2.5)]
        expected = store.get_online_features(rows, body["features"])
    assert values["payment__amount_to_avg__30d"][:2] == [jsonform.json_value(v)
                                                         for v in expected["payment__amount_to_avg__30d"][:2]]
    assert values["user__large_txn_count__30d"] == [format(v, "f") for v in expected["user__large_txn_count__30d"]]
    signup = values["user__signup_ts"][0]
    assert signup.startswith(expected["user__signup_ts"][0].isoformat()[:10]) and "T" in signup


@pytest.mark.parametrize(("body", "status", "message"), [
    ("not json", 400, "not JSON"),
    ([1, 2], 400, "JSON object"),
    ({"entities": {"user_id": [1]}}, 400, "either 'features'"),
    ({"features": "user__txn_count__7d", "entities": {"user_id": [1]}}, 400, "non-empty list"),
    ({"features": ["user__txn_count__7d"], "entities": {"user_id": 1}}, 400, "list of values"),
    ({"features": ["user__txn_count__7d"], "entities": {"user_id": [1], "merchant_id": [1, 2]}}, 400,
     "different lengths"),
    ({"features": ["user__txn_count_7d"], "entities": {"user_id": [1]}}, 404, "did you mean"),
    ({"feature_service": "nope", "entities": {"user_id": [1]}}, 404, "no feature service"),
    ({"features": ["user__txn_count__7d"], "entities": {"merchant_id": [1]}}, 400, "lack join key"),
    ({"features": ["payment__context"], "entities": {"user_id": [1], "merchant_id": [1]}}, 400,
     "lack request field"),
    ({"features": ["payment__amount_to_avg__30d"], "entities": {"user_id": [1], "amount": ["x"],
                                                                 "channel": ["web"], "event_ts": [None]}},
     400, "expected a number"),
    ({"features": ["user__txn_count__7d"], "entities": {"user_id": list(range(51))}}, 413, "at most 50"),
    ({"features": ["user__txn_count__7d"], "entities": {"user_id": list(range(5000))}}, 413, "bytes"),
    ({"features": ["user__txn_count__7d"], "entities": {"user_id": [1]}, "extra": 1}, 400, "unknown key"),
])
def test_bad_requests_get_clear_errors(client, body, status, message):
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = client.post("/get-online-features", content=content)
    assert response.status_code == status, response.text
    assert message in response.json()["error"] + (response.json().get("hint") or "")


def test_health_features_and_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    catalog = client.get("/features").json()
    names = {row["name"] for row in catalog["features"]}
    assert {"user__txn_count__7d", "payment__context"} <= names
    assert "payment__context" in catalog["feature_services"]["fraud_v2"]
    for _ in range(3):
        client.post("/get-online-features", json={"features": ["user__txn_count__7d"], "entities": {"user_id": [1]}})
    client.post("/get-online-features", content=b"{")
    metrics = client.get("/metrics").text
    assert 'skewless_requests_total{endpoint="get-online-features",status="200"} 3.0' in metrics
    assert 'skewless_requests_total{endpoint="get-online-features",status="400"} 1.0' in metrics
    assert 'skewless_request_seconds_count{endpoint="get-online-features"} 4.0' in metrics
    assert "skewless_request_seconds_bucket" in metrics


def test_health_is_503_when_the_online_store_is_down(server, monkeypatch):
    def refuse() -> None:
        raise redis.exceptions.ConnectionError("refused")

    monkeypatch.setattr(server.online_store.client, "ping", refuse)
    status, payload = server.health()
    assert status == 503 and "refused" in payload["error"]


def test_reloads_a_changed_manifest_and_keeps_serving_on_a_bad_one(server, example_run):
    manifest_path = example_run / "target" / "manifest.json"
    original = manifest_path.read_text()
    assert not server.reload()  # unchanged: nothing to do
    try:
        manifest = json.loads(original)
        manifest["feature_services"]["tiny"] = {"name": "tiny", "features": ["user__txn_count__1d"]}
        manifest_path.write_text(json.dumps(manifest))
        assert server.reload()
        assert server.catalog.services["tiny"] == ["user__txn_count__1d"]
        manifest_path.write_text("{ half written")
        server._reload_quietly()
        assert "tiny" in server.catalog.services  # the old catalog still serves
    finally:
        manifest_path.write_text(original)
        server.reload(force=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_skewless_serve_over_a_socket_reloads_on_sighup(example_run, redis_url):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "skewless", "serve", "--project-dir", str(example_run), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
                assert time.time() < deadline, "server did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        body = {"features": ["user__txn_count__7d"], "entities": {"user_id": [3]}}
        answer = httpx.post(f"http://127.0.0.1:{port}/get-online-features", json=body, timeout=5)
        assert answer.status_code == 200 and answer.json()["metadata"]["feature_names"] == ["user_id",
                                                                                            "user__txn_count__7d"]
        loads = _metric(port, "skewless_manifest_loads_total")
        process.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while _metric(port, "skewless_manifest_loads_total") == loads:
            assert time.time() < deadline, "SIGHUP did not reload the manifest"
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_online_store_failure_is_a_503_not_a_client_error(server, client, monkeypatch):
    from skewless.core.errors import AdapterError

    def down(requests):  # noqa: ANN001, ANN202
        raise AdapterError("online store redis://127.0.0.1:6379/8: ConnectionError: refused")

    monkeypatch.setattr(server.online_store, "read", down)
    response = client.post("/get-online-features", json={"features": ["user__txn_count__7d"],
                                                          "entities": {"user_id": [1]}})
    assert response.status_code == 503 and "refused" in response.json()["error"]


def test_an_old_manifest_is_written_again_at_start(example_run):
    manifest_path = example_run / "target" / "manifest.json"
    original = manifest_path.read_text()
    try:
        old = json.loads(original)
        del old["feature_services"]  # as a manifest of the previous version
        manifest_path.write_text(json.dumps(old))
        server = FeatureStore(example_run).feature_server(reload_interval=0)
        try:
            assert "fraud_v2" in server.catalog.services
            assert "feature_services" in json.loads(manifest_path.read_text())
        finally:
            server.close()
    finally:
        manifest_path.write_text(original)


def test_online_store_reads_run_off_the_event_loop(server, client, monkeypatch):
    import asyncio

    original = server.online_store.read
    seen = []

    def read(requests):  # noqa: ANN001, ANN202
        try:
            asyncio.get_running_loop()
            seen.append("event loop")
        except RuntimeError:
            seen.append("worker thread")
        return original(requests)

    monkeypatch.setattr(server.online_store, "read", read)
    response = client.post("/get-online-features", json={"features": ["user__txn_count__7d"],
                                                          "entities": {"user_id": [1]}})
    assert response.status_code == 200 and seen == ["worker thread"]


def test_a_bad_manifest_reload_is_logged(server, example_run, caplog):
    manifest_path = example_run / "target" / "manifest.json"
    original = manifest_path.read_text()
    try:
        manifest_path.write_text("{ not json")
        with caplog.at_level("WARNING", logger="skewless.serve"):
            server._reload_quietly()
        assert "manifest not reloaded" in caplog.text
    finally:
        manifest_path.write_text(original)


def test_cli_json_is_the_same_json_form(example_run):
    def refuse(constant: str) -> None:
        raise AssertionError(f"bare {constant} is not JSON")

    result = CliRunner().invoke(cli, ["get", "user", "3", "--project-dir", str(example_run), "-o", "json",
                                      "-f", "user__signup_ts", "-f", "user__large_txn_count__30d"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output, parse_constant=refuse)
    with FeatureStore(example_run) as store:
        expected = store.get_online_features([{"user_id": 3}], ["user__signup_ts", "user__large_txn_count__30d"])
    assert data["user__signup_ts"] == [expected["user__signup_ts"][0].isoformat()]
    assert data["user__large_txn_count__30d"] == [format(expected["user__large_txn_count__30d"][0], "f")]


def test_odd_requests_are_client_errors_and_every_failure_is_counted(client, server, monkeypatch):
    empty = client.post("/get-online-features", json={"features": ["user__txn_count__7d"], "entities": {"user_id": []}})
    assert empty.status_code == 200 and empty.json()["results"][-1]["values"] == []
    bad_time = client.post("/get-online-features", json={
        "features": ["payment__account_age_days"],
        "entities": {"user_id": [1], "amount": [1.0], "channel": ["web"], "event_ts": ["2026-13-45"]}})
    assert bad_time.status_code == 400 and "'2026-13-45' is not a TIMESTAMP" in bad_time.json()["error"]

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.reader, "read_columns", broken)
    failed = client.post("/get-online-features", json={"features": ["user__txn_count__7d"],
                                                        "entities": {"user_id": [1]}})
    assert failed.status_code == 500 and "internal error" in failed.json()["error"]
    metrics = client.get("/metrics").text
    assert 'skewless_requests_total{endpoint="get-online-features",status="500"} 1.0' in metrics
    assert 'status="400"' in metrics


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=6),
                     st.sampled_from(["2026-11-28T10:00:00Z", "2026-13-45", "1e309", "NaN", "", "web"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=4), inner, max_size=3), max_leaves=6)
_FEATURES = ["user__txn_count__7d", "merchant__category", "payment__context", "payment__amount_to_avg__30d",
             "user__payments__1h", "user__merchants__7d", "user__spend__5m"]
_KEYS = ["user_id", "merchant_id", "amount", "channel", "event_ts", "txn_id"]


@st.composite
def _near_valid(draw: st.DrawFn) -> tuple[str, object]:
    """A request body of the right shape with values of any kind: features and entities, or stream events."""
    count = draw(st.integers(0, 3))
    column = st.lists(st.integers(-5, 10**6) | _SCALARS, min_size=count, max_size=count)
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(_KEYS), unique=True, max_size=5))
        return "/get-online-features", {
            "features": draw(st.lists(st.sampled_from(_FEATURES), min_size=1, max_size=3, unique=True)),
            "entities": {key: draw(column) for key in keys}}
    events = st.dictionaries(st.sampled_from([*_KEYS, "created_ts", "is_fraud", "x"]), _SCALARS, max_size=8)
    return "/push", {"stream": "transactions", "events": draw(st.lists(events, max_size=3))}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=st.one_of(_near_valid(), st.tuples(st.sampled_from(["/get-online-features", "/push"]), _VALUES)))
def test_no_body_is_a_server_error(client, request):
    """Bodies of the right shape with values of any kind, and JSON of any shape: answered, or a 4xx that says
    what is wrong; never a 500."""
    path, body = request
    response = client.post(path, content=json.dumps(body).encode())
    assert response.status_code < 500, (path, body, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]


def test_serve_refuses_a_bad_or_busy_port(example_run):
    bad = CliRunner().invoke(cli, ["serve", "--project-dir", str(example_run), "--port", "99999"])
    assert bad.exit_code == 2 and "99999 is not in the range" in bad.output
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        taken = CliRunner().invoke(cli, ["serve", "--project-dir", str(example_run), "--port", str(port)])
    assert taken.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.output, taken.output
    assert "Traceback" not in taken.output


def test_a_corrupt_manifest_at_start_is_written_again(example_run):
    manifest_path = example_run / "target" / "manifest.json"
    original = manifest_path.read_text()
    try:
        manifest_path.write_text("{ not json")
        server = FeatureStore(example_run).feature_server(reload_interval=0)
        try:
            assert "fraud_v2" in server.catalog.services
        finally:
            server.close()
    finally:
        manifest_path.write_text(original)


@contextlib.contextmanager
def served(example_run, limits):
    """A real server on a loopback socket (for what an in-process client cannot show: streaming, stalls)."""
    import threading

    import uvicorn

    server = FeatureStore(example_run).feature_server(limits, reload_interval=0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = uvicorn.Server(uvicorn.Config(server.app(), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 10
        while not runner.started and time.time() < deadline:
            time.sleep(0.05)
        yield port
    finally:
        runner.should_exit = True
        thread.join(timeout=10)
        server.close()


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(example_run):
    # 5 chunks of 5,000 bytes against a 20,000-byte limit, and the body never ends: the answer comes anyway.
    with served(example_run, Limits(max_body_bytes=20_000)) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                           b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            connection.sendall(b"1388\r\n" + b" " * 5000 + b"\r\n")
        answer = connection.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413") and "over 20000 bytes" in answer, answer


def test_a_slow_body_times_out(example_run):
    # The client sends half its body and stalls; the server answers 408 on its own.
    with served(example_run, Limits(body_seconds=0.3)) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                           b"\r\nContent-Length: 100\r\n\r\n{\"features\": ")
        started = time.time()
        answer = connection.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408") and "did not arrive within 0.3 s" in answer, answer
    assert time.time() - started < 3


@pytest.mark.parametrize(("key", "message"), [
    (True, "True is not a BIGINT"), ("nan", "'nan' is not a BIGINT"), ({"a": 1}, "is not a BIGINT"),
    ([1], "is not a BIGINT"), (2**130, "is not a BIGINT"), ("abc", "'abc' is not a BIGINT"),
])
def test_keys_that_are_not_of_the_key_type_are_400(client, key, message):
    response = client.post("/get-online-features", json={"features": ["user__txn_count__7d"],
                                                          "entities": {"user_id": [key]}})
    assert response.status_code == 400 and message in response.json()["error"], response.text


def test_a_null_key_matches_nothing_and_a_numeric_text_key_is_the_number(client):
    response = client.post("/get-online-features", json={"features": ["user__txn_count__7d"],
                                                          "entities": {"user_id": [None, 3, "3", 3.0]}})
    assert response.status_code == 200, response.text
    values = response.json()["results"][-1]["values"]
    assert values[0] is None and values[1] == values[2] == values[3] is not None


def test_push_appends_checked_events_and_metrics_show_the_stream(client, example_run):
    with FeatureStore(example_run) as store:  # an empty stream: the module's other tests push events too
        key = stream_key(store.config.name, "transactions")
        store.online_store.client.delete(key, key + ":late", key + ":watermark")
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    event = {"txn_id": 1, "user_id": 3, "merchant_id": 7, "amount": 12.5, "channel": "web",
             "event_ts": now.isoformat(), "created_ts": now.isoformat(), "is_fraud": False}
    response = client.post("/push", json={"stream": "transactions", "events": [event, {**event, "txn_id": 2}]})
    assert response.status_code == 200, response.text
    assert len(response.json()["ids"]) == 2
    bad = client.post("/push", json={"stream": "transactions", "events": [{**event, "amount": "lots"}]})
    assert bad.status_code == 400 and "column 'amount': 'lots' is not a DOUBLE value" in bad.json()["error"]
    assert client.post("/push", json={"stream": "nope", "events": [event]}).status_code == 404
    assert client.post("/push", json={"stream": "transactions", "events": []}).status_code == 400
    # Consumed by `skewless stream`, the window features of user 3 see both payments at once.
    with FeatureStore(example_run) as store:
        consumer = store.stream_consumer("transactions", consumer="server-test")
        while consumer.step(block_ms=10):
            pass
        online = store.get_online_features([{"user_id": 3}], ["user__payments__5m", "user__spend__5m"])
    assert online == {"user_id": [3], "user__payments__5m": [2], "user__spend__5m": [25.0]}
    metrics = client.get("/metrics").text
    assert 'skewless_stream_length{stream="transactions"} 2.0' in metrics
    assert 'skewless_stream_pending{stream="transactions"} 0.0' in metrics
    assert "skewless_pushed_events_total 2.0" in metrics
