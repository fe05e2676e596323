import pytest

from skewless import FeatureStore
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
