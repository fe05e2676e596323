"""DuckDB: the bundled default warehouse, a file under the project's target/ unless the profile says otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from skewless.core.engines import ENGINES
from skewless.core.errors import AdapterError, ProjectError
from skewless.core.sqlbuild import UTC, quoted_column, session_setting

from .base import WarehouseAdapter

if TYPE_CHECKING:
    import pyarrow as pa

    from skewless.project.config import ProjectConfig

_READERS = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".gz": "read_csv_auto", ".json": "read_json_auto"}


class DuckDBAdapter(WarehouseAdapter):
    engine = ENGINES["duckdb"]

    def __init__(self, config: "ProjectConfig") -> None:
        super().__init__()
        settings = config.target.settings
        raw = settings.get("path")
        path = config.target_path / f"{config.name}.duckdb" if raw is None else Path(str(raw))
        if str(path) != ":memory:" and not path.is_absolute():
            path = config.root / path
        if str(path) != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise AdapterError(f"cannot create the folder of DuckDB database {path}: {error.strerror or error}",
                                   hint="the target path must be a writable folder, not a file") from None
        self.path = path
        config = {k: str(v) for k, v in (settings.get("settings") or {}).items()}
        try:
            self.connection = duckdb.connect(str(path), config=config)
        except duckdb.Error as error:
            locked = "lock" in str(error).lower()
            raise AdapterError(
                f"cannot open DuckDB database {path}: {error}",
                hint="another process holds it open for writing; close it and retry" if locked else
                "check that the path is a DuckDB database file (or a new path) in a writable folder",
            ) from None
        except OSError as error:
            raise AdapterError(f"cannot open DuckDB database {path}: {error.strerror or error}",
                               hint="check that the target's folder exists and is writable") from None
        session = [UTC, session_setting("enable_progress_bar", exp.false())]  # progress is ours to draw
        if settings.get("threads"):
            session.append(session_setting("threads", exp.Literal.number(int(settings["threads"]))))
        for statement in session:
            self.execute(statement, log=False)

    def _execute_sql(self, sql: str) -> Any:
        return self.connection.execute(sql)

    def _fetch_arrow_sql(self, sql: str) -> "pa.Table":
        return self.connection.sql(sql).to_arrow_table()

    def fetch_all(self, query: exp.Query, *, log: bool = True) -> list[tuple[Any, ...]]:
        return self.execute(query, log=log).fetchall()

    def newest_rows(
        self, table: exp.Table, keys: Sequence[str], order: Sequence[str], columns: Sequence[str],
        where: exp.Expression | None = None,
    ) -> exp.Select:
        """arg_max of the row id: a hash aggregate, cheaper than ranking every row; the rows are then read back
        by id, so every value keeps its bits (arg_max over a struct of the values turns -0.0 into +0.0).

        Each ordering column becomes {n: c IS NOT NULL, v: c}, so NULLs rank lowest, as in the portable form.
        `table` is a base table (row ids), as every online model's relation is.
        """
        def prop(name: str, value: exp.Expression) -> exp.PropertyEQ:
            return exp.PropertyEQ(this=exp.to_identifier(name), expression=value)

        ranking = exp.Struct(expressions=[
            prop(f"o{i}", exp.Struct(expressions=[
                prop("n", quoted_column(c).is_(exp.null()).not_()), prop("v", quoted_column(c)),
            ]))
            for i, c in enumerate(order)
        ])
        row_id = exp.column("rowid")
        newest = exp.select(exp.ArgMax(this=row_id.copy(), expression=ranking)).from_(table.copy())
        newest = newest.group_by(*[quoted_column(k) for k in keys])
        if where is not None:
            newest = newest.where(where)
        return exp.select(*[quoted_column(c) for c in columns]).from_(table.copy()).where(
            exp.In(this=row_id, query=newest.subquery())
        )

    @classmethod
    def file_scan(cls, path: Path, types: Mapping[str, str] | None = None) -> exp.Query:
        reader = _READERS.get(path.suffix)
        if reader is None:
            raise ProjectError(f"cannot load {path.name}: use a .parquet, .csv, .csv.gz or .json file")
        arguments: list[exp.Expression] = [exp.Literal.string(str(path))]
        if types and reader == "read_csv_auto":  # parquet and JSON carry their own types
            struct = exp.Struct(expressions=[
                exp.PropertyEQ(this=exp.Literal.string(c), expression=exp.Literal.string(t)) for c, t in types.items()
            ])
            arguments.append(exp.PropertyEQ(this=exp.to_identifier("types"), expression=struct))
        return exp.select("*").from_(exp.Anonymous(this=reader, expressions=arguments))

    def register_arrow(self, name: str, table: "pa.Table") -> exp.Table:
        """Zero-copy: DuckDB scans the Arrow table in place."""
        self.connection.register(name, table)
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def unregister_arrow(self, name: str) -> None:
        self.connection.unregister(name)

    def close(self) -> None:
        self.connection.close()
