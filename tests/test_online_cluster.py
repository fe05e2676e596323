"""The example project's online store on a real Redis Cluster (three masters): every value written and read as on
one server, reads of 1 and 100 entities, the HTTP server, and a flushed cluster sent everything again."""

from __future__ import annotations

import shutil

import pytest
from starlette.testclient import TestClient
from test_online import assert_every_online_value_is_the_newest

from skewless import FeatureStore
from skewless.serving.server import Limits


@pytest.fixture
def cluster_project(redis_cluster, tmp_path, monkeypatch):
    from conftest import EXAMPLE

    redis_cluster.flush()
    root = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    project = root / "skewless_project.yml"
    text = project.read_text(encoding="utf-8")
    start = text.index("online_store:")
    end = text.index("defaults:")
    project.write_text(text[:start] + f"online_store:\n  type: redis\n  cluster: true\n  url: {redis_cluster.url}\n"
                       + text[end:], encoding="utf-8")
    monkeypatch.delenv("SKEWLESS_REDIS_URL", raising=False)
    return root


def test_the_example_project_is_served_from_a_cluster(cluster_project, redis_cluster):
    with FeatureStore(cluster_project) as store:
        first = store.run()
        assert first.ok, first.hook_errors
        assert sum(m["sent"] for m in first.hooks["online"].values()) > 1000
        assert_every_online_value_is_the_newest(store)
        assert sum(m["sent"] for m in store.run().hooks["online"].values()) == 0  # nothing changed: nothing sent
        keys = sum(node.client().dbsize() for node in redis_cluster.nodes)
        assert all(node.client().dbsize() > 0 for node in redis_cluster.nodes)  # spread over every master
        redis_cluster.flush()  # the cluster lost its data: the next run finds every marker gone
        again = store.run()
        assert sum(m["sent"] for m in again.hooks["online"].values()) == sum(m["sent"] for m in first.hooks["online"]
                                                                             .values())
        assert sum(node.client().dbsize() for node in redis_cluster.nodes) == keys
        assert_every_online_value_is_the_newest(store)


def test_reads_of_1_and_100_entities_and_the_http_server_on_a_cluster(cluster_project):
    features = ["user__txn_count__7d", "user__amount_sum__30d", "merchant__category"]
    with FeatureStore(cluster_project) as store:
        assert store.run().ok
        rows = [{"user_id": u, "merchant_id": 1 + u % 150} for u in range(1, 101)]
        many = store.get_online_features(rows, features)
        one = store.get_online_features(rows[:1], features)
        assert {f: values[:1] for f, values in many.items()} == one
        assert sum(v is not None for v in many["user__txn_count__7d"]) > 20
        server = store.feature_server(Limits(max_entities=200), reload_interval=0)
        with TestClient(server.app()) as client:
            body = {"features": features, "entities": {"user_id": [r["user_id"] for r in rows],
                                                       "merchant_id": [r["merchant_id"] for r in rows]}}
            response = client.post("/get-online-features", json=body)
            assert response.status_code == 200, response.text
            results = [r["values"] for r in response.json()["results"]]
            assert results[2:] == [many[f] for f in features]
            assert client.get("/health").status_code == 200


def test_a_node_that_refuses_a_pipelined_call_gets_it_again_through_the_cluster_client(redis_cluster, tmp_path):
    # Each node gets its slots' script calls in one pipeline; a call a node refuses (here: the script is gone, as
    # after a failover to a replica without it) is sent again through the cluster client, and nothing is lost.
    from skewless.adapters.redis_online import RedisOnlineStore

    redis_cluster.flush()
    store = RedisOnlineStore(redis_cluster.url, tmp_path / "unused.db", cluster=True, batch_size=7)
    try:
        rows = [(f"p:user:{i}".encode(), b"f", str(i).encode(), 0) for i in range(300)]
        assert store.write(rows[:150], 1) == 150
        load, loads = store.client.script_load, []

        def load_then_lose(script):  # the first load is lost at once: the pipelines find no script on any node
            sha = load(script)
            if not loads:
                for node in redis_cluster.nodes:
                    node.client().script_flush()
            loads.append(sha)
            return sha

        store.client.script_load = load_then_lose
        assert store.write(rows[150:], 1) == 150
        values = store.read([(key, [b"f"]) for key, *_ in rows])
        assert [v[0] for v in values] == [str(i).encode() for i in range(300)]
        assert len(loads) == 2  # the cluster client loaded it again for the refused calls
    finally:
        store.close()


def test_reads_that_reach_the_wrong_node_follow_the_redirection(redis_cluster, tmp_path):
    # As while a slot moves: every key is asked of one node, which answers MOVED for the keys it does not hold.
    from skewless.adapters.redis_online import RedisOnlineStore

    redis_cluster.flush()
    store = RedisOnlineStore(redis_cluster.url, tmp_path / "unused.db", cluster=True)
    try:
        rows = [(f"p:user:{i}".encode(), b"f", str(i).encode(), 0) for i in range(60)]
        assert store.write(rows, 1) == 60
        one_node = store.client.get_node_from_key(rows[0][0])
        store.client.get_node_from_key = lambda key: one_node
        requests = [(key, [b"f"]) for key, *_ in rows]
        assert [v[0] for v in store.read(requests)] == [str(i).encode() for i in range(60)]
        assert [store.read([r])[0][0] for r in requests[:20]] == [str(i).encode() for i in range(20)]
    finally:
        store.close()
