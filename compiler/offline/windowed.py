"""Window features in a training set: each spine row's value at its own instant T, by the rule of core/tiles.py
(events with event time in (floor_g(T - W), T]), not as of the entity's last event.

One formulation for every engine: the spine joined to the events of the widest window (an equi-join on the keys
and a range on time), aggregated per spine row with one CASE per window; times are compared as microseconds since
the epoch (DATEDIFF in MICROSECOND, which sqlglot writes for each dialect), so the window's old end is the same
integer arithmetic as online. `delay` shifts the instant (a value is read at T - delay); `as_known` counts only
events created by T.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlglot import exp

from skewless.core.sqlbuild import epoch_micros, floor_to, interval, quoted_column
from skewless.core.windowagg import WindowAgg, WindowFeature

SPINE_CTE = "__skewless_spine"
LAST_TS = "__skewless_last_ts_"
INSIDE = "__skewless_in_"


@dataclass(frozen=True)
class WindowSource:
    """One window_agg model's part of a training set: its events relation and the features asked of it."""

    relation: exp.Table
    join_keys: tuple[str, ...]
    timestamp: str
    spec: WindowAgg
    features: tuple[WindowFeature, ...]
    created_timestamp: str | None = None
    delay: timedelta | None = None
    spine_keys: tuple[str, ...] | None = None

    @property
    def on_spine(self) -> tuple[str, ...]:
        return self.spine_keys or self.join_keys


def attach(select: exp.Select, source: WindowSource, alias: str, spine: str, ts_column: str, row_column: str,
           as_known: bool, index: int) -> exp.Select:
    """`select` (FROM the spine as `spine`) with the source's features added as columns, each spine row once."""
    spec = source.spec
    tiling = spec.tiling
    at: exp.Expression = quoted_column(ts_column, "s")
    if source.delay:
        at = exp.Sub(this=at, expression=interval(source.delay))
    at_us = epoch_micros(at)
    event_us = epoch_micros(quoted_column(source.timestamp, "e"))
    widest = max(w + tiling.granularity(w) for w in spec.windows)
    conditions: list[exp.Expression] = [
        exp.EQ(this=quoted_column(key, "e"), expression=quoted_column(on_spine, "s"))
        for key, on_spine in zip(source.join_keys, source.on_spine, strict=True)
    ]
    conditions += [
        exp.LTE(this=quoted_column(source.timestamp, "e"), expression=at.copy()),
        exp.GT(this=quoted_column(source.timestamp, "e"),
               expression=exp.Sub(this=at.copy(), expression=interval(timedelta(microseconds=widest)))),
    ]
    if as_known and source.created_timestamp:
        conditions.append(exp.LTE(this=quoted_column(source.created_timestamp, "e"),
                                  expression=quoted_column(ts_column, "s")))

    def inside(window: int) -> exp.Expression:
        start = floor_to(exp.Sub(this=at_us.copy(), expression=exp.Literal.number(window)),
                         tiling.granularity(window))
        return exp.GT(this=event_us.copy(), expression=start)

    # Per joined row: inside each window or not (computed where both the spine and the event are in scope).
    windows = list(dict.fromkeys(f.window for f in source.features))
    flags = [exp.alias_(inside(w), f"{INSIDE}{i}", quoted=True) for i, w in enumerate(windows)]
    helpers: list[exp.Expression] = []
    aggregates: list[exp.Expression] = []
    for number, feature in enumerate(source.features):
        aggregation = feature.aggregation
        column = quoted_column(aggregation.column, "e") if aggregation.column else None
        if aggregation.function == "last":
            assert column is not None
            newest = exp.Max(this=_when(exp.and_(inside(feature.window), column.copy().is_(exp.null()).not_()),
                                        quoted_column(source.timestamp, "e")))
            helpers.append(exp.alias_(exp.Window(this=newest, partition_by=[quoted_column(row_column, "s")]),
                                      f"{LAST_TS}{number}", quoted=True))
        within = quoted_column(f"{INSIDE}{windows.index(feature.window)}", "e")
        aggregates.append(exp.alias_(_aggregate(feature, within, column, source.timestamp, number),
                                     f"v{number}", quoted=True))

    joined = (
        exp.select(exp.alias_(quoted_column(row_column, "s"), row_column, quoted=True), *[
            exp.alias_(quoted_column(c, "e"), c, quoted=True)
            for c in dict.fromkeys([source.timestamp, *[c for c, _ in spec.input_types]])
        ], *flags, *helpers)
        .from_(exp.alias_(exp.to_table(f'"{SPINE_CTE}"'), "s", table=True))
        .join(exp.alias_(source.relation.copy(), "e", table=True), on=exp.and_(*conditions))
    )
    per_row = (
        exp.select(quoted_column(row_column), *aggregates)
        .from_(joined.subquery("e"))
        .group_by(quoted_column(row_column))
    )
    select = select.join(exp.alias_(per_row.subquery(), alias, table=True),
                         on=exp.EQ(this=quoted_column(row_column, alias), expression=quoted_column(row_column, spine)),
                         join_type="LEFT")
    no_time = quoted_column(ts_column, spine).is_(exp.null())
    for number, feature in enumerate(source.features):
        value: exp.Expression = quoted_column(f"v{number}", alias)
        if feature.aggregation.function in ("count", "count_distinct"):  # an empty window counts 0
            value = exp.Case(ifs=[exp.If(this=no_time.copy(), true=exp.null())],
                             default=exp.Coalesce(this=value, expressions=[exp.cast(exp.Literal.number(0),
                                                                                    "BIGINT")]))
        select = select.select(exp.alias_(value, feature.name, quoted=True))
    return select


def _when(condition: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition, true=value)])


def _aggregate(feature: WindowFeature, within: exp.Expression, column: exp.Expression | None, timestamp: str,
               number: int) -> exp.Expression:
    """One feature's aggregate over the joined rows (inside its window), cast to the feature's type."""
    function = feature.aggregation.function
    kind = exp.DataType.build(feature.type)
    if column is None:
        return exp.Count(this=_when(within, exp.Literal.number(1)))
    if function == "count":
        return exp.Count(this=_when(within, column))
    if function == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[_when(within, column)]))
    if function == "sum":
        return exp.cast(exp.Sum(this=_when(within, column)), kind)
    if function == "avg":  # the sum (exact for integers) over the count, as the online merge divides
        total = exp.cast(exp.Sum(this=_when(within, column)), "DOUBLE")
        count = exp.Nullif(this=exp.Count(this=_when(within.copy(), column.copy())),
                           expression=exp.Literal.number(0))
        return exp.Div(this=total, expression=count, typed=False, safe=False)
    if function == "min":
        return exp.cast(exp.Min(this=_when(within, column)), kind)
    if function == "max":
        return exp.cast(exp.Max(this=_when(within, column)), kind)
    if function == "last":  # the newest event's value; a tie on time goes to the greatest value
        newest = exp.EQ(this=quoted_column(timestamp, "e"), expression=quoted_column(f"{LAST_TS}{number}", "e"))
        return exp.cast(exp.Max(this=_when(exp.and_(within, newest), column)), kind)
    raise ValueError(f"unknown aggregation {function!r}")
