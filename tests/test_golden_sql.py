"""Golden SQL: the example project's compiled models per dialect, and the DDL a fresh build runs.

Regenerate after an intended change with: SKEWLESS_UPDATE_GOLDEN=1 pytest tests/test_golden_sql.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skewless import FeatureStore

GOLDEN = Path(__file__).resolve().parent / "golden" / "example_project"
EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
DIALECTS = ("duckdb", "postgres", "spark", "snowflake")
UPDATE = os.environ.get("SKEWLESS_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def compiled():
    return FeatureStore(EXAMPLE).compile(write=False)


def check(path: Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with SKEWLESS_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} differs from its golden file"


MODELS = sorted(p.stem for p in (EXAMPLE / "models").rglob("*.sql"))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("model", MODELS)
def test_compiled_select(compiled, model, dialect):
    check(GOLDEN / "compiled" / f"{model}.{dialect}.sql", compiled.sql(model, dialect=dialect) + "\n")


def test_executed_sql_of_a_fresh_run(example_copy):
    """target/run holds what a first run of each model executed: the swap-in DDL, in a transaction."""
    with FeatureStore(example_copy) as store:
        assert store.run(online=False).ok
    for path in sorted((example_copy / "target" / "run").rglob("*.sql")):
        check(GOLDEN / "run" / f"{path.stem}.duckdb.sql", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "postgres", "spark", "bigquery", "trino", "databricks"])
def test_dataset_query_per_dialect(dialect):
    text = FeatureStore(EXAMPLE).dataset_sql("fraud_training", dialect=dialect)
    check(GOLDEN / "datasets" / f"fraud_training.{dialect}.sql", text + "\n")


def test_incremental_watermark_query(compiled):
    node = compiled.nodes["merchant_volume"]
    check(GOLDEN / "run" / "merchant_volume.incremental.duckdb.sql",
          node.incremental_query.sql(dialect="duckdb", pretty=True) + "\n")


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake", "postgres", "spark", "bigquery", "trino", "databricks"])
def test_window_features_query_per_dialect(dialect):
    """A training set of window_agg features over a spine table: the range join and one CASE per window."""
    from sqlglot import exp

    from skewless.offline.retrieval import training_query
    from skewless.offline.spines import SpineInput

    spine = SpineInput(exp.to_table("raw.transactions"), ("user_id", "event_ts"), "event_ts")
    query = training_query(FeatureStore(EXAMPLE).compile(write=False), spine,
                           ["user__payments__5m", "user__spend__7d", "user__last_amount__1h", "user__merchants__1d"],
                           dialect=dialect)
    check(GOLDEN / "datasets" / f"user_windows.{dialect}.sql", query.sql(dialect=dialect, pretty=True) + "\n")
