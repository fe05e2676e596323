"""Warehouse adapters. Each engine's module is imported only when a target of that type is opened; which module
is the engine table's business (skewless/core/engines.py)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skewless.core.engines import ENGINES, engine_for_target
from skewless.core.errors import ProjectError

if TYPE_CHECKING:
    from skewless.project.config import ProjectConfig

    from .base import WarehouseAdapter


def adapter_class(target_type: str) -> "type[WarehouseAdapter]":
    """The adapter class of a target type, imported on first use."""
    engine = engine_for_target(target_type)
    if engine.adapter is None:
        raise ProjectError(
            f"no warehouse adapter for target type {target_type!r} yet: it is compile-only",
            hint="`skewless compile` and `skewless show` work; run on a target of type "
                 + " or ".join(name for name, row in ENGINES.items() if row.adapter is not None),
        )
    module_name, class_name = engine.adapter.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:  # the engine's driver is an optional dependency
        raise ProjectError(f"the {target_type} adapter needs the Python package {error.name!r}",
                           hint=f"pip install 'skewless[{target_type}]'") from None
    return getattr(module, class_name)


def open_adapter(config: "ProjectConfig") -> "WarehouseAdapter":
    """Connect to the project's target warehouse."""
    return adapter_class(config.target.type)(config)
