"""`skewless docs generate`: the catalog as a static site (target/docs/index.html) that opens from the file system.

One HTML page holds the data (JSON in a script tag) and a small script that draws it: a search over features by
name, entity, tag, owner and description as you type; a page per model (SQL templated and compiled, columns,
config, tests and their last results, freshness, the model graph drawn) and per feature (its column-level
lineage down to source columns, tests, datasets and feature services that use it, distribution plots from the
last `skewless monitor`). Every value is inserted as text, never as HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot.errors import SqlglotError

from skewless.core.durations import format_duration
from skewless.core.errors import SkewlessError

from .lineage import ColumnLineage, feature_lineage

if TYPE_CHECKING:
    from .compile import CompiledProject

TEMPLATE = Path(__file__).with_name("docs_site.html")
DATA_MARK = "/*SKEWLESS_DATA*/null"


def catalog_data(compiled: "CompiledProject", *, services: Mapping[str, Sequence[str]],
                 datasets: Mapping[str, Sequence[str]], run_results: Mapping[str, Any] | None,
                 monitor: Mapping[str, Any] | None) -> dict[str, Any]:
    """Everything the site shows, as plain JSON: models, features, sources, the graph, test results."""
    tests = _test_results(run_results)
    health = {f["feature"]: f for f in (monitor or {}).get("features", [])}
    declared = {t.name: t for t in compiled.tests.data}
    models, features, sources = [], [], {}
    for name in compiled.order:
        node = compiled.nodes[name]
        model_tests = [_test(t.name, t.kind, t.column, tests) for t in compiled.tests.data if t.model == name]
        model_tests += [_test(t.name, "unit", None, tests) for t in compiled.tests.unit if t.model == name]
        models.append({
            "name": name, "path": node.rel_path, "description": node.description,
            "materialized": "on_demand" if node.on_demand is not None else node.config.materialized,
            "entity": node.config.entity, "timestamp": node.config.timestamp,
            "ttl": _duration(node.config.ttl), "delay": _duration(node.config.delay), "online": node.config.online,
            "owner": node.config.owner, "tags": list(node.config.tags),
            "sql": node.raw_sql, "compiled": compiled.sql(name) if node.on_demand is None else None,
            "dialect": compiled.dialect,
            "columns": [{"name": c.name, "type": c.type, "description": c.description} for c in node.columns.values()],
            "features": list(node.features),
            "parents": sorted(compiled.graph.parents.get(name, ())),
            "children": sorted(n for n in compiled.order if name in compiled.graph.parents.get(n, ())),
            "tests": model_tests,
            "freshness": next((h for f in node.features if (h := health.get(f))), None),
        })
        for feature in node.features:
            column = node.feature_column(feature)
            try:
                lineage: ColumnLineage | None = feature_lineage(compiled, feature)
            except (SkewlessError, SqlglotError):  # a lineage sqlglot cannot follow: the page shows none
                lineage = None
            for source in lineage.sources() if lineage else []:
                sources.setdefault(f"{source.relation}.{source.column}", []).append(
                    {"feature": feature, "role": source.role})
            features.append({
                "name": feature, "model": name, "entity": node.config.entity, "type": column.type,
                "description": column.description, "ttl": _duration(node.config.ttl), "online": node.config.online,
                "owner": node.config.owner, "tags": list(node.config.tags),
                "lineage": lineage.to_json() if lineage else None,
                "tests": [_test(t.name, t.kind, t.column, tests) for t in declared.values()
                          if t.model == name and t.column in (feature, None)],
                "services": sorted(s for s, names in services.items() if feature in names),
                "datasets": sorted(d for d, names in datasets.items() if feature in names),
                "monitor": health.get(feature),
            })
    return {"project": compiled.config.name, "dialect": compiled.dialect,
            "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "models": models, "features": features,
            "sources": [{"name": k, "features": v} for k, v in sorted(sources.items())],
            "monitored_at": (monitor or {}).get("now")}


def write_site(data: Mapping[str, Any], folder: Path) -> Path:
    """target/docs/index.html with the data inside (a `</script>` in any value cannot end the script)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, default=str).replace("</", "<\\/").replace("<!--", "<\\!--")
    page = TEMPLATE.read_text(encoding="utf-8").replace(DATA_MARK, text)
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _test_results(run_results: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not run_results:
        return {}
    rows = list(run_results.get("tests") or []) + [r for r in run_results.get("results") or []
                                                   if str(r.get("unique_id", "")).startswith("test.")]
    return {str(r.get("name")): r for r in rows}


def _test(name: str, kind: str, column: str | None, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    last = results.get(name)
    return {"name": name, "kind": kind, "column": column, "status": last.get("status") if last else None,
            "failures": last.get("failures") if last else None, "message": last.get("message") if last else None}


def _duration(value: Any) -> str | None:
    return format_duration(value) if value else None
