"""skewless: a SQL-first feature store. Features are SQL; training and serving read the same definitions.

Public API: `FeatureStore` (run, inspect, and later read features) and `Project` (load and compile).
Imports are lazy so that `skewless --help` and `skewless compile` start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["FeatureStore", "Project", "SkewlessError", "__version__"]

if TYPE_CHECKING:
    from .errors import SkewlessError
    from .project import Project
    from .store import FeatureStore


def __getattr__(name: str) -> Any:
    if name == "FeatureStore":
        from .store import FeatureStore

        return FeatureStore
    if name == "Project":
        from .project import Project

        return Project
    if name == "SkewlessError":
        from .errors import SkewlessError

        return SkewlessError
    raise AttributeError(f"module 'skewless' has no attribute {name!r}")
