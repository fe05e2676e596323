"""What compile and run leave under target/: compiled SQL, executed SQL, manifest.json, run_results.json.

docs/manifest.md documents the manifest's format; bump MANIFEST_VERSION when it changes incompatibly.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlglot import exp

from skewless import __version__
from skewless.core.durations import format_duration
from skewless.core.errors import SkewlessError
from skewless.ondemand.model import feature_to_json

from .compile import CompiledProject
from .config import ProjectConfig
from .online_view import entity_key_types, online_models
from .state import manifest_state

MANIFEST_VERSION = 1


def write_text_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sql_text(statements: list[exp.Expression] | list[str], dialect: str) -> str:
    parts = [s if isinstance(s, str) else s.sql(dialect=dialect, pretty=True) for s in statements]
    return ";\n\n".join(parts) + ";\n"


def write_compiled(compiled: CompiledProject, names: list[str] | None = None) -> None:
    """target/compiled/<path>: each model's SELECT in the target dialect (`run` writes target/run)."""
    target = compiled.config.target_path
    made: set[Path] = set()
    for name in names if names is not None else compiled.order:
        node = compiled.nodes[name]
        path = target / "compiled" / node.rel_path
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_text(compiled.sql(name) + "\n", encoding="utf-8")


def write_executed(compiled: CompiledProject, name: str, statements: list[str]) -> None:
    node = compiled.nodes[name]
    write_text_atomic(compiled.config.target_path / "run" / node.rel_path, _sql_text(statements, compiled.dialect))


def manifest(compiled: CompiledProject, services: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Everything the compiler knows, as plain JSON."""
    config = compiled.config
    nodes: dict[str, Any] = {}
    features: dict[str, Any] = {}
    online = online_models(compiled)
    states = manifest_state(compiled)
    key_types = entity_key_types(compiled)
    for name in compiled.order:
        node = compiled.nodes[name]
        nodes[node.unique_id] = {
            "name": node.name,
            "resource_type": "model",
            "path": node.rel_path,
            "relation": node.relation.sql(dialect=compiled.dialect) if node.relation is not None else None,
            "config": node.config.to_json(),
            "description": node.description,
            "depends_on": {
                "models": [f"model.{r}" for r in node.refs],
                "sources": [f"source.{s}.{t}" for s, t in node.sources],
            },
            "columns": {
                c.name: {"name": c.name, "type": c.type, "description": c.description}
                for c in node.columns.values()
            },
            "features": node.features,
            "window_agg": node.window.to_json() if node.window is not None else None,
            "compiled_path": f"compiled/{node.rel_path}",
            "state": states[name],  # what `skewless diff --state` compares (project/state.py)
        }
        if name in online:
            model = online[name]
            nodes[node.unique_id]["online"] = {
                "join_keys": list(model.join_keys), "timestamp": model.timestamp,
                "created_timestamp": model.created_timestamp, "schema_version": model.version,
            }
        on_demand = {f.name: f for f in node.on_demand.features} if node.on_demand is not None else {}
        for feature in node.features:
            column = node.feature_column(feature)
            features[feature] = {
                "name": feature,
                "model": node.unique_id,
                "entity": node.config.entity,
                "type": column.type,
                "description": column.description,
                "ttl": format_duration(node.config.ttl) if node.config.ttl else None,
                "online": node.config.online,
                "owner": node.config.owner,
                "tags": list(node.config.tags),
            }
            if feature in on_demand:
                features[feature]["on_demand"] = feature_to_json(on_demand[feature])
    return {
        "metadata": {
            "manifest_version": MANIFEST_VERSION,
            "skewless_version": __version__,
            "generated_at": datetime.now(timezone.utc).isoformat(),
            "project": config.name,
            "project_version": config.version,
            "target": config.target.name,
            "target_type": config.target.type,
            "dialect": compiled.dialect,
        },
        "entities": {
            e.name: {
                "name": e.name,
                "join_keys": [{"name": k, "type": key_types[e.name][k]} for k in e.join_keys],
                "description": e.description,
            }
            for e in config.entities.values()
        },
        "sources": {
            s.unique_id: {
                "source": s.source,
                "name": s.name,
                "relation": exp.Table(
                    this=exp.to_identifier(s.identifier, quoted=True), db=exp.to_identifier(s.schema, quoted=True)
                ).sql(dialect=compiled.dialect),
                "file": str(s.file.relative_to(config.root)) if s.file and s.file.is_relative_to(config.root)
                else (str(s.file) if s.file else None),
                "timestamp": s.timestamp,
                "created_timestamp": s.created_timestamp,
                "columns": dict(s.columns),
                "description": s.description,
            }
            for s in config.sources.values()
        },
        "nodes": nodes,
        "features": features,
        "feature_services": {name: {"name": name, "features": names} for name, names in (services or {}).items()},
        "parent_map": {f"model.{n}": [f"model.{p}" for p in compiled.graph.parents[n]] for n in compiled.order},
        "child_map": {f"model.{n}": [f"model.{c}" for c in compiled.graph.children.get(n, [])] for n in compiled.order},
    }


def write_manifest(compiled: CompiledProject, services: dict[str, list[str]] | None = None) -> Path:
    path = compiled.config.target_path / "manifest.json"
    write_text_atomic(path, json.dumps(manifest(compiled, services)) + "\n")
    return path


def write_run_results(config: ProjectConfig, results: Mapping[str, Any]) -> Path:
    """target/run_results.json: `results` is RunResults.to_json(), after dbt's layout."""
    path = config.target_path / "run_results.json"
    payload = {
        "metadata": {
            "skewless_version": __version__,
            "generated_at": datetime.now(timezone.utc).isoformat(),
            "target": config.target.name,
        },
        **results,
    }
    write_text_atomic(path, json.dumps(payload) + "\n")
    return path


def write_failed_run(config: ProjectConfig, error: SkewlessError) -> None:
    """A run that stopped before its results (compile error, seed refused, warehouse unreachable) still replaces
    run_results.json, so that no earlier run's success is read as this one's."""
    with contextlib.suppress(OSError):  # an unwritable target/ is reported by the error being raised
        write_run_results(config, {"success": False, "error": str(error), "results": []})
