"""Window frames for engines whose RANGE frames need a numeric order key (BigQuery): a frame over a time key with
fixed-length bounds is rewritten over the key's microseconds since the epoch, with the bounds in microseconds.

A NULL key is its own peer group, inside no bounded range of non-NULL keys, whether NULLs sort first or last: the
NULL ordering of such a window does not change its values, so it is left to the engine's default.
"""

from __future__ import annotations

from sqlglot import exp

_MICROS = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
           "HOUR": 3_600_000_000, "DAY": 86_400_000_000, "WEEK": 604_800_000_000}


def numeric_range_frames(query: exp.Query) -> exp.Query:
    """The query with each rewritable RANGE frame over microseconds (the others unchanged, for the caller's
    transpile check to report)."""
    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window):
            _rewrite_window(node)
        return node

    return query.transform(rewrite, copy=True)


def range_frame_micros(window: exp.Window) -> int | None:
    """The length of a window's RANGE frame over time (its PRECEDING interval bound), if it has one."""
    spec = window.args.get("spec")
    if spec is None or str(spec.args.get("kind", "")).lower() != "range":
        return None
    start = spec.args.get("start")
    if not isinstance(start, exp.Interval) or str(spec.args.get("start_side", "")).lower() != "preceding":
        return None
    return _micros(start)


def _rewrite_window(window: exp.Window) -> None:
    spec, order = window.args.get("spec"), window.args.get("order")
    if spec is None or str(spec.args.get("kind", "")).lower() != "range" or order is None:
        return
    if len(order.expressions) != 1:
        return
    bounds = {side: spec.args.get(side) for side in ("start", "end")}
    micros = {side: _micros(bound) for side, bound in bounds.items() if isinstance(bound, exp.Interval)}
    if not micros or any(value is None for value in micros.values()):
        return
    for side, value in micros.items():
        spec.set(side, exp.Literal.number(value))
    ordered = order.expressions[0]
    # A zoned timestamp (BigQuery's TIMESTAMP): naive times are UTC in every skewless session.
    ordered.set("this", exp.UnixMicros(this=exp.cast(ordered.this, exp.DataType.Type.TIMESTAMPTZ)))
    ordered.set("nulls_first", not ordered.args.get("desc"))  # the engine's default: no NULLS clause is written


def _micros(interval: exp.Interval) -> int | None:
    unit = interval.args.get("unit")
    value = interval.this
    name = (unit.name if unit is not None else "").upper().rstrip("S")
    if name not in _MICROS or not isinstance(value, exp.Literal):
        return None
    try:
        return int(value.name) * _MICROS[name]
    except ValueError:
        return None
