"""Point-in-time joins as sqlglot trees, one formulation per family of engines.

For each spine row (keys K, time T) and each feature source, the value comes from the source's row with the same
K and the greatest event time <= T (inclusive); ties on event time go to the greatest created timestamp, then to
the greatest feature values (NULLs lowest), so the pick is deterministic. A row older than the source's ttl
(event time < T - ttl) gives NULL; no row gives NULL; a NULL value is a value. Every spine row appears exactly
once, duplicates included, in spine order. Options: `delay` (a row counts from event time + delay, as it
reached serving) and `as_known` (only rows created by T: the data as it was known then).

Formulations, chosen per engine by the engine table (core/engines.py):
- asof:        DuckDB ASOF LEFT JOIN over rows deduplicated per (K, event time).
- asof_match:  Snowflake ASOF JOIN ... MATCH_CONDITION, same dedup.
- lateral:     LEFT JOIN LATERAL (... ORDER BY ... LIMIT 1), Postgres; also every dialect's as_known form.
- window:      Spark, BigQuery, Trino: spine and feature times in one sorted stream per key, the last feature
               time carried forward with LAST_VALUE IGNORE NULLS, then an equi-join: O(n log n), no blow-up.
- ranked:      the as_known form where LATERAL is missing: a join on K and both times, ranked per spine row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlglot import exp

from skewless.core.engines import engine_for_dialect
from skewless.core.errors import SkewlessError
from skewless.core.sqlbuild import (
    first_per_group,
    greatest_first,
    interval,
    quoted_column,
    row_number,
    unique_row_id,
)

from . import windowed

ROW = "__skewless_row"
TS = "__skewless_ts"
MATCH = "__skewless_match"
RANK = "__skewless_rank"
IS_SPINE = "__skewless_is_spine"
SPINE_ROW = "__skewless_spine_row"


@dataclass(frozen=True)
class FeatureSource:
    """One model's part of a point-in-time join."""

    relation: exp.Table
    join_keys: tuple[str, ...]
    timestamp: str
    features: tuple[str, ...]
    created_timestamp: str | None = None
    ttl: timedelta | None = None
    delay: timedelta | None = None
    unique_per_key_ts: bool = False  # the table already holds one row per (keys, event time)...
    current_flag: str | None = None  # ...or flags, in this column, the one row per (keys, event time) that wins
    spine_keys: tuple[str, ...] | None = None  # spine columns matched to join_keys (default: same names)
    tie_break: tuple[str, ...] | None = None  # every feature of the model: the same pick online and offline

    @property
    def on_spine(self) -> tuple[str, ...]:
        return self.spine_keys or self.join_keys


@dataclass(frozen=True)
class PitQuery:
    """A spine (a query with a row number column ROW and a timestamp column TS) and the features to attach."""

    spine: exp.Query
    spine_columns: tuple[str, ...]
    sources: tuple["FeatureSource | windowed.WindowSource", ...]
    as_known: bool = False
    extra_projections: tuple[exp.Expression, ...] = field(default_factory=tuple)  # e.g. on-demand features


def style_for(dialect: str, as_known: bool = False) -> str:
    """The formulation the engine table gives the dialect (its as-known form when `as_known`)."""
    engine = engine_for_dialect(dialect)
    if as_known and engine.pit != "lateral":
        return engine.as_known_pit
    return engine.pit


def build(query: PitQuery, dialect: str, style: str | None = None, ordered: bool = True) -> exp.Select:
    """The whole training-set query: spine columns, then each source's features, in spine order.

    `ordered=False` leaves out the final ORDER BY (a full sort of the result), for callers that do not need the
    spine's order; every spine row is still there exactly once.
    """
    style = style or style_for(dialect, query.as_known)
    if query.as_known and style not in ("lateral", "ranked"):
        raise SkewlessError(f"as_known needs the lateral or ranked formulation, not {style!r}")
    if (style == "carry" and len(query.sources) == 1 and isinstance(query.sources[0], FeatureSource)
            and not query.extra_projections):
        return _carry_alone(query, ordered)
    spine_alias = "spine"
    select = exp.select(*[quoted_column(c, spine_alias) for c in query.spine_columns])
    select = select.with_(exp.to_identifier("__skewless_spine", quoted=True), as_=query.spine)
    select = select.from_(exp.alias_(exp.to_table('"__skewless_spine"'), spine_alias, table=True), copy=False)
    for index, source in enumerate(query.sources):
        alias = f"f{index}"
        if isinstance(source, windowed.WindowSource):  # one formulation on every engine: a range join
            select = windowed.attach(select, source, alias, spine_alias, TS, ROW, query.as_known, index)
        else:
            select = _attach(select, source, alias, spine_alias, style, query.as_known, index)
    for projection in query.extra_projections:
        select = select.select(projection.copy(), copy=False)
    return select.order_by(quoted_column(ROW, spine_alias), copy=False) if ordered else select


# -- pieces shared by the formulations --------------------------------------------------------------------


def _available(source: FeatureSource, table: str | None = None) -> exp.Expression:
    """When a row reached serving: event time, plus the source's delay."""
    ts: exp.Expression = quoted_column(source.timestamp, table)
    if source.delay:
        ts = exp.Add(this=ts, expression=interval(source.delay))
    return ts


def _tie_columns(source: FeatureSource) -> list[str]:
    """What breaks a tie on event time: the created timestamp, then the values (the online store's pick too)."""
    return ([source.created_timestamp] if source.created_timestamp else []) + list(source.tie_break or source.features)


def _keys_equal(source: FeatureSource, feature: str, spine: str) -> list[exp.Expression]:
    return [
        exp.EQ(this=quoted_column(fk, feature), expression=quoted_column(sk, spine))
        for fk, sk in zip(source.join_keys, source.on_spine, strict=True)
    ]


def _within_ttl(source: FeatureSource, event: exp.Expression, at: exp.Expression,
                value: exp.Expression) -> exp.Expression:
    """The value, or NULL when the matched row (event time `event`) is older than the ttl at `at` (< T - ttl)."""
    if source.ttl is None:
        return value
    oldest = exp.Sub(this=at.copy(), expression=interval(source.ttl))
    return exp.Case(ifs=[exp.If(this=exp.GTE(this=event.copy(), expression=oldest), true=value)])


def _feature_projections(source: FeatureSource, feature: str, spine: str) -> list[exp.Expression]:
    event, at = quoted_column(source.timestamp, feature), quoted_column(TS, spine)
    return [
        exp.alias_(_within_ttl(source, event, at, quoted_column(name, feature)), name, quoted=True)
        for name in source.features
    ]


def _deduplicated(source: FeatureSource) -> exp.Query:
    """One row per (keys, event time): the newest created, then the greatest values (skipped when unique)."""
    columns = [*source.join_keys, source.timestamp, *source.features]
    available = exp.alias_(_available(source), TS, quoted=True)
    not_null = exp.and_(*[quoted_column(c).is_(exp.null()).not_() for c in [*source.join_keys, source.timestamp]])
    if source.unique_per_key_ts or source.current_flag:
        # Rows with a NULL key or time never match (the joins compare them with =, >=), so no filter is needed.
        prepared = exp.select(*[quoted_column(c) for c in columns], available).from_(source.relation.copy())
        return prepared.where(quoted_column(source.current_flag)) if source.current_flag else prepared
    return first_per_group(source.relation, [*source.join_keys, source.timestamp], _tie_columns(source), columns,
                           not_null, extra=[available])


# -- formulations -----------------------------------------------------------------------------------------


def _attach(select: exp.Select, source: FeatureSource, alias: str, spine: str, style: str, as_known: bool,
            index: int) -> exp.Select:
    if style in ("asof", "asof_match"):
        return _asof(select, source, alias, spine, style, index)
    if style == "lateral":
        return _lateral(select, source, alias, spine, as_known)
    if style == "window":
        return _window(select, source, alias, spine, index)
    if style == "carry":
        return _carry(select, source, alias, spine, index)
    if style == "ranked":
        return _ranked(select, source, alias, spine, as_known, index)
    raise SkewlessError(f"unknown point-in-time formulation {style!r}")


def _cte(select: exp.Select, name: str, query: exp.Query) -> tuple[exp.Select, exp.Table]:
    select = select.with_(exp.to_identifier(name, quoted=True), as_=query, copy=False)
    return select, exp.Table(this=exp.to_identifier(name, quoted=True))


def _asof(select: exp.Select, source: FeatureSource, alias: str, spine: str, style: str, index: int) -> exp.Select:
    select, table = _cte(select, f"__skewless_f{index}", _deduplicated(source))
    when = exp.GTE(this=quoted_column(TS, spine), expression=quoted_column(TS, alias))
    keys = exp.and_(*_keys_equal(source, alias, spine))
    target = exp.alias_(table, alias, table=True)
    if style == "asof":
        join = exp.Join(this=target, method="ASOF", side="LEFT", on=exp.and_(keys, when))
    else:
        join = exp.Join(this=target, method="ASOF", match_condition=when, on=keys)
    select.append("joins", join)
    return select.select(*_feature_projections(source, alias, spine), copy=False)


def _lateral(select: exp.Select, source: FeatureSource, alias: str, spine: str, as_known: bool) -> exp.Select:
    conditions = _keys_equal(source, "f", spine)
    conditions.append(exp.LTE(this=_available(source, "f"), expression=quoted_column(TS, spine)))
    if as_known and source.created_timestamp:
        conditions.append(exp.LTE(this=quoted_column(source.created_timestamp, "f"),
                                  expression=quoted_column(TS, spine)))
    order = greatest_first([source.timestamp, *_tie_columns(source)], "f")
    inner = (
        exp.select(*[quoted_column(c, "f") for c in [source.timestamp, *source.features]])
        .from_(exp.alias_(source.relation.copy(), "f", table=True))
        .where(exp.and_(*conditions))
        .order_by(*order)
        .limit(1)
    )
    lateral = exp.Lateral(this=inner.subquery(), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    select.append("joins", exp.Join(this=lateral, side="LEFT", on=exp.true()))
    return select.select(*_feature_projections(source, alias, spine), copy=False)


def _stream_order() -> list[exp.Ordered]:
    """The order of a stream of feature and spine rows: by time, a spine row after the feature rows of its
    instant; a spine row without a time first (NULLs first), so that no feature row precedes it."""
    return [exp.Ordered(this=quoted_column(TS), nulls_first=True), exp.Ordered(this=quoted_column(IS_SPINE))]


def _window(select: exp.Select, source: FeatureSource, alias: str, spine: str, index: int) -> exp.Select:
    select, features = _cte(select, f"__skewless_f{index}", _deduplicated(source))
    keys = list(source.join_keys)
    from_features = exp.select(
        *[quoted_column(k) for k in keys], quoted_column(TS),
        exp.alias_(quoted_column(TS), MATCH, quoted=True),
        exp.alias_(exp.Literal.number(0), IS_SPINE, quoted=True),
        exp.alias_(exp.cast(exp.null(), "bigint"), ROW, quoted=True),
    ).from_(features.copy())
    from_spine = exp.select(
        *[exp.alias_(quoted_column(sk), fk, quoted=True) for fk, sk in zip(keys, source.on_spine, strict=True)],
        quoted_column(TS),
        exp.alias_(exp.cast(exp.null(), "timestamp"), MATCH, quoted=True),
        exp.alias_(exp.Literal.number(1), IS_SPINE, quoted=True),
        quoted_column(ROW),
    ).from_(exp.to_table('"__skewless_spine"'))
    carried = exp.Window(
        this=exp.IgnoreNulls(this=exp.LastValue(this=quoted_column(MATCH))),
        partition_by=[quoted_column(k) for k in keys],
        order=exp.Order(expressions=_stream_order()),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    stream = exp.union(from_features, from_spine, distinct=False, copy=False)
    matched = (
        exp.select(quoted_column(ROW), exp.alias_(carried, MATCH, quoted=True))
        .from_(stream.subquery("stream"))
    )
    matches = (
        exp.select(quoted_column(ROW), quoted_column(MATCH)).from_(matched.subquery("carried"))
        .where(quoted_column(ROW).is_(exp.null()).not_())
    )
    select, match_table = _cte(select, f"__skewless_m{index}", matches)
    match_alias = f"m{index}"
    select.append("joins", exp.Join(
        this=exp.alias_(match_table, match_alias, table=True), side="LEFT",
        on=exp.EQ(this=quoted_column(ROW, match_alias), expression=quoted_column(ROW, spine)),
    ))
    on = exp.and_(*_keys_equal(source, alias, spine),
                  exp.EQ(this=quoted_column(TS, alias), expression=quoted_column(MATCH, match_alias)))
    select.append("joins", exp.Join(this=exp.alias_(features.copy(), alias, table=True), side="LEFT", on=on))
    return select.select(*_feature_projections(source, alias, spine), copy=False)


def _carried_stream(source: FeatureSource, spine_row: exp.Expression | None = None) -> exp.Select:
    """Feature rows and spine rows in one stream, each spine row with the last feature row before it (a struct,
    `c0` its event time, `c1`... its features) in MATCH; `spine_row`, a struct of the spine's columns, rides along
    when given."""
    keys = list(source.join_keys)
    payload = _struct("c", [source.timestamp, *source.features])
    valid = [quoted_column(c).is_(exp.null()).not_() for c in [*keys, source.timestamp]]
    if source.current_flag:
        valid.append(quoted_column(source.current_flag))
    # Rows unique per (keys, time), or flagged current at build time, have no ties to break.
    ties = [] if source.unique_per_key_ts or source.current_flag else _tie_columns(source)
    from_features = exp.select(
        *[quoted_column(k) for k in keys], exp.alias_(_available(source), TS, quoted=True),
        exp.alias_(exp.Literal.number(0), IS_SPINE, quoted=True),
        *[exp.alias_(quoted_column(c), f"__skewless_tie{i}", quoted=True) for i, c in enumerate(ties)],
        exp.alias_(exp.cast(exp.null(), "bigint"), ROW, quoted=True),
        exp.alias_(payload, MATCH, quoted=True),
    ).from_(source.relation.copy()).where(exp.and_(*valid))
    from_spine = exp.select(
        *[exp.alias_(quoted_column(sk), fk, quoted=True) for fk, sk in zip(keys, source.on_spine, strict=True)],
        quoted_column(TS), exp.alias_(exp.Literal.number(1), IS_SPINE, quoted=True),
        *[exp.alias_(exp.null(), f"__skewless_tie{i}", quoted=True) for i in range(len(ties))],
        quoted_column(ROW), exp.alias_(exp.null(), MATCH, quoted=True),
    ).from_(exp.to_table('"__skewless_spine"'))
    outputs = [quoted_column(ROW), quoted_column(IS_SPINE), quoted_column(TS)]
    if spine_row is not None:  # rides along: NULL on feature rows
        from_features = from_features.select(exp.alias_(exp.null(), SPINE_ROW, quoted=True))
        from_spine = from_spine.select(exp.alias_(spine_row, SPINE_ROW, quoted=True))
        outputs.append(quoted_column(SPINE_ROW))
    order = _stream_order()
    order += [exp.Ordered(this=quoted_column(f"__skewless_tie{i}"), nulls_first=True) for i in range(len(ties))]
    last = exp.Window(
        this=exp.IgnoreNulls(this=exp.LastValue(this=quoted_column(MATCH))),
        partition_by=[quoted_column(k) for k in keys], order=exp.Order(expressions=order),
        spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"),
    )
    stream = exp.union(from_features, from_spine, distinct=False, copy=False)
    return exp.select(*outputs, exp.alias_(last, MATCH, quoted=True)).from_(stream.subquery("stream"))


def _struct(prefix: str, columns: Sequence[str]) -> exp.Struct:
    """STRUCT(col AS <prefix>0, ...): fields named by position, whatever the columns are called."""
    return exp.Struct(expressions=[
        exp.PropertyEQ(this=exp.to_identifier(f"{prefix}{i}"), expression=quoted_column(c))
        for i, c in enumerate(columns)
    ])


def _field(struct: str, name: str) -> exp.Dot:
    return exp.Dot(this=quoted_column(struct), expression=exp.to_identifier(name))


def _carry_alone(query: PitQuery, ordered: bool) -> exp.Select:
    """One source: the spine's columns ride through the stream too, so the result is read off the stream with
    no join back to the spine."""
    source = query.sources[0]
    matched = _carried_stream(source, _struct("s", query.spine_columns))
    event, at = _field(MATCH, "c0"), quoted_column(TS)
    features = [exp.alias_(_within_ttl(source, event, at, _field(MATCH, f"c{i}")), name, quoted=True)
                for i, name in enumerate(source.features, start=1)]
    select = exp.select(
        *[exp.alias_(_field(SPINE_ROW, f"s{i}"), c, quoted=True) for i, c in enumerate(query.spine_columns)],
        *features,
    ).from_(matched.subquery("carried")).where(exp.EQ(this=quoted_column(IS_SPINE), expression=exp.Literal.number(1)))
    select = select.with_(exp.to_identifier("__skewless_spine", quoted=True), as_=query.spine)
    return select.order_by(quoted_column(ROW)) if ordered else select


def _carry(select: exp.Select, source: FeatureSource, alias: str, spine: str, index: int) -> exp.Select:
    """One ordered stream per key of feature rows and spine rows; each spine row takes the last feature row
    before it, carried whole as a struct (LAST_VALUE ... IGNORE NULLS). One sort, no second pass over the feature
    rows: the struct holds the values, so neither a deduplication nor a join back to the features is needed. Ties
    on time sort by the tie columns ascending, NULLs first, so that the last of them is the one the other
    formulations pick."""
    carried = [source.timestamp, *source.features]
    fields = [exp.alias_(_field(MATCH, f"c{i}"), c, quoted=True) for i, c in enumerate(carried)]
    matches = (
        exp.select(quoted_column(ROW), *fields).from_(_carried_stream(source).subquery("carried"))
        .where(exp.EQ(this=quoted_column(IS_SPINE), expression=exp.Literal.number(1)))
    )
    select, table = _cte(select, f"__skewless_f{index}", matches)
    select.append("joins", exp.Join(
        this=exp.alias_(table, alias, table=True), side="LEFT",
        on=exp.EQ(this=quoted_column(ROW, alias), expression=quoted_column(ROW, spine)),
    ))
    return select.select(*_feature_projections(source, alias, spine), copy=False)


def _ranked(select: exp.Select, source: FeatureSource, alias: str, spine: str, as_known: bool,
            index: int) -> exp.Select:
    conditions = _keys_equal(source, "f", "s")
    conditions.append(exp.LTE(this=_available(source, "f"), expression=quoted_column(TS, "s")))
    if as_known and source.created_timestamp:
        conditions.append(exp.LTE(this=quoted_column(source.created_timestamp, "f"), expression=quoted_column(TS, "s")))
    rank = row_number([quoted_column(ROW, "s")], greatest_first([source.timestamp, *_tie_columns(source)], "f"))
    joined = (
        exp.select(quoted_column(ROW, "s"), *[quoted_column(c, "f") for c in [source.timestamp, *source.features]],
                   exp.alias_(rank, RANK, quoted=True))
        .from_(exp.alias_(exp.to_table('"__skewless_spine"'), "s", table=True))
        .join(exp.alias_(source.relation.copy(), "f", table=True), on=exp.and_(*conditions))
    )
    best = (
        exp.select(*[quoted_column(c) for c in [ROW, source.timestamp, *source.features]])
        .from_(joined.subquery("joined"))
        .where(exp.EQ(this=quoted_column(RANK), expression=exp.Literal.number(1)))
    )
    select, table = _cte(select, f"__skewless_f{index}", best)
    select.append("joins", exp.Join(
        this=exp.alias_(table, alias, table=True), side="LEFT",
        on=exp.EQ(this=quoted_column(ROW, alias), expression=quoted_column(ROW, spine)),
    ))
    return select.select(*_feature_projections(source, alias, spine), copy=False)


def spine_query(source: exp.Query | exp.Table, columns: Sequence[str], timestamp: str,
                row_number: str | None = None, dialect: str = "duckdb") -> exp.Select:
    """Wrap a spine: its columns, a row id (given, or the engine's: ROW_NUMBER() OVER (), or on engines whose
    ROW_NUMBER needs an order, a unique id) and its time as TIMESTAMP.

    A DATE spine time counts from the start of that day (UTC); a time with a time zone is compared as UTC.
    """
    if isinstance(source, exp.Table):
        source_expr: exp.Expression = source.copy()
    else:
        source_expr = source.subquery("spine_source")
    row: exp.Expression
    if row_number:
        row = quoted_column(row_number)
    elif engine_for_dialect(dialect).unordered_row_number:
        row = exp.Window(this=exp.RowNumber())
    else:  # unique, not consecutive: all the join needs to tell duplicate spine rows apart
        row = unique_row_id()
    return exp.select(
        *[quoted_column(c) for c in columns],
        exp.alias_(row, ROW, quoted=True),
        exp.alias_(exp.cast(quoted_column(timestamp), "timestamp"), TS, quoted=True),
    ).from_(source_expr)
