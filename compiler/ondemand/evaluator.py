"""On-demand expressions evaluated in-process: a sqlglot tree compiled once into a Python callable.

The callable computes what DuckDB computes for the same expression (the training set's engine): integer
division truncates and refuses zero, `/` is floating point (x/0 is inf or nan), decimals stay exact, `||` with a
NULL is NULL while concat() skips NULLs, casts round halves away from zero, NaN equals NaN and sorts above every
number, three-valued logic. Anything outside what is implemented here is refused when the project compiles, so
the online path never guesses. tests/test_evaluator.py checks every construct against DuckDB on random values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Any

from sqlglot import exp

from . import sqltypes as st
from .sqltypes import BIGINT, BOOLEAN, DATE, DOUBLE, INTERVAL, NULL, TIMESTAMP, VARCHAR, EvaluationError, SqlType

Row = Sequence[Any]
Fn = Callable[[Row], Any]


class Unsupported(Exception):
    """The expression uses something the evaluator does not implement; names the part."""

    def __init__(self, message: str, node: exp.Expression) -> None:
        super().__init__(message)
        self.node = node


_EXACT = Context(prec=100)


@dataclass(frozen=True)
class CompiledExpression:
    fn: Fn
    type: SqlType
    sql: str

    def __call__(self, row: Row) -> Any:
        # Decimal arithmetic keeps every digit of a DECIMAL(38) (Python's default context rounds to 28 digits)
        with localcontext(_EXACT):
            return self.fn(row)


def compile_expression(expression: exp.Expression, inputs: Mapping[str, SqlType]) -> CompiledExpression:
    """`inputs`: the columns the expression may read, in the order rows hold them."""
    fn, kind = _Compiler(inputs).compile(expression)
    if kind.name == "INTERVAL":
        raise Unsupported("an on-demand feature cannot be an INTERVAL; use epoch(...) or date_diff(...)", expression)
    return CompiledExpression(fn, kind, expression.sql(dialect="duckdb"))


class _Const:
    """A value known when the expression compiles."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, row: Row) -> Any:
        return self.value


def _const(value: Any) -> Fn:
    return _Const(value)


# `a + b IS NULL` is `a IS NULL OR b IS NULL` to DuckDB's optimizer when the whole operand is +, -, * and abs()
# over columns and constants: the arithmetic (and its overflow) is then never evaluated (seen in DuckDB 2.0; a
# unary minus, a cast or an integer division anywhere in the operand keeps it evaluated).
_NULL_PROPAGATING = (exp.Add, exp.Sub, exp.Mul, exp.Abs)


def _null_inputs(node: exp.Expression) -> list[exp.Expression] | None:
    """The columns and constants whose NULLs decide `node IS NULL` after that rewrite; None where it does not apply."""
    node = node.unnest()
    if not isinstance(node, _NULL_PROPAGATING):
        return None
    leaves: list[exp.Expression] = []
    for child in (node.args.get("this"), node.args.get("expression")):
        if child is None:
            continue
        child = child.unnest()
        if isinstance(child, (exp.Column, exp.Literal, exp.Null)):
            leaves.append(child)
            continue
        inner = _null_inputs(child)
        if inner is None:
            return None
        leaves.extend(inner)
    return leaves


def _strict(op: Callable[..., Any], *fns: Fn) -> Fn:
    """NULL in, NULL out: op runs only when every argument is not NULL.

    Folds constants as DuckDB's optimizer does: a constant NULL argument makes the whole call NULL (even where
    another argument would fail), and constant arguments are computed once, now.
    """
    constants = [fn for fn in fns if isinstance(fn, _Const)]
    if any(c.value is None for c in constants):
        return _Const(None)
    if len(constants) == len(fns):
        try:
            return _Const(op(*[c.value for c in constants]))
        except EvaluationError:
            pass  # fails for every row: leave it to run time, where the error names the value
    if len(fns) == 1:
        (a,) = fns

        def one(row: Row) -> Any:
            x = a(row)
            return None if x is None else op(x)
        return one
    if len(fns) == 2:
        a, b = fns

        def two(row: Row) -> Any:
            x = a(row)
            if x is None:
                return None
            y = b(row)
            return None if y is None else op(x, y)
        return two

    def many(row: Row) -> Any:
        values = []
        for fn in fns:
            value = fn(row)
            if value is None:
                return None
            values.append(value)
        return op(*values)
    return many


def _converter(source: SqlType, target: SqlType) -> Callable[[Any], Any] | None:
    """A function bringing values of one type to another (None when nothing changes)."""
    if source == target or source.name == "NULL":
        return None
    if source.is_int and target.is_int:
        return None
    return lambda value: st.cast(value, source, target)


def _coerced(fn: Fn, source: SqlType, target: SqlType) -> Fn:
    convert = _converter(source, target)
    return fn if convert is None else _strict(convert, fn)


def _float_div(x: float, y: float) -> float:
    if y == 0:
        if math.isnan(x):
            return x
        if x == 0:
            return st.INVALID_NAN
        return math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


def _checked_float_div(x: float, y: float) -> float:
    if y == 0:
        raise EvaluationError("division by zero")
    return x / y


def _float_mod(x: float, y: float) -> float:
    if math.isnan(x) or math.isnan(y):
        return x if math.isnan(x) else y
    if y == 0 or math.isinf(x):
        return st.INVALID_NAN
    return math.fmod(x, y)


def _trunc_div(x: int, y: int) -> int:
    if y == 0:
        raise EvaluationError("division by zero")
    quotient = abs(x) // abs(y)
    return quotient if (x >= 0) == (y >= 0) else -quotient


def _trunc_mod(x: int, y: int) -> int:
    if y == 0:
        raise EvaluationError("division by zero")
    return x - _trunc_div(x, y) * y


def _order_key(value: Any) -> Any:
    """DuckDB's order of doubles: NaN equals NaN and is greater than every number."""
    if isinstance(value, float) and math.isnan(value):
        return (1, 0.0)
    return (0, value)


_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    exp.EQ: lambda x, y: _order_key(x) == _order_key(y),
    exp.NEQ: lambda x, y: _order_key(x) != _order_key(y),
    exp.GT: lambda x, y: _order_key(x) > _order_key(y),
    exp.GTE: lambda x, y: _order_key(x) >= _order_key(y),
    exp.LT: lambda x, y: _order_key(x) < _order_key(y),
    exp.LTE: lambda x, y: _order_key(x) <= _order_key(y),
}

_UNITS = {
    "year": (12, 0, 0), "month": (1, 0, 0), "week": (0, 7, 0), "day": (0, 1, 0), "hour": (0, 0, 3_600_000_000),
    "minute": (0, 0, 60_000_000), "second": (0, 0, 1_000_000), "millisecond": (0, 0, 1000), "microsecond": (0, 0, 1),
}


def _unit(text: str) -> str | None:
    word = text.strip().lower()
    for unit in _UNITS:
        if word in (unit, unit + "s"):
            return unit
    return {"ms": "millisecond", "us": "microsecond", "d": "day", "h": "hour", "m": "minute", "s": "second",
            "y": "year", "mon": "month", "min": "minute", "sec": "second"}.get(word)


_INTERVAL_PART = re.compile(r"\s*(-?\d+)\s*([A-Za-z]+)\s*")


def parse_interval(text: str, unit: str | None) -> st.Interval:
    """'2 hours', '1 day 3 hours', or a number with a separate unit."""
    parts = [(text, unit)] if unit else [(m.group(1), m.group(2)) for m in _INTERVAL_PART.finditer(text)]
    if not parts or (not unit and "".join(m.group(0) for m in _INTERVAL_PART.finditer(text)).strip() != text.strip()):
        raise ValueError(f"cannot read interval {text!r}")
    months = days = micros = 0
    for amount, word in parts:
        name = _unit(word or "")
        if name is None:
            raise ValueError(f"unknown interval unit {word!r}")
        count = int(amount)
        m, d, us = _UNITS[name]
        months, days, micros = months + count * m, days + count * d, micros + count * us
    return st.Interval(months, days, micros)


_EPOCH = datetime(1970, 1, 1)


def _epoch_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_PARTS: dict[str, Callable[[datetime], Any]] = {
    "year": lambda t: t.year,
    "quarter": lambda t: (t.month - 1) // 3 + 1,
    "month": lambda t: t.month,
    "day": lambda t: t.day,
    "hour": lambda t: t.hour,
    "minute": lambda t: t.minute,
    "second": lambda t: t.second,
    "dayofweek": lambda t: (t.weekday() + 1) % 7,  # Sunday is 0
    "dayofyear": lambda t: t.timetuple().tm_yday,
    "epoch": lambda t: _epoch_micros(t) / 1_000_000,
}
_PART_ALIASES = {"dow": "dayofweek", "doy": "dayofyear", "years": "year", "months": "month", "days": "day",
                 "hours": "hour", "minutes": "minute", "seconds": "second", "weekday": "dayofweek"}


def _truncate(part: str, moment: datetime) -> datetime:
    if part == "year":
        return datetime(moment.year, 1, 1)
    if part == "quarter":
        return datetime(moment.year, (moment.month - 1) // 3 * 3 + 1, 1)
    if part == "month":
        return datetime(moment.year, moment.month, 1)
    if part == "week":
        start = moment - timedelta(days=moment.weekday())
        return datetime(start.year, start.month, start.day)
    if part == "day":
        return datetime(moment.year, moment.month, moment.day)
    if part == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if part == "minute":
        return moment.replace(second=0, microsecond=0)
    if part == "second":
        return moment.replace(microsecond=0)
    raise ValueError(part)


def _date_diff(part: str, a: datetime, b: datetime) -> int:
    """How many `part` boundaries lie between a and b (DuckDB's date_diff)."""
    if part == "year":
        return b.year - a.year
    if part == "quarter":
        return (b.year * 4 + (b.month - 1) // 3) - (a.year * 4 + (a.month - 1) // 3)
    if part == "month":
        return (b.year * 12 + b.month) - (a.year * 12 + a.month)
    if part == "day":
        return (b.date() - a.date()).days
    size = {"hour": 3_600_000_000, "minute": 60_000_000, "second": 1_000_000, "millisecond": 1000,
            "microsecond": 1}[part]
    return _epoch_micros(b) // size - _epoch_micros(a) // size


def _substring(text: str, start: int, length: int | None) -> str:
    """DuckDB's substring: 1-based, negative starts count from the end, a negative length takes the characters
    before the start; the window is clipped to the string (so a start of 0 loses one character of the length)."""
    if abs(start) > 4_294_967_295 or (length is not None and abs(length) > 4_294_967_295):
        raise EvaluationError("substring offset or length outside of the supported range")
    size = len(text)
    begin = start - 1 if start >= 0 else size + start
    if length is None:
        end = size
    elif length >= 0:
        end = begin + length
    else:
        begin, end = begin + length, begin
    begin, end = max(0, min(begin, size)), max(0, min(end, size))
    return text[begin:end] if begin < end else ""


def _like(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


class _Compiler:
    def __init__(self, inputs: Mapping[str, SqlType]) -> None:
        self.inputs = {name: (index, kind) for index, (name, kind) in enumerate(inputs.items())}
        self._kinds: dict[int, SqlType] = {}

    def compile(self, node: exp.Expression) -> tuple[Fn, SqlType]:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise Unsupported(f"{node.sql(dialect='duckdb')!r} ({type(node).__name__}) is not supported in on-demand "
                              "features", node)
        fn, kind = handler(node)
        if isinstance(fn, _Const) and fn.value is None and not isinstance(node, (exp.Cast, exp.Paren)) and any(
                self._kinds.get(id(child)) == NULL for child in node.iter_expressions()):
            kind = NULL  # DuckDB binds a call on a NULL literal as an untyped NULL
        self._kinds[id(node)] = kind
        if kind.literal is not None and not isinstance(node, (exp.Literal, exp.Neg, exp.Paren)):
            kind = SqlType(kind.name)  # a computed value is no longer a literal
        return fn, kind

    def _numeric(self, node: exp.Expression) -> tuple[Fn, SqlType]:
        fn, kind = self.compile(node)
        if not (kind.is_numeric or kind.name == "NULL"):
            raise Unsupported(f"{node.sql(dialect='duckdb')!r} is {kind}, not a number; cast it", node)
        return fn, kind

    def _typed(self, node: exp.Expression, kind: SqlType, what: str) -> Fn:
        fn, found = self.compile(node)
        if found.name not in (kind.name, "NULL"):
            raise Unsupported(f"{node.sql(dialect='duckdb')!r} is {found}; {what} needs {kind}", node)
        return fn

    def _int_arg(self, node: exp.Expression, what: str) -> Fn:
        fn, kind = self.compile(node)
        if not (kind.is_int or kind.name == "NULL"):
            raise Unsupported(f"{what} needs an integer, got {node.sql(dialect='duckdb')!r} ({kind})", node)
        return fn

    # -- leaves -------------------------------------------------------------------------------------

    def _Column(self, node: exp.Column) -> tuple[Fn, SqlType]:
        if node.table:
            raise Unsupported(f"write {node.name!r} without a table name", node)
        found = self.inputs.get(node.name)
        if found is None:
            raise Unsupported(f"unknown column {node.name!r}", node)
        index, kind = found
        return (lambda row: row[index]), kind

    def _Paren(self, node: exp.Paren) -> tuple[Fn, SqlType]:
        return self.compile(node.this)

    def _Alias(self, node: exp.Alias) -> tuple[Fn, SqlType]:
        return self.compile(node.this)

    def _Literal(self, node: exp.Literal) -> tuple[Fn, SqlType]:
        text = node.this
        if node.is_string:
            return _const(text), VARCHAR
        if "e" in text.lower():
            return _const(float(text)), DOUBLE
        if "." in text:
            digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
            scale = len(text.split(".")[1])
            precision = max(len(digits), scale + 1) if text.lstrip("-").startswith("0") else len(
                text.lstrip("-").replace(".", ""))
            if precision > 38:
                return _const(float(text)), DOUBLE
            return _const(Decimal(text)), SqlType("DECIMAL", precision, scale)
        value = int(text)
        if not -(1 << 63) <= value < (1 << 63):
            raise Unsupported(f"integer literal {text} is out of the BIGINT range", node)
        kind = st.INTEGER if -(1 << 31) <= value < (1 << 31) else BIGINT
        return _const(value), SqlType(kind.name, literal=value)

    def _Boolean(self, node: exp.Boolean) -> tuple[Fn, SqlType]:
        return _const(bool(node.this)), BOOLEAN

    def _Null(self, node: exp.Null) -> tuple[Fn, SqlType]:
        return _const(None), NULL

    def _Interval(self, node: exp.Interval) -> tuple[Fn, SqlType]:
        unit = node.unit.name if node.unit is not None else None
        value = node.this
        if not isinstance(value, exp.Literal):
            raise Unsupported("an interval needs a literal amount, e.g. interval '2 hours'", node)
        try:
            interval = parse_interval(value.this, unit)
        except ValueError as error:
            raise Unsupported(str(error), node) from None
        return _const(interval), INTERVAL

    # -- arithmetic ---------------------------------------------------------------------------------

    def _Neg(self, node: exp.Neg) -> tuple[Fn, SqlType]:
        fn, kind = self.compile(node.this)
        if kind.is_int and kind.literal is not None and isinstance(fn, _Const):
            return _const(-fn.value), SqlType(st.smallest_int(-fn.value).name if -fn.value >= (1 << 31)
                                               else kind.name, literal=-fn.value)
        if kind.is_int:
            return _strict(lambda x: st.check_int(-x, kind, "negation"), fn), kind
        if kind.name in ("DOUBLE", "DECIMAL", "NULL"):
            return _strict(lambda x: -x, fn), kind
        if kind.name == "INTERVAL":
            return _strict(lambda x: -x, fn), kind
        raise Unsupported(f"cannot negate {kind}", node)

    def _arith(self, node: exp.Binary) -> tuple[Fn, SqlType, Fn, SqlType]:
        left, lt = self.compile(node.this)
        right, rt = self.compile(node.expression)
        return left, lt, right, rt

    def _Add(self, node: exp.Add) -> tuple[Fn, SqlType]:
        left, lt, right, rt = self._arith(node)
        temporal = self._temporal_add(node, left, lt, right, rt, sign=1)
        if temporal is not None:
            return temporal
        return self._numeric_op(node, left, lt, right, rt, lambda x, y: x + y)

    def _Sub(self, node: exp.Sub) -> tuple[Fn, SqlType]:
        left, lt, right, rt = self._arith(node)
        if lt.name == "TIMESTAMP" and rt.name in ("TIMESTAMP", "DATE") or lt.name == "DATE" and rt.name == "TIMESTAMP":
            def between(x: date, y: date) -> st.Interval:
                delta = st.as_timestamp(x) - st.as_timestamp(y)
                return st.Interval(0, delta.days, delta.seconds * 1_000_000 + delta.microseconds)
            return _strict(between, left, right), INTERVAL
        if lt.name == "DATE" and rt.name == "DATE":
            return _strict(lambda x, y: (x - y).days, left, right), BIGINT
        temporal = self._temporal_add(node, left, lt, right, rt, sign=-1)
        if temporal is not None:
            return temporal
        return self._numeric_op(node, left, lt, right, rt, lambda x, y: x - y)

    def _temporal_add(self, node: exp.Expression, left: Fn, lt: SqlType, right: Fn, rt: SqlType,
                      sign: int) -> tuple[Fn, SqlType] | None:
        if lt.name == "INTERVAL" and rt.is_temporal and sign == 1:
            left, lt, right, rt = right, rt, left, lt
        if lt.is_temporal and rt.name == "INTERVAL":
            def shifted(moment: date, interval: st.Interval) -> datetime:
                try:
                    return st.add_interval(st.as_timestamp(moment), interval if sign == 1 else -interval)
                except (OverflowError, ValueError) as error:
                    raise EvaluationError(f"timestamp out of range: {error}") from None
            return _strict(shifted, left, right), TIMESTAMP
        if lt.name == "INTERVAL" and rt.name == "INTERVAL":
            def combined(x: st.Interval, y: st.Interval) -> st.Interval:
                return st.Interval(x.months + sign * y.months, x.days + sign * y.days, x.micros + sign * y.micros)
            return _strict(combined, left, right), INTERVAL
        if lt.name == "INTEGER" and rt.name == "DATE" and sign == 1:
            left, lt, right, rt = right, rt, left, lt
        if lt.name == "DATE" and rt.is_int:
            def moved(day: date, count: int) -> date:
                try:
                    return day + timedelta(days=sign * count)
                except OverflowError as error:
                    raise EvaluationError(f"date out of range: {error}") from None
            return _strict(moved, left, right), DATE
        if lt.is_temporal or rt.is_temporal or "INTERVAL" in (lt.name, rt.name):
            raise Unsupported(f"cannot {'add' if sign == 1 else 'subtract'} {lt} and {rt}", node)
        return None

    def _numeric_op(self, node: exp.Expression, left: Fn, lt: SqlType, right: Fn, rt: SqlType,
                    op: Callable[[Any, Any], Any], multiply: bool = False) -> tuple[Fn, SqlType]:
        for kind, side in ((lt, node.this), (rt, node.expression)):
            if not (kind.is_numeric or kind.name == "NULL"):
                raise Unsupported(f"{side.sql(dialect='duckdb')!r} is {kind}, not a number; cast it", side)
        if lt.name == "NULL" and rt.name == "NULL":
            return _const(None), st.INTEGER
        kind = st.common_type([lt, rt])
        if kind.is_int:
            return _strict(lambda x, y: st.check_int(op(x, y), kind), left, right), kind
        if kind.name == "DOUBLE":
            left, right = _coerced(left, lt, DOUBLE), _coerced(right, rt, DOUBLE)
            return _strict(op, left, right), DOUBLE
        # DECIMAL: exact; a product's scale is the sum of the scales
        dl = st.decimal_of_int(lt) if lt.is_int else lt
        dr = st.decimal_of_int(rt) if rt.is_int else rt
        if multiply:
            result = SqlType("DECIMAL", min(38, dl.precision + dr.precision), dl.scale + dr.scale)
        else:  # + and -: every decimal place kept, one more integer digit (up to 38 digits in all)
            digits, scale = st.decimal_union(lt, rt)
            result = SqlType("DECIMAL", min(38, digits + scale + 1), scale)
        if result.scale > 38:
            raise Unsupported("the product's scale passes 38 digits; cast to DOUBLE", node)

        # DuckDB multiplies decimals of up to 18 digits in 64-bit integers, and refuses what overflows them
        narrow = multiply and dl.precision <= 18 and dr.precision <= 18 and result.precision > 18
        limit = Decimal(1 << 63).scaleb(-result.scale)

        widest = Decimal(10) ** (result.precision - result.scale)

        def exact(x: Any, y: Any) -> Decimal:
            with localcontext() as context:
                context.prec = 100  # every digit of a DECIMAL(38) product (the default context keeps 28)
                value = st.quantize(op(Decimal(x), Decimal(y)), result.scale)
            if (narrow and value.copy_abs() >= limit) or value.copy_abs() >= widest:  # (abs() rounds to 28 digits)
                raise EvaluationError(f"overflow in the arithmetic of {x} and {y} as {result}; cast to DOUBLE")
            return value
        if multiply or digits + scale <= 38:
            return _strict(exact, left, right), result
        # + and - past 38 digits: DuckDB first casts each operand to DECIMAL(38, scale), left to right, and a value
        # that does not fit fails there: a left operand fails even where the right one is NULL (one row at a time,
        # as a request is evaluated; a NULL left operand leaves the right one unevaluated).
        capacity = Decimal(10) ** (38 - scale)

        def fitting(value: Any) -> Any:
            if value is not None and Decimal(value).copy_abs() >= capacity:
                raise EvaluationError(f"{value} does not fit DECIMAL(38,{scale}); cast to DOUBLE")
            return value

        def clamped(row: Row) -> Any:
            x = fitting(left(row))
            if x is None:
                return None
            y = fitting(right(row))
            return None if y is None else exact(x, y)
        return clamped, result

    def _Mul(self, node: exp.Mul) -> tuple[Fn, SqlType]:
        left, lt, right, rt = self._arith(node)
        return self._numeric_op(node, left, lt, right, rt, lambda x, y: x * y, multiply=True)

    def _Div(self, node: exp.Div) -> tuple[Fn, SqlType]:
        left, lt = self._numeric(node.this)
        right, rt = self._numeric(node.expression)
        if node.args.get("typed") and lt.is_int and rt.is_int:
            kind = st.common_type([lt, rt])
            return _strict(lambda x, y: st.check_int(_trunc_div(x, y), kind), left, right), kind
        left, right = _coerced(left, lt, DOUBLE), _coerced(right, rt, DOUBLE)
        return _strict(_float_div, left, right), DOUBLE

    def _IntDiv(self, node: exp.IntDiv) -> tuple[Fn, SqlType]:
        left, lt = self._numeric(node.this)
        right, rt = self._numeric(node.expression)
        if (lt.is_int or lt.name == "NULL") and (rt.is_int or rt.name == "NULL"):
            kind = st.common_type([lt, rt]) if "NULL" not in (lt.name, rt.name) else st.INTEGER
            return _strict(lambda x, y: st.check_int(_trunc_div(x, y), kind), left, right), kind
        left, right = _coerced(left, lt, DOUBLE), _coerced(right, rt, DOUBLE)
        return _strict(_checked_float_div, left, right), DOUBLE  # DuckDB's `//` of non-integers: `/`, but 0 errs

    def _Mod(self, node: exp.Mod) -> tuple[Fn, SqlType]:
        left, lt = self._numeric(node.this)
        right, rt = self._numeric(node.expression)
        kind = st.common_type([lt, rt]) if "NULL" not in (lt.name, rt.name) else st.common_type([lt, rt, st.INTEGER])
        if kind.name == "DECIMAL" and sum(st.decimal_union(lt, rt)) > 38:
            kind = DOUBLE  # DuckDB's modulo of decimals that need more than 38 digits together is a DOUBLE one
        if kind.is_int:
            return _strict(_trunc_mod, left, right), kind
        if kind.name == "DOUBLE":
            left, right = _coerced(left, lt, DOUBLE), _coerced(right, rt, DOUBLE)
            return _strict(_float_mod, left, right), DOUBLE

        def exact(x: Any, y: Any) -> Decimal:
            if y == 0:
                raise EvaluationError("division by zero")
            return st.quantize(Decimal(x) % Decimal(y), kind.scale)
        return _strict(exact, left, right), kind

    # -- comparisons and logic ------------------------------------------------------------------------

    def _comparable(self, nodes: Sequence[exp.Expression]) -> tuple[list[Fn], SqlType]:
        compiled = [self.compile(n) for n in nodes]
        kinds = [k for _, k in compiled]
        try:
            kind = st.common_type(kinds)
        except st.UnsupportedType as error:
            raise Unsupported(f"{error}: {' vs '.join(n.sql(dialect='duckdb') for n in nodes)}", nodes[0]) from None
        if kind.name == "DECIMAL" and any(k.name == "DOUBLE" for k in kinds):
            kind = DOUBLE
        return [_coerced(fn, k, kind) for fn, k in compiled], kind

    def _compare(self, node: exp.Binary) -> tuple[Fn, SqlType]:
        (left, right), _ = self._comparable([node.this, node.expression])
        return _strict(_COMPARE[type(node)], left, right), BOOLEAN

    _EQ = _NEQ = _GT = _GTE = _LT = _LTE = _compare

    def _NullSafeEQ(self, node: exp.Expression) -> tuple[Fn, SqlType]:
        (left, right), _ = self._comparable([node.this, node.expression])
        same = _COMPARE[exp.EQ]

        def distinct_not(row: Row) -> bool:
            x, y = left(row), right(row)
            if x is None or y is None:
                return x is None and y is None
            return same(x, y)
        return distinct_not, BOOLEAN

    def _NullSafeNEQ(self, node: exp.Expression) -> tuple[Fn, SqlType]:
        fn, _ = self._NullSafeEQ(node)
        return (lambda row: not fn(row)), BOOLEAN

    def _Is(self, node: exp.Is) -> tuple[Fn, SqlType]:
        fn, _ = self.compile(node.this)
        target = node.expression
        if isinstance(target, exp.Null):
            inputs = _null_inputs(node.this)
            if inputs is not None:  # as DuckDB's optimizer rewrites it: the operation itself is never evaluated
                checks = [self.compile(i)[0] for i in inputs]
                return (lambda row: any(check(row) is None for check in checks)), BOOLEAN
            return (lambda row: fn(row) is None), BOOLEAN
        if isinstance(target, exp.Boolean):
            wanted = bool(target.this)
            return (lambda row: fn(row) is wanted), BOOLEAN
        raise Unsupported("IS needs NULL, TRUE or FALSE", node)

    def _Not(self, node: exp.Not) -> tuple[Fn, SqlType]:
        fn = self._typed(node.this, BOOLEAN, "NOT")
        return _strict(lambda x: not x, fn), BOOLEAN

    def _logic(self, node: exp.Binary, decisive: bool) -> tuple[Fn, SqlType]:
        """AND (decisive False) and OR (decisive True), three-valued. DuckDB folds constants and reorders the
        sides of a conjunction by cost, so a side that fails does not fail the whole when the other decides it."""
        what = "AND" if decisive is False else "OR"
        left = self._typed(node.this, BOOLEAN, what)
        right = self._typed(node.expression, BOOLEAN, what)
        if any(isinstance(fn, _Const) and fn.value is decisive for fn in (left, right)):
            return _Const(decisive), BOOLEAN

        def logic(row: Row) -> bool | None:
            try:
                x = left(row)
            except EvaluationError as error:
                x = error
            if x is decisive:
                return decisive
            y = right(row)
            if y is decisive:
                return decisive
            if isinstance(x, EvaluationError):
                raise x
            return None if x is None or y is None else not decisive
        return logic, BOOLEAN

    def _And(self, node: exp.And) -> tuple[Fn, SqlType]:
        return self._logic(node, False)

    def _Or(self, node: exp.Or) -> tuple[Fn, SqlType]:
        return self._logic(node, True)

    def _Between(self, node: exp.Between) -> tuple[Fn, SqlType]:
        (value, low, high), _ = self._comparable([node.this, node.args["low"], node.args["high"]])
        above, below = _COMPARE[exp.GTE], _COMPARE[exp.LTE]

        def between(row: Row) -> bool | None:
            x, lo, hi = value(row), low(row), high(row)
            first = None if x is None or lo is None else above(x, lo)
            second = None if x is None or hi is None else below(x, hi)
            if first is False or second is False:
                return False
            return None if first is None or second is None else True
        return between, BOOLEAN

    def _In(self, node: exp.In) -> tuple[Fn, SqlType]:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise Unsupported("IN takes a list of values here, not a query", node)
        fns, _ = self._comparable([node.this, *node.expressions])
        value, options = fns[0], fns[1:]
        same = _COMPARE[exp.EQ]

        def contained(row: Row) -> bool | None:
            x = value(row)
            if x is None:
                return None
            unknown = False
            for option in options:
                y = option(row)
                if y is None:
                    unknown = True
                elif same(x, y):
                    return True
            return None if unknown else False
        return contained, BOOLEAN

    # -- conditionals ---------------------------------------------------------------------------------

    def _Case(self, node: exp.Case) -> tuple[Fn, SqlType]:
        subject = node.this
        branches = node.args.get("ifs") or []
        default = node.args.get("default")
        results = [self.compile(b.args["true"]) for b in branches]
        otherwise = self.compile(default) if default is not None else (_const(None), NULL)
        try:
            kind = st.common_type([k for _, k in results] + [otherwise[1]])
        except st.UnsupportedType as error:
            raise Unsupported(f"the branches of CASE have different types: {error}", node) from None
        outcomes = [_coerced(fn, k, kind) for fn, k in results]
        fallback = _coerced(otherwise[0], otherwise[1], kind)
        if subject is not None:
            conditions = []
            for branch in branches:
                (left, right), _ = self._comparable([subject, branch.this])
                conditions.append(_strict(_COMPARE[exp.EQ], left, right))
        else:
            conditions = [self._typed(b.this, BOOLEAN, "WHEN") for b in branches]
        pairs = []
        for condition, outcome in zip(conditions, outcomes, strict=True):  # folded as DuckDB's optimizer does
            if isinstance(condition, _Const) and condition.value is not True:
                continue
            if isinstance(condition, _Const) and not pairs:
                return outcome, kind
            pairs.append((condition, outcome))
        if not pairs:
            return fallback, kind

        def case(row: Row) -> Any:
            for condition, outcome in pairs:
                if condition(row) is True:
                    return outcome(row)
            return fallback(row)
        return case, kind

    def _If(self, node: exp.If) -> tuple[Fn, SqlType]:
        condition = self._typed(node.this, BOOLEAN, "IF")
        yes, yt = self.compile(node.args["true"])
        no, nt = self.compile(node.args["false"]) if node.args.get("false") is not None else (_const(None), NULL)
        kind = st.common_type([yt, nt])
        yes, no = _coerced(yes, yt, kind), _coerced(no, nt, kind)
        return (lambda row: yes(row) if condition(row) is True else no(row)), kind

    def _Coalesce(self, node: exp.Coalesce) -> tuple[Fn, SqlType]:
        compiled = [self.compile(n) for n in [node.this, *node.expressions]]
        kind = st.common_type([k for _, k in compiled])
        fns = [_coerced(fn, k, kind) for fn, k in compiled]

        def coalesce(row: Row) -> Any:
            for fn in fns:
                value = fn(row)
                if value is not None:
                    return value
            return None
        return coalesce, kind

    def _Nullif(self, node: exp.Nullif) -> tuple[Fn, SqlType]:
        value, kind = self.compile(node.this)
        (left, right), _ = self._comparable([node.this, node.expression])
        same = _COMPARE[exp.EQ]

        def nullif(row: Row) -> Any:
            x = left(row)
            if x is None:
                return None
            y = right(row)
            return None if y is not None and same(x, y) else value(row)
        return nullif, kind

    def _extreme(self, node: exp.Expression, pick: Callable[..., Any]) -> tuple[Fn, SqlType]:
        fns, kind = self._comparable([node.this, *node.expressions])

        def extreme(row: Row) -> Any:
            values = [v for v in (fn(row) for fn in fns) if v is not None]
            return pick(values, key=_order_key) if values else None
        return extreme, kind

    def _Greatest(self, node: exp.Greatest) -> tuple[Fn, SqlType]:
        return self._extreme(node, max)

    def _Least(self, node: exp.Least) -> tuple[Fn, SqlType]:
        return self._extreme(node, min)

    # -- casts ----------------------------------------------------------------------------------------

    def _Cast(self, node: exp.Cast) -> tuple[Fn, SqlType]:
        fn, source = self.compile(node.this)
        try:
            target = st.parse_type(node.to.sql(dialect="duckdb"))
        except st.UnsupportedType as error:
            raise Unsupported(str(error), node) from None
        if source.name == "INTERVAL":
            raise Unsupported("cannot cast an INTERVAL here; use epoch(...)", node)
        if isinstance(node.this, exp.Literal) and node.this.is_string and target.is_temporal:
            value = st.cast(node.this.this, VARCHAR, target)  # DATE '...' / TIMESTAMP '...' literals
            return _const(value), target
        safe = isinstance(node, exp.TryCast)

        def convert(value: Any) -> Any:
            try:
                return st.cast(value, source, target)
            except EvaluationError:
                if safe:
                    return None
                raise
        return _strict(convert, fn), target

    _TryCast = _Cast

    # -- numbers --------------------------------------------------------------------------------------

    def _Abs(self, node: exp.Abs) -> tuple[Fn, SqlType]:
        fn, kind = self._numeric(node.this)
        if kind.is_int:
            return _strict(lambda x: st.check_int(abs(x), kind, "abs"), fn), kind
        return _strict(abs, fn), kind

    def _Sign(self, node: exp.Sign) -> tuple[Fn, SqlType]:
        fn, kind = self._numeric(node.this)
        return _strict(lambda x: 0 if x == 0 or x != x else (1 if x > 0 else -1), fn), SqlType("TINYINT")

    def _Round(self, node: exp.Round) -> tuple[Fn, SqlType]:
        fn, kind = self._numeric(node.this)
        places = node.args.get("decimals")
        if places is not None and not isinstance(places, exp.Literal) and not (
                isinstance(places, exp.Neg) and isinstance(places.this, exp.Literal)):
            raise Unsupported("round() needs a literal number of decimal places", node)
        digits = int(places.sql()) if places is not None else 0
        if kind.is_int:
            if digits >= 0:
                return fn, kind
            step = 10 ** -digits
            return _strict(lambda x: st.check_int(int(st.round_half_away(x / step)) * step, kind), fn), kind
        if kind.name == "DECIMAL":
            scale = max(0, min(digits, kind.scale))
            return _strict(lambda x: st.quantize(Decimal(x), digits) if digits >= 0 else
                           st.quantize(Decimal(x).scaleb(digits), 0).scaleb(-digits), fn), SqlType(
                "DECIMAL", kind.precision, scale)
        return _strict(lambda x: st.round_double(x, digits), fn), DOUBLE

    def _floor_ceil(self, node: exp.Expression, op: Callable[[float], int]) -> tuple[Fn, SqlType]:
        fn, kind = self._numeric(node.this)
        if node.args.get("decimals") is not None:
            raise Unsupported("floor/ceil take one argument", node)
        if kind.is_int:
            return _strict(float, fn), DOUBLE
        if kind.name == "DECIMAL":
            return _strict(lambda x: Decimal(op(x)), fn), SqlType("DECIMAL", kind.precision, 0)
        return _strict(lambda x: x if math.isinf(x) or math.isnan(x) else float(op(x)), fn), DOUBLE

    def _Floor(self, node: exp.Floor) -> tuple[Fn, SqlType]:
        return self._floor_ceil(node, math.floor)

    def _Ceil(self, node: exp.Ceil) -> tuple[Fn, SqlType]:
        return self._floor_ceil(node, math.ceil)

    def _double_fn(self, node: exp.Expression, op: Callable[[float], float]) -> tuple[Fn, SqlType]:
        fn, kind = self._numeric(node.this)
        return _strict(op, _coerced(fn, kind, DOUBLE)), DOUBLE

    def _Sqrt(self, node: exp.Sqrt) -> tuple[Fn, SqlType]:
        return self._double_fn(node, lambda x: st.INVALID_NAN if x < 0 else (x if math.isnan(x) else math.sqrt(x)))

    def _Ln(self, node: exp.Ln) -> tuple[Fn, SqlType]:
        return self._double_fn(node, _ln)

    def _Exp(self, node: exp.Exp) -> tuple[Fn, SqlType]:
        return self._double_fn(node, _exp)

    def _Log(self, node: exp.Log) -> tuple[Fn, SqlType]:
        base, value = node.this, node.expression
        if value is None:
            return self._double_fn(exp.Ln(this=base), _ln)
        if not (isinstance(base, exp.Literal) and base.this in ("10", "2")):
            raise Unsupported("log() takes base 10 or 2 here; use ln(x) / ln(b)", node)
        fn, kind = self._numeric(value)
        log = math.log10 if base.this == "10" else math.log2
        return _strict(lambda x: _log_with(log, x), _coerced(fn, kind, DOUBLE)), DOUBLE

    def _Pow(self, node: exp.Pow) -> tuple[Fn, SqlType]:
        left, lt = self._numeric(node.this)
        right, rt = self._numeric(node.expression)
        return _strict(_pow, _coerced(left, lt, DOUBLE), _coerced(right, rt, DOUBLE)), DOUBLE

    # -- strings --------------------------------------------------------------------------------------

    def _text(self, node: exp.Expression) -> Fn:
        fn, kind = self.compile(node)
        if kind.name == "INTERVAL":
            raise Unsupported("cannot turn an INTERVAL into text here", node)
        return _coerced(fn, kind, VARCHAR)

    def _DPipe(self, node: exp.DPipe) -> tuple[Fn, SqlType]:
        return _strict(lambda x, y: x + y, self._text(node.this), self._text(node.expression)), VARCHAR

    def _Concat(self, node: exp.Concat) -> tuple[Fn, SqlType]:
        fns = [self._text(n) for n in node.expressions]
        if node.args.get("coalesce"):
            return (lambda row: "".join(v for v in (fn(row) for fn in fns) if v is not None)), VARCHAR
        return _strict(lambda *parts: "".join(parts), *fns), VARCHAR

    def _string_fn(self, node: exp.Expression, op: Callable[[str], Any], kind: SqlType) -> tuple[Fn, SqlType]:
        return _strict(op, self._typed(node.this, VARCHAR, type(node).__name__.lower())), kind

    def _Lower(self, node: exp.Lower) -> tuple[Fn, SqlType]:
        return self._string_fn(node, st.lower, VARCHAR)

    def _Upper(self, node: exp.Upper) -> tuple[Fn, SqlType]:
        return self._string_fn(node, st.upper, VARCHAR)

    def _Length(self, node: exp.Length) -> tuple[Fn, SqlType]:
        return self._string_fn(node, len, BIGINT)

    def _Trim(self, node: exp.Trim) -> tuple[Fn, SqlType]:
        if node.expression is not None:
            raise Unsupported("trim() of characters other than spaces is not supported", node)
        position = node.args.get("position")
        op = {"LEADING": lambda s: s.lstrip(" "), "TRAILING": lambda s: s.rstrip(" ")}.get(
            position, lambda s: s.strip(" "))
        return self._string_fn(node, op, VARCHAR)

    def _Substring(self, node: exp.Substring) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "substring")
        start = self._int_arg(node.args["start"], "substring's start")
        if node.args.get("length") is None:
            return _strict(lambda s, b: _substring(s, b, None), text, start), VARCHAR
        length = self._int_arg(node.args["length"], "substring's length")
        return _strict(_substring, text, start, length), VARCHAR

    def _Replace(self, node: exp.Replace) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "replace")
        old = self._typed(node.expression, VARCHAR, "replace")
        new = self._typed(node.args["replacement"], VARCHAR, "replace")
        return _strict(lambda s, a, b: s.replace(a, b) if a else s, text, old, new), VARCHAR

    def _Left(self, node: exp.Left) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "left")
        count = self._int_arg(node.expression, "left's length")
        return _strict(lambda s, n: s[:n] if n >= 0 else s[:max(0, len(s) + n)], text, count), VARCHAR

    def _Right(self, node: exp.Right) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "right")
        count = self._int_arg(node.expression, "right's length")
        return _strict(lambda s, n: (s[len(s) - n:] if n < len(s) else s) if n >= 0 else s[min(len(s), -n):],
                       text, count), VARCHAR

    def _StartsWith(self, node: exp.StartsWith) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "starts_with")
        prefix = self._typed(node.expression, VARCHAR, "starts_with")
        return _strict(str.startswith, text, prefix), BOOLEAN

    def _Contains(self, node: exp.Contains) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "contains")
        part = self._typed(node.expression, VARCHAR, "contains")
        return _strict(lambda s, p: p in s, text, part), BOOLEAN

    def _StrPosition(self, node: exp.StrPosition) -> tuple[Fn, SqlType]:
        if node.args.get("position") is not None or node.args.get("occurrence") is not None:
            raise Unsupported("strpos() takes two arguments", node)
        text = self._typed(node.this, VARCHAR, "strpos")
        part = self._typed(node.args["substr"], VARCHAR, "strpos")
        return _strict(lambda s, p: s.find(p) + 1, text, part), BIGINT

    def _like_node(self, node: exp.Expression, insensitive: bool) -> tuple[Fn, SqlType]:
        text = self._typed(node.this, VARCHAR, "LIKE")
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            raise Unsupported("LIKE needs a literal pattern", node)
        compiled = _like(pattern.this, insensitive)
        return _strict(lambda s: compiled.fullmatch(s) is not None, text), BOOLEAN

    def _Like(self, node: exp.Like) -> tuple[Fn, SqlType]:
        return self._like_node(node, False)

    def _ILike(self, node: exp.ILike) -> tuple[Fn, SqlType]:
        return self._like_node(node, True)

    # -- dates and times ------------------------------------------------------------------------------

    def _moment(self, node: exp.Expression) -> Fn:
        fn, kind = self.compile(node)
        if kind.name == "DATE":
            return _strict(st.as_timestamp, fn)
        if kind.name in ("TIMESTAMP", "NULL"):
            return fn
        raise Unsupported(f"{node.sql(dialect='duckdb')!r} is {kind}, not a date or timestamp", node)

    def _part(self, node: exp.Expression, part: str) -> tuple[Fn, SqlType]:
        fn, kind = self.compile(node)
        if part == "epoch" and kind.name == "INTERVAL":
            return _strict(lambda i: i.total_micros() / 1_000_000, fn), DOUBLE
        moment = self._moment(node)
        return _strict(_PARTS[part], moment), DOUBLE if part == "epoch" else BIGINT

    def _Year(self, node: exp.Year) -> tuple[Fn, SqlType]:
        return self._part(node.this, "year")

    def _Month(self, node: exp.Month) -> tuple[Fn, SqlType]:
        return self._part(node.this, "month")

    def _Day(self, node: exp.Day) -> tuple[Fn, SqlType]:
        return self._part(node.this, "day")

    def _Hour(self, node: exp.Hour) -> tuple[Fn, SqlType]:
        return self._part(node.this, "hour")

    def _Minute(self, node: exp.Minute) -> tuple[Fn, SqlType]:
        return self._part(node.this, "minute")

    def _DayOfWeek(self, node: exp.DayOfWeek) -> tuple[Fn, SqlType]:
        return self._part(node.this, "dayofweek")

    def _DayOfYear(self, node: exp.DayOfYear) -> tuple[Fn, SqlType]:
        return self._part(node.this, "dayofyear")

    def _TimeToUnix(self, node: exp.TimeToUnix) -> tuple[Fn, SqlType]:
        return self._part(node.this, "epoch")

    def _part_name(self, node: exp.Expression, where: exp.Expression) -> str:
        text = node.name.lower() if isinstance(node, (exp.Var, exp.Literal, exp.Column)) else ""
        text = _PART_ALIASES.get(text, text)
        if text not in _PARTS and text not in ("week", "millisecond", "microsecond"):
            raise Unsupported(f"unknown date part {node.sql()!r}", where)
        return text

    def _Extract(self, node: exp.Extract) -> tuple[Fn, SqlType]:
        part = self._part_name(node.this, node)
        if part not in _PARTS:
            raise Unsupported(f"extract({part}) is not supported", node)
        return self._part(node.expression, part)

    def _TimestampTrunc(self, node: exp.TimestampTrunc) -> tuple[Fn, SqlType]:
        part = self._part_name(node.args["unit"], node)
        if part not in ("year", "quarter", "month", "week", "day", "hour", "minute", "second"):
            raise Unsupported(f"date_trunc({part!r}) is not supported", node)
        moment = self._moment(node.this)
        return _strict(lambda t: _truncate(part, t), moment), TIMESTAMP

    _DateTrunc = _TimestampTrunc

    def _DateDiff(self, node: exp.DateDiff) -> tuple[Fn, SqlType]:
        part = self._part_name(node.args.get("unit") or exp.var("day"), node)
        if part not in ("year", "quarter", "month", "day", "hour", "minute", "second", "millisecond", "microsecond"):
            raise Unsupported(f"date_diff({part!r}) is not supported", node)
        # sqlglot keeps DuckDB's date_diff(part, start, end) as this=end, expression=start
        end, start = self._moment(node.this), self._moment(node.expression)
        return _strict(lambda a, b: _date_diff(part, a, b), start, end), BIGINT


def _ln(x: float) -> float:
    return _log_with(math.log, x)


def _log_with(log: Callable[[float], float], x: float) -> float:
    if x == 0:
        return -math.inf
    if x < 0 or math.isnan(x):
        return math.nan
    return math.inf if math.isinf(x) else log(x)


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _pow(x: float, y: float) -> float:
    try:
        result = math.pow(x, y)
    except (OverflowError, ValueError):
        try:
            result = float(x ** y) if not isinstance(x ** y, complex) else st.INVALID_NAN
        except (OverflowError, ZeroDivisionError):
            result = math.inf
    return result
