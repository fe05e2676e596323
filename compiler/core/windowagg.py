"""`window_agg`: windowed aggregations declared rather than written, so that the training set, the batch writer,
the online reader and the stream compute them by one rule (core/tiles.py) and name them by one convention:
`<entity>__<name>__<window>`, the name being `<column>_<function>` unless given (`('*', 'count', 'txn_count')`).

Functions: count (rows; of a column: its non-NULL values), sum, avg, min, max, last (the value of the newest event
where the column is not NULL; a tie on event time goes to the greatest value), count_distinct (exact). Over no
events, counts are 0 and the others NULL. sum, avg, min, max and last take integer or floating-point columns; an
integer sum is a BIGINT (exact), a float sum a DOUBLE whose last bits depend on the order of addition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .durations import format_duration, parse_duration
from .tiles import Tiling, check_hop, micros_of

FUNCTIONS = ("count", "sum", "avg", "min", "max", "last", "count_distinct")
NUMERIC_ONLY = ("sum", "avg", "min", "max", "last")
VALUE_FUNCTIONS = ("count", "sum", "avg", "min", "max", "last")  # kept in a tile's fixed slots
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "INT2", "INT4", "INT8", "UTINYINT", "USMALLINT",
                 "UINTEGER", "BYTEINT", "LONG", "SHORT")
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8", "DOUBLE PRECISION")


def numeric_family(sql_type: str | None) -> str | None:
    """'int', 'float' or None for a column's SQL type."""
    if sql_type is None:
        return None
    name = sql_type.upper().split("(")[0].strip()
    if name in INTEGER_TYPES:
        return "int"
    if name in FLOAT_TYPES:
        return "float"
    return None


@dataclass(frozen=True)
class Aggregation:
    column: str | None  # None: count of rows
    function: str
    name: str  # the middle part of the feature's name


@dataclass(frozen=True)
class WindowFeature:
    name: str
    aggregation: Aggregation
    window: int  # microseconds
    type: str  # the SQL type of its values, offline and online


@dataclass(frozen=True)
class WindowAgg:
    """A model's declared aggregations, windows, hop and allowed lateness, with its input columns' types."""

    aggregations: tuple[Aggregation, ...]
    windows: tuple[int, ...]
    hop: int
    allowed_lateness: int
    input_types: tuple[tuple[str, str], ...]  # column -> SQL type, for every column an aggregation reads
    where: str | None = None  # the filter on the events, as written

    @property
    def tiling(self) -> Tiling:
        return Tiling(self.hop, max(self.windows))

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Columns with a value function other than count: each has its slots in a tile."""
        return tuple(dict.fromkeys(a.column for a in self.aggregations
                                   if a.column is not None and a.function in NUMERIC_ONLY))

    @property
    def distinct_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.column for a in self.aggregations
                                   if a.column is not None and a.function == "count_distinct"))

    @property
    def counted_columns(self) -> tuple[str, ...]:
        """Columns counted (count of a column: its non-NULL values)."""
        return tuple(dict.fromkeys(a.column for a in self.aggregations if a.column is not None
                                   and a.function in ("count", *NUMERIC_ONLY)))

    def input_type(self, column: str) -> str:
        return dict(self.input_types)[column]

    def words(self) -> list[tuple[str, str]]:
        """A tile's partial aggregates, (name, SQL type), in order: the row count `n`, each counted column's
        non-NULL count `n:<c>`, then per value column `sum:<c>` (BIGINT or DOUBLE), `min:<c>`, `max:<c>`,
        `lts:<c>` (the newest time with a value, µs) and `last:<c>` (the value then)."""
        words = [("n", "BIGINT")] + [(f"n:{c}", "BIGINT") for c in self.counted_columns]
        for column in self.value_columns:
            kind = "DOUBLE" if numeric_family(self.input_type(column)) == "float" else "BIGINT"
            words += [(f"sum:{column}", kind), (f"min:{column}", kind), (f"max:{column}", kind),
                      (f"lts:{column}", "BIGINT"), (f"last:{column}", kind)]
        return words

    def features(self, entity: str) -> tuple[WindowFeature, ...]:
        """Every feature, aggregation-major, then window by window: `<entity>__<name>__<window>`."""
        return tuple(
            WindowFeature(f"{entity}__{a.name}__{format_duration_us(w)}", a, w, self.output_type(a))
            for a in self.aggregations for w in self.windows
        )

    def output_type(self, aggregation: Aggregation) -> str:
        if aggregation.function in ("count", "count_distinct"):
            return "BIGINT"
        if aggregation.function == "avg":
            return "DOUBLE"
        assert aggregation.column is not None
        return "BIGINT" if numeric_family(self.input_type(aggregation.column)) == "int" else "DOUBLE"

    def to_json(self) -> dict[str, Any]:
        return {
            "aggregations": [[a.column, a.function, a.name] for a in self.aggregations],
            "windows": [format_duration_us(w) for w in self.windows],
            "hop": format_duration_us(self.hop),
            "allowed_lateness": format_duration_us(self.allowed_lateness),
            "input_types": dict(self.input_types),
            "where": self.where,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "WindowAgg":
        return cls(
            aggregations=tuple(Aggregation(c, f, n) for c, f, n in data["aggregations"]),
            windows=tuple(micros_of(parse_duration(w)) for w in data["windows"]),
            hop=micros_of(parse_duration(data["hop"])),
            allowed_lateness=micros_of(parse_duration(data["allowed_lateness"])),
            input_types=tuple(data["input_types"].items()),
            where=data.get("where"),
        )


def format_duration_us(micros: int) -> str:
    from datetime import timedelta

    return format_duration(timedelta(microseconds=micros))


def parse_spec(raw: Mapping[str, Any], column_types: Mapping[str, str | None] | None) -> WindowAgg:
    """The arguments given to window_agg(), checked; raises ValueError with what to write instead.

    `column_types`: the event relation's columns and types (None when unknown: then every input needs one)."""
    aggs = raw.get("aggs")
    if not isinstance(aggs, (list, tuple)) or not aggs:
        raise ValueError("aggs must be a list of (column, function) pairs, e.g. [('amount', 'sum'), ('*', 'count')]")
    aggregations: list[Aggregation] = []
    for item in aggs:
        if not isinstance(item, (list, tuple)) or len(item) not in (2, 3) or not all(isinstance(p, str) for p in item):
            raise ValueError(f"each aggregation is (column, function) or (column, function, name), not {item!r}")
        column, function = item[0], item[1].lower()
        if function not in FUNCTIONS:
            raise ValueError(f"unknown aggregation function {item[1]!r}: use one of {', '.join(FUNCTIONS)}")
        if column == "*" and function != "count":
            raise ValueError(f"('*', {item[1]!r}): only count takes '*'")
        name = item[2] if len(item) == 3 else ("count" if column == "*" else f"{column}_{function}")
        if not name.isidentifier() or "__" in name:
            raise ValueError(f"aggregation name {name!r} must be a SQL identifier without '__' (features are "
                             "named <entity>__<name>__<window>)")
        aggregations.append(Aggregation(None if column == "*" else column, function, name))
    names = [a.name for a in aggregations]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two aggregations are named {repeated[0]!r}: name one with a third item, "
                         "e.g. ('amount', 'sum', 'spend')")
    hop = _micros(raw.get("hop", "5m"), "hop")
    check_hop(hop)
    windows_raw = raw.get("windows")
    if not isinstance(windows_raw, (list, tuple)) or not windows_raw:
        raise ValueError("windows must be a list of durations, e.g. ['1h', '7d', '30d']")
    windows = tuple(dict.fromkeys(_micros(w, "window") for w in windows_raw))
    for window in windows:
        if window % hop:
            raise ValueError(f"window {format_duration_us(window)} is not a whole number of hops "
                             f"({format_duration_us(hop)})")
    lateness = _micros(raw.get("allowed_lateness", "0s"), "allowed_lateness", zero=True)
    where = raw.get("where")
    if where is not None and not isinstance(where, str):
        raise ValueError(f"where must be SQL text, e.g. \"channel = 'web'\", not {where!r}")
    types: dict[str, str] = {}
    for aggregation in aggregations:
        column = aggregation.column
        if column is None or column in types:
            continue
        kind = None if column_types is None else column_types.get(column, "?")
        if kind == "?":
            raise ValueError(f"column {column!r} is not a column of the events")
        if kind is None:
            raise ValueError(f"the type of column {column!r} is not known: list the source's columns with their "
                             "types in sources.yml (columns: [{name, type}])")
        types[column] = kind
    for aggregation in aggregations:
        if aggregation.function in NUMERIC_ONLY and numeric_family(types[aggregation.column or ""]) is None:
            raise ValueError(f"{aggregation.function}({aggregation.column}) needs an integer or floating-point "
                             f"column, not {types[aggregation.column or '']}: cast it in a model upstream")
    return WindowAgg(tuple(aggregations), windows, hop, lateness, tuple(types.items()), where)


def _micros(value: Any, what: str, zero: bool = False) -> int:
    micros = micros_of(parse_duration(value))
    if micros <= 0 and not zero:
        raise ValueError(f"{what} must be longer than 0s")
    return micros
