"""Join key values as their key's SQL type, before they become online keys: a key means one entity however it
is sent (JSON, the CLI's text, Python), and a value that cannot be of that type is a clear error, not a read of
some other entity ("None", "true", "nan")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from skewless.core.errors import SkewlessError
from skewless.core.sourcefile import is_utf8

_INT64 = (-(2**63), 2**63 - 1)


def typed_keys(values: Sequence[Any], kind: str | None, column: str) -> list[Any]:
    """`values` of join key `column` as its type (`kind`, the warehouse's name; None when unknown). NULL stays
    None: it matches no entity, online as in a training set."""
    family = _family(kind)
    if family == "int" and all(type(v) is int and _INT64[0] <= v <= _INT64[1] for v in values):
        return list(values)  # the common case, checked in one pass
    return [None if v is None else _typed(v, family, kind, column) for v in values]


def _family(kind: str | None) -> str | None:
    if not kind:
        return None
    name = kind.upper()
    if "INT" in name:
        return "int"
    if name.startswith(("VARCHAR", "TEXT", "STRING", "CHAR")):
        return "text"
    if name.startswith("BOOL"):
        return "bool"
    if name.startswith(("DATE", "TIMESTAMP")):
        return "time"
    return None


def _typed(value: Any, family: str | None, kind: str | None, column: str) -> Any:
    if isinstance(value, (dict, list, tuple, set, bytes)):
        raise _refused(value, kind, column)
    if isinstance(value, str) and not is_utf8(value):
        raise SkewlessError(f"join key {column!r}: {value!r} is not UTF-8 text",
                            hint="send each key as valid text (this one holds a lone surrogate: bytes that were not "
                                 "UTF-8, kept by Python)")
    if isinstance(value, float) and not math.isfinite(value):
        raise _refused(value, kind, column)
    if family == "int":
        if isinstance(value, bool):
            raise _refused(value, kind, column)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise _refused(value, kind, column) from None
        if not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
            raise _refused(value, kind, column)
        return value
    if family == "text":
        if isinstance(value, bool) or isinstance(value, float):
            raise _refused(value, kind, column)
        return value if isinstance(value, str) else str(value)
    if family == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise _refused(value, kind, column)
        return value
    if family == "time":
        if isinstance(value, str):  # ISO text, as JSON and the CLI send it: the writer's key is the value's isoformat
            try:
                value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise _refused(value, kind, column) from None
        if not isinstance(value, (date, datetime)):
            raise _refused(value, kind, column)
        if isinstance(value, datetime) and kind is not None and kind.upper() == "DATE":
            value = value.date()
    return value


def _refused(value: Any, kind: str | None, column: str) -> SkewlessError:
    what = f"a {kind.upper()}" if kind else "a key value (a number, text, boolean, date or timestamp)"
    return SkewlessError(f"join key {column!r}: {value!r} is not {what}",
                         hint="send each key as its entity's key type (entities.yml join_keys: [{name, type}])")
