"""The compiled project's nodes: what each model is, what it depends on, what it outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from .modelconfig import ModelConfig


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
    build_query: exp.Query | None = None  # what a full build stores, when it differs from `query`
    incremental_build_query: exp.Query | None = None

    @property
    def unique_per_key_ts(self) -> bool:
        """The stored table holds one row per (join keys, event time): the point-in-time join skips dedup."""
        return self.build_query is not None

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
