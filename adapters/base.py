"""The warehouse adapter interface: what every engine must do, expressed over sqlglot trees.

Materializations are written once here as a sequence of steps (stage, count, swap in; stage, check columns,
merge); an engine overrides only the steps its row of the engine table says it does differently. Catalog look-ups
any SQL engine answers from information_schema live here too. The compiler hands adapters trees, never SQL text.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from skewless.core.engines import Engine
from skewless.core.errors import AdapterError
from skewless.core.sqlbuild import (
    explicit_zoned_timestamps,
    first_per_group,
    keys_match,
    quoted_column,
    relation_table,
)

if TYPE_CHECKING:
    import pyarrow as pa

TEMP_SUFFIX = "__skewless_tmp"


ColumnCheck = Callable[[dict[str, str]], None]  # raises to refuse what a build produced


@dataclass(frozen=True)
class BuildResult:
    rows: int | None


class WarehouseAdapter(ABC):
    """One connection to one warehouse. Not thread-safe; open one per worker."""

    engine: ClassVar[Engine]
    dialect: ClassVar[str]  # the engine's sqlglot dialect
    default_schema: ClassVar[str] = "main"  # where an unqualified relation lives
    batch_rows = 200_000  # rows per batch of fetch_arrow_batches

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "engine" in cls.__dict__:
            cls.dialect = cls.engine.dialect

    def __init__(self) -> None:
        self.log: list[str] = []

    # -- primitives each engine implements ---------------------------------------------------------

    @abstractmethod
    def _execute_sql(self, sql: str) -> Any:
        """Run one statement already rendered in this dialect; return the engine's cursor/result."""

    @abstractmethod
    def _fetch_arrow_sql(self, sql: str) -> "pa.Table":
        """Run one query already rendered in this dialect and return its rows as an Arrow table."""

    @abstractmethod
    def fetch_all(self, query: exp.Query, *, log: bool = True) -> list[tuple[Any, ...]]:
        """Run a query and return its rows as tuples (small results only)."""

    def load_file(self, path: Path, table: exp.Table, types: Mapping[str, str | None] | None = None) -> int:
        """Replace `table` with the rows of a CSV or parquet file; return the row count.

        `types` are the columns the source declares (a type, or None for any): a file that lacks one, or holds
        a value that is not of its type, is refused before the swap, so the previous table stays."""
        declared = dict(types or {})

        def check(columns: dict[str, str]) -> None:
            missing = [c for c in declared if c not in columns]
            if missing:
                raise AdapterError(f"the file has no column {', '.join(missing)} (it has {', '.join(columns)})",
                                   hint="add the column to the file, or remove it from the source's columns")

        types = {c: t for c, t in declared.items() if t}
        if self.engine.arrow_spine == "scan":
            return self.replace_table(table, self.file_scan(path, types), check).rows or 0
        # Engines that cannot read a file in place get its rows read exactly as DuckDB reads them (same types,
        # same CSV dialect), loaded as a spine is, then built like any table.
        from .local import read_file

        name = f"skewless_file_{table.name}"
        source = self.register_arrow(name, read_file(path, types))
        try:
            query = exp.select("*").from_(source)
            return self.replace_table(table, query, check).rows or 0
        finally:
            self.unregister_arrow(name)

    def register_arrow(self, name: str, table: "pa.Table") -> exp.Table:
        """Make an Arrow table readable by queries (a spine); the portable way loads a temporary table."""
        raise NotImplementedError(f"{type(self).__name__} cannot load Arrow tables yet")

    def unregister_arrow(self, name: str) -> None:  # noqa: B027  (nothing to forget by default)
        """Forget what register_arrow made."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    # -- shared machinery --------------------------------------------------------------------------

    def execute(self, statement: exp.Expression, *, log: bool = True) -> Any:
        """Render a tree in this adapter's dialect, log it for target/run, and run it.

        Catalog look-ups pass log=False: target/run keeps only what changed the warehouse.
        """
        sql = self._render(statement, log)
        return self._guard(lambda: self._execute_sql(sql))

    def fetch_arrow(self, query: exp.Query, *, log: bool = True) -> "pa.Table":
        """Run a query and return its rows as an Arrow table."""
        sql = self._render(query, log)
        return self._guard(lambda: self._fetch_arrow_sql(sql))

    def fetch_arrow_batches(self, query: exp.Query, *, log: bool = True) -> Iterator["pa.RecordBatch"]:
        """A large result in batches: an engine that can hand its rows over piece by piece overrides it."""
        yield from self.fetch_arrow(query, log=log).to_batches(max_chunksize=self.batch_rows)

    def _render(self, statement: exp.Expression, log: bool) -> str:
        """SQL text in this engine's dialect; a construct the dialect cannot express is an error, never dropped
        (sqlglot would otherwise write LAST_VALUE(x IGNORE NULLS) as LAST_VALUE(x) for Postgres, say)."""
        if self.engine.timestamp_ntz:
            statement = explicit_zoned_timestamps(statement)
        try:
            sql = statement.sql(dialect=self.dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as error:
            raise AdapterError(f"{self.engine.target_type} cannot run this statement as written: {error}",
                               hint="skewless generated it: please report it") from None
        if log:
            self.log.append(statement.sql(dialect=self.dialect, pretty=True))
        return sql

    @staticmethod
    def _guard(call: Any) -> Any:
        try:
            return call()
        except AdapterError:
            raise
        except Exception as error:  # the driver's own error: report its message, not its traceback
            raise AdapterError(f"{type(error).__name__}: {driver_message(error)}") from error

    # -- catalog look-ups (information_schema; an engine without one overrides them) --------------------

    def _in_schema(self, select: exp.Select, table: exp.Table) -> exp.Select:
        return (
            select.where(exp.column("table_schema").eq(exp.Literal.string(table.db or self.default_schema)))
            .where(exp.column("table_name").eq(exp.Literal.string(table.name)))
        )

    def relation_kind(self, table: exp.Table) -> str | None:
        """'table', 'view', or None when the relation does not exist."""
        query = self._in_schema(exp.select("table_type").from_("information_schema.tables"), table)
        rows = self.fetch_all(query, log=False)
        if not rows:
            return None
        return "view" if str(rows[0][0]).upper() == "VIEW" else "table"

    def columns(self, table: exp.Table) -> dict[str, str]:
        """Column name -> warehouse type, in table order."""
        query = self._in_schema(exp.select("column_name", "data_type").from_("information_schema.columns"), table)
        return {name: kind for name, kind in self.fetch_all(query.order_by("ordinal_position"), log=False)}

    # -- transactions ------------------------------------------------------------------------------

    @property
    def supports_transactions(self) -> bool:
        return self.engine.transactional_ddl

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a failure rolls back, leaving the previous tables as they were."""
        if not self.supports_transactions:
            yield
            return
        self.execute(exp.Transaction())
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.execute(exp.Rollback())
            raise
        self.execute(exp.Commit())

    def ensure_schema(self, schema: str) -> None:
        name = exp.Table(this=exp.to_identifier(schema, quoted=True))
        self.execute(exp.Create(this=name, kind="SCHEMA", exists=True))

    def row_count(self, table: exp.Table) -> int:
        rows = self.fetch_all(exp.select(exp.Count(this=exp.Star())).from_(table), log=False)
        return int(rows[0][0])

    def drop(self, table: exp.Table, kind: str | None = None) -> None:
        kind = kind or self.relation_kind(table)
        if kind is not None:
            self.execute(exp.Drop(tables=[table.copy()], kind=kind.upper(), exists=True))

    def rename(self, table: exp.Table, new_name: str) -> None:
        self.execute(exp.Alter(
            this=table.copy(), kind="TABLE", actions=[exp.AlterRename(this=relation_table(new_name))]
        ))

    def index_for_lookups(self, table: exp.Table, keys: Sequence[str], newest_first: Sequence[str]) -> None:
        """An index on a feature table's keys, then its times newest first (DESC NULLS LAST, the order the
        LATERAL join asks for), where the engine's point-in-time join looks rows up by it (engine table:
        lookup_index): the newest row before T is the first the index gives, with no sort."""
        if not self.engine.lookup_index:
            return
        columns = [*[exp.Ordered(this=quoted_column(c), nulls_first=False) for c in keys],
                   *[exp.Ordered(this=quoted_column(c), desc=True, nulls_first=False) for c in newest_first]]
        # Index names share the schema's namespace and are cut at 63 bytes on Postgres: a hash of the table name
        # keeps two long names with one prefix from colliding (IF NOT EXISTS would then skip the second index),
        # and a hash of the columns makes a changed index (new keys, a created timestamp) a new name.
        spec = table.name + "|" + ",".join(c.sql(dialect=self.dialect) for c in columns)
        digest = hashlib.sha1(spec.encode()).hexdigest()[:8]
        name = f"{table.name[:40]}__pit_{digest}"
        index = exp.Index(this=exp.to_identifier(name, quoted=True), table=table.copy(),
                          params=exp.IndexParameters(columns=columns))
        self.execute(exp.Create(this=index, kind="INDEX", exists=True))

    # -- queries whose best form differs per engine -------------------------------------------------

    def newest_rows(
        self, table: exp.Table, keys: Sequence[str], order: Sequence[str], columns: Sequence[str],
        where: exp.Expression | None = None,
    ) -> exp.Select:
        """One row per key: the greatest by `order` (descending, NULLs lowest), returning `columns`.

        The portable form ranks rows with ROW_NUMBER(); engines with a cheaper form override it.
        """
        return first_per_group(table, keys, order, columns, where)

    # -- materializations, as steps an engine overrides one by one ------------------------------------

    def replace_table(self, table: exp.Table, query: exp.Query, check: ColumnCheck | None = None) -> BuildResult:
        """Build under a staging name, then swap it in: readers see the old or the new table, never neither.
        `check` sees the built columns before the swap; raising there keeps the old table."""
        staged = self.staging_table(table)
        self.ensure_schema(table.db)
        self.drop(staged, "table")
        with self._dropped_on_failure(staged), self.transaction():
            self.create_table_as(staged, query)
            if check is not None:
                check(self.columns(staged))
            rows = self.row_count(staged)
            self.swap_in(staged, table)
        return BuildResult(rows)

    @contextlib.contextmanager
    def _dropped_on_failure(self, staged: exp.Table) -> Iterator[None]:
        """Where DDL does not roll back, a failed step's staged table is dropped by hand."""
        try:
            yield
        except BaseException:
            if not self.supports_transactions:
                with contextlib.suppress(Exception):
                    self.drop(staged, "table")
            raise

    def staging_table(self, table: exp.Table) -> exp.Table:
        """Where a new version of `table` is built before it replaces the old."""
        return relation_table(table.name + TEMP_SUFFIX, table.db or None)

    def create_table_as(self, table: exp.Table, query: exp.Query) -> None:
        self.execute(exp.Create(this=table.copy(), kind="TABLE", expression=query.copy()))

    def swap_in(self, staged: exp.Table, table: exp.Table) -> None:
        """Replace `table` by `staged` (engine table: swap = rename): drop and rename inside the transaction."""
        self.drop(table)
        self.rename(staged, table.name)

    def replace_view(self, table: exp.Table, query: exp.Query, check: ColumnCheck | None = None) -> BuildResult:
        self.ensure_schema(table.db)
        with self.transaction():
            if self.relation_kind(table) == "table":
                self.drop(table, "table")
            self.execute(exp.Create(this=table.copy(), kind="VIEW", expression=query.copy(), replace=True))
            if check is not None:
                check(self.columns(table))
        return BuildResult(None)

    def merge_incremental(self, table: exp.Table, query: exp.Query, unique_key: Sequence[str] | None,
                          check: ColumnCheck | None = None) -> BuildResult:
        """Stage the new rows, refuse a change of columns, then merge them in: all or nothing."""
        staged = self.staging_table(table)
        self.drop(staged, "table")
        with self._dropped_on_failure(staged), self.transaction():
            self.create_table_as(staged, query)
            columns = self.check_same_columns(staged, table)
            if check is not None:
                check(self.columns(staged))
            rows = self.row_count(staged)
            self.merge_rows(staged, table, unique_key, columns)
            self.drop(staged, "table")
        return BuildResult(rows)

    def check_same_columns(self, staged: exp.Table, table: exp.Table) -> list[str]:
        """The staged rows' columns, which must be the table's: a changed model needs a full refresh."""
        new_columns = list(self.columns(staged))
        old_columns = list(self.columns(table))
        if new_columns != old_columns:
            raise AdapterError(
                f"the model's columns changed ({', '.join(old_columns)} -> {', '.join(new_columns)})",
                hint="rebuild it with `skewless run --full-refresh -s <model>`",
            )
        return new_columns

    def merge_rows(self, staged: exp.Table, table: exp.Table, unique_key: Sequence[str] | None,
                   columns: Sequence[str]) -> None:
        """Rows with an existing unique key replace the old ones (engine table: merge = delete_insert)."""
        if unique_key:
            self.execute(exp.Delete(
                this=table.copy(),
                using=[staged.copy()],
                where=exp.Where(this=keys_match(table.name, staged.name, unique_key)),
            ))
        self.execute(exp.Insert(
            this=exp.Schema(this=table.copy(), expressions=[exp.to_identifier(c, quoted=True) for c in columns]),
            expression=exp.select(*[quoted_column(c) for c in columns]).from_(staged.copy()),
        ))

    def delete_where(self, table: exp.Table, condition: exp.Expression) -> None:
        """Delete the rows meeting `condition` (inside the caller's transaction where there is one)."""
        self.execute(exp.delete(table.copy(), where=condition), log=False)

    # -- file scans --------------------------------------------------------------------------------

    @classmethod
    def file_scan(cls, path: Path, types: Mapping[str, str] | None = None) -> exp.Query:
        """A query reading a CSV or parquet file in place (seeds, a dataset's file spine shown as SQL); a text
        file's `types` columns are read as those types."""
        raise AdapterError(f"the {cls.engine.target_type} adapter cannot read files in place",
                           hint="load the file into a warehouse table and name the table")


_SQL_ECHO = re.compile(r"LINE \d+:|== SQL")  # Postgres, Spark


def driver_message(error: BaseException, max_lines: int = 4) -> str:
    """The driver's message without its echo of the generated SQL (target/run holds that)."""
    lines = str(error).strip().splitlines()
    lines = list(itertools.takewhile(lambda line: not _SQL_ECHO.match(line), lines))
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[:max_lines]) if lines else type(error).__name__
