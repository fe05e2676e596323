"""PostgreSQL through psycopg 3: real transactions around every materialization, COPY for seeds and spines.

The connection runs in autocommit mode and the base adapter opens the transactions itself (BEGIN ... COMMIT), so a
failed build rolls back its DDL too. The session is in UTC, as on every engine.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.conninfo
import pyarrow as pa
from sqlglot import exp

from skewless.core.engines import ENGINES
from skewless.core.errors import AdapterError
from skewless.core.sqlbuild import UTC, session_setting

from .base import WarehouseAdapter

if TYPE_CHECKING:
    from skewless.project.config import ProjectConfig

# Postgres type OIDs -> Arrow types, for results read back (anything else arrives as text).
_ARROW_OF_OID = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1082: pa.date32(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"), 1700: None,  # numeric: decimal of the values' own precision
}
_CONNECT_SETTINGS = ("host", "port", "user", "password", "dbname", "sslmode", "connect_timeout")


class PostgresAdapter(WarehouseAdapter):
    engine = ENGINES["postgres"]
    default_schema = "public"

    def __init__(self, config: "ProjectConfig") -> None:
        super().__init__()
        settings = dict(config.target.settings)
        if "database" in settings and "dbname" not in settings:
            settings["dbname"] = settings.pop("database")
        options = {k: str(settings[k]) for k in _CONNECT_SETTINGS if settings.get(k) is not None}
        options.setdefault("connect_timeout", "10")
        dsn = str(settings.get("dsn") or "")
        try:  # where to, for messages: host, port and database only (a DSN may hold the password)
            shown = {**psycopg.conninfo.conninfo_to_dict(dsn), **options}
        except psycopg.Error:
            raise AdapterError("the target's dsn cannot be read as a PostgreSQL connection string",
                               hint="e.g. dsn: host=db.internal port=5432 dbname=analytics user=features") from None
        where = f"{shown.get('host', 'localhost')}:{shown.get('port', 5432)}/{shown.get('dbname', '')}"
        try:
            self.connection = psycopg.connect(dsn, autocommit=True, **options)
        except psycopg.Error as error:
            raise AdapterError(f"cannot connect to PostgreSQL at {where}: {_first_line(error)}",
                               hint="check host, port, user, password and dbname in profiles.yml") from None
        # The point-in-time join is many index look-ups: compiling it to machine code (JIT, which the planner picks
        # for its high estimated cost) takes longer than running it.
        for statement in (UTC, session_setting("jit", exp.Literal.string("off"))):
            self.execute(statement, log=False)

    def _execute_sql(self, sql: str) -> Any:
        return self.connection.execute(sql.encode())  # bytes: a '%' in the SQL is never a placeholder

    def _fetch_arrow_sql(self, sql: str) -> pa.Table:
        cursor = self.connection.execute(sql.encode())
        rows = cursor.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in cursor.description or []]
        arrays, names = [], []
        for description, values in zip(cursor.description or [], columns, strict=True):
            kind = _ARROW_OF_OID.get(description.type_code, pa.string())
            arrays.append(pa.array(list(values), type=kind) if kind is not None else pa.array(list(values)))
            names.append(description.name)
        return pa.table(arrays, names=names)

    def fetch_all(self, query: exp.Query, *, log: bool = True) -> list[tuple[Any, ...]]:
        return self.execute(query, log=log).fetchall()

    def swap_in(self, staged: exp.Table, table: exp.Table) -> None:
        """Drop and rename inside the transaction; views that read the old table go with it (CASCADE), as with
        dbt on Postgres: they are built again when they run."""
        kind = self.relation_kind(table)
        if kind is not None:
            self.execute(exp.Drop(tables=[table.copy()], kind=kind.upper(), exists=True, cascade=True))
        self.rename(staged, table.name)

    def register_arrow(self, name: str, table: pa.Table) -> exp.Table:
        """A temporary table filled with COPY (binary-safe, one round trip per batch)."""
        target = exp.Table(this=exp.to_identifier(name, quoted=True))
        columns = [exp.ColumnDef(this=exp.to_identifier(field.name, quoted=True),
                                 kind=exp.DataType.build(_postgres_type(field.type), dialect="postgres"))
                   for field in table.schema]
        self.execute(exp.Create(this=exp.Schema(this=target.copy(), expressions=columns), kind="TABLE",
                                properties=exp.Properties(expressions=[exp.TemporaryProperty()])), log=False)
        copy_in = exp.Copy(this=exp.Schema(this=target.copy(), expressions=[exp.to_identifier(c, quoted=True)
                                                                             for c in table.column_names]),
                           kind=True, files=[exp.to_identifier("STDIN")])
        try:
            with self.connection.cursor() as cursor, cursor.copy(copy_in.sql(dialect="postgres").encode()) as copy:
                for batch in table.to_batches(max_chunksize=10_000):
                    for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                        copy.write_row(row)
        except psycopg.Error as error:
            self.unregister_arrow(name)
            raise AdapterError(f"loading rows into PostgreSQL failed: {_first_line(error)}") from None
        return target

    def unregister_arrow(self, name: str) -> None:
        with contextlib.suppress(AdapterError):
            self.execute(exp.Drop(tables=[exp.Table(this=exp.to_identifier(name, quoted=True))], kind="TABLE",
                                  exists=True), log=False)

    def close(self) -> None:
        self.connection.close()


def _postgres_type(kind: pa.DataType) -> str:
    """The column type of a temporary table holding an Arrow column."""
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_int8(kind) or pa.types.is_int16(kind) or pa.types.is_uint8(kind):
        return "SMALLINT"
    if pa.types.is_int32(kind) or pa.types.is_uint16(kind):
        return "INTEGER"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_float32(kind):
        return "REAL"
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION"
    if pa.types.is_decimal(kind):
        return f"NUMERIC({kind.precision}, {kind.scale})"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return "TEXT"
    raise AdapterError(f"an Arrow column of type {kind} has no PostgreSQL column type here",
                       hint="cast it to a number, text, date or timestamp first")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
