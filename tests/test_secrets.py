"""No secret reaches an output: CLI errors, run_results.json, the server's bodies, snippets of profiles.yml."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.core.secrets import mask_secrets

SECRET = "Pa55-w0rd_SECRET"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("url", [
    "redis://:{s}@127.0.0.1:{port}/0",
    "redis://default:{s}@127.0.0.1:{port}/0",
    "rediss://default:{s}@127.0.0.1:{port}/0",
    "redis://127.0.0.1:{port}/0?password={s}",
    "redis://:{s}#tail@127.0.0.1:{port}/0",
])
def test_an_unreachable_store_never_shows_its_password(make_project, url):
    address = url.format(s=SECRET, port=_closed_port())
    root = make_project({"skewless_project.yml": f"name: mini\nprofile: mini\nonline_store:\n  url: \"{address}\"\n"})
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code == 1, result.output
    assert "online store" in result.output
    assert SECRET not in result.output and "tail@" not in result.output
    results = (root / "target" / "run_results.json").read_text()
    assert "hook_errors" in results and SECRET not in results and "tail@" not in results
    if "#" in url:  # not a URL at all: the store does not open (the message above is checked)
        assert "cannot be read as a URL" in result.output and "%23" in result.output
        return
    with FeatureStore(root) as store:
        server = store.feature_server(reload_interval=0)
        with TestClient(server.app()) as client:
            for response in (client.get("/health"), client.post("/get-online-features", json={
                    "features": ["user__amount_sum__all"], "entities": {"user_id": [1]}})):
                assert response.status_code == 503 and SECRET not in response.text, response.text


def test_a_yaml_error_in_profiles_masks_the_secret_in_its_snippet(make_project):
    profiles = f"""\
mini:
  target: dev
  outputs:
    dev:
      type: duckdb
      password: {SECRET}
      path: [unclosed
"""
    root = make_project({"profiles.yml": profiles})
    result = CliRunner().invoke(cli, ["compile", "--project-dir", str(root)])
    assert result.exit_code == 2, result.output
    assert "profiles.yml" in result.output and SECRET not in result.output


@given(st.text(alphabet="abcXYZ019#/@:%-_.", min_size=6, max_size=16))
def test_any_password_in_a_url_is_masked(password):
    # (the fixed parts of these messages share no 6-character run with that alphabet)
    for url in (f"redis://user:{password}@host:6379/0", f"redis://host:6379/0?password={password}&db=1",
                f"rediss://user:{password}@host:6379/0?password={password}"):
        masked = mask_secrets(f"cannot reach {url}: refused")
        assert "***" in masked and password not in masked, masked


@pytest.mark.parametrize("target", [
    {"dsn": f"host=127.0.0.1 port={{port}} password={SECRET} dbname=x user=u"},
    {"dsn": f"postgresql://u:{SECRET}@127.0.0.1:{{port}}/x"},
    {"host": "127.0.0.1", "port": "{port}", "user": "u", "password": SECRET, "dbname": "x"},
    {"dsn": f"password={SECRET} = = broken"},
])
def test_an_unreachable_postgres_never_shows_its_password(make_project, target):
    port = _closed_port()
    settings = ", ".join(f"{k}: \"{str(v).format(port=port)}\"" for k, v in target.items())
    root = make_project({"profiles.yml": f"mini:\n  target: pg\n  outputs:\n    pg: {{type: postgres, {settings}}}\n"})
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(root)])
    assert result.exit_code in (1, 2) and "PostgreSQL" in result.output, result.output
    assert SECRET not in result.output
    results = root / "target" / "run_results.json"
    assert not results.exists() or SECRET not in results.read_text()
