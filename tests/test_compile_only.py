"""Compile-only warehouses (Snowflake, Trino, Databricks, BigQuery): the example project compiles for each
target without a connection; its SQL matches golden files, parses back in the target's dialect, and, transpiled
back to DuckDB, returns exactly what the DuckDB build returns.

What this cannot check: the target engine's own semantics of functions sqlglot maps one to one (the round trip
goes through sqlglot twice), and anything the on-demand finishing step does (DuckDB runs it on every engine).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
import sqlglot
import yaml
from click.testing import CliRunner
from sqlglot import exp
from test_golden_sql import check

from skewless import FeatureStore
from skewless.adapters.local import query_arrow
from skewless.cli.main import cli
from skewless.offline.retrieval import finishing_step

# One golden file per dialect: the SQL a compile for that target writes is the SQL `show --dialect` writes for it,
# and tests/test_golden_sql.py checks the same files from the DuckDB project (BigQuery's models, whose windows are
# rewritten for the target, exist here only).
GOLDEN = Path(__file__).resolve().parent / "golden" / "example_project"
COMPILE_ONLY = ["snowflake", "trino", "databricks", "bigquery"]
# Training-set SQL that sqlglot cannot write back for DuckDB, so that the round trip cannot run it (goldens and
# the target's parser still check it):
UNCHECKED_DATASETS = {"snowflake": "ASOF JOIN ... MATCH_CONDITION (...) is written back unchanged"}


def written_back(text: str, kind: str) -> str:
    """The target's SQL written for DuckDB. A spine's row id on Databricks is MONOTONICALLY_INCREASING_ID(), which
    DuckDB lacks: it becomes ROW_NUMBER() OVER () (both only tell rows apart), the one construct replaced."""
    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.upper() == "MONOTONICALLY_INCREASING_ID":
            return exp.Window(this=exp.RowNumber())
        return node

    return sqlglot.parse_one(text, read=kind).transform(replace).sql(dialect="duckdb")


def on_target(source: Path, tmp: Path, kind: str) -> Path:
    root = tmp / kind
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    profile = {"payments": {"target": kind, "outputs": {kind: {"type": kind, "schema": "features"}}}}
    (root / "profiles.yml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def duckdb_build(tmp_path_factory) -> FeatureStore:
    from conftest import EXAMPLE

    root = tmp_path_factory.mktemp("reference") / "example_project"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "__pycache__"))
    store = FeatureStore(root)
    assert store.run(online=False).ok
    yield store
    store.close()


def rows(table: pa.Table) -> list[str]:
    return sorted(repr(row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True))


@pytest.mark.parametrize("kind", COMPILE_ONLY)
def test_models_compile_match_goldens_parse_back_and_equal_duckdb(kind, duckdb_build, tmp_path):
    compiled = FeatureStore(on_target(duckdb_build.config.root, tmp_path, kind)).compile(write=False)
    reference = duckdb_build.compile(write=False)
    connection = duckdb_build.adapter.connection
    checked = 0
    for name in compiled.order:
        if compiled.nodes[name].on_demand is not None:
            continue
        text = compiled.sql(name)
        check(GOLDEN / "compiled" / f"{name}.{kind}.sql", text + "\n")
        sqlglot.parse_one(text, read=kind)  # what skewless writes, the target's parser reads
        back = sqlglot.transpile(text, read=kind, write="duckdb")[0]
        assert rows(connection.sql(back).to_arrow_table()) == rows(connection.sql(reference.sql(name)).to_arrow_table())
        checked += 1
    assert checked == 12


@pytest.mark.parametrize("kind", COMPILE_ONLY)
def test_the_training_set_query_matches_its_golden_and_equals_duckdb(kind, duckdb_build, tmp_path):
    store = FeatureStore(on_target(duckdb_build.config.root, tmp_path, kind))
    text = store.dataset_sql("fraud_training")
    check(GOLDEN / "datasets" / f"fraud_training.{kind}.sql", text + "\n")
    query = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    sqlglot.parse_one(query, read=kind)
    if kind in UNCHECKED_DATASETS:
        return
    back = written_back(query, kind)
    result = duckdb_build.adapter.connection.sql(back).to_arrow_table()
    dataset = store.catalog.dataset("fraud_training")
    features = store.resolve_features(list(dataset.features))
    finish = finishing_step(store.compile(write=False), list(dataset.spine.columns), features, kind)
    assert finish is not None  # the dataset has on-demand features: DuckDB computes them after the query
    got = query_arrow(result, finish)
    expected = duckdb_build.get_historical_features(
        duckdb_build.adapter.connection.sql(
            f"select {', '.join(dataset.spine.columns)} from features.labelled_payments").to_arrow_table(),
        features, timestamp="event_ts").to_arrow()
    assert got.column_names == expected.column_names
    assert rows(got) == rows(expected)


@pytest.mark.parametrize("kind", COMPILE_ONLY)
def test_a_run_on_a_compile_only_target_says_so(kind, tmp_path):
    from conftest import EXAMPLE

    result = CliRunner().invoke(cli, ["run", "--project-dir", str(on_target(EXAMPLE, tmp_path, kind))])
    assert result.exit_code == 2, result.output
    assert "compile-only" in result.output and "Traceback" not in result.output


def test_bigquery_range_frames_run_over_microseconds(tmp_path):
    # BigQuery's RANGE frames need a numeric key: rolling windows over a time are written over UNIX_MICROS, with
    # the bounds in microseconds (the round trip above shows the same rows come out).
    from conftest import EXAMPLE

    compiled = FeatureStore(on_target(EXAMPLE, tmp_path, "bigquery")).compile(write=False)
    text = compiled.sql("user_spend")
    assert "UNIX_MICROS(CAST(" in text and "BETWEEN 604800000000 PRECEDING" in text.upper()
