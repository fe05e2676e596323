"""The JSON form of feature values: one encoding for every reader that speaks JSON (the HTTP server, `skewless
get -o json`), and the request values it accepts back.

JSON has no NaN, infinities, decimals or times, so:
- float NaN and infinities are the strings "NaN", "Infinity", "-Infinity" (protobuf's JSON mapping);
- DECIMAL (and HUGEINT, which arrives as a decimal) is a string with every digit: "12345678901234.5678";
- TIMESTAMP, DATE and TIME are ISO 8601 strings ("2026-01-02T03:04:05.000006", "+00:00" when zoned);
- INTERVAL is an ISO 8601 duration in days and seconds ("P1DT3600.5S").
The Python API returns the values themselves (float, Decimal, datetime, date, time, timedelta).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from skewless.ondemand.sqltypes import NON_FINITE  # the strings requests may send for them

__all__ = ["NON_FINITE", "columns_to_json", "dumps", "json_column", "json_value"]


def json_value(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        seconds = value.seconds + value.microseconds / 1_000_000
        return f"P{value.days}DT{seconds:g}S"
    return value


def json_column(values: Sequence[Any]) -> list[Any]:
    """A column as JSON holds it; a column of finite numbers (the usual case) is checked by one C-level sum."""
    try:
        if math.isfinite(sum(values)):  # (decimals pass too: dumps writes them through json_value)
            return list(values)
    except TypeError:  # NULLs, text, timestamps: look at each value
        pass
    return [json_value(v) for v in values]


def dumps(payload: Any) -> bytes:
    """JSON bytes of a payload whose columns went through json_column (or of plain JSON values)."""
    return orjson.dumps(payload, default=json_value)


def columns_to_json(columns: Mapping[str, Sequence[Any]]) -> bytes:
    """A columnar result ({name: values}) as JSON."""
    return dumps({name: json_column(values) for name, values in columns.items()})
