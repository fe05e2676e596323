"""The SQL types an on-demand expression can compute with, and how values convert between them (DuckDB's rules).

Shared by the in-process evaluator (online) and the compiler's checks, so a value computed per request has the
type and the value the warehouse gives the same expression in a training set.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

INT_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}
_ALIASES = {
    "INT": "INTEGER", "INT4": "INTEGER", "INT2": "SMALLINT", "INT1": "TINYINT", "INT8": "BIGINT", "LONG": "BIGINT",
    "FLOAT8": "DOUBLE", "DOUBLE PRECISION": "DOUBLE", "TEXT": "VARCHAR", "STRING": "VARCHAR", "CHAR": "VARCHAR",
    "BOOL": "BOOLEAN", "NUMERIC": "DECIMAL", "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "DATETIME": "TIMESTAMP",
    "SHORT": "SMALLINT",
}
SUPPORTED = (*INT_BITS, "DOUBLE", "DECIMAL", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP")


class EvaluationError(Exception):
    """A value the warehouse would also refuse (division of integers by zero, overflow, a bad cast)."""


class UnsupportedType(ValueError):
    pass


@dataclass(frozen=True)
class SqlType:
    name: str  # one of SUPPORTED, or INTERVAL / NULL for intermediate values
    precision: int = 18
    scale: int = 0
    literal: int | None = field(default=None, compare=False)  # an integer literal adapts to its neighbour's type

    @property
    def is_int(self) -> bool:
        return self.name in INT_BITS

    @property
    def is_numeric(self) -> bool:
        return self.is_int or self.name in ("DOUBLE", "DECIMAL")

    @property
    def is_temporal(self) -> bool:
        return self.name in ("DATE", "TIMESTAMP")

    def __str__(self) -> str:
        return f"DECIMAL({self.precision},{self.scale})" if self.name == "DECIMAL" else self.name


NULL = SqlType("NULL")
BOOLEAN = SqlType("BOOLEAN")
INTEGER = SqlType("INTEGER")
BIGINT = SqlType("BIGINT")
DOUBLE = SqlType("DOUBLE")
VARCHAR = SqlType("VARCHAR")
DATE = SqlType("DATE")
TIMESTAMP = SqlType("TIMESTAMP")
INTERVAL = SqlType("INTERVAL")

_TYPE_TEXT = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


def parse_type(text: str) -> SqlType:
    """A type as users and warehouses write it ('bigint', 'DECIMAL(10,2)', 'text'); UnsupportedType otherwise."""
    match = _TYPE_TEXT.match(text or "")
    if not match:
        raise UnsupportedType(f"unknown type {text!r}")
    name = match.group(1).upper()
    name = _ALIASES.get(name, name)
    if name.startswith("VARCHAR"):
        name = "VARCHAR"
    if name == "DECIMAL":
        precision = int(match.group(2) or 18)
        scale = int(match.group(3) or (0 if match.group(2) else 3))
        return SqlType("DECIMAL", precision, scale)
    if name not in SUPPORTED:
        raise UnsupportedType(
            f"type {text!r} is not supported in on-demand features (supported: "
            "BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, DOUBLE, DECIMAL(p,s), VARCHAR, DATE, TIMESTAMP)"
        )
    return SqlType(name)


def smallest_int(value: int) -> SqlType:
    return next(SqlType(name) for name, bits in INT_BITS.items() if -(1 << (bits - 1)) <= value < (1 << (bits - 1)))


def _wider(a: SqlType, b: SqlType) -> SqlType:
    return a if INT_BITS[a.name] >= INT_BITS[b.name] else b


def decimal_of_int(kind: SqlType) -> SqlType:
    """How DuckDB sees an integer next to a decimal: a DECIMAL wide enough for it."""
    return SqlType("DECIMAL", {8: 3, 16: 5, 32: 10, 64: 19}[INT_BITS[kind.name]], 0)


def decimal_union(a: SqlType, b: SqlType) -> tuple[int, int]:
    """(integer digits, scale) that hold both numbers (integers seen as DuckDB's widest DECIMAL for them)."""
    da = decimal_of_int(a) if a.is_int else a
    db = decimal_of_int(b) if b.is_int else b
    return max(da.precision - da.scale, db.precision - db.scale), max(da.scale, db.scale)


def common_type(types: list[SqlType]) -> SqlType:
    """The type CASE, COALESCE, GREATEST and IN bring their values to."""
    known = [t for t in types if t.name != "NULL"]
    if not known:
        return NULL
    result = known[0]
    for kind in known[1:]:
        result = _common(result, kind)
    return result


def _common(a: SqlType, b: SqlType) -> SqlType:
    if a == b:
        return a
    if a.is_int and b.is_int:
        if (a.literal is None) != (b.literal is None):  # DuckDB fits an integer literal to the other side's type
            column, literal = (b, a) if a.literal is not None else (a, b)
            assert literal.literal is not None
            return _wider(SqlType(column.name), smallest_int(literal.literal))
        return _wider(SqlType(a.name), SqlType(b.name))
    if a.is_numeric and b.is_numeric:
        if "DOUBLE" in (a.name, b.name):
            return DOUBLE
        digits, scale = decimal_union(a, b)
        if digits + scale > 38:  # DuckDB keeps the integer digits and gives up decimal places
            return SqlType("DECIMAL", 38, max(0, 38 - digits))
        return SqlType("DECIMAL", digits + scale, scale)
    if {a.name, b.name} == {"DATE", "TIMESTAMP"}:
        return TIMESTAMP
    raise UnsupportedType(f"values of types {a} and {b} are mixed; cast one of them")


# -- values ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """DuckDB's interval: months, days and microseconds, kept apart (a month is not a fixed length)."""

    months: int = 0
    days: int = 0
    micros: int = 0

    def total_micros(self) -> int:
        """The length DuckDB compares and takes the epoch of: a month counts 30 days."""
        return (self.months * 30 + self.days) * 86_400_000_000 + self.micros

    def __neg__(self) -> "Interval":
        return Interval(-self.months, -self.days, -self.micros)


def check_int(value: int, kind: SqlType, what: str = "value") -> int:
    bits = INT_BITS[kind.name]
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise EvaluationError(f"overflow: {what} {value} does not fit {kind.name}")
    return value


def round_half_away(value: float) -> float:
    """C's round(): halves go away from zero (Python's round() goes to even)."""
    if math.isnan(value) or math.isinf(value):
        return value
    magnitude = abs(value)
    floor = math.floor(magnitude)
    rounded = floor + 1.0 if magnitude - floor >= 0.5 else float(floor)
    return math.copysign(rounded, value)


def round_double(value: float, digits: int) -> float:
    """round(DOUBLE, digits) as DuckDB computes it: the double's exact binary value times 10^digits, rounded half
    away from zero, divided back (round(2.675, 2) is 2.67: the double is 2.67499999...); a result that overflows
    gives the input back."""
    if math.isnan(value) or math.isinf(value):
        return value
    with localcontext() as context:
        context.prec = 800
        scaled = (Decimal(value) * Decimal(10) ** digits).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    try:
        result = float(scaled) / 10.0 ** digits
    except OverflowError:
        return value
    return value if math.isinf(result) or math.isnan(result) else result


# Case mapping as DuckDB does it: one code point to one code point (Unicode's simple mappings), so no 'ß' -> 'SS',
# no final sigma, no 'İ' -> 'i̇'. Python's str.upper/lower use the full mappings; these are the code points where
# the two differ (checked against DuckDB over every code point by tests/test_evaluator.py).
_SIMPLE_LOWER = {"\u0130": "i"}
_SIMPLE_UPPER = {
    "\u00df": "\u1e9e", "\u1fb3": "\u1fbc", "\u1fc3": "\u1fcc", "\u1ff3": "\u1ffc",
    **{chr(c): chr(c + 8) for start in (0x1F80, 0x1F90, 0x1FA0) for c in range(start, start + 8)},
}


def lower(text: str) -> str:
    if text.isascii():
        return text.lower()
    return "".join(_SIMPLE_LOWER.get(ch) or (ch.lower() if len(ch.lower()) == 1 else ch) for ch in text)


def upper(text: str) -> str:
    if text.isascii():
        return text.upper()
    return "".join(_SIMPLE_UPPER.get(ch) or (ch.upper() if len(ch.upper()) == 1 else ch) for ch in text)


def quantize(value: Decimal, scale: int) -> Decimal:
    with localcontext() as context:
        context.prec = 120  # a product of two DECIMAL(38)s, before its overflow check
        result = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return result.copy_abs() if result.is_zero() else result  # no negative zero in DECIMAL


def add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    last = _month_days(year, month + 1)
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last))


def _month_days(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]  # (December 9999 has no following month to count back from)


def add_interval(moment: datetime, interval: Interval) -> datetime:
    if interval.months:
        moment = add_months(moment, interval.months)
    return moment + timedelta(days=interval.days, microseconds=interval.micros)


def as_timestamp(value: date) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


# The NaN x86 produces for an invalid operation (0/0, sqrt(-1), inf - inf) has its sign bit set: DuckDB prints
# it as -nan. Python raises instead of computing those, so the evaluator returns this one.
INVALID_NAN = -math.nan


def format_double(value: float) -> str:
    """DuckDB's text of a DOUBLE: the shortest repr, as Python's, with DuckDB's spellings of the specials."""
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def format_timestamp(value: datetime) -> str:
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


def cast(value: Any, source: SqlType, target: SqlType) -> Any:
    """CAST(value AS target) as DuckDB does it; EvaluationError where DuckDB raises."""
    if value is None:
        return None
    name = target.name
    if source == target and name != "DECIMAL":
        return value
    try:
        if target.is_int:
            return check_int(_to_int(value, source), target, "cast")
        if name == "DOUBLE":
            return _to_double(value, source)
        if name == "DECIMAL":
            return _to_decimal(value, source, target)
        if name == "VARCHAR":
            return _to_text(value, source)
        if name == "BOOLEAN":
            return _to_bool(value, source)
        if name == "DATE":
            return _to_date(value, source)
        if name == "TIMESTAMP":
            return _to_timestamp(value, source)
    except (ValueError, InvalidOperation, OverflowError) as error:
        raise EvaluationError(f"could not convert {value!r} ({source}) to {target}: {error}") from None
    raise EvaluationError(f"cannot cast {source} to {target}")


def _to_int(value: Any, source: SqlType) -> int:
    if source.is_int:
        return int(value)
    if source.name == "BOOLEAN":
        return int(value)
    if source.name == "DOUBLE":
        if math.isnan(value) or math.isinf(value):
            raise ValueError("not a finite number")
        return int(round(value))  # DuckDB rounds a DOUBLE half to even here (but decimals half away from zero)
    if source.name == "DECIMAL":
        return int(quantize(value, 0))
    if source.name == "VARCHAR":
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith(("0x", "-0x", "+0x")) else int(text)
        except ValueError:
            return int(quantize(Decimal(text), 0))
    raise ValueError(f"{source} is not a number")


def _to_double(value: Any, source: SqlType) -> float:
    if source.name == "VARCHAR":
        return float(value.strip())
    if source.is_numeric or source.name == "BOOLEAN":
        return float(value)
    raise ValueError(f"{source} is not a number")


def _to_decimal(value: Any, source: SqlType, target: SqlType) -> Decimal:
    if source.name == "DOUBLE":
        if math.isnan(value) or math.isinf(value):
            raise ValueError("not a finite number")
        # DuckDB scales the double in floating point, then rounds half away from zero: 608.44765 (binary
        # 608.44764999...) * 10^4 is 6084476.4999999995, so DECIMAL(18,4) holds 608.4476.
        scaled = value * 10.0 ** target.scale
        if math.isinf(scaled):
            raise ValueError(f"out of range for {target}")
        number = Decimal(int(round_half_away(scaled))).scaleb(-target.scale)
    elif source.name == "VARCHAR":
        number = Decimal(value.strip())
    elif source.is_numeric or source.name == "BOOLEAN":
        number = Decimal(int(value)) if not isinstance(value, Decimal) else value
    else:
        raise ValueError(f"{source} is not a number")
    result = quantize(number, target.scale)
    if abs(result) >= Decimal(10) ** (target.precision - target.scale):
        raise ValueError(f"out of range for {target}")
    return result


def _to_text(value: Any, source: SqlType) -> str:
    name = source.name
    if name == "BOOLEAN":
        return "true" if value else "false"
    if name == "DOUBLE":
        return format_double(value)
    if name == "DECIMAL":
        return f"{quantize(value, source.scale):f}"
    if name == "TIMESTAMP":
        return format_timestamp(value)
    if name == "DATE":
        return value.isoformat()
    return str(value)


def _to_bool(value: Any, source: SqlType) -> bool:
    if source.name == "VARCHAR":
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("not a boolean")
    if source.is_numeric:
        return value != 0
    raise ValueError(f"{source} is not a boolean")


def _to_date(value: Any, source: SqlType) -> date:
    if source.name == "TIMESTAMP":
        return value.date()
    if source.name == "VARCHAR":
        return date.fromisoformat(value.strip()[:10])
    raise ValueError(f"{source} is not a date")


def _to_timestamp(value: Any, source: SqlType) -> datetime:
    if source.name == "DATE":
        return as_timestamp(value)
    if source.name == "VARCHAR":
        return datetime.fromisoformat(value.strip())
    raise ValueError(f"{source} is not a timestamp")


# How JSON carries a double that is not a finite number (protobuf's mapping); requests may send these strings.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def python_value(value: Any, kind: SqlType) -> Any:
    """A request value (JSON or Python) as the declared type: what the warehouse would hold for it."""
    if value is None:
        return None
    if kind.name == "VARCHAR":
        if not isinstance(value, str):
            raise EvaluationError(f"expected a string, got {value!r}")
        return value
    if kind.is_int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise EvaluationError(f"expected an integer, got {value!r}")
        return check_int(value, kind)
    if kind.name == "DOUBLE":
        if isinstance(value, str) and value in NON_FINITE:  # JSON's form of NaN and the infinities
            return NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise EvaluationError(f"expected a number (or \"NaN\", \"Infinity\", \"-Infinity\"), got {value!r}")
        return float(value)
    if kind.name == "DECIMAL":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            raise EvaluationError(f"expected a number, got {value!r}")
        source = DOUBLE if isinstance(value, float) else (VARCHAR if isinstance(value, str) else BIGINT)
        return cast(value, source, kind) if not isinstance(value, Decimal) else _to_decimal(value, kind, kind)
    if kind.name == "BOOLEAN":
        if not isinstance(value, bool):
            raise EvaluationError(f"expected true or false, got {value!r}")
        return value
    if kind.name == "DATE":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            return cast(value, VARCHAR, DATE)
        raise EvaluationError(f"expected a date, got {value!r}")
    if kind.name == "TIMESTAMP":
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                from datetime import timezone

                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            return value
        if isinstance(value, date):
            return as_timestamp(value)
        if isinstance(value, str):
            return python_value(datetime.fromisoformat(value.replace("Z", "+00:00")), kind)
        raise EvaluationError(f"expected a timestamp, got {value!r}")
    raise EvaluationError(f"unsupported type {kind}")
