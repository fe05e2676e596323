"""The warehouse adapter interface: what every engine must do, expressed over sqlglot trees.

Materializations are written once here in terms of a few primitives; an engine overrides only what its SQL or
its transactions need to differ. The compiler hands adapters trees, never SQL text.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from skewless.errors import AdapterError
from skewless.sqlbuild import first_per_group, keys_match, quoted_column, relation_table

if TYPE_CHECKING:
    import pyarrow as pa

TEMP_SUFFIX = "__skewless_tmp"


@dataclass(frozen=True)
class BuildResult:
    rows: int | None


class WarehouseAdapter(ABC):
    """One connection to one warehouse. Not thread-safe; open one per worker."""

    dialect: ClassVar[str]
    supports_transactions: ClassVar[bool] = True

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

    @abstractmethod
    def relation_kind(self, table: exp.Table) -> str | None:
        """'table', 'view', or None when the relation does not exist."""

    @abstractmethod
    def columns(self, table: exp.Table) -> dict[str, str]:
        """Column name -> warehouse type, in table order."""

    @abstractmethod
    def load_file(self, path: Path, table: exp.Table) -> int:
        """Replace `table` with the rows of a CSV or parquet file; return the row count."""

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

    def _render(self, statement: exp.Expression, log: bool) -> str:
        if log:
            self.log.append(statement.sql(dialect=self.dialect, pretty=True))
        return statement.sql(dialect=self.dialect)

    @staticmethod
    def _guard(call: Any) -> Any:
        try:
            return call()
        except AdapterError:
            raise
        except Exception as error:  # the driver's own error: report its message, not its traceback
            raise AdapterError(f"{type(error).__name__}: {_message(error)}") from error

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

    # -- queries whose best form differs per engine -------------------------------------------------

    def newest_rows(
        self, table: exp.Table, keys: Sequence[str], order: Sequence[str], columns: Sequence[str],
        where: exp.Expression | None = None,
    ) -> exp.Select:
        """One row per key: the greatest by `order` (descending, NULLs lowest), returning `columns`.

        The portable form ranks rows with ROW_NUMBER(); engines with a cheaper form override it.
        """
        return first_per_group(table, keys, order, columns, where)

    # -- materializations --------------------------------------------------------------------------

    def replace_table(self, table: exp.Table, query: exp.Query) -> BuildResult:
        """Build under a temporary name, then swap it in atomically: readers see the old or the new table."""
        tmp = _temp_of(table)
        self.ensure_schema(table.db)
        self.drop(tmp, "table")
        with self.transaction():
            self.execute(exp.Create(this=tmp, kind="TABLE", expression=query.copy()))
            rows = self.row_count(tmp)
            self.drop(table)
            self.rename(tmp, table.name)
        return BuildResult(rows)

    def replace_view(self, table: exp.Table, query: exp.Query) -> BuildResult:
        self.ensure_schema(table.db)
        with self.transaction():
            if self.relation_kind(table) == "table":
                self.drop(table, "table")
            self.execute(exp.Create(this=table.copy(), kind="VIEW", expression=query.copy(), replace=True))
        return BuildResult(None)

    def merge_incremental(self, table: exp.Table, query: exp.Query, unique_key: Sequence[str] | None) -> BuildResult:
        """Insert the new rows; rows with an existing unique key replace the old ones (delete + insert)."""
        tmp = _temp_of(table)
        self.drop(tmp, "table")
        with self.transaction():
            self.execute(exp.Create(this=tmp, kind="TABLE", expression=query.copy()))
            new_columns = list(self.columns(tmp))
            old_columns = list(self.columns(table))
            if new_columns != old_columns:
                raise AdapterError(
                    f"the model's columns changed ({', '.join(old_columns)} -> {', '.join(new_columns)})",
                    hint="rebuild it with `skewless run --full-refresh -s <model>`",
                )
            rows = self.row_count(tmp)
            if unique_key:
                self.execute(exp.Delete(
                    this=table.copy(),
                    using=[tmp.copy()],
                    where=exp.Where(this=keys_match(table.name, tmp.name, unique_key)),
                ))
            columns = [exp.to_identifier(c, quoted=True) for c in new_columns]
            self.execute(exp.Insert(
                this=exp.Schema(this=table.copy(), expressions=columns),
                expression=exp.select(*[quoted_column(c) for c in new_columns]).from_(tmp.copy()),
            ))
            self.drop(tmp, "table")
        return BuildResult(rows)


def _temp_of(table: exp.Table) -> exp.Table:
    return relation_table(table.name + TEMP_SUFFIX, table.db or None)


def _message(error: BaseException, max_lines: int = 4) -> str:
    lines = str(error).strip().splitlines()
    return "\n".join(lines[:max_lines]) if lines else type(error).__name__
