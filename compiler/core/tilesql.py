"""The partial aggregates of window tiles in SQL: one GROUP BY per (keys, tile) that the training-set query and
the online writer both use, so that a tile means the same words everywhere (their names and order: the
`WindowAgg.words` of core/windowagg.py; their byte layout online: online/tiles.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from .sqlbuild import ceil_to, epoch_micros, quoted_column
from .windowagg import WindowAgg

US = "__skewless_us"  # an event's time in microseconds since the epoch
TILE = "__skewless_tile"  # the end of its tile (µs)
NEWEST = "__skewless_newest_"  # per (keys, tile): the newest time a column has a value


def _when(condition: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition, true=value)])


def tile_events(relation: exp.Table, keys: Sequence[str], timestamp: str, spec: WindowAgg, level: int,
                where: Sequence[exp.Expression] = ()) -> exp.Select:
    """The events with their time (US) and tile end (TILE) at `level`, keys and the aggregated columns."""
    us = epoch_micros(quoted_column(timestamp))
    query = exp.select(*[quoted_column(k) for k in keys], exp.alias_(us, US, quoted=True),
                       exp.alias_(ceil_to(us.copy(), level), TILE, quoted=True),
                       *[quoted_column(c) for c, _ in spec.input_types]).from_(relation.copy())
    return query.where(exp.and_(*where)) if where else query


def tile_partials(relation: exp.Table, keys: Sequence[str], timestamp: str, spec: WindowAgg, level: int,
                  where: Sequence[exp.Expression] = ()) -> exp.Select:
    """Per (keys, tile of `level`): keys, TILE, then the words, each named and typed as `spec.words()`. The last
    value of a column is the one at its newest time in the tile; a tie on time goes to the greatest value."""
    partition = [*[quoted_column(k) for k in keys], quoted_column(TILE)]
    newest = [exp.alias_(exp.Window(this=exp.Max(this=_when(quoted_column(c).is_(exp.null()).not_(),
                                                             quoted_column(US))),
                                    partition_by=[p.copy() for p in partition]), NEWEST + c, quoted=True)
              for c in spec.value_columns]
    ranked = exp.select("*", *newest).from_(tile_events(relation, keys, timestamp, spec, level, where)
                                            .subquery("events"))
    words: list[exp.Expression] = []
    for name, kind in spec.words():
        part, _, column = name.partition(":")
        value = quoted_column(column) if column else None
        if part == "n":
            word: exp.Expression = exp.Count(this=exp.Star()) if value is None else exp.Count(this=value)
        elif part == "sum":
            word = exp.Sum(this=value)
        elif part == "min":
            word = exp.Min(this=value)
        elif part == "max":
            word = exp.Max(this=value)
        elif part == "lts":
            word = exp.Max(this=quoted_column(NEWEST + column))
        else:  # last
            assert value is not None
            word = exp.Max(this=_when(exp.EQ(this=quoted_column(US), expression=quoted_column(NEWEST + column)),
                                      value))
        words.append(exp.alias_(exp.cast(word, kind), name, quoted=True))
    return (exp.select(*[p.copy() for p in partition], *words).from_(ranked.subquery("ranked"))
            .group_by(*[p.copy() for p in partition]))


def tile_distinct_values(relation: exp.Table, keys: Sequence[str], timestamp: str, spec: WindowAgg, level: int,
                         column: str, where: Sequence[exp.Expression] = ()) -> exp.Select:
    """Per (keys, tile of `level`), the distinct non-NULL values of `column`: keys, TILE, `column`."""
    return (exp.select(*[quoted_column(k) for k in keys], quoted_column(TILE), quoted_column(column)).distinct()
            .from_(tile_events(relation, keys, timestamp, spec, level, where).subquery("events"))
            .where(quoted_column(column).is_(exp.null()).not_()))
