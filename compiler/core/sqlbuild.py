"""Small sqlglot builders shared by the compiler and the adapters: quoted relations, intervals, key matches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlglot import exp


def session_setting(name: str, value: exp.Expression) -> exp.Set:
    """`SET name = value`: a session setting, as every engine's adapter applies them."""
    return exp.Set(expressions=[exp.SetItem(this=exp.EQ(this=exp.to_identifier(name), expression=value))])


UTC = session_setting("TimeZone", exp.Literal.string("UTC"))  # naive timestamps are UTC; so is every comparison


def relation_table(name: str, schema: str | None = None) -> exp.Table:
    """A quoted, optionally schema-qualified table reference."""
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )


def quoted_column(name: str, table: str | None = None) -> exp.Column:
    qualifier = exp.to_identifier(table, quoted=True) if table else None
    return exp.column(exp.to_identifier(name, quoted=True), table=qualifier)


def interval(value: timedelta) -> exp.Interval:
    """An INTERVAL literal in the largest whole unit (sqlglot writes it per dialect)."""
    micros = value // timedelta(microseconds=1)
    for unit, size in (("DAY", 86_400_000_000), ("HOUR", 3_600_000_000), ("MINUTE", 60_000_000),
                       ("SECOND", 1_000_000)):
        if micros % size == 0:
            return exp.Interval(this=exp.Literal.string(str(micros // size)), unit=exp.Var(this=unit))
    return exp.Interval(this=exp.Literal.string(str(micros)), unit=exp.Var(this="MICROSECOND"))


def keys_match(left: str, right: str, keys: Iterable[str]) -> exp.Expression:
    """left.k IS NOT DISTINCT FROM right.k for every key, ANDed."""
    return exp.and_(*[
        exp.NullSafeEQ(this=quoted_column(k, left), expression=quoted_column(k, right)) for k in keys
    ])


def greatest_first(columns: Sequence[str], table: str | None = None) -> list[exp.Ordered]:
    """Each column descending, NULLs last: the order whose first row is the newest, then the greatest."""
    return [exp.Ordered(this=quoted_column(c, table), desc=True, nulls_first=False) for c in columns]


def row_number(partition: Sequence[exp.Expression], order: Sequence[exp.Ordered]) -> exp.Window:
    """ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)."""
    return exp.Window(this=exp.RowNumber(), partition_by=list(partition), order=exp.Order(expressions=list(order)))


def unique_row_id() -> exp.Expression:
    """A unique (not consecutive) id per row, where ROW_NUMBER() needs an order (engine table:
    unordered_row_number = False; Spark). It is computed afresh each time a query reads it."""
    return exp.func("monotonically_increasing_id")


def first_per_group(
    source: exp.Expression, partition: Sequence[str], order: Sequence[str], columns: Sequence[str],
    where: exp.Expression | None = None, extra: Sequence[exp.Expression] = (),
) -> exp.Select:
    """One row per `partition` group: the greatest by `order` (each descending, NULLs lowest), as `columns`.

    Portable (ROW_NUMBER in a subquery, explicit column lists so no helper column leaks). `source` is a table or
    a subquery; `extra` are more projections computed on the source rows and kept.
    """
    rank = row_number([quoted_column(c) for c in partition], greatest_first(order))
    inner = exp.select(*[quoted_column(c) for c in columns], *extra, exp.alias_(rank, "__skewless_rn", quoted=True))
    inner = inner.from_(source.copy())
    if where is not None:
        inner = inner.where(where)
    names = [*columns, *[e.alias_or_name for e in extra]]
    return (
        exp.select(*[quoted_column(c) for c in names])
        .from_(inner.subquery("ranked"))
        .where(exp.EQ(this=quoted_column("__skewless_rn"), expression=exp.Literal.number(1)))
    )


def explicit_zoned_timestamps(tree: exp.Expression) -> exp.Expression:
    """TIMESTAMPTZ written TIMESTAMP_LTZ, for engines whose sessions make TIMESTAMP naive (engine table:
    timestamp_ntz; Spark): sqlglot writes a zoned type as plain TIMESTAMP there, which would drop the zone."""
    if not any(node.this == exp.DataType.Type.TIMESTAMPTZ for node in tree.find_all(exp.DataType)):
        return tree

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.TIMESTAMPTZ:
            return exp.DataType.build("TIMESTAMPLTZ")
        return node

    return tree.transform(rewrite, copy=True)


def epoch_micros(value: exp.Expression) -> exp.Expression:
    """Microseconds since the Unix epoch of a (UTC, naive) timestamp, in any dialect."""
    epoch = exp.cast(exp.Literal.string("1970-01-01 00:00:00"), exp.DataType.Type.TIMESTAMP)
    return exp.DateDiff(this=value, expression=epoch, unit=exp.var("MICROSECOND"))


def floor_to(value: exp.Expression, step: int) -> exp.Expression:
    """`value` rounded down to a multiple of `step` (integers; right for negative values too, whatever the sign
    convention of the engine's modulo)."""
    step_literal = exp.Literal.number(step)
    remainder = exp.Mod(this=exp.paren(exp.Add(this=exp.Mod(this=exp.paren(value), expression=step_literal),
                                               expression=step_literal.copy())),
                        expression=step_literal.copy())
    return exp.Sub(this=exp.paren(value.copy()), expression=remainder)


def ceil_to(value: exp.Expression, step: int) -> exp.Expression:
    """`value` rounded up to a multiple of `step` (integers): the end of the tile (k*step, (k+1)*step] holding it."""
    return floor_to(exp.Add(this=exp.paren(value), expression=exp.Literal.number(step - 1)), step)
