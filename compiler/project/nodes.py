"""The compiled project's nodes: what each model is, what it depends on, what it outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from skewless.core.sqlbuild import first_per_group, greatest_first, quoted_column, row_number

from .modelconfig import ModelConfig

if TYPE_CHECKING:
    from skewless.core.windowagg import WindowAgg
    from skewless.ondemand.model import OnDemandModel

CURRENT = "__skewless_current"


class Prepare(Enum):
    """How a build prepares a feature table so that point-in-time joins skip their own dedup."""

    DEDUP = "dedup"  # one row per (join keys, event time): the greatest created timestamp, then values, wins
    FLAG = "flag"  # every version kept (as-known joins need corrected ones), the winner flagged in CURRENT


@dataclass
class Column:
    name: str
    type: str | None = None
    description: str | None = None


@dataclass
class ModelNode:
    """One model after compilation: the SELECT with relations resolved, in the target dialect's tree."""

    name: str
    path: Path
    rel_path: str
    raw_sql: str
    config: ModelConfig
    refs: list[str]
    sources: list[tuple[str, str]]
    query: exp.Query
    incremental_query: exp.Query | None
    columns: dict[str, Column]
    columns_known: bool
    features: list[str]
    relation: exp.Table | None
    description: str | None = None
    join_keys: tuple[str, ...] = ()  # the entity's join keys (empty for a model without an entity)
    body: exp.Query | None = None  # the SELECT before ephemeral parents are inlined (what a child inlines)
    prepare: Prepare | None = None
    on_demand: "OnDemandModel | None" = None  # kind='on_demand': computed per request, never stored
    # window_agg(): the relation holds the events; the features are windows over them at each instant asked
    window: "WindowAgg | None" = None
    feature_docs: dict[str, str | None] = field(default_factory=dict)  # a window feature's description

    def feature_column(self, feature: str) -> Column:
        """A feature's name, type and description (a window feature is no column of the relation)."""
        if self.window is not None and self.config.entity is not None:
            for generated in self.window.features(self.config.entity):
                if generated.name == feature:
                    return Column(generated.name, generated.type, self.feature_docs.get(feature))
        return self.columns[feature]


    @property
    def builds(self) -> bool:
        """`run` creates something in the warehouse for it (not ephemeral, not on-demand)."""
        return self.on_demand is None and self.config.materialized != "ephemeral"

    @property
    def unique_per_key_ts(self) -> bool:
        """The stored table holds one row per (join keys, event time): the point-in-time join skips dedup."""
        return self.prepare is Prepare.DEDUP

    @property
    def current_flag(self) -> str | None:
        """The column flagging, per (join keys, event time), the version a point-in-time join uses."""
        return CURRENT if self.prepare is Prepare.FLAG else None

    def build_query(self, incremental: bool = False) -> exp.Query:
        """What a build stores: the model's rows, prepared as `prepare` says (built only when run needs it)."""
        query = self.incremental_query if incremental and self.incremental_query is not None else self.query
        if self.prepare is None:
            return query
        config = self.config
        assert config.timestamp is not None
        keys = [*self.join_keys, config.timestamp]
        order = ([config.created_timestamp] if config.created_timestamp else []) + list(self.features)
        if self.prepare is Prepare.DEDUP:
            prepared = first_per_group(query.subquery("model"), keys, order, list(self.columns))
        else:
            rank = row_number([quoted_column(k) for k in keys], greatest_first(order))
            flag = exp.alias_(exp.EQ(this=rank, expression=exp.Literal.number(1)), CURRENT, quoted=True)
            prepared = exp.select(*[quoted_column(c) for c in self.columns], flag).from_(query.subquery("model"))
        return prepared if incremental else prepared.order_by(*[quoted_column(k) for k in keys])

    @property
    def unique_id(self) -> str:
        return f"model.{self.name}"

    @property
    def tags(self) -> tuple[str, ...]:
        return self.config.tags

    @property
    def materialized(self) -> str:
        return self.config.materialized

    def config_value(self, key: str) -> Any:
        return getattr(self.config, key, None)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Join keys then timestamps: the columns that are not features."""
        return self.join_keys + tuple(
            c for c in (self.config.timestamp, self.config.created_timestamp) if c
        )
