"""project/data_tests.py and offline/testing.py: `skewless test` and `skewless build`. Each kind of test passes on
good data and fails on data that breaks it (with its failing rows), freshness against a frozen clock, unit tests
on DuckDB, and build skipping what reads a model whose test failed."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import TYPED_SOURCES

from skewless import FeatureStore
from skewless.cli.main import cli
from skewless.core.errors import CompileError, ProjectError

EVENTS = """\
    user_id,merchant_id,amount,event_ts
    1,10,5.0,2026-01-01 10:00:00
    1,11,7.5,2026-01-02 10:00:00
    2,10,3.0,2026-01-02 11:00:00
    2,10,4.0,2026-01-05 09:00:00
    3,,-2.0,2026-01-05 09:00:00
    3,12,1.0,2026-01-05 09:00:00
"""
MERCHANTS = "models/merchants.sql", """\
    {{ config(entity='merchant', timestamp='event_ts') }}
    select distinct merchant_id, cast('2025-01-01' as timestamp) as event_ts, 'shop' as merchant__kind
    from {{ source('app', 'events') }} where merchant_id in (10, 11)
"""
PAYMENTS = "models/payments.sql", """\
    {{ config(entity='user', timestamp='event_ts', materialized='view') }}
    select user_id, event_ts, merchant_id, amount as user__amount from {{ source('app', 'events') }}
"""
CHILD = "models/payment_totals.sql", """\
    {{ config(entity='user', timestamp='event_ts') }}
    select user_id, event_ts, sum(user__amount) over (partition by user_id order by event_ts) as user__total
    from {{ ref('payments') }}
"""


def _project(make_project, schema: str, extra: dict[str, str] | None = None) -> Path:
    return make_project({"data/events.csv": EVENTS, "models/user_amounts.sql": None, MERCHANTS[0]: MERCHANTS[1],
                         PAYMENTS[0]: PAYMENTS[1], CHILD[0]: CHILD[1], "models/schema.yml": schema,
                         **(extra or {})})


SCHEMA = """\
    models:
      - name: payments
        tests: [unique]
        columns:
          - name: merchant_id
            tests:
              - not_null
              - relationships: {to: "ref('merchants')", field: merchant_id}
              - accepted_values: {values: [10, 11]}
          - name: user__amount
            tests:
              - accepted_range: {min_value: 0, config: {severity: warn}}
"""


def test_each_generic_test_reports_its_failing_rows(make_project):
    root = _project(make_project, SCHEMA)
    with FeatureStore(root) as store:
        store.run(online=False)
        results = {r.name: r for r in store.test().results}
    unique = results["unique_payments"]  # user 3 has two payments at one instant
    assert (unique.status, unique.failures) == ("fail", 1) and unique.rows[0]["user_id"] == 3
    assert unique.rows[0]["occurrences"] == 2
    assert (results["not_null_payments_merchant_id"].status, results["not_null_payments_merchant_id"].failures) == \
        ("fail", 1)
    relationships = results["relationships_payments_merchant_id"]
    assert (relationships.status, relationships.failures, relationships.rows) == ("fail", 1, [{"merchant_id": 12}])
    accepted = results["accepted_values_payments_merchant_id"]
    assert accepted.status == "fail" and accepted.rows == [{"merchant_id": 12, "occurrences": 1}]
    in_range = results["accepted_range_payments_user__amount"]  # severity warn: reported, not failed
    assert (in_range.status, in_range.failures) == ("warn", 1) and in_range.rows[0]["user__amount"] == -2.0
    data = json.loads((root / "target" / "run_results.json").read_text())
    assert data["success"] is False and {r["name"] for r in data["results"]} == set(results)


def test_tests_pass_on_data_that_keeps_them(make_project):
    good = EVENTS.replace("    3,,-2.0,2026-01-05 09:00:00\n    3,12,1.0,2026-01-05 09:00:00\n", "")
    root = _project(make_project, SCHEMA, {"data/events.csv": good})
    with FeatureStore(root) as store:
        store.run(online=False)
        results = store.test()
    assert results.ok and {r.status for r in results.results} == {"pass"}


@pytest.mark.parametrize(("now", "status"), [("2026-01-06 09:00:00", "pass"), ("2026-01-08 09:00:00", "warn"),
                                             ("2026-01-20 09:00:00", "fail")])
def test_freshness_against_a_frozen_clock(make_project, now, status):
    schema = "models:\n  - name: payments\n    tests:\n      - freshness: {warn_after: 2d, error_after: 7d}\n"
    root = _project(make_project, schema)
    with FeatureStore(root) as store:
        store.run(online=False)
        (result,) = store.test(now=lambda: datetime.fromisoformat(now)).results
    assert result.status == status and "newest event_ts is 2026-01-05 09:00:00" in (result.message or "")


def test_a_singular_test_fails_with_its_rows_and_the_cli_exits_1(make_project):
    root = _project(make_project, "models: []\n", {"tests/no_negative_amounts.sql": """\
        select user_id, user__amount from {{ ref('payments') }} where user__amount < 0
    """})
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "--no-online", "--project-dir", str(root)]).exit_code == 0
    result = runner.invoke(cli, ["test", "--project-dir", str(root)])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "no_negative_amounts" in result.output and "-2.0" in result.output


UNIT = """\
    unit_tests:
      - name: totals_add_up
        model: payment_totals
        given:
          - input: ref('payments')
            rows:
              - {user_id: 1, event_ts: "2026-01-01 10:00:00", user__amount: 5}
              - {user_id: 1, event_ts: "2026-01-02 10:00:00", user__amount: 2.5}
        expect:
          rows:
            - {user_id: 1, event_ts: "2026-01-01 10:00:00", user__total: 5}
            - {user_id: 1, event_ts: "2026-01-02 10:00:00", user__total: TOTAL}
"""


def test_unit_tests_run_on_duckdb_and_show_the_difference(make_project):
    root = _project(make_project, UNIT.replace("TOTAL", "7.5"))
    with FeatureStore(root) as store:
        (result,) = store.test().results  # nothing was built: a unit test needs no warehouse
    assert (result.kind, result.status) == ("unit", "pass")
    wrong = make_project({"models/schema.yml": UNIT.replace("TOTAL", "8"), "data/events.csv": EVENTS,
                          "models/user_amounts.sql": None, PAYMENTS[0]: PAYMENTS[1], CHILD[0]: CHILD[1]},
                         name="wrong")
    with FeatureStore(wrong) as store:
        (result,) = store.test().results
    assert result.status == "fail" and result.failures == 2
    assert {row[""] for row in result.rows} == {"expected, not returned", "returned, not expected"}
    assert any(row.get("user__total") == 7.5 for row in result.rows)


def test_a_unit_test_must_give_every_input_the_model_reads(make_project):
    root = _project(make_project, UNIT.replace("TOTAL", "7.5").replace("ref('payments')", "ref('merchants')"))
    with FeatureStore(root) as store:
        (result,) = store.test().results
    assert result.status == "error" and "reads" in (result.message or "") and "payments" in (result.message or "")


def test_build_skips_what_reads_a_model_whose_test_failed(make_project):
    child_tests = "  - name: payment_totals\n    columns:\n      - name: user__total\n        tests: [not_null]\n"
    root = _project(make_project, textwrap.dedent(SCHEMA) + child_tests)
    with FeatureStore(root) as store:
        runs, tests = store.build(online=False)
    status = {r.name: r.status for r in runs.results}
    assert status["payments"] == "success" and status["payment_totals"] == "skipped"
    assert status["merchants"] == "success"
    assert not tests.ok and not runs.ok
    assert [(r.name, r.status) for r in tests.results if r.model == "payment_totals"] == [
        ("not_null_payment_totals_user__total", "skipped")]


def test_data_tests_is_read_when_tests_is_empty_and_errors_point_at_it(make_project):
    """dbt's `tests` and `data_tests` are aliases: an empty `tests: []` beside `data_tests` must not hide them."""
    schema = ("models:\n  - name: payments\n    tests: []\n    data_tests: [unique]\n    columns:\n"
              "      - name: merchant_id\n        tests: []\n        data_tests: [not_null]\n"
              "      - name: user__amount\n        data_tests: [not_null]\n")
    root = _project(make_project, schema)
    declared = {(t.kind, t.column, t.location.line) for t in FeatureStore(root).compile(write=False).tests.data}
    assert declared == {("unique", None, 4), ("not_null", "merchant_id", 8), ("not_null", "user__amount", 10)}
    bad = _project(make_project, schema.replace("data_tests: [unique]", "data_tests: [uniq]"))
    with pytest.raises(CompileError, match="unknown test 'uniq'") as raised:
        FeatureStore(bad).compile(write=False)
    assert raised.value.location.line == 4


@pytest.mark.parametrize(("schema", "words"), [
    ("models:\n  - name: payments\n    columns:\n      - name: merchant_id\n        tests: [not_nul]\n",
     "unknown test 'not_nul'"),
    ("models:\n  - name: payments\n    columns:\n      - name: nope\n        tests: [not_null]\n",
     "has no column 'nope'"),
    ("models:\n  - name: payments\n    columns:\n      - name: merchant_id\n        tests:\n"
     "          - accepted_values: {values: []}\n", "accepted_values needs values"),
    ("models:\n  - name: payments\n    columns:\n      - name: merchant_id\n        tests: [not_null]\n"
     "      - name: user__amount\n        tests: true\n", "a column of model 'payments': 'tests' must be a list"),
    ("unit_tests:\n  - name: t\n    model: nothing\n    given: []\n    expect: {rows: []}\n", "is not a model"),
    ("unit_tests:\n  - name: t\n    model: payments\n    given: []\n    expect: {csv: /etc/passwd.csv}\n",
     "is outside the project"),
    ("unit_tests:\n  - name: t\n    model: payments\n    given: []\n    expect: {csv: ../../secret.csv}\n",
     "is outside the project"),
])
def test_bad_declarations_are_located_errors(make_project, schema, words):
    root = _project(make_project, schema)
    with pytest.raises((CompileError, ProjectError)) as raised:
        FeatureStore(root).compile(write=False)
    assert words in str(raised.value) and raised.value.location is not None
    assert str(raised.value.location.path).endswith("schema.yml") and raised.value.location.line is not None


def test_the_example_project_declares_every_kind_and_builds_green():
    example = Path(__file__).resolve().parent.parent / "example_project"
    with FeatureStore(example) as store:
        tests = store.compile(write=False).tests
        kinds = {t.kind for t in tests.data} | {"unit" for _ in tests.unit}
        assert kinds >= {"not_null", "unique", "accepted_values", "accepted_range", "relationships", "freshness",
                         "singular", "unit"}


def test_the_same_tests_on_postgres(make_project, postgres_database):
    """Generic and singular tests compile to Postgres' SQL and find the same failures as on DuckDB."""
    import psycopg

    with psycopg.connect(**postgres_database, autocommit=True) as connection:
        for schema in ("features", "raw"):
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())
    settings = ", ".join(f"{k}: {v}" for k, v in postgres_database.items())
    singular = {"tests/no_negative_amounts.sql":
                "select user_id, user__amount from {{ ref('payments') }} where user__amount < 0\n"}
    found = {}
    for engine, target in (("duckdb", "{type: duckdb, path: target/t.duckdb, schema: features}"),
                           ("postgres", f"{{type: postgres, {settings}, schema: features}}")):
        root = make_project({"data/events.csv": EVENTS, "models/user_amounts.sql": None, "sources.yml": TYPED_SOURCES,
                             MERCHANTS[0]: MERCHANTS[1], PAYMENTS[0]: PAYMENTS[1], CHILD[0]: CHILD[1],
                             "models/schema.yml": SCHEMA, **singular,
                             "profiles.yml": f"mini:\n  target: dev\n  outputs:\n    dev: {target}\n"},
                            name=engine)
        with FeatureStore(root) as store:
            assert store.run(online=False).ok
            found[engine] = {r.name: (r.status, r.failures, r.rows) for r in store.test().results}
    assert found["postgres"] == found["duckdb"]
    assert found["postgres"]["no_negative_amounts"][:2] == ("fail", 1)
