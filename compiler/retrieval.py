"""Training sets: spines, feature references and the point-in-time query, wrapped in a lazy RetrievalJob."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from . import pit
from .errors import CompileError, SkewlessError
from .project import CompiledProject

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from skewless.adapters.base import WarehouseAdapter

    from .on_demand import OnDemandFeature

ROW_ID = "__skewless_row_id"
_names = itertools.count()


@dataclass
class SpineInput:
    """A spine as the warehouse sees it: a relation or query, its columns, its time column."""

    source: exp.Table | exp.Query
    columns: tuple[str, ...]
    timestamp: str
    row_id: str | None = None  # a row-number column the loader added (kept out of the result)
    cleanup: Callable[[], None] | None = None


def arrow_spine(adapter: "WarehouseAdapter", table: "pa.Table", timestamp: str | None) -> SpineInput:
    """Register an Arrow spine with the warehouse; time-zone-aware times become UTC, then naive."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = tuple(table.column_names)
    if ROW_ID in columns:
        raise SkewlessError(f"the spine may not have a column named {ROW_ID}")
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            naive = pc.cast(pc.cast(table.column(index), pa.timestamp(field.type.unit, tz="UTC")),
                            pa.timestamp(field.type.unit))
            table = table.set_column(index, field.name, naive)
    import numpy as np

    table = table.append_column(ROW_ID, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    name = f"__skewless_spine_{next(_names)}"
    relation = adapter.register_arrow(name, table)
    chosen = timestamp or _guess_timestamp(table.schema, columns)
    return SpineInput(relation, columns, chosen, row_id=ROW_ID, cleanup=lambda: adapter.unregister_arrow(name))


def _guess_timestamp(schema: "pa.Schema", columns: Sequence[str]) -> str:
    import pyarrow as pa

    candidates = [
        c for c in columns if pa.types.is_timestamp(schema.field(c).type) or pa.types.is_date(schema.field(c).type)
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise SkewlessError(
        "say which spine column holds each row's time: timestamp='...'"
        + (f" (candidates: {', '.join(candidates)})" if candidates else " (the spine has no timestamp column)")
    )


def parse_spine_query(text: str, dialect: str) -> exp.Query:
    """A spine's SELECT, parsed; anything else is a clear error."""
    try:
        parsed = sqlglot.parse_one(text, read=dialect)
    except sqlglot.errors.ParseError as error:
        raise SkewlessError(f"the spine query does not parse: {error.errors[0]['description']}") from None
    except sqlglot.errors.TokenError as error:
        raise SkewlessError(f"the spine query does not parse: {error}", hint="look for an unclosed quote") from None
    if not isinstance(parsed, exp.Query):
        raise SkewlessError(f"a spine query must be a SELECT, not {parsed.key.upper()}")
    return parsed


def sql_spine(adapter: "WarehouseAdapter", text: str, dialect: str, timestamp: str | None) -> SpineInput:
    """A spine given as a table name or a SELECT in the target dialect."""
    stripped = text.strip()
    source: exp.Table | exp.Query
    if " " in stripped or "\n" in stripped:
        source = parse_spine_query(stripped, dialect)
    else:
        source = exp.to_table(stripped, dialect=dialect)
    probe = exp.select("*").from_(source.subquery("probe") if isinstance(source, exp.Query) else source.copy())
    schema = adapter.fetch_arrow(probe.limit(0), log=False).schema
    columns = tuple(schema.names)
    return SpineInput(source, columns, timestamp or _guess_timestamp(schema, columns))


def feature_sources(compiled: CompiledProject, features: Sequence[str]) -> list[pit.FeatureSource]:
    """One source per model, in the order their features were first asked for."""
    by_name = compiled.features()
    grouped: dict[str, list[str]] = {}
    for feature in features:
        grouped.setdefault(by_name[feature].name, []).append(feature)
    sources = []
    for model, names in grouped.items():
        node = compiled.nodes[model]
        if node.relation is None:
            raise CompileError(f"model {model!r} is ephemeral: its features exist only inside other models",
                               hint="materialize it as a feature_table or view to use it in training sets")
        sources.append(pit.FeatureSource(
            relation=node.relation,
            join_keys=tuple(node.meta["join_keys"]),
            timestamp=node.config.timestamp or "",
            features=tuple(names),
            created_timestamp=node.config.created_timestamp,
            ttl=node.config.ttl,
            delay=node.config.delay,
            unique_per_key_ts=node.unique_per_key_ts,
            current_flag=node.current_flag,
            tie_break=tuple(node.features),
        ))
    return sources


def training_query(compiled: CompiledProject, spine: SpineInput, features: Sequence[str], *,
                   as_known: bool = False, dialect: str | None = None, ordered: bool = True) -> exp.Select:
    """Spine columns first, then the features in the order asked, every spine row once, in spine order
    (`ordered=False`: in any order, which saves the engine a sort of the whole result)."""
    if spine.timestamp not in spine.columns:
        raise SkewlessError(f"the spine has no column {spine.timestamp!r}",
                            hint=f"spine columns: {', '.join(spine.columns)}")
    clashes = [f for f in features if f in spine.columns]
    if clashes:
        raise SkewlessError(f"the spine already has columns named {', '.join(clashes)}",
                            hint="rename those spine columns")
    derived = on_demand_features(compiled, features)
    stored = list(dict.fromkeys([f for f in features if f not in derived] +
                                [i for d in derived.values() for i in d.inputs]))
    for feature in derived.values():
        missing = [r for r in feature.request if r not in spine.columns]
        if missing:
            raise SkewlessError(
                f"on-demand feature {feature.name!r} needs request field(s) {', '.join(map(repr, missing))} "
                "as spine columns", hint=f"spine columns: {', '.join(spine.columns)}",
            )
    sources = feature_sources(compiled, stored)
    for source in sources:
        missing = [k for k in source.on_spine if k not in spine.columns]
        if missing:
            raise SkewlessError(
                f"the spine lacks join key {', '.join(repr(m) for m in missing)} for features of "
                f"{source.relation.name!r}", hint=f"spine columns: {', '.join(spine.columns)}",
            )
    query = pit.PitQuery(
        spine=pit.spine_query(spine.source, spine.columns, spine.timestamp, row_number=spine.row_id),
        spine_columns=spine.columns,
        sources=tuple(sources),
        as_known=as_known,
    )
    select = pit.build(query, dialect or compiled.dialect, ordered=ordered)
    projections = {p.alias_or_name: p for p in select.expressions}
    values = {name: p.this if isinstance(p, exp.Alias) else p for name, p in projections.items()}
    final = [projections[c] for c in spine.columns]
    for feature in features:
        if feature in derived:  # computed in the final projection from the joined inputs and the spine's fields
            expression = derived[feature].offline(values, values)
            final.append(exp.alias_(expression, feature, quoted=True))
        else:
            final.append(projections[feature])
    select.set("expressions", final)
    return select


def on_demand_features(compiled: CompiledProject, features: Sequence[str]) -> dict[str, "OnDemandFeature"]:
    """The on-demand features among `features`, by name."""
    every = {f.name: f for node in compiled.nodes.values() if node.on_demand is not None
             for f in node.on_demand.features}
    return {name: every[name] for name in features if name in every}


class RetrievalJob:
    """A training set not yet computed: `to_sql()` shows the query, `to_arrow()`/`to_pandas()` run it."""

    def __init__(self, adapter: "WarehouseAdapter", compiled: CompiledProject, spine: SpineInput,
                 features: Sequence[str], as_known: bool, preserve_order: bool = True) -> None:
        self._adapter = adapter
        self._compiled = compiled
        self._spine = spine
        self.features = list(features)
        self.as_known = as_known
        self.preserve_order = preserve_order
        self.query = training_query(compiled, spine, self.features, as_known=as_known, ordered=preserve_order)

    def to_sql(self, dialect: str | None = None, pretty: bool = True) -> str:
        query = self.query if dialect in (None, self._compiled.dialect) else training_query(
            self._compiled, self._spine, self.features, as_known=self.as_known, dialect=dialect,
            ordered=self.preserve_order)
        return query.sql(dialect=dialect or self._compiled.dialect, pretty=pretty)

    def to_arrow(self) -> "pa.Table":
        try:
            return self._adapter.fetch_arrow(self.query, log=False)
        finally:
            self.close()

    def to_pandas(self) -> "pd.DataFrame":
        return self.to_arrow().to_pandas()

    def close(self) -> None:
        if self._spine.cleanup is not None:
            self._spine.cleanup()
            self._spine.cleanup = None

    def __repr__(self) -> str:
        return f"RetrievalJob({len(self.features)} features, as_known={self.as_known})"


def spine_from(value: Any, adapter: "WarehouseAdapter", dialect: str, timestamp: str | None) -> SpineInput:
    """A pandas DataFrame, a pyarrow Table, or a table name / SELECT in the warehouse."""
    if isinstance(value, str):
        return sql_spine(adapter, value, dialect, timestamp)
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return arrow_spine(adapter, value, timestamp)
    if type(value).__name__ == "DataFrame":
        return arrow_spine(adapter, pa.Table.from_pandas(value, preserve_index=False), timestamp)
    raise SkewlessError(f"a spine is a pandas DataFrame, a pyarrow Table or SQL text, not {type(value).__name__}")
