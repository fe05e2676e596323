"""project/lineage.py and `skewless lineage`: a feature's columns traced across models (ephemeral ones, CTEs and
subqueries included) to source columns, each labelled value, window key or filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from skewless import FeatureStore, Project
from skewless.cli.main import cli
from skewless.core.errors import CompileError
from skewless.project.lineage import feature_lineage

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


@pytest.fixture(scope="module")
def compiled():
    return Project(EXAMPLE).compile()


def _sources(step) -> set[tuple[str, str, str]]:
    return {(s.relation, s.column, s.role) for s in step.sources()}


def test_a_rolling_feature_through_an_ephemeral_model(compiled):
    step = feature_lineage(compiled, "user__amount_sum__7d")
    assert (step.relation, step.kind, step.windows) == ("user_spend", "model", (7 * 86_400_000_000,))
    assert {(c.relation, c.kind, c.column, c.role) for c in step.inputs} == {
        ("stg_transactions", "ephemeral", "amount", "value"),
        ("stg_transactions", "ephemeral", "user_id", "window key"),
        ("stg_transactions", "ephemeral", "event_ts", "window key"),
    }
    # the staging model keeps the newest row per txn_id (QUALIFY ... ORDER BY created_ts): filter inputs
    assert _sources(step) == {
        ("shop.transactions", "amount", "value"),
        ("shop.transactions", "user_id", "window key"), ("shop.transactions", "event_ts", "window key"),
        ("shop.transactions", "txn_id", "filter"), ("shop.transactions", "created_ts", "filter"),
    }


def test_join_conditions_are_filter_inputs(compiled):
    sources = _sources(feature_lineage(compiled, "merchant__fraud_rate__30d"))
    assert ("shop.chargebacks", "txn_id", "filter") in sources
    assert ("shop.transactions", "merchant_id", "window key") in sources


def test_window_agg_and_on_demand_features(compiled):
    spend = feature_lineage(compiled, "user__spend__7d")
    assert spend.kind == "window_agg" and spend.windows == (7 * 86_400_000_000,)
    assert _sources(spend) == {("shop.transactions", "amount", "value"),
                               ("shop.transactions", "user_id", "window key"),
                               ("shop.transactions", "event_ts", "window key")}
    ratio = feature_lineage(compiled, "payment__amount_to_avg__30d")
    assert ratio.kind == "on_demand" and "user__amount_avg__30d" in (ratio.expression or "")
    assert {(c.relation, c.column) for c in ratio.inputs} == {("user_spend", "user__amount_avg__30d"),
                                                              ("request", "amount")}


def test_ctes_and_where_clauses(make_project):
    root = make_project({"models/m.sql": """\
        {{ config(entity='user', timestamp='event_ts') }}
        with big as (select user_id, event_ts, amount * 2 as doubled from {{ source('app', 'events') }}
                     where merchant_id <> 11)
        select user_id, event_ts, doubled as user__doubled from big where doubled > 1
    """})
    step = feature_lineage(Project(root).compile(), "user__doubled")
    assert _sources(step) == {("app.events", "amount", "value"), ("app.events", "merchant_id", "filter"),
                              ("app.events", "amount", "filter")}


def test_an_unknown_feature_suggests_names(compiled):
    with pytest.raises(CompileError) as raised:
        feature_lineage(compiled, "user__amount_sum__8d")
    assert "user__amount_sum__7d" in (raised.value.hint or "")


def test_the_command_prints_the_tree_and_json():
    runner = CliRunner()
    result = runner.invoke(cli, ["lineage", "user__amount_sum__7d", "--project-dir", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "window key" in result.output and "source columns" in result.output
    assert "shop.transactions.amount" in result.output and "window 7d" in result.output
    result = runner.invoke(cli, ["lineage", "user__amount_sum__7d", "--project-dir", str(EXAMPLE), "-o", "json"])
    data = json.loads(result.output)
    assert data["windows"] == ["7d"]
    assert {"relation": "shop.transactions", "column": "amount", "role": "value"} in data["sources"]
    result = runner.invoke(cli, ["lineage", "nope", "--project-dir", str(EXAMPLE)])
    assert result.exit_code == 2 and "no feature named 'nope'" in result.output


def test_the_library_object_gives_the_same_lineage():
    with FeatureStore(EXAMPLE) as store:
        assert store.lineage("user__amount_sum__7d").windows == (7 * 86_400_000_000,)
