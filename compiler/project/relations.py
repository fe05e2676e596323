"""Replace rendered placeholders with real relations in the parsed tree, and inline ephemeral models as CTEs.

Working on the tree (not the text) keeps quoting right and lets one model's CTEs sit in front of another's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from .rendering import PLACEHOLDER_PREFIX, RelationRef

EPHEMERAL_PREFIX = "__skewless_cte__"


@dataclass(frozen=True)
class Resolved:
    """What a placeholder becomes: a physical table, or an ephemeral model's CTE name."""

    table: exp.Table
    ephemeral: str | None = None


def substitute(
    query: exp.Query,
    relations: Mapping[str, RelationRef],
    resolve: Callable[[RelationRef], Resolved],
) -> tuple[exp.Query, list[str]]:
    """Resolve placeholders in place (the tree is freshly parsed and ours); also return the ephemerals read."""
    ephemerals: list[str] = []
    resolved: dict[str, Resolved] = {}
    for key, ref in relations.items():
        resolved[key] = resolve(ref)
    for table in list(query.find_all(exp.Table)):
        if table.db or not table.name.startswith(PLACEHOLDER_PREFIX):
            continue
        target = resolved.get(table.name)
        if target is None:
            continue
        for arg in ("this", "db", "catalog"):
            value = target.table.args.get(arg)
            table.set(arg, value.copy() if value is not None else None)
        if target.ephemeral and target.ephemeral not in ephemerals:
            ephemerals.append(target.ephemeral)
    for column in list(query.find_all(exp.Column)):
        target = resolved.get(column.table) if column.table else None
        if target is not None:
            column.set("table", exp.to_identifier(target.table.name, quoted=True))
    return query, ephemerals


def with_ctes(query: exp.Query, ctes: list[tuple[str, exp.Query]]) -> exp.Query:
    """Put `ctes` in front of any CTEs the query already has (they may read them)."""
    if not ctes:
        return query
    query = query.copy()
    existing = query.args.get("with_")
    expressions = [
        exp.CTE(this=body.copy(), alias=exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
        for name, body in ctes
    ]
    if existing is not None:
        expressions.extend(existing.expressions)
        recursive = existing.args.get("recursive")
    else:
        recursive = None
    query.set("with_", exp.With(expressions=expressions, recursive=recursive))
    return query
