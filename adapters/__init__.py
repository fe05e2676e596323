"""Warehouse adapters. Each engine's module is imported only when a target of that type is opened."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skewless.errors import ProjectError, did_you_mean

if TYPE_CHECKING:
    from skewless.config import ProjectConfig

    from .base import WarehouseAdapter

_ADAPTERS = {"duckdb": ("skewless.adapters.duckdb_adapter", "DuckDBAdapter")}


def open_adapter(config: "ProjectConfig") -> "WarehouseAdapter":
    """Connect to the project's target warehouse."""
    kind = config.target.type
    if kind not in _ADAPTERS:
        raise ProjectError(
            f"no warehouse adapter for target type {kind!r} yet",
            hint=did_you_mean(kind, _ADAPTERS) or f"available: {', '.join(_ADAPTERS)}",
        )
    module_name, class_name = _ADAPTERS[kind]
    adapter_class = getattr(importlib.import_module(module_name), class_name)
    return adapter_class(config)
