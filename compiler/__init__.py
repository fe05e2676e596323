"""skewless: a SQL-first feature store. Features are SQL; training and serving read the same definitions.

Public API: `FeatureStore` (run, inspect, and later read features) and `Project` (load and compile).
Imports are lazy so that `skewless --help` and `skewless compile` start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["FeatureStore", "Project", "SkewlessError", "__version__"]

if TYPE_CHECKING:
    from skewless.core.errors import SkewlessError
    from skewless.feature_store import FeatureStore
    from skewless.project.compile import Project


def __getattr__(name: str) -> Any:
    if name == "FeatureStore":
        from skewless.feature_store import FeatureStore

        return FeatureStore
    if name == "Project":
        from skewless.project.compile import Project

        return Project
    if name == "SkewlessError":
        from skewless.core.errors import SkewlessError

        return SkewlessError
    raise AttributeError(f"module 'skewless' has no attribute {name!r}")
