"""The engine table: everything skewless knows about each warehouse, in one place.

A target's `type` picks a row; the row gives the sqlglot dialect the compiler writes, the adapter class that
executes it, the point-in-time formulation, and how the engine does the steps a materialization is made of. An
adapter overrides the base adapter's step where its row says the engine does it differently (a conformance test
checks that it does). Rows without an adapter are compile-only: `skewless show --dialect` and training-set SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ProjectError, SkewlessError, did_you_mean


@dataclass(frozen=True)
class Engine:
    target_type: str
    dialect: str  # the sqlglot dialect
    adapter: str | None  # "module:Class" that executes it; None: compile-only
    pit: str  # the point-in-time formulation (offline/pit.py): asof | asof_match | lateral | window | carry
    lateral: bool  # LEFT JOIN LATERAL (... LIMIT 1): the as-known join where it exists
    asof: bool  # an ASOF join
    transactional_ddl: bool  # CREATE/DROP/RENAME roll back with the transaction
    swap: str  # how a rebuilt table replaces the old: rename | create_or_replace | swap_with | view_pointer
    merge: str  # how an incremental merge is done: delete_insert | merge | insert_overwrite
    arrow_spine: str  # how an Arrow spine is loaded: scan (read in place) | temp_table | dataframe
    utc: str  # how the session is put in UTC (naive timestamps are UTC; so is every comparison)
    executes_in_tests: bool = False  # the adapter conformance suite runs it
    # On-demand features of a training set: computed inside the training query (the engine evaluates SQL as the
    # online evaluator does), or else by DuckDB over the query's result, with the very semantics served online.
    on_demand_in_query: bool = False
    lookup_index: bool = False  # feature tables get an index on (keys, time): the LATERAL join looks rows up by it
    numeric_range_frames: bool = False  # RANGE window frames need a numeric order key (core/windows.py rewrites)
    # The session makes TIMESTAMP naive (Spark: spark.sql.timestampType=TIMESTAMP_NTZ), so zoned types are written
    # TIMESTAMP_LTZ (sqlbuild.explicit_zoned_timestamps).
    timestamp_ntz: bool = False
    unordered_row_number: bool = True  # ROW_NUMBER() OVER () is allowed (Spark: no; spines get a unique id instead)

    @property
    def as_known_pit(self) -> str:
        """The as-known formulation: a LATERAL join where there is one, else a join ranked per spine row."""
        return "lateral" if self.lateral else "ranked"


ENGINES: dict[str, Engine] = {e.target_type: e for e in [
    Engine("duckdb", "duckdb", "skewless.adapters.duckdb_adapter:DuckDBAdapter", pit="asof", lateral=True,
           asof=True, transactional_ddl=True, swap="rename", merge="delete_insert", arrow_spine="scan",
           utc="SET TimeZone = 'UTC'", executes_in_tests=True, on_demand_in_query=True),
    Engine("postgres", "postgres", "skewless.adapters.postgres_adapter:PostgresAdapter", pit="lateral",
           lateral=True, asof=False, transactional_ddl=True, swap="rename", merge="delete_insert",
           arrow_spine="temp_table", utc="SET TimeZone = 'UTC'", executes_in_tests=True, lookup_index=True),
    Engine("redshift", "redshift", None, pit="lateral", lateral=True, asof=False, transactional_ddl=True,
           swap="rename", merge="delete_insert", arrow_spine="temp_table", utc="SET timezone TO 'UTC'"),
    Engine("snowflake", "snowflake", None, pit="asof_match", lateral=True, asof=True, transactional_ddl=False,
           swap="swap_with", merge="merge", arrow_spine="temp_table",
           utc="ALTER SESSION SET TIMEZONE = 'UTC'"),
    Engine("spark", "spark", "skewless.adapters.spark_adapter:SparkAdapter", pit="carry", lateral=False,
           asof=False, transactional_ddl=False, swap="view_pointer", merge="insert_overwrite",
           arrow_spine="dataframe", utc="spark.sql.session.timeZone=UTC", executes_in_tests=True,
           timestamp_ntz=True, unordered_row_number=False),
    Engine("databricks", "databricks", None, pit="window", lateral=False, asof=False, transactional_ddl=False,
           swap="create_or_replace", merge="merge", arrow_spine="dataframe",
           utc="spark.sql.session.timeZone=UTC", unordered_row_number=False),
    Engine("bigquery", "bigquery", None, pit="window", lateral=False, asof=False, transactional_ddl=False,
           swap="create_or_replace", merge="merge", arrow_spine="temp_table", utc="timestamps are UTC",
           numeric_range_frames=True),
    Engine("trino", "trino", None, pit="window", lateral=False, asof=False, transactional_ddl=False,
           swap="rename", merge="merge", arrow_spine="temp_table", utc="SET TIME ZONE 'UTC'"),
    Engine("presto", "presto", None, pit="window", lateral=False, asof=False, transactional_ddl=False,
           swap="rename", merge="delete_insert", arrow_spine="temp_table", utc="SET TIME ZONE 'UTC'"),
]}

# Online store types: type -> "module:Class" (from_settings(settings, target_path)); imported only when opened.
ONLINE_STORES = {"redis": "skewless.adapters.redis_online:RedisOnlineStore"}

# Target types a profile may name today: the ones with an adapter, and those whose adapters are being built.
TARGET_TYPES = ("duckdb", "postgres", "spark", "snowflake", "bigquery", "trino", "databricks")
_BY_DIALECT = {e.dialect: e for e in ENGINES.values()}


def engine_for_target(target_type: str) -> Engine:
    """The row of a profile's target type; a clear error for one skewless does not know."""
    if target_type not in TARGET_TYPES:
        raise ProjectError(
            f"unknown target type {target_type!r}",
            hint=did_you_mean(target_type, TARGET_TYPES) or f"use one of {', '.join(TARGET_TYPES)}",
        )
    return ENGINES[target_type]


def engine_for_dialect(dialect: str) -> Engine:
    """The row of a sqlglot dialect (training-set SQL may be shown in any dialect of the table)."""
    engine = _BY_DIALECT.get(dialect)
    if engine is None:
        raise SkewlessError(
            f"no point-in-time join for dialect {dialect!r}",
            hint=f"supported: {', '.join(sorted(_BY_DIALECT))}",
        )
    return engine
