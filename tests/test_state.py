"""project/state.py and `skewless diff`: changes classified breaking or not against an earlier manifest, on a
corpus of edits to the example project; `state:modified+`; online schema versions that change exactly when a
model's stored values change meaning (both directions)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_damage import damaged

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.core.errors import ProjectError, SelectionError
from skewless.project.compile import CompiledProject
from skewless.project.state import diff, load_state

SPEND = "models/user/user_spend.sql"
STAGING = "models/staging/stg_transactions.sql"
SCHEMA = "models/schema.yml"
SUM_7D = "{{ rolling('sum(amount)', 'user_id', 'event_ts', '7d') }} as user__amount_sum__7d"
SUM_30D = "{{ rolling('sum(amount)', 'user_id', 'event_ts', '30d') }} as user__amount_sum__30d"
MIN_7D = SUM_7D.replace("sum(amount)", "min(amount)").replace("user__amount_sum", "user__amount_min")
SPEND_FEATURES = ["user__amount_avg__30d", "user__amount_max__30d", "user__amount_sum__30d", "user__amount_sum__7d"]

# (edit: [(file, old text, new text)], {model: (kind, features whose values change)}, models whose version changes)
EDITS = {
    "whitespace": ([(SPEND, "select\n    user_id,\n    event_ts,", "SELECT user_id,\n\n        event_ts,")], {}, set()),
    "comments": ([(SPEND, SUM_7D, SUM_7D.replace(" as ", " /* the weekly sum */ as ")),
                  (STAGING, "from deduplicated", "-- newest first\nfrom deduplicated")], {}, set()),
    "docs, owner and tags": ([(SCHEMA, "What a user spent, as of each payment.", "Spend."),
                              (SPEND, "owner='risk-team',\n    tags=['fraud', 'spend'],",
                               "owner='growth',\n    tags=['spend'],")],
                             {"user_spend": ("non-breaking", [])}, set()),
    "a feature's expression": ([(SPEND, SUM_7D, SUM_7D.replace("sum(amount)", "sum(amount * 2)"))],
                               {"user_spend": ("breaking", ["user__amount_sum__7d"])}, {"user_spend"}),
    "a feature's type": ([(SPEND, SUM_7D, SUM_7D.replace("{{ rolling('sum(amount)', 'user_id', 'event_ts', '7d') }}",
                          "cast({{ rolling('sum(amount)', 'user_id', 'event_ts', '7d') }} as decimal(18, 2))"))],
                         {"user_spend": ("breaking", ["user__amount_sum__7d"])}, {"user_spend"}),
    "a filter": ([(SPEND, "from {{ ref('stg_transactions') }}", "from {{ ref('stg_transactions') }} where amount > 0")],
                 {"user_spend": ("breaking", SPEND_FEATURES)}, {"user_spend"}),
    "a feature removed": ([(SPEND, f"    {SUM_30D},\n", "")],
                          {"user_spend": ("breaking", ["user__amount_sum__30d"])}, {"user_spend"}),
    "a feature added": ([(SPEND, f"    {SUM_7D},\n", f"    {SUM_7D},\n    {MIN_7D},\n")],
                        {"user_spend": ("non-breaking", [])}, {"user_spend"}),  # the stored row's layout changes
    "ttl": ([(SPEND, "ttl='30d'", "ttl='14d'")], {"user_spend": ("breaking", SPEND_FEATURES)}, set()),
    "an upstream filter": ([(STAGING, "from deduplicated", "from deduplicated where amount > 0")],
                           "upstream filter", "every reader of stg_transactions"),
    "an upstream column nobody reads": ([(STAGING, "    is_fraud\n", "    is_fraud,\n    amount * 100 as cents\n")],
                                        {"stg_transactions": ("non-breaking", [])}, set()),
}


def _apply(root: Path, edits: list[tuple[str, str, str]]) -> None:
    for relative, old, new in edits:
        path = root / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new))


def _versions(root: Path) -> dict[str, str]:
    with FeatureStore(root) as store:
        return {name: model.version for name, model in store.serving_catalog().models.items()}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("base") / "project"
    shutil.copytree(Path(__file__).resolve().parent.parent / "example_project", root,
                    ignore=shutil.ignore_patterns("target", "__pycache__"))
    with FeatureStore(root) as store:
        store.compile()
    state = root.parent / "state.json"
    shutil.copy(root / "target" / "manifest.json", state)
    return state, _versions(root)


@pytest.mark.parametrize("name", list(EDITS))
def test_each_edit_is_classified_and_versions_follow_the_values(example_copy, baseline, name):
    state, versions_before = baseline
    edits, expected, versioned = EDITS[name]
    _apply(example_copy, edits)
    with FeatureStore(example_copy) as store:
        result = store.diff(state)
        readers = {n for n in store.compile(write=False).graph.descendants("stg_transactions")}
    changes = {c.model: (c.kind, c.features) for c in result.changes}
    versions = _versions(example_copy)
    changed_versions = {m for m in versions if versions[m] != versions_before.get(m)}
    if expected == "upstream filter":  # the staging model breaks, and so does every model reading it
        assert changes.pop("stg_transactions")[0] == "breaking"
        assert {m for m, (kind, _) in changes.items()} == {r for r in readers if r != "payment_context"}
        assert all(kind == "indirect" for kind, _ in changes.values())
        assert changed_versions == {m for m in versions if m in readers}
        assert result.breaking
        return
    assert changes == {m: (kind, sorted(features)) for m, (kind, features) in expected.items()}
    assert result.breaking == any(kind == "breaking" for kind, _ in expected.values())
    assert changed_versions == versioned


def test_what_depends_on_a_breaking_change_is_listed(example_copy, baseline):
    _apply(example_copy, EDITS["a filter"][0])
    with FeatureStore(example_copy) as store:
        result = store.diff(baseline[0])
    assert result.downstream["user_spend"] == ["payment_context"]
    assert "payment__amount_to_avg__30d" in result.on_demand
    assert result.datasets == ["fraud_training"] and "fraud_v1" in result.services


def test_state_modified_plus_selects_the_changed_models_and_their_children(example_copy, baseline):
    _apply(example_copy, EDITS["an upstream filter"][0])
    with FeatureStore(example_copy) as store:
        chosen = store.selected(["state:modified+"], state=baseline[0])
        assert chosen[0] == "stg_transactions"
        assert set(chosen) == {"stg_transactions"} | store.compile(write=False).graph.descendants("stg_transactions")
        assert store.selected(["state:modified"], state=baseline[0]) == ["stg_transactions"]
        with pytest.raises(SelectionError, match="give --state"):
            store.selected(["state:modified"])


def test_the_command_gates_ci_and_reads_a_folder(example_copy, baseline):
    runner = CliRunner()
    same = runner.invoke(cli, ["diff", "--state", str(baseline[0]), "--project-dir", str(example_copy)])
    assert same.exit_code == 0 and "No model changed" in same.output
    _apply(example_copy, EDITS["a feature's expression"][0])
    changed = runner.invoke(cli, ["diff", "--state", str(baseline[0]), "--project-dir", str(example_copy),
                                  "-o", "json"])
    assert changed.exit_code == 1
    data = json.loads(changed.output)
    assert data["breaking"] and data["affected"]["features"] == ["user__amount_sum__7d"]
    folder = baseline[0].parent / "prod"
    folder.mkdir(exist_ok=True)
    shutil.copy(baseline[0], folder / "manifest.json")
    result = runner.invoke(cli, ["compile", "--state", str(folder), "-s", "state:modified+",
                                 "--project-dir", str(example_copy)])
    assert result.exit_code == 0 and "Compiled 2 models" in result.output  # user_spend and payment_context


def test_a_missing_or_old_manifest_is_a_clear_error(example_copy, tmp_path):
    with FeatureStore(example_copy) as store:
        with pytest.raises(ProjectError, match="no manifest"):
            store.diff(tmp_path / "nowhere.json")
        old = tmp_path / "old.json"
        old.write_text(json.dumps({"nodes": {"model.a": {"name": "a"}}}))
        with pytest.raises(ProjectError, match="older skewless"):
            store.diff(old)
        store.compile()
        garbled = json.loads((example_copy / "target" / "manifest.json").read_text())
        garbled["nodes"]["model.user_spend"]["state"]["source"]["sql"] = "select ((( from"
        old.write_text(json.dumps(garbled))
        with pytest.raises(ProjectError, match="SQL of model 'user_spend' cannot be read back"):
            store.diff(old)



@pytest.fixture(scope="module")
def compiled_baseline(baseline: tuple[Path, dict[str, str]]) -> CompiledProject:
    with FeatureStore(baseline[0].parent / "project") as store:
        return store.compile(write=False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_earlier_manifest_is_a_clear_error_never_an_internal_one(tmp_path, baseline, compiled_baseline,
                                                                          data):
    """An earlier manifest is a file a user may have edited or cut: any value replaced or removed anywhere in it
    gives a diff or a ProjectError (the file named), never another exception from inside the comparison."""
    state, _ = baseline
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(damaged(json.loads(state.read_text()), data)))
    try:
        diff(compiled_baseline, load_state(path))
    except ProjectError as error:
        assert str(path) in str(error) or "manifest" in str(error), error
