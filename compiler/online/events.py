"""Events of a stream as text fields and as typed values: what a producer pushes is checked against the source's
columns and types, and what a consumer reads is brought back to those types, the same way on both sides."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from skewless.core.errors import SkewlessError

from . import format as fmt


def stream_key(project: str, stream: str) -> str:
    """The Redis Stream a stream's events are appended to (producers may XADD to it directly)."""
    return f"sk1:stream:{{{project}}}:{stream}"


def _family(sql_type: str | None) -> str:
    name = (sql_type or "").upper()
    if "INT" in name:
        return "int"
    if name.startswith(("DOUBLE", "FLOAT", "REAL")):
        return "float"
    if name.startswith(("DECIMAL", "NUMERIC")):
        return "decimal"
    if name.startswith("BOOL"):
        return "bool"
    if name.startswith("TIMESTAMP") or name == "DATETIME":
        return "timestamp"
    if name == "DATE":
        return "date"
    return "text"


class EventError(SkewlessError):
    """An event that does not fit the stream's source: names the column and what it must be."""


# The field an online store adds to an entry it could not read as text (bytes that are not UTF-8, written by a
# producer straight to the stream), saying why: the consumer reports such an entry instead of applying it.
UNREADABLE = "__skewless_unreadable"


def to_text(row: Mapping[str, Any], columns: Mapping[str, str | None], stream: str) -> dict[str, str]:
    """A pushed event (column -> value) as stream fields: every column known and of its type; a missing or None
    column is NULL (absent)."""
    unknown = [c for c in row if c not in columns]
    if unknown:
        raise EventError(f"stream {stream!r} has no column {unknown[0]!r}",
                         hint=f"its source's columns: {', '.join(columns)}")
    fields = {}
    for column, value in row.items():
        if value is None:
            continue
        typed = to_typed(value, columns[column], column, stream)
        fields[column] = _canonical_text(typed)
    if not fields:  # a stream entry holds at least one field
        raise EventError(f"an event of stream {stream!r} has no values",
                         hint=f"give its columns' values: {', '.join(columns)}")
    return fields


def from_fields(fields: Mapping[str, str], columns: Mapping[str, str | None], stream: str) -> dict[str, Any]:
    """Stream fields back as typed values (absent columns are None); raises EventError for a bad value."""
    return {column: None if column not in fields else to_typed(fields[column], kind, column, stream)
            for column, kind in columns.items()}


def parser(columns: Mapping[str, str | None], stream: str) -> Callable[[Mapping[str, str]], dict[str, Any]]:
    """`from_fields` for one stream, its columns' conversions worked out once (the consumer's hot path): the
    common text forms take a direct conversion, anything else the full check of `to_typed`."""
    def whole(text: str) -> int:
        number = int(text)
        if not -(2**63) <= number < 2**63:
            raise ValueError
        return number

    def naive_utc(text: str) -> datetime:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment

    direct = {"int": whole, "float": float, "timestamp": naive_utc}
    plan = [(column, kind, direct.get(_family(kind))) for column, kind in columns.items()]

    def parse(fields: Mapping[str, str]) -> dict[str, Any]:
        if UNREADABLE in fields:
            raise EventError(f"an event of stream {stream!r} {fields[UNREADABLE]}",
                             hint="producers write the events' fields as UTF-8 text")
        event: dict[str, Any] = {}
        for column, kind, convert in plan:
            text = fields.get(column)
            if text is None:
                event[column] = None
                continue
            if convert is not None:
                try:
                    event[column] = convert(text)
                    continue
                except ValueError:
                    pass
            event[column] = to_typed(text, kind, column, stream)
        return event

    return parse


def to_typed(value: Any, sql_type: str | None, column: str, stream: str) -> Any:
    family = _family(sql_type)
    try:
        if family == "int":
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError
            number = int(value.strip()) if isinstance(value, str) else int(value)
            if not -(2**63) <= number < 2**63:
                raise ValueError
            return number
        if family == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if family == "decimal":
            if isinstance(value, (bool, float)):
                raise ValueError
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise ValueError
            return number
        if family == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if family == "timestamp":
            return _timestamp(value)
        if family == "date":
            if isinstance(value, datetime):
                raise ValueError
            return value if isinstance(value, date) else date.fromisoformat(str(value))
        if not isinstance(value, str):
            raise ValueError
        value.encode()  # text a stream holds is UTF-8: a lone surrogate is not (UnicodeEncodeError: a ValueError)
        return value
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise EventError(f"stream {stream!r}, column {column!r}: {value!r} is not a {sql_type or 'text'} value",
                         hint=_hint(family)) from None


def _timestamp(value: Any) -> datetime:
    """A timestamp as naive UTC: an ISO 8601 text or datetime (a zoned one converted to UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _canonical_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _hint(family: str) -> str:
    return {
        "int": "send a whole number", "float": "send a number", "decimal": "send a decimal number as text",
        "bool": "send true or false", "timestamp": "send an ISO 8601 time, e.g. 2026-11-27T10:00:00Z",
        "date": "send an ISO 8601 date, e.g. 2026-11-27",
    }.get(family, "send text")


def event_micros(value: datetime) -> int:
    return fmt.micros(value)
