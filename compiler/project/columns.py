"""Output columns of a query, and their types where a cheap look at the tree tells.

Exact types come from the warehouse after a run; at compile time this reads casts, aggregates, literals and
columns passed through from parents whose types are known, and expands `*` over known parents.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

Columns = dict[str, "str | None"]
Resolver = Callable[[exp.Table], "Columns | None"]


def output_columns(query: exp.Query, resolve: Resolver, dialect: str) -> Columns | None:
    """Name -> type (or None) for each output column; None when a `*` cannot be expanded."""
    return _query_columns(query, resolve, dialect, {})


def _query_columns(
    query: exp.Expression, resolve: Resolver, dialect: str, ctes: dict[str, Columns | None]
) -> Columns | None:
    ctes = dict(ctes)
    with_ = query.args.get("with_")
    if with_ is not None:
        for cte in with_.expressions:
            ctes[cte.alias_or_name] = _query_columns(cte.this, resolve, dialect, ctes)
    if isinstance(query, exp.SetOperation):
        return _query_columns(query.left, resolve, dialect, ctes)
    if isinstance(query, exp.Subquery):
        return _query_columns(query.this, resolve, dialect, ctes)
    if not isinstance(query, exp.Select):
        return None
    scope = _scope(query, resolve, dialect, ctes)
    result: Columns = {}
    for projection in query.expressions:
        star = projection if isinstance(projection, exp.Star) else None
        qualifier = None
        if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            star, qualifier = projection.this, projection.table
        if star is not None:
            expanded = _expand_star(scope, qualifier)
            if expanded is None:
                return None
            excluded = {e.name for e in star.args.get("except_") or star.args.get("except") or []}
            result.update({k: v for k, v in expanded.items() if k not in excluded})
            continue
        name = projection.alias_or_name
        if name:
            result[name] = infer_type(projection, scope, dialect)
    return result


def _scope(
    select: exp.Select, resolve: Resolver, dialect: str, ctes: dict[str, Columns | None]
) -> list[tuple[str, Columns | None]]:
    """(alias, columns) of each relation in FROM and JOINs, in order."""
    sources: list[exp.Expression] = []
    from_ = select.args.get("from_")
    if from_ is not None:
        sources.append(from_.this)
    sources.extend(join.this for join in select.args.get("joins") or [])
    scope = []
    for source in sources:
        if isinstance(source, exp.Table) and not source.db and source.name in ctes:
            columns = ctes[source.name]
        elif isinstance(source, exp.Table):
            columns = resolve(source)
        elif isinstance(source, exp.Subquery):
            columns = _query_columns(source.this, resolve, dialect, ctes)
        else:
            columns = None
        scope.append((source.alias_or_name, columns))
    return scope


def _expand_star(scope: list[tuple[str, Columns | None]], qualifier: str | None) -> Columns | None:
    result: Columns = {}
    for alias, columns in scope:
        if qualifier and alias != qualifier:
            continue
        if columns is None:
            return None
        for name, kind in columns.items():
            result.setdefault(name, kind)
    return result if scope else None


_AGG_TYPES = {exp.Count: "BIGINT", exp.Avg: "DOUBLE", exp.Stddev: "DOUBLE", exp.Variance: "DOUBLE"}


def infer_type(node: exp.Expression, scope: list[tuple[str, Columns | None]], dialect: str) -> str | None:
    """The type of an output expression when the tree tells it cheaply; None otherwise."""
    if isinstance(node, exp.Alias):
        node = node.this
    if isinstance(node, exp.Window):
        node = node.this
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return node.to.sql(dialect=dialect).upper()
    for agg, kind in _AGG_TYPES.items():
        if isinstance(node, agg):
            return kind
    if isinstance(node, (exp.Sum, exp.Max, exp.Min, exp.AnyValue, exp.First, exp.Last)):
        return infer_type(node.this, scope, dialect) if isinstance(node.this, exp.Expression) else None
    if isinstance(node, exp.Boolean) or isinstance(node, (exp.Predicate, exp.Not)):
        return "BOOLEAN"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "VARCHAR"
        return "INTEGER" if node.this.lstrip("-").isdigit() else "DOUBLE"
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        for alias, columns in scope:
            if node.table and node.table != alias:
                continue
            if columns and node.name in columns:
                return columns[node.name]
    return None
