"""The bad-input corpus: broken projects, CLI calls and HTTP requests, each answered with the right exit code or
status, a location, a useful message, and nothing changed: warehouse tables, online values and artifacts stay as
the last good run left them.

Cases live in the YAML files beside this module (see README.md here for the format). Every case runs against a
fresh copy of the example project, built once per session; each file change is made on that copy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from warehouse_state import warehouse_state

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.serving.server import Limits

HERE = Path(__file__).resolve().parent
REDIS_DB = 7  # the corpus's own database: the per-test fixture flushes database 9 between tests
CASE_FILES = sorted(HERE.glob("*.yml"))
CASES = [case for path in CASE_FILES for case in yaml.safe_load(path.read_text(encoding="utf-8"))]
NEVER = re.compile(r"Traceback|Internal error|File \"/|sqlglot\.|TokenType|<class |jinja2\.|skewless\.\w+\.|Renderer\.",
                   re.I)
KEYS = {"name", "why", "write", "append", "replace", "delete", "cli", "http", "exit", "status", "where", "says",
        "changes", "env"}


@pytest.fixture(scope="session")
def corpus_redis_url() -> str | None:
    from conftest import REDIS_SERVER

    if not REDIS_SERVER:
        if os.environ.get("SKEWLESS_REQUIRE_SERVICES") == "1":
            pytest.fail("Redis is not reachable on 127.0.0.1:6379 and SKEWLESS_REQUIRE_SERVICES=1")
        return None
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def redis_url(corpus_redis_url, monkeypatch):  # overrides the autouse fixture: the corpus keeps its own database
    if corpus_redis_url:
        monkeypatch.setenv("SKEWLESS_REDIS_URL", corpus_redis_url)
    else:
        monkeypatch.delenv("SKEWLESS_REDIS_URL", raising=False)
    return corpus_redis_url


@pytest.fixture(scope="session")
def built_example(tmp_path_factory, corpus_redis_url) -> Path:
    """The example project after one good run: tables, online values and artifacts to compare against."""
    from conftest import EXAMPLE

    project = tmp_path_factory.mktemp("corpus") / "built"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "*.duckdb*"))
    previous = os.environ.get("SKEWLESS_REDIS_URL")
    if corpus_redis_url:
        os.environ["SKEWLESS_REDIS_URL"] = corpus_redis_url
    try:
        with FeatureStore(project) as store:
            assert store.run().ok
    finally:
        if previous is None:
            os.environ.pop("SKEWLESS_REDIS_URL", None)
        else:
            os.environ["SKEWLESS_REDIS_URL"] = previous
    return project


# -- what "nothing changed" means ----------------------------------------------------------------------------


def online_state(url: str | None) -> str | None:
    """A digest of every key and field of the corpus's Redis database."""
    if url is None:
        return None
    import redis

    client = redis.Redis.from_url(url)
    keys = sorted(client.scan_iter(count=5000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
    digest = hashlib.sha256()
    for key, value in zip(keys, pipe.execute(), strict=True):
        digest.update(key + b"\0" + (value or b"") + b"\0")
    return f"{len(keys)}:{digest.hexdigest()}"


def artifact_state(root: Path) -> dict[str, str]:
    """What target/ holds, by file (the Jinja cache and the warehouse file are compared elsewhere)."""
    state = {}
    for path in sorted((root / "target").rglob("*")):
        relative = path.relative_to(root / "target").as_posix()
        if path.is_file() and not relative.startswith(".jinja_cache") and not relative.endswith((".duckdb", ".wal")):
            state[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def snapshot(root: Path, url: str | None) -> dict[str, Any]:
    return {"warehouse": warehouse_state(root / "target" / "payments.duckdb"), "online": online_state(url),
            "artifacts": artifact_state(root)}


# -- applying a case -------------------------------------------------------------------------------------------


def apply_changes(root: Path, case: dict[str, Any]) -> None:
    for relative, text in (case.get("write") or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    for relative, text in (case.get("append") or {}).items():
        with (root / relative).open("a", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
    for relative, pairs in (case.get("replace") or {}).items():
        path = root / relative
        text = path.read_text(encoding="utf-8")
        for old, new in pairs:
            assert old in text, f"{case['name']}: {old!r} is not in {relative}"
            text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
    for relative in case.get("delete") or []:
        target = root / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def run_cli(root: Path, case: dict[str, Any]) -> tuple[int, str]:
    args = [str(arg).replace("{root}", str(root)) for arg in case["cli"]]
    if "{root}" not in " ".join(map(str, case["cli"])) and args[0] != "init":
        args += ["--project-dir", str(root)]
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += f"\nTraceback: {type(result.exception).__name__}: {result.exception}"
    return result.exit_code, output


def run_http(root: Path, case: dict[str, Any]) -> tuple[int, str]:
    from starlette.testclient import TestClient

    request = case["http"]
    server = FeatureStore(root).feature_server(Limits(max_body_bytes=20_000, max_entities=50), reload_interval=0)
    try:
        with TestClient(server.app(), raise_server_exceptions=False) as client:
            content = request.get("body")
            if "json" in request:
                body = dict(request["json"], pad="_" * request["pad"]) if "pad" in request else request["json"]
                content = json.dumps(body)
            response = client.request(request.get("method", "POST"), request["path"], content=content,
                                      headers=request.get("headers") or {"content-type": "application/json"})
    finally:
        server.close()
    return response.status_code, response.text


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input(case, built_example, corpus_redis_url, tmp_path, monkeypatch):
    assert set(case) <= KEYS, f"unknown keys {set(case) - KEYS}"
    root = tmp_path / "built"
    shutil.copytree(built_example, root)
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, value.replace("{root}", str(root)))
    apply_changes(root, case)
    before = snapshot(root, corpus_redis_url)
    code, output = run_http(root, case) if "http" in case else run_cli(root, case)
    if os.environ.get("SKEWLESS_CORPUS_SHOW"):
        print(f"\n--- {case['name']}: {code}\n{output}")
    expected = case.get("status") if "http" in case else case.get("exit", 2)
    assert code == expected, output
    assert not NEVER.search(output), output
    for words in case.get("says", []):
        assert words in output, f"{words!r} not in:\n{output}"
    if case.get("where"):
        assert case["where"] in output, f"{case['where']!r} not in:\n{output}"
    after = snapshot(root, corpus_redis_url)
    changes = set(case.get("changes", []))
    for part in ("warehouse", "online"):
        if part not in changes:
            assert after[part] == before[part], f"the {part} changed"
    changed = {k for k in before["artifacts"].keys() | after["artifacts"].keys()
               if before["artifacts"].get(k) != after["artifacts"].get(k)}
    if "artifacts" not in changes:
        assert changed <= {"run_results.json"}, f"artifacts changed: {sorted(changed)}"
    if "run_results.json" in changed:
        results = json.loads((root / "target" / "run_results.json").read_text())
        assert results["success"] is (code == 0), "run_results.json must say how the run ended"


def test_the_corpus_is_large_and_every_case_is_named_once():
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "two cases share a name"
    assert len(CASES) >= 80
    assert all(case.get("says") for case in CASES), "every case says what the user is told"
    edits = [c for c in CASES if (c.get("write") or c.get("replace") or c.get("append")) and c.get("exit", 2) == 2]
    unplaced = [c["name"] for c in edits if not c.get("where") and not c.get("why")]
    assert not unplaced, f"a broken file's error names its place (where:), or the case says why not: {unplaced}"
