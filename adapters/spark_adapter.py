"""Apache Spark through a SparkSession: in-process (`method: session`, a local master by default, tables in a
warehouse folder and a metastore under the project's target/) or a cluster's Spark Connect endpoint
(`method: connect`, `url: sc://host:15002`).

Spark has no transactional DDL, so nothing is ever dropped before its replacement exists. A feature table is a
view over a physical table (`<name>__skewless_v<id>`): a build writes a new physical table and then repoints the
view (CREATE OR REPLACE VIEW is a single catalog operation), so a failed build leaves the previous view, table and
rows untouched; an incremental merge writes the merged rows to a new physical table the same way (Spark tables
cannot DELETE). The session runs in UTC with TIMESTAMP meaning a naive timestamp (TIMESTAMP_NTZ), as on the
other engines; zoned timestamps are written TIMESTAMP_LTZ.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from skewless.core.engines import ENGINES
from skewless.core.errors import AdapterError, ProjectError
from skewless.core.sqlbuild import quoted_column, relation_table

from .base import TEMP_SUFFIX, BuildResult, ColumnCheck, WarehouseAdapter, driver_message

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from skewless.project.config import ProjectConfig

PHYSICAL = "__skewless_v"  # <view name> + PHYSICAL + hex id: the physical tables behind a feature table's view
MERGED_SUFFIX = "__skewless_merged"
_BUCKET = "__skewless_bucket"

# Settings every session gets (a profile's `conf:` may add others; these keep skewless' semantics).
_FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.ansi.enabled": "true",  # a bad cast or an overflow is an error, as on DuckDB and Postgres
}
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",  # progress is ours to draw
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Derby (the local metastore) cannot filter partitions by an integer: list them all instead (a bucketed read-back
    # has a few dozen).
    "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
}
_lock = threading.Lock()
_local_session: tuple[str, "SparkSession"] | None = None  # (warehouse folder, session): one JVM per process


class SparkAdapter(WarehouseAdapter):
    engine = ENGINES["spark"]
    default_schema = "default"

    def __init__(self, config: "ProjectConfig") -> None:
        super().__init__()
        settings = dict(config.target.settings)
        method = str(settings.get("method", "session"))
        conf = {**_DEFAULT_CONF, **{str(k): str(v) for k, v in (settings.get("conf") or {}).items()}, **_FIXED_CONF}
        if method == "connect":
            self.session = _connect(settings, conf)
        elif method == "session":
            self.session = _session(config, settings, conf)
        else:
            raise ProjectError(f"unknown Spark method {method!r}",
                               hint="method: session (a SparkSession in this process) or connect (Spark Connect)")
        self.method = method

    # -- primitives ----------------------------------------------------------------------------------

    def _execute_sql(self, sql: str) -> Any:
        return self.session.sql(sql)

    def _fetch_arrow_sql(self, sql: str) -> pa.Table:
        return self.session.sql(sql).toArrow()

    def fetch_all(self, query: exp.Query, *, log: bool = True) -> list[tuple[Any, ...]]:
        table = self.fetch_arrow(query, log=log)
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True)) if table.num_columns else []

    def fetch_arrow_batches(self, query: exp.Query, *, log: bool = True) -> Iterator[pa.RecordBatch]:
        """Large results without collecting them on the driver at once: the rows are written to a table
        partitioned into buckets of about `batch_rows` rows, read back one bucket at a time."""
        total = self.row_count_of(query)
        buckets = max(1, math.ceil(total / self.batch_rows))
        if buckets == 1:
            yield from self.fetch_arrow(query, log=log).to_batches()
            return
        columns = [quoted_column(c) for c in self.query_columns(query)]
        staged = relation_table(f"skewless_batches_{uuid.uuid4().hex[:12]}", self.default_schema)
        hashed = exp.func("xxhash64", *[c.copy() for c in columns])
        bucket = exp.alias_(exp.func("pmod", hashed, exp.Literal.number(buckets)), _BUCKET, quoted=True)
        partitioned = exp.PartitionedByProperty(this=exp.Schema(expressions=[exp.to_identifier(_BUCKET, quoted=True)]))
        create = exp.Create(this=staged.copy(), kind="TABLE", expression=exp.select(*columns, bucket).from_(
            query.subquery("rows")), properties=exp.Properties(expressions=[
                exp.FileFormatProperty(this=exp.var("PARQUET")), partitioned]))
        self.execute(create, log=log)
        try:
            for index in range(buckets):
                part = exp.select(*[c.copy() for c in columns]).from_(staged.copy()).where(
                    quoted_column(_BUCKET).eq(exp.Literal.number(index)))
                yield from self.fetch_arrow(part, log=False).to_batches()
        finally:
            self.execute(exp.Drop(tables=[staged], kind="TABLE", exists=True), log=False)

    def row_count_of(self, query: exp.Query) -> int:
        rows = self.fetch_all(exp.select(exp.Count(this=exp.Star())).from_(query.subquery("counted")), log=False)
        return int(rows[0][0])

    def query_columns(self, query: exp.Query) -> list[str]:
        return list(self.fetch_arrow(exp.select("*").from_(query.subquery("probe")).limit(0), log=False).column_names)

    def register_arrow(self, name: str, table: pa.Table) -> exp.Table:
        """A temporary view over a DataFrame made from the Arrow table."""
        from pyspark.sql.pandas.types import from_arrow_schema

        try:  # the schema given, not inferred: an empty table has nothing to infer it from (Spark Connect)
            schema = from_arrow_schema(table.schema, prefer_timestamp_ntz=True)
            self.session.createDataFrame(table, schema=schema).createOrReplaceTempView(name)
        except Exception as error:
            raise AdapterError(f"loading rows into Spark failed: {driver_message(error)}") from None
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def unregister_arrow(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.session.catalog.dropTempView(name)

    def close(self) -> None:
        """The session outlives the adapter (starting a JVM costs seconds); a Connect session is released."""
        if self.method == "connect":
            with contextlib.suppress(Exception):
                self.session.stop()

    # -- the catalog -------------------------------------------------------------------------------------

    def _listing(self, schema: str) -> dict[str, str]:
        """Relation name (lower case, as the metastore keeps it) -> 'VIEW' or 'TABLE', in one schema."""
        try:
            tables = self.session.catalog.listTables(_backquoted(schema))
        except Exception:  # the schema does not exist
            return {}
        return {t.name.lower(): ("VIEW" if t.tableType == "VIEW" else "TABLE")
                for t in tables if not t.isTemporary}

    def _physical_tables(self, table: exp.Table, listing: dict[str, str] | None = None) -> list[str]:
        """The physical tables behind the view of a feature table."""
        listing = self._listing(table.db or self.default_schema) if listing is None else listing
        pattern = re.compile(re.escape(table.name.lower() + PHYSICAL) + r"[0-9a-f]{12}")
        return sorted(name for name, kind in listing.items() if kind == "TABLE" and pattern.fullmatch(name))

    def relation_kind(self, table: exp.Table) -> str | None:
        """A view over its physical tables is a feature table: 'table'."""
        listing = self._listing(table.db or self.default_schema)
        kind = listing.get(table.name.lower())
        if kind is None:
            return None
        if kind == "VIEW":
            return "table" if self._physical_tables(table, listing) else "view"
        return "table"

    def columns(self, table: exp.Table) -> dict[str, str]:
        try:
            schema = self.session.table(table.sql(dialect="spark")).schema
        except Exception:
            return {}
        return {field.name: field.dataType.simpleString() for field in schema.fields}

    def drop(self, table: exp.Table, kind: str | None = None) -> None:
        """Drop a relation and, for a feature table's view, the physical tables behind it."""
        listing = self._listing(table.db or self.default_schema)
        actual = listing.get(table.name.lower())
        if actual is not None:
            self.execute(exp.Drop(tables=[table.copy()], kind=actual, exists=True))
        self._drop_physical(table, self._physical_tables(table, listing))

    def _drop_physical(self, table: exp.Table, names: Sequence[str]) -> None:
        """Drop physical tables (named) that stood behind the view `table`."""
        for name in names:
            self.execute(exp.Drop(tables=[relation_table(name, table.db or None)], kind="TABLE", exists=True))

    # -- materializations: a view repointed to a new physical table -------------------------------------

    def swap_in(self, staged: exp.Table, table: exp.Table) -> None:
        """Rename the staged table to a new physical name, point the view at it, then drop the older physical
        tables. Only a plain table of the view's name (not made this way) is dropped before the view exists."""
        listing = self._listing(table.db or self.default_schema)
        older = self._physical_tables(table, listing)
        physical = relation_table(f"{table.name}{PHYSICAL}{uuid.uuid4().hex[:12]}", table.db or None)
        self.rename(staged, physical.name)
        if listing.get(table.name.lower()) == "TABLE":
            self.execute(exp.Drop(tables=[table.copy()], kind="TABLE", exists=True))
        self.execute(exp.Create(this=table.copy(), kind="VIEW", replace=True,
                                expression=exp.select("*").from_(physical)))
        self._drop_physical(table, older)

    def replace_view(self, table: exp.Table, query: exp.Query, check: ColumnCheck | None = None) -> BuildResult:
        """CREATE OR REPLACE VIEW over a view (a feature table's included) is one catalog operation; a plain
        table of that name is dropped only once the new view's query has been checked."""
        self.ensure_schema(table.db)
        listing = self._listing(table.db or self.default_schema)
        older = self._physical_tables(table, listing)
        if listing.get(table.name.lower()) == "TABLE":
            probe = relation_table(table.name + TEMP_SUFFIX, table.db or None)
            self.execute(exp.Create(this=probe.copy(), kind="VIEW", replace=True, expression=query.copy()))
            self.execute(exp.Drop(tables=[probe], kind="VIEW", exists=True))
            self.execute(exp.Drop(tables=[table.copy()], kind="TABLE", exists=True))
        self.execute(exp.Create(this=table.copy(), kind="VIEW", expression=query.copy(), replace=True))
        self._drop_physical(table, older)
        if check is not None:
            check(self.columns(table))
        return BuildResult(None)

    def merge_rows(self, staged: exp.Table, table: exp.Table, unique_key: Sequence[str] | None,
                   columns: Sequence[str]) -> None:
        """Insert-overwrite by swap: the old rows whose key is not staged, plus the staged rows, written to a new
        physical table that replaces the old one (the old one stays whole until then)."""
        old = exp.select(*[quoted_column(c, "old") for c in columns]).from_(exp.alias_(table.copy(), "old",
                                                                                        table=True))
        if unique_key:
            match = exp.and_(*[exp.NullSafeEQ(this=quoted_column(k, "new"), expression=quoted_column(k, "old"))
                               for k in unique_key])
            old = old.where(exp.Exists(this=exp.select(exp.Literal.number(1)).from_(
                exp.alias_(staged.copy(), "new", table=True)).where(match)).not_())
        new = exp.select(*[quoted_column(c) for c in columns]).from_(staged.copy())
        merged = relation_table(table.name + MERGED_SUFFIX, table.db or None)
        self.drop(merged, "table")
        try:
            self.create_table_as(merged, exp.union(old, new, distinct=False))
            self.swap_in(merged, table)
        except BaseException:
            with contextlib.suppress(Exception):
                self.drop(merged, "table")
            raise

    def delete_where(self, table: exp.Table, condition: exp.Expression) -> None:
        """Spark tables cannot DELETE: the kept rows are written to a new table that replaces the old."""
        kept = relation_table(table.name + TEMP_SUFFIX, table.db or None)
        self.drop(kept, "table")
        keep = exp.Not(this=exp.Coalesce(this=exp.paren(condition.copy()), expressions=[exp.false()]))
        self.create_table_as(kept, exp.select("*").from_(table.copy()).where(keep))
        self.drop(table, "table")
        self.rename(kept, table.name)


def _quiet(session: "SparkSession") -> None:
    """Failures reach the user as errors with their message, not as JVM log lines (Spark logs a failed query's
    whole plan, at ERROR, from loggers of their own: every logger goes to FATAL)."""
    session.sparkContext.setLogLevel("FATAL")
    with contextlib.suppress(Exception):
        jvm = session.sparkContext._jvm
        log4j = jvm.org.apache.logging.log4j
        log4j.core.config.Configurator.setAllLevels(log4j.LogManager.ROOT_LOGGER_NAME, log4j.Level.FATAL)


def _backquoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _import_pyspark() -> None:
    """pyspark warns, on import, that it does not yet support pandas 3: skewless hands it Arrow, never pandas."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        import pyspark.sql  # noqa: F401
    except ModuleNotFoundError:
        raise ProjectError("the spark adapter needs the Python package 'pyspark' (with Spark Connect)",
                           hint="pip install 'skewless[spark]'") from None


def _session(config: "ProjectConfig", settings: dict[str, Any], conf: dict[str, str]) -> "SparkSession":
    """The process's one local SparkSession (a JVM takes seconds to start); a second target asking for another
    warehouse folder is an error rather than a silent write to the first one's."""
    global _local_session
    root = config.target_path
    warehouse = Path(str(settings.get("warehouse_dir") or root / "spark-warehouse"))
    if not warehouse.is_absolute():
        warehouse = config.root / warehouse
    metastore = Path(str(settings.get("metastore_dir") or warehouse.parent / "spark-metastore"))
    if not metastore.is_absolute():
        metastore = config.root / metastore
    with _lock:
        if _local_session is not None:
            folder, session = _local_session
            if folder != str(warehouse):
                raise AdapterError(
                    f"this process already runs a Spark session over {folder}; one cannot open {warehouse}",
                    hint="one local Spark session per process: use one warehouse_dir for every Spark target")
            for key, value in _FIXED_CONF.items():
                session.conf.set(key, value)
            return session
        _import_pyspark()
        from pyspark.sql import SparkSession

        warehouse.mkdir(parents=True, exist_ok=True)
        metastore.parent.mkdir(parents=True, exist_ok=True)
        java = f"-Dderby.system.home={metastore.parent}"  # derby.log goes there, not to the working folder
        builder = (
            SparkSession.builder.master(str(settings.get("master", "local[2]"))).appName("skewless")
            .config("spark.sql.warehouse.dir", str(warehouse))
            .config("spark.sql.catalogImplementation", "hive")
            .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                    f"jdbc:derby:;databaseName={metastore};create=true")
            .config("spark.driver.extraJavaOptions", java)
        )
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
            _quiet(session)
        except Exception as error:
            raise AdapterError(f"cannot start Spark: {driver_message(error)}",
                               hint="Spark 4 needs Java 17 or later on the PATH (or JAVA_HOME)") from None
        _local_session = (str(warehouse), session)
        return session


def _connect(settings: dict[str, Any], conf: dict[str, str]) -> "SparkSession":
    url = settings.get("url")
    if not url:
        raise ProjectError("a Spark target with method: connect needs a url",
                           hint="e.g. url: sc://spark.internal:15002")
    _import_pyspark()
    from pyspark.sql import SparkSession

    try:
        session = SparkSession.builder.remote(str(url)).create()
        for key, value in conf.items():
            with contextlib.suppress(Exception):  # static settings (the UI, say) belong to the server
                session.conf.set(key, value)
        for key, value in _FIXED_CONF.items():
            session.conf.set(key, value)
    except Exception as error:
        where = str(url).split(";")[0]  # a token rides in the url's parameters
        raise AdapterError(f"cannot connect to Spark Connect at {where}: {driver_message(error)}",
                           hint="check that the Connect server runs and the url's host and port") from None
    return session
