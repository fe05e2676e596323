"""A model's config: the keys users may set, their types, defaults and validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from skewless.core.durations import format_duration, parse_duration
from skewless.core.errors import CompileError, Location, did_you_mean
from skewless.core.yamlfile import MarkedDict

MATERIALIZATIONS = ("feature_table", "incremental", "view", "ephemeral")
KINDS = ("feature", "on_demand")

KNOWN_KEYS = {
    "entity", "timestamp", "created_timestamp", "materialized", "ttl", "online", "owner", "tags",
    "description", "enabled", "kind", "unique_key", "lookback", "schema", "alias", "meta", "delay",
    "request_fields", "inputs", "dialect", "stream",
}


@dataclass(frozen=True)
class ModelConfig:
    """Validated config of one model; `None` means not set."""

    entity: str | None = None
    timestamp: str | None = None
    created_timestamp: str | None = None
    materialized: str = "feature_table"
    ttl: timedelta | None = None
    online: bool = False
    owner: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    enabled: bool = True
    kind: str = "feature"
    unique_key: tuple[str, ...] | None = None
    lookback: timedelta | None = None
    schema: str | None = None
    alias: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    delay: timedelta | None = None  # how long after its event time a value reaches serving
    request_fields: Mapping[str, str] = field(default_factory=dict)  # on-demand: name -> type, sent per request
    inputs: Mapping[str, str | None] | None = None  # on-demand: features read (type None: the feature's own)
    dialect: str | None = None  # the SQL dialect this model is written in (None: the project's)
    stream: str | None = None  # window_agg() models: the event stream `skewless stream` keeps them current from

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "timestamp": self.timestamp,
            "created_timestamp": self.created_timestamp,
            "materialized": self.materialized,
            "ttl": format_duration(self.ttl) if self.ttl is not None else None,
            "online": self.online,
            "owner": self.owner,
            "tags": list(self.tags),
            "description": self.description,
            "enabled": self.enabled,
            "kind": self.kind,
            "unique_key": list(self.unique_key) if self.unique_key else None,
            "lookback": format_duration(self.lookback) if self.lookback is not None else None,
            "schema": self.schema,
            "alias": self.alias,
            "meta": dict(self.meta),
            "delay": format_duration(self.delay) if self.delay is not None else None,
            "request_fields": dict(self.request_fields),
            "inputs": dict(self.inputs) if self.inputs is not None else None,
            "stream": self.stream,
        }


def _string_tuple(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"{key} must be a string or a list of strings, got {value!r}")


def _optional_str(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{key} must be a string, got {value!r}")


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value in choices:
        return value
    hint = did_you_mean(str(value), choices)
    raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}" + (f"; {hint}" if hint else ""))


def _type_map(value: Any, key: str) -> dict[str, str]:
    if isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise ValueError(f"{key} must map names to SQL types, e.g. {{'amount': 'double'}}, got {value!r}")


def _inputs(value: Any, key: str) -> dict[str, str | None] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _type_map(value, key)  # type: ignore[return-value]
    return dict.fromkeys(_string_tuple(value, key))


_PARSERS = {
    "entity": _optional_str,
    "timestamp": _optional_str,
    "created_timestamp": _optional_str,
    "materialized": lambda v, k: _choice(v, k, MATERIALIZATIONS),
    "ttl": lambda v, k: None if v is None else _positive_ttl(parse_duration(v)),
    "lookback": lambda v, k: None if v is None else parse_duration(v),
    "delay": lambda v, k: None if v is None else parse_duration(v),
    "online": _bool,
    "enabled": _bool,
    "owner": _optional_str,
    "description": _optional_str,
    "tags": _string_tuple,
    "unique_key": lambda v, k: None if v is None else _string_tuple(v, k),
    "kind": lambda v, k: _choice(v, k, KINDS),
    "schema": _optional_str,
    "alias": _optional_str,
    "meta": lambda v, k: dict(v) if isinstance(v, Mapping) else _fail(f"{k} must be a mapping"),
    "request_fields": _type_map,
    "inputs": _inputs,
    "dialect": lambda v, k: None if v is None else sql_dialect(v),
    "stream": _optional_str,
}


def sql_dialect(value: Any) -> str:
    """A sqlglot dialect name, as models are written in (duckdb, postgres, spark, snowflake, ...)."""
    from sqlglot.dialects.dialect import Dialect

    if not isinstance(value, str):
        raise ValueError(f"dialect must be a name such as 'duckdb', got {value!r}")
    try:
        Dialect.get_or_raise(value)
    except ValueError:
        raise ValueError(f"unknown SQL dialect {value!r} (e.g. duckdb, postgres, spark, snowflake, bigquery)") from None
    return value


def _positive_ttl(ttl: timedelta) -> timedelta:
    if ttl <= timedelta(0):
        raise ValueError("a ttl must be longer than 0s: a ttl of 0 would serve only a row stamped exactly at the "
                         "instant asked (and Feast reads 0 as 'no ttl'); leave ttl out to keep values for ever")
    return ttl


def _fail(message: str) -> Any:
    raise ValueError(message)


def build_config(layers: list[tuple[Mapping[str, Any], Location]]) -> ModelConfig:
    """Merge config layers (project defaults, YAML, then the model's own config()) and validate each value.

    Each layer carries the place it came from, so an error points at the right file and line.
    """
    values: dict[str, Any] = {}
    for layer, layer_where in layers:
        for key, value in layer.items():
            where = layer.location(key) if isinstance(layer, MarkedDict) else layer_where
            if key not in KNOWN_KEYS:
                raise CompileError(
                    f"unknown config key {key!r}",
                    location=where,
                    hint=did_you_mean(key, KNOWN_KEYS) or f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
                )
            try:
                parsed = _PARSERS[key](value, key)
            except ValueError as error:
                raise CompileError(f"bad config value: {error}", location=where) from None
            if key == "tags":
                parsed = tuple(dict.fromkeys(values.get("tags", ()) + parsed))
            values[key] = parsed
    return ModelConfig(**values)
