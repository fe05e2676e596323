"""manifest.json: what the compiler knows, in the documented shape (docs/manifest.md)."""

from __future__ import annotations

import json

from skewless import FeatureStore
from skewless.project.artifacts import MANIFEST_VERSION


def test_manifest_after_compile(example_copy):
    FeatureStore(example_copy).compile()
    manifest = json.loads((example_copy / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["manifest_version"] == MANIFEST_VERSION
    assert manifest["metadata"]["project"] == "payments"
    assert set(manifest["entities"]) == {"user", "merchant"}
    assert manifest["entities"]["user"]["join_keys"] == [{"name": "user_id", "type": "bigint"}]
    node = manifest["nodes"]["model.user_spend"]
    assert node["relation"] == '"features"."user_spend"'
    assert node["depends_on"] == {"models": ["model.stg_transactions"], "sources": []}
    assert node["config"]["owner"] == "risk-team" and node["config"]["ttl"] == "30d"
    assert node["columns"]["user__amount_sum__7d"]["description"].startswith("Sum of the user's")
    assert manifest["nodes"]["model.stg_transactions"]["relation"] is None
    assert manifest["features"]["merchant__fraud_rate__30d"]["entity"] == "merchant"
    assert manifest["nodes"]["model.merchant_fraud_rate"]["config"]["meta"] == {"reviewed_by": "fraud-ops"}
    assert "model.user_spend" in manifest["child_map"]["model.stg_transactions"]
    assert list(manifest["nodes"]).index("model.stg_transactions") < list(manifest["nodes"]).index("model.user_spend")
    compiled = (example_copy / "target" / "compiled" / "models" / "user" / "user_spend.sql").read_text()
    assert '"__skewless_cte__stg_transactions"' in compiled and "{{" not in compiled


def test_star_over_undeclared_source_gets_columns_at_run(make_project):
    root = make_project({
        "sources.yml": """\
            sources:
              - name: app
                schema: raw
                tables:
                  - name: events
                    file: data/events.csv
        """,
        "models/user_amounts.sql": "{{ config(entity='user', timestamp='event_ts') }}\n"
                                   "select * from {{ source('app', 'events') }}\n",
    })
    with FeatureStore(root) as fs:
        node = fs.compile().nodes["user_amounts"]
        assert not node.columns_known
        assert fs.run().ok
        assert not node.columns_known and node.features == []  # a run does not rewrite the compiled project...
        observed = fs.compile().nodes["user_amounts"]  # ...the store keeps what the warehouse reported
        assert observed.columns_known and observed.features == ["merchant_id", "amount"]
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    assert manifest["features"]["amount"]["type"] == "DOUBLE"


def test_profiles_from_home_folder(make_project, tmp_path, monkeypatch):
    root = make_project({"profiles.yml": None})
    home = tmp_path / "home"
    home.mkdir()
    (home / "profiles.yml").write_text(
        "mini:\n  target: ci\n  outputs:\n    ci: {type: duckdb, path: '{{ env_var(\"MINI_DB\") }}', schema: s}\n")
    monkeypatch.setenv("SKEWLESS_PROFILES_DIR", str(home))
    monkeypatch.setenv("MINI_DB", str(tmp_path / "ci.duckdb"))
    store = FeatureStore(root)
    assert store.config.target.name == "ci"
    assert store.config.target.settings["path"] == str(tmp_path / "ci.duckdb")
    assert store.compile(write=False).nodes["user_amounts"].relation.sql("duckdb") == '"s"."user_amounts"'
