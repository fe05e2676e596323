import re

import pytest
from click.testing import CliRunner

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.core.errors import SelectionError


@pytest.fixture(scope="module")
def compiled():
    from pathlib import Path

    return FeatureStore(Path(__file__).resolve().parent.parent / "example_project").compile(write=False)


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (["user_spend"], None, ["user_spend"]),
        (["+user_spend"], None, ["stg_transactions", "user_spend"]),
        (["stg_chargebacks+"], None, ["stg_chargebacks", "merchant_fraud_rate", "user_chargebacks"]),
        (["tag:profile"], None, ["merchant_profile", "user_profile"]),
        (["path:models/merchant"], None, ["merchant_fraud_rate", "merchant_profile", "merchant_volume"]),
        (["config.materialized:view"], None, ["labelled_payments", "stg_chargebacks"]),
        (["tag:fraud,path:models/merchant"], None, ["merchant_fraud_rate", "merchant_volume"]),
        (["tag:profile user_spend"], None, ["merchant_profile", "user_profile", "user_spend"]),
        (["path:models/user"], ["tag:fraud"], ["user_profile"]),
        (["merchant_*"], None, ["merchant_fraud_rate", "merchant_profile", "merchant_volume"]),
    ],
)
def test_selectors(compiled, include, exclude, expected):
    chosen = compiled.selected(include, exclude)
    assert sorted(chosen) == sorted(expected)
    assert chosen == [n for n in compiled.order if n in chosen]


def test_online_selector_matches_only_online_models(compiled):
    online = compiled.selected(["config.online:true"])
    assert online and all(compiled.nodes[n].config.online for n in online)


def test_unknown_model_suggests(compiled):
    with pytest.raises(SelectionError, match="did you mean 'user_spend'"):
        compiled.selected(["user_spnd"])


def test_unknown_method(compiled):
    with pytest.raises(SelectionError, match="unknown selector method 'tags'"):
        compiled.selected(["tags:fraud"])


@pytest.mark.parametrize(("include", "exclude", "message"), [
    ([""], None, "the selection is empty"),
    (["tag:"], None, "selector 'tag:' needs a value"),
    (["path:"], None, "selector 'path:' needs a value"),
    (["tag:nothing"], None, "the selection 'tag:nothing' matches no model"),
    (["path:/etc"], None, "the selection 'path:/etc' matches no model"),
    (["user_spend"], ["user_spend"], "minus --exclude matches no model"),
])
def test_a_selection_that_selects_nothing_is_an_error(compiled, include, exclude, message):
    with pytest.raises(SelectionError, match=re.escape(message)):
        compiled.selected(include, exclude)


def test_the_cli_says_so_with_exit_2(example_copy):
    result = CliRunner().invoke(cli, ["run", "--project-dir", str(example_copy), "-s", "tag:nothing"])
    assert result.exit_code == 2 and "matches no model" in result.output
