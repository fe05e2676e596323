"""A brute-force statement of the window rule, written apart from skewless's own tile arithmetic: for each spine
row, scan every event. Used by the offline and the online window tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

HOUR = 3_600_000_000
DAY = 24 * HOUR


def granularity(window: int, hop: int) -> int:
    levels = [hop]
    for coarser in (HOUR, DAY):
        if coarser > levels[-1] and coarser % levels[-1] == 0:
            levels.append(coarser)
    fitting = [level for level in levels if 12 * level <= window]
    return max(fitting) if fitting else hop


def window_value(events: Iterable[Mapping[str, Any]], at: int | None, window: int, hop: int, function: str,
                 column: str | None, created_by: int | None = None) -> Any:
    """The value of one window feature at instant `at` (µs) over `events` of one entity (each with `ts` in µs,
    optionally `created` in µs); `created_by`: count only events created by then (as known)."""
    if at is None:
        return None
    step = granularity(window, hop)
    start = (at - window) // step * step
    rows = [e for e in events if start < e["ts"] <= at
            and (created_by is None or e.get("created") is None or e["created"] <= created_by)]
    if column is None:
        return len(rows)
    values = [e[column] for e in rows if e[column] is not None]
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if function == "sum":
        return sum(values)
    if function == "avg":
        return float(sum(values)) / len(values)
    if function == "min":
        return min(values, key=sql_order)
    if function == "max":
        return max(values, key=sql_order)
    if function == "last":
        newest = max(e["ts"] for e in rows if e[column] is not None)
        return max((e[column] for e in rows if e[column] is not None and e["ts"] == newest), key=sql_order)
    raise ValueError(function)


def sql_order(value: Any) -> tuple[bool, Any]:
    """How SQL engines order numbers: NaN above all others (MIN skips it, MAX returns it)."""
    return (value != value, value)


def same(a: Any, b: Any) -> bool:
    """Equal values of one type, NaN equal to NaN."""
    return type(a) is type(b) and (a == b or (a != a and b != b))


def expected_rows(events: Sequence[Mapping[str, Any]], spine: Sequence[tuple[Any, int | None]],
                  features: Sequence[tuple[str, str, str | None, int]], hop: int, as_known: bool = False
                  ) -> list[dict[str, Any]]:
    """One dict per spine row (key, instant): feature name -> value."""
    rows = []
    for key, at in spine:
        mine = [e for e in events if e["key"] == key]
        rows.append({name: window_value(mine, at, window, hop, function, column,
                                        created_by=at if as_known else None)
                     for name, function, column, window in features})
    return rows
