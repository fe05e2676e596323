"""The compiled project's nodes: what each model is, what it depends on, what it outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from .modelconfig import ModelConfig
from .sqlbuild import first_per_group, greatest_first, quoted_column, row_number

if TYPE_CHECKING:
    from .on_demand import OnDemandModel

CURRENT = "__skewless_current"


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
    meta: dict[str, Any] = field(default_factory=dict)
    prepare: str | None = None  # "dedup" or "flag": how the build prepares the table for training sets
    on_demand: "OnDemandModel | None" = None  # kind='on_demand': computed per request, never stored

    @property
    def builds(self) -> bool:
        """`run` creates something in the warehouse for it (not ephemeral, not on-demand)."""
        return self.on_demand is None and self.config.materialized != "ephemeral"

    @property
    def unique_per_key_ts(self) -> bool:
        """The stored table holds one row per (join keys, event time): the point-in-time join skips dedup."""
        return self.prepare == "dedup"

    @property
    def current_flag(self) -> str | None:
        """The column flagging, per (join keys, event time), the version a point-in-time join uses."""
        return CURRENT if self.prepare == "flag" else None

    def build_query(self, incremental: bool = False) -> exp.Query:
        """What a build stores: the model's rows, prepared as `prepare` says (built only when run needs it)."""
        query = self.incremental_query if incremental and self.incremental_query is not None else self.query
        if self.prepare is None:
            return query
        config = self.config
        assert config.timestamp is not None
        keys = [*self.meta["join_keys"], config.timestamp]
        order = ([config.created_timestamp] if config.created_timestamp else []) + list(self.features)
        if self.prepare == "dedup":
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
        return tuple(self.meta.get("join_keys", ())) + tuple(
            c for c in (self.config.timestamp, self.config.created_timestamp) if c
        )
