"""Spines: the rows a training set is built for, from a DataFrame, an Arrow table, SQL, or a dataset's
`spine:` (a source, a model, a file, a table, a query), made readable by the warehouse."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from skewless.core.errors import Location, ProjectError, SkewlessError
from skewless.core.sourcefile import read_source
from skewless.core.sqlbuild import quoted_column, relation_table, unique_row_id
from skewless.project.parsing import where_parser_stopped

if TYPE_CHECKING:
    import pyarrow as pa

    from skewless.adapters.base import WarehouseAdapter
    from skewless.project.compile import CompiledProject

    from .datasets import Dataset

ROW_ID = "__skewless_row_id"
TIME_COLUMN = "__skewless_spine_time"
_names = itertools.count()


@dataclass
class SpineInput:
    """A spine as the warehouse sees it: a relation or query, its columns, its time column."""

    source: exp.Table | exp.Query
    columns: tuple[str, ...]
    timestamp: str
    row_id: str | None = None  # a row-number column the loader added (kept out of the result)
    cleanup: Callable[[], None] | None = None
    time_column: str | None = None  # the loader's copy of the time, in UTC microseconds (default: `timestamp`)


def arrow_spine(adapter: "WarehouseAdapter", table: "pa.Table", timestamp: str | None) -> SpineInput:
    """Register an Arrow spine with the warehouse. Its columns come back as given (a zoned time stays zoned, a
    nanosecond one keeps its nanoseconds); the join reads a copy of the time column in UTC, floored to the
    microsecond, the online store's precision: a spine at 13:00:00.000000500 sees nothing stamped 13:00:00.000001."""
    import numpy as np
    import pyarrow as pa

    columns = tuple(table.column_names)
    for reserved in (ROW_ID, TIME_COLUMN):
        if reserved in columns:
            raise SkewlessError(f"the spine may not have a column named {reserved}")
    chosen = timestamp or _guess_timestamp(table.schema, columns)
    if chosen not in columns:
        raise SkewlessError(f"the spine has no column {chosen!r}", hint=f"spine columns: {', '.join(columns)}")
    kind = table.schema.field(chosen).type
    temporal = pa.types.is_timestamp(kind) or pa.types.is_date(kind)
    if temporal:  # other types are read as given: the warehouse's error about them then names the user's column
        table = table.append_column(TIME_COLUMN, _utc_micros(table.column(chosen)))
    table = table.append_column(ROW_ID, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    name = f"__skewless_spine_{next(_names)}"
    relation = adapter.register_arrow(name, table)
    return SpineInput(relation, columns, chosen, row_id=ROW_ID, cleanup=lambda: adapter.unregister_arrow(name),
                      time_column=TIME_COLUMN if temporal else None)


def _utc_micros(column: "pa.ChunkedArray") -> "pa.ChunkedArray":
    """A time column as naive UTC microseconds (floored); a date is the start of its day."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            column = pc.cast(column, pa.timestamp(kind.unit, tz="UTC"))
            column = pc.cast(column, pa.timestamp(kind.unit))  # the same instants, without the zone
        if kind.unit == "ns":
            column = pc.floor_temporal(column, unit="microsecond")
        return pc.cast(column, pa.timestamp("us"))
    return pc.cast(column, pa.timestamp("us"))  # a date


def _guess_timestamp(schema: "pa.Schema", columns: Sequence[str]) -> str:
    import pyarrow as pa

    candidates = [
        c for c in columns if pa.types.is_timestamp(schema.field(c).type) or pa.types.is_date(schema.field(c).type)
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise SkewlessError(
        "say which spine column holds each row's time: timestamp='...'"
        + (f" (candidates: {', '.join(candidates)})" if candidates else " (the spine has no timestamp column)")
    )


def parse_spine_query(text: str, dialect: str) -> exp.Query:
    """A spine's SELECT, parsed; anything else is a clear error."""
    try:
        parsed = sqlglot.parse_one(text, read=dialect)
    except sqlglot.errors.ParseError as error:
        raise SkewlessError(f"the spine query does not parse: {error.errors[0]['description']}") from None
    except sqlglot.errors.TokenError as error:
        raise SkewlessError(f"the spine query does not parse: {error}", hint="look for an unclosed quote") from None
    except Exception:  # noqa: BLE001  (the parser failing inside itself on unusual SQL)
        stopped = where_parser_stopped(text, dialect)
        near = f" near `{stopped[2]}` (line {stopped[0]}, column {stopped[1]})" if stopped else ""
        raise SkewlessError(f"the spine query does not parse: the SQL parser cannot read it{near}",
                            hint="check the SQL's syntax there") from None
    if not isinstance(parsed, exp.Query):
        raise SkewlessError(f"a spine query must be a SELECT, not {parsed.key.upper()}")
    return parsed


def sql_spine(adapter: "WarehouseAdapter", text: str, dialect: str, timestamp: str | None) -> SpineInput:
    """A spine given as a table name or a SELECT in the target dialect."""
    stripped = text.strip()
    source: exp.Table | exp.Query
    if " " in stripped or "\n" in stripped:
        source = parse_spine_query(stripped, dialect)
    else:
        try:
            source = exp.to_table(stripped, dialect=dialect)
        except sqlglot.errors.SqlglotError:
            raise SkewlessError(f"the spine {text!r} is neither a table name nor a SELECT",
                                hint="name a warehouse table (schema.table) or write a SELECT") from None
    probe = exp.select("*").from_(source.subquery("probe") if isinstance(source, exp.Query) else source.copy())
    schema = adapter.fetch_arrow(probe.limit(0), log=False).schema
    columns = tuple(schema.names)
    chosen = timestamp or _guess_timestamp(schema, columns)
    if adapter.engine.unordered_row_number:
        return SpineInput(source, columns, chosen)
    if isinstance(source, exp.Table) and adapter.relation_kind(source) == "table":
        return SpineInput(source, columns, chosen)  # read in place: a table's rows come back in the same order
    # The engine numbers rows with a unique id that is computed again wherever the query reads the spine (Spark
    # evaluates a CTE per reference, and a shuffled query's rows need not come back in the same order): the
    # spine is written once, with its ids, to a table of its own.
    if ROW_ID in columns:
        raise SkewlessError(f"the spine may not have a column named {ROW_ID}")
    table = relation_table(f"skewless_spine_{uuid.uuid4().hex[:12]}", adapter.default_schema)
    numbered = exp.select(*[quoted_column(c) for c in columns],
                          exp.alias_(unique_row_id(), ROW_ID, quoted=True))
    adapter.create_table_as(table, numbered.from_(
        source.subquery("spine_source") if isinstance(source, exp.Query) else source.copy()))
    return SpineInput(table, columns, chosen, row_id=ROW_ID, cleanup=lambda: adapter.drop(table, "table"))


def spine_from(value: Any, adapter: "WarehouseAdapter", dialect: str, timestamp: str | None) -> SpineInput:
    """A pandas DataFrame, a pyarrow Table, or a table name / SELECT in the warehouse."""
    if isinstance(value, str):
        return sql_spine(adapter, value, dialect, timestamp)
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return arrow_spine(adapter, value, timestamp)
    if type(value).__name__ == "DataFrame":
        try:
            table = pa.Table.from_pandas(value, preserve_index=False)
        except pa.ArrowException as error:  # ("Could not convert 'x'...", 'Conversion failed for column c ...')
            said = "; ".join(map(str, error.args)) if error.args else str(error)
            raise SkewlessError(f"the spine DataFrame cannot be read: {said}",
                                hint="give each column values of one type (a column of numbers and text is "
                                     "'object': convert it, e.g. with astype)") from None
        return arrow_spine(adapter, table, timestamp)
    raise SkewlessError(f"a spine is a pandas DataFrame, a pyarrow Table or SQL text, not {type(value).__name__}")


@dataclass
class DatasetSpine:
    """A dataset's spine before it reaches the warehouse: a relation or query with known columns, or the Arrow
    table read from a file (loaded only when the dataset is built)."""

    source: exp.Table | exp.Query | None
    columns: tuple[str, ...]
    timestamp: str
    table: "pa.Table | None" = None
    file: Path | None = None

    def load(self, adapter: "WarehouseAdapter") -> SpineInput:
        """What the warehouse reads: a file's rows are registered with the adapter first."""
        if self.table is not None:
            return arrow_spine(adapter, self.table, self.timestamp)
        assert self.source is not None
        return SpineInput(self.source, self.columns, self.timestamp)

    def shown(self, file_scan: Callable[[Path], exp.Query]) -> SpineInput:
        """The spine as SQL shows it: a file as the target engine would scan it in place."""
        if self.table is not None:
            assert self.file is not None
            return SpineInput(file_scan(self.file), self.columns, self.timestamp)
        assert self.source is not None
        return SpineInput(self.source, self.columns, self.timestamp)


def _read_file(dataset: "Dataset", file: Path, shown: str) -> "pa.Table":
    """A spine file's rows, read once. What is wrong in the file is the user's to mend: said with the dataset and
    the file (and the line, for a CSV row or a byte that is not UTF-8), not as the reader's exception; the file is
    read again only to find that line."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    what = f"dataset {dataset.name!r}: the spine file {shown} cannot be read"
    plain = file.suffix == ".csv"  # not parquet, not compressed: lines can be found in it
    try:
        table = pq.read_table(file) if file.suffix == ".parquet" else pcsv.read_csv(file)
    except (pa.ArrowException, OSError) as error:
        message = str(error)
        row = message.partition(": ")[2].partition(": ")[2] if "Expected" in message else ""
        lines = file.read_bytes().splitlines() if plain and row else []
        line = next((n for n, found in enumerate(lines, 1) if found == row.encode()), None)
        raise ProjectError(f"{what}: {message}", location=Location(file, line),
                           hint="fix the file: a CSV with a header row and the same columns on every row, or "
                                "a parquet file") from None
    binary = [f.name for f in table.schema if file.suffix != ".parquet" and pa.types.is_binary(f.type)]
    if binary:  # the CSV reader keeps a column holding bytes that are not UTF-8 as binary
        try:
            if plain:
                read_source(file)  # raises, located at the first such byte
        except ProjectError as error:
            raise ProjectError(f"{what}: {error.message}", location=error.location, snippet=error.snippet,
                               hint=error.hint) from None
        raise ProjectError(f"{what}: column {binary[0]!r} holds bytes that are not UTF-8 text",
                           location=Location(file), hint="save the file as UTF-8")
    return table


def dataset_spine(dataset: "Dataset", compiled: "CompiledProject") -> DatasetSpine:
    """Resolve a dataset's `spine:` against the project: clear errors name the dataset and its file."""
    config = compiled.config
    spine = dataset.spine
    relation: exp.Table | exp.Query
    if spine.kind == "source":
        source_name, _, table_name = spine.value.partition(".")
        source = config.sources.get((source_name, table_name))
        if source is None:
            raise SkewlessError(f"dataset {dataset.name!r}: no source {spine.value!r}", location=dataset.location)
        relation, known = relation_table(source.identifier, source.schema), tuple(source.columns)
    elif spine.kind == "model":
        node = compiled.node(spine.value)
        if node.relation is None:
            raise SkewlessError(f"dataset {dataset.name!r}: the spine model is ephemeral", location=dataset.location)
        relation, known = node.relation, tuple(node.columns)
    elif spine.kind == "file":
        file = (config.root / spine.value).resolve()
        if not file.is_file():
            raise SkewlessError(f"dataset {dataset.name!r}: no file {spine.value}", location=dataset.location)
        table = _read_file(dataset, file, spine.value)
        wanted = list(spine.columns or ()) + ([spine.timestamp] if spine.timestamp else [])
        missing = [c for c in dict.fromkeys(wanted) if c not in table.column_names]
        if missing:
            raise SkewlessError(f"dataset {dataset.name!r}: the spine file {spine.value} has no column "
                                f"{', '.join(map(repr, missing))}", location=dataset.location,
                                hint=f"its columns: {', '.join(table.column_names)}")
        if spine.columns:
            table = table.select(list(spine.columns))
        return DatasetSpine(None, tuple(table.column_names), spine.timestamp, table=table, file=file)
    elif spine.kind == "table":
        relation, known = exp.to_table(spine.value, dialect=compiled.dialect), ()
    else:
        try:
            relation, known = parse_spine_query(spine.value, compiled.dialect), ()
        except SkewlessError as error:
            raise SkewlessError(f"dataset {dataset.name!r}: {error}", location=dataset.location,
                                hint=error.hint) from None
    columns = spine.columns or known
    if not columns:
        raise SkewlessError(f"dataset {dataset.name!r}: list the spine's columns (spine: columns: [...])",
                            location=dataset.location)
    return DatasetSpine(relation, tuple(columns), spine.timestamp)
