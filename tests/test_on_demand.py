"""On-demand features: the same values offline (training-set query in the warehouse) and online (in-process),
compile errors that point at the model, and the manifest a feature server loads."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from skewless import FeatureStore
from skewless.core.errors import AdapterError, CompileError, SkewlessError
from skewless.online.catalog import ServingCatalog
from skewless.online.reader import OnlineReader

PAYMENT = [
    "payment__amount_to_avg__30d", "payment__exceeds_max__30d", "payment__burst_level__1d",
    "payment__account_age_days", "payment__context",
]

# Edge cases of each construct: integer division, NULLs, casts, CASE, COALESCE, strings and date arithmetic.
EDGES_MODEL = """\
{{ config(kind='on_demand', request_fields={'amount': 'double', 'code': 'varchar', 'at': 'timestamp',
                                            'qty': 'integer'},
             inputs={'user__amount_sum__all': 'double'}) }}
select
    qty // 3 as edge__int_div,
    qty % 3 as edge__int_mod,
    qty / 4 as edge__div,
    amount / nullif(user__amount_sum__all, 0) as edge__ratio,
    cast(amount as bigint) as edge__cast_int,
    cast(amount as decimal(10, 1)) as edge__cast_decimal,
    cast(qty as varchar) || '-' || coalesce(code, '?') as edge__label,
    concat(code, null, 'x') as edge__concat,
    case when amount is null then 'none' when amount < 0 then 'neg' else upper(substring(code, 1, 2)) end
        as edge__case,
    coalesce(user__amount_sum__all, -1) as edge__coalesce,
    length(trim(code)) as edge__len,
    date_diff('hour', at, at + interval 90 minute) + day(at) as edge__dates,
    date_trunc('month', at) as edge__month,
    epoch(at - interval 1 day) as edge__epoch,
    greatest(qty, 2) * 1.5 as edge__decimal,
    round(amount, 1) as edge__round
"""


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def written_at(store: FeatureStore) -> datetime:
    return store.adapter.connection.execute("select max(written_at) from skewless_state.online_state").fetchall()[0][0]


def offline_and_online(store: FeatureStore, rows: list[dict], features: list[str], at: datetime,
                       ) -> tuple[dict[str, list], dict[str, list]]:
    spine = pa.Table.from_pylist([{**row, "as_of": at} for row in rows])
    offline = store.get_historical_features(spine, features, timestamp="as_of").to_arrow().to_pydict()
    online = OnlineReader(store.serving_catalog(), store.online_store).read(rows, features, now=at)
    return offline, online


def assert_identical(offline: dict[str, list], online: dict[str, list], rows: list[dict], features: list[str]):
    for feature in features:
        for index, (a, b) in enumerate(zip(offline[feature], online[feature], strict=True)):
            assert _same(a, b), (feature, rows[index], a, b)


def test_example_payment_features_identical_offline_and_online(example_copy):
    with FeatureStore(example_copy) as store:
        assert store.run().ok
        at = written_at(store)
        rng = random.Random(7)
        rows = []
        for _ in range(300):
            rows.append({
                "user_id": rng.randint(0, 2100), "merchant_id": rng.randint(0, 210),
                "amount": rng.choice([None, 0.0, -3.5, 1e9, round(rng.uniform(0, 500), 2)]),
                "channel": rng.choice([None, "web", "pos", "app", "WEB", ""]),
                "event_ts": at - timedelta(hours=rng.randint(0, 72), microseconds=rng.randint(0, 10**6)),
            })
        features = [*PAYMENT, "user__amount_avg__30d"]
        offline, online = offline_and_online(store, rows, features, at)
        assert_identical(offline, online, rows, features)
        # the inputs were really there: most users have a 30-day mean, and ratios come out of it
        assert sum(v is not None for v in online["payment__amount_to_avg__30d"]) > 100
        contexts = set(online["payment__context"])
        assert "in_person" in contexts and len(contexts - {None}) >= 3  # the CASE gives several outcomes


def test_edge_cases_identical_offline_and_online(make_project):
    project = make_project({"models/edges.sql": EDGES_MODEL})
    with FeatureStore(project) as store:
        assert store.run().ok
        at = written_at(store)
        rng = random.Random(3)
        rows = []
        for index in range(400):
            rows.append({
                "user_id": rng.choice([1, 2, 3]),
                "amount": rng.choice([None, 0.0, -0.05, 2.5, -2.5, 0.25, 1e15, float("inf"), float("nan"),
                                      rng.uniform(-100, 100)]),
                "code": rng.choice([None, "", "  ab ", "xyz", "Éa", "a%"]),
                "at": rng.choice([None, datetime(2024, 1, 31, 23, 30), datetime(2024, 2, 29, 5, 0, 0, 1),
                                  at - timedelta(days=index)]),
                "qty": rng.choice([None, 0, -7, 7, 2147483647, -2147483648, rng.randint(-50, 50)]),
            })
        features = [f"edge__{n}" for n in ("int_div", "int_mod", "div", "ratio", "label", "concat", "case",
                                             "coalesce", "len", "dates", "month", "epoch", "decimal", "round")]
        offline, online = offline_and_online(store, rows, features, at)
        assert_identical(offline, online, rows, features)
        casts = ["edge__cast_int", "edge__cast_decimal"]
        finite = [r for r in rows if r["amount"] is None or math.isfinite(r["amount"]) and abs(r["amount"]) < 1e9]
        offline, online = offline_and_online(store, finite, casts, at)
        assert_identical(offline, online, finite, casts)


def test_a_value_the_warehouse_refuses_is_refused_online(make_project):
    project = make_project({"models/edges.sql": EDGES_MODEL})
    with FeatureStore(project) as store:
        assert store.run().ok
        row = {"user_id": 1, "amount": float("inf"), "code": "", "at": None, "qty": 1}
        with pytest.raises(SkewlessError, match="edge__cast_int"):
            store.get_online_features([row], ["edge__cast_int"])
        with pytest.raises(AdapterError, match="out of range"):  # DuckDB's conversion error, through the adapter
            offline_and_online(store, [row], ["edge__cast_int"], datetime(2030, 1, 1))


def test_request_fields_and_inputs_are_checked(make_project):
    project = make_project({"models/edges.sql": EDGES_MODEL})
    with FeatureStore(project) as store:
        assert store.run().ok
        with pytest.raises(SkewlessError, match="lacks request field"):
            store.get_online_features([{"user_id": 1}], ["edge__ratio"])
        with pytest.raises(SkewlessError, match="expected a number"):
            store.get_online_features([{"user_id": 1, "amount": "12"}], ["edge__ratio"])
        spine = pa.Table.from_pylist([{"user_id": 1, "as_of": datetime(2030, 1, 1)}])
        with pytest.raises(SkewlessError, match="request field"):
            store.get_historical_features(spine, ["edge__ratio"], timestamp="as_of")
        # only request fields: no stored read at all
        assert store.get_online_features([{"qty": 7}], ["edge__int_div"]) == {"edge__int_div": [2]}


@pytest.mark.parametrize(("body", "message", "line"), [
    ("select amount / nope as x__y", "no feature or request field has that name", 3),
    ("select regexp_matches(code, 'a') as x__y", "not supported", 3),
    ("select amount as x__y from t", "without FROM", 3),
    ("select amount + 1", "needs a name", 3),
    ("select amount + code as x__y", "not a number", 3),
    ("select amount as user__amount_sum__all", "has the name of a feature", 3),
])
def test_on_demand_compile_errors_point_at_the_model(make_project, body, message, line):
    text = ("{{ config(kind='on_demand', request_fields={'amount': 'double', 'code': 'varchar'}) }}\n\n"
            + body + "\n")
    project = make_project({"models/bad.sql": text})
    with pytest.raises(CompileError, match=message) as raised:
        FeatureStore(project).compile()
    assert raised.value.location is not None and raised.value.location.path.name == "bad.sql"
    assert raised.value.location.line == line


def test_inputs_of_unknown_type_must_be_declared(make_project):
    model = """\
{{ config(kind='on_demand') }}
select user__first * 2 as x__double_first
"""
    untyped = """\
{{ config(entity='user', timestamp='event_ts') }}
select user_id, event_ts, first_value(amount) over (partition by user_id order by event_ts) as user__first
from {{ source('app', 'events') }}
"""
    project = make_project({"models/x.sql": model, "models/first.sql": untyped})
    with pytest.raises(CompileError, match="inputs=") as raised:
        FeatureStore(project).compile()
    assert "user__first" in str(raised.value)
    (project / "models/x.sql").write_text(model.replace("kind='on_demand'",
                                                        "kind='on_demand', inputs={'user__first': 'double'}"))
    compiled = FeatureStore(project).compile()
    assert compiled.nodes["x"].on_demand.features[0].type.name == "DOUBLE"
    assert compiled.graph.parents["x"] == ("first",)


def test_the_manifest_gives_the_serving_catalog_the_project_gives(example_copy):
    with FeatureStore(example_copy) as store:
        store.compile()
        from_project = store.serving_catalog()
        manifest = json.loads((example_copy / "target" / "manifest.json").read_text())
        from_manifest = ServingCatalog.from_manifest(manifest)
        assert from_manifest.models == from_project.models
        assert set(from_manifest.on_demand) == set(from_project.on_demand) == set(PAYMENT)
        for name, feature in from_project.on_demand.items():
            loaded = from_manifest.on_demand[name]
            assert (loaded.sql, dict(loaded.inputs), dict(loaded.request), loaded.type) == (
                feature.sql, dict(feature.inputs), dict(feature.request), feature.type)
        assert from_manifest.services == from_project.services
        assert "payment__context" in from_manifest.services["fraud_v2"]
