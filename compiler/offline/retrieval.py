"""Training sets: the point-in-time query over a spine and features, wrapped in a lazy RetrievalJob."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from skewless.core.engines import engine_for_dialect
from skewless.core.errors import AdapterError, CompileError, SkewlessError
from skewless.project.compile import CompiledProject

from . import pit
from .spines import SpineInput
from .windowed import WindowSource

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from skewless.adapters.base import WarehouseAdapter
    from skewless.ondemand.model import OnDemandFeature


def feature_sources(compiled: CompiledProject, features: Sequence[str]
                    ) -> list["pit.FeatureSource | WindowSource"]:
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
        if node.window is not None:
            assert node.config.entity is not None and node.config.timestamp is not None
            generated = {f.name: f for f in node.window.features(node.config.entity)}
            sources.append(WindowSource(
                relation=node.relation, join_keys=node.join_keys, timestamp=node.config.timestamp,
                spec=node.window, features=tuple(generated[n] for n in names),
                created_timestamp=node.config.created_timestamp, delay=node.config.delay,
            ))
            continue
        sources.append(pit.FeatureSource(
            relation=node.relation,
            join_keys=node.join_keys,
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
        spine=pit.spine_query(spine.source, spine.columns, spine.time_column or spine.timestamp,
                              row_number=spine.row_id, dialect=dialect or compiled.dialect),
        spine_columns=spine.columns,
        sources=tuple(sources),
        as_known=as_known,
    )
    select = pit.build(query, dialect or compiled.dialect, ordered=ordered)
    projections = {p.alias_or_name: p for p in select.expressions}
    values = {name: p.this if isinstance(p, exp.Alias) else p for name, p in projections.items()}
    final = [projections[c] for c in spine.columns]
    in_query = engine_for_dialect(dialect or compiled.dialect).on_demand_in_query
    for feature in features:
        if feature not in derived:
            final.append(projections[feature])
        elif in_query:  # computed in the final projection from the joined inputs and the spine's fields
            final.append(exp.alias_(derived[feature].offline(values, values), feature, quoted=True))
    if not in_query:  # the inputs go out under hidden names; finishing_step computes the features from them
        needed = dict.fromkeys(n for d in derived.values() for n in [*d.inputs, *d.request])
        final.extend(exp.alias_(values[n].copy(), HIDDEN + n, quoted=True) for n in needed)
    select.set("expressions", final)
    return select


HIDDEN = "__skewless_input_"


def finishing_step(compiled: CompiledProject, spine_columns: Sequence[str], features: Sequence[str],
                   dialect: str) -> exp.Select | None:
    """DuckDB's SELECT over a training query's result (table `result`) that computes its on-demand features from
    the hidden inputs, for an engine that leaves them to it (engine table: on_demand_in_query); None otherwise.
    The engine's SQL never evaluates them, so they have the online evaluator's semantics on every engine."""
    derived = on_demand_features(compiled, features)
    if not derived or engine_for_dialect(dialect).on_demand_in_query:
        return None
    hidden = {n: exp.column(HIDDEN + n, quoted=True) for d in derived.values() for n in [*d.inputs, *d.request]}
    columns: list[exp.Expression] = [exp.column(c, quoted=True) for c in spine_columns]
    for feature in features:
        if feature in derived:
            columns.append(exp.alias_(derived[feature].offline(hidden, hidden), feature, quoted=True))
        else:
            columns.append(exp.column(feature, quoted=True))
    return exp.select(*columns).from_(exp.to_identifier("result", quoted=True))


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

    @functools.cached_property
    def _finish(self) -> exp.Select | None:
        return finishing_step(self._compiled, self._spine.columns, self.features, self._adapter.dialect)

    def to_arrow(self) -> "pa.Table":
        try:
            table = self._adapter.fetch_arrow(self.query, log=False)
        except AdapterError as error:
            raise self._unbuilt(error) from None
        finally:
            self.close()
        if self._finish is None:
            return table
        from skewless.adapters.local import query_arrow

        return query_arrow(table, self._finish)

    def write_table(self, relation: exp.Table) -> int | None:
        """Build the training set as a warehouse table (replacing an older one only when it succeeds)."""
        if self._finish is None:
            try:
                return self._adapter.replace_table(relation, self.query).rows
            except AdapterError as error:
                raise self._unbuilt(error) from None
            finally:
                self.close()
        name = f"skewless_dataset_{relation.name}"
        source = self._adapter.register_arrow(name, self.to_arrow())
        try:
            return self._adapter.replace_table(relation, exp.select("*").from_(source)).rows
        finally:
            self._adapter.unregister_arrow(name)

    def _unbuilt(self, error: AdapterError) -> AdapterError:
        """A failed training set over models not built yet (the usual cause of a missing table) says which, and
        the run that builds them; any other failure is the warehouse's error. Looked up only after a failure."""
        by_feature = self._compiled.features()
        models = dict.fromkeys(by_feature[f].name for f in self.features if f in by_feature)
        spine = self._spine.source
        models.update(dict.fromkeys(node.name for node in self._compiled.nodes.values()  # a model as the spine
                                    if isinstance(spine, exp.Table) and node.relation == spine))
        try:
            missing = [name for name in models if (relation := self._compiled.nodes[name].relation) is not None
                       and self._adapter.relation_kind(relation) is None]
        except SkewlessError:
            return error  # the warehouse cannot even be asked: its first error says more
        if not missing:
            return error
        models_text = ", ".join(map(repr, missing))
        selector = " ".join("+" + name for name in missing)  # with what they read
        return AdapterError(f"the training set reads model(s) not built in the warehouse yet: {models_text}",
                            hint=f"build them: `skewless run -s '{selector}'` (or `skewless run`)")

    def to_pandas(self) -> "pd.DataFrame":
        return self.to_arrow().to_pandas()

    def close(self) -> None:
        if self._spine.cleanup is not None:
            self._spine.cleanup()
            self._spine.cleanup = None

    def __repr__(self) -> str:
        return f"RetrievalJob({len(self.features)} features, as_known={self.as_known})"
