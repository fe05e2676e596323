"""skewless: a SQL-first feature store. Features are SQL; training and serving read the same definitions.

Public API: `FeatureStore` (compile, run, training sets, online reads, the feature server), `Project` (load and
compile) and the errors a caller may catch. Imports are lazy so that `skewless --help` and `skewless compile`
start fast, and so that the feature server never loads the compiler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "FeatureStore": "skewless.feature_store",
    "Project": "skewless.project.compile",
    "CompiledProject": "skewless.project.compile",
    "SkewlessError": "skewless.core.errors",
    "ProjectError": "skewless.core.errors",
    "CompileError": "skewless.core.errors",
    "SelectionError": "skewless.core.errors",
    "AdapterError": "skewless.core.errors",
    "UnknownFeature": "skewless.core.features",
    "RetrievalJob": "skewless.offline.retrieval",
    "FeatureServer": "skewless.serving.server",
    "Limits": "skewless.serving.server",
}

__all__ = [
    "AdapterError", "CompileError", "CompiledProject", "FeatureServer", "FeatureStore", "Limits", "Project",
    "ProjectError", "RetrievalJob", "SelectionError", "SkewlessError", "UnknownFeature", "__version__",
]

if TYPE_CHECKING:
    from skewless.core.errors import AdapterError, CompileError, ProjectError, SelectionError, SkewlessError
    from skewless.core.features import UnknownFeature
    from skewless.feature_store import FeatureStore
    from skewless.offline.retrieval import RetrievalJob
    from skewless.project.compile import CompiledProject, Project
    from skewless.serving.server import FeatureServer, Limits


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'skewless' has no attribute {name!r}")
