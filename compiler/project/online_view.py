"""What a compiled project tells the online side: its online models with their schema versions, and the
serving catalog. The online package reads these types and never imports the compiler."""

from __future__ import annotations

import json
from collections.abc import Mapping

from skewless.online import format as fmt
from skewless.online.catalog import OnlineModel, ServingCatalog

from .compile import CompiledProject
from .state import Fingerprinter, schema_definition


def online_models(compiled: CompiledProject, fingerprinter: Fingerprinter | None = None) -> dict[str, OnlineModel]:
    """Every model with online=true, with its schema version: a hash of what its values mean (state.py's
    fingerprint), so that it changes exactly when a change breaks the stored values."""
    fingerprinter = fingerprinter or Fingerprinter.of(compiled)
    models = {}
    for name in compiled.order:
        node = compiled.nodes[name]
        if not node.config.online or node.relation is None or node.config.entity is None:
            continue
        if node.window is not None:
            # Tiles mean the aggregations of the model's events: its spec, and which events (the relations it
            # reads). Not the SQL of any one dialect: a stream job on a Spark target and a reader on DuckDB share
            # them, and every run recomputes the tiles from the warehouse anyway.
            definition = json.dumps({"window_agg": node.window.to_json(), "refs": node.refs,
                                     "sources": [list(s) for s in node.sources]}, sort_keys=True)
        else:
            definition = schema_definition(compiled, name, fingerprinter)
        assert node.config.timestamp is not None
        models[name] = OnlineModel(
            name=name,
            entity=node.config.entity,
            join_keys=node.join_keys,
            timestamp=node.config.timestamp,
            created_timestamp=node.config.created_timestamp,
            features=tuple(node.features),
            ttl=node.config.ttl,
            version=fmt.schema_version(name, node.join_keys, node.config.timestamp, node.features, definition),
            relation=node.relation,
            delay=node.config.delay,
            window=node.window,
            stream=node.config.stream,
        )
    return models


def serving_catalog(compiled: CompiledProject, services: Mapping[str, list[str]] | None = None) -> ServingCatalog:
    """The catalog the library serves from; the feature server builds the same one from manifest.json."""
    on_demand = {f.name: f for node in compiled.nodes.values() if node.on_demand is not None
                 for f in node.on_demand.features}
    offline = {f: node.name for node in compiled.nodes.values() if node.on_demand is None for f in node.features}
    entities = {e.name: list(e.join_keys) for e in compiled.config.entities.values()}
    streams = {}
    for node in compiled.nodes.values():
        if node.config.stream is not None and node.sources:
            streams[node.config.stream] = dict(compiled.config.sources[node.sources[0]].columns)
    return ServingCatalog(compiled.config.name, online_models(compiled), on_demand, offline, dict(services or {}),
                          entities, entity_key_types(compiled), streams)


def entity_key_types(compiled: CompiledProject) -> dict[str, dict[str, str | None]]:
    """Each entity's join key types: as declared in entities.yml, else as the entity's models produce them."""
    types: dict[str, dict[str, str | None]] = {}
    for entity in compiled.config.entities.values():
        found: dict[str, str | None] = {k: entity.key_types.get(k) for k in entity.join_keys}
        for node in compiled.nodes.values():
            if node.config.entity != entity.name or node.on_demand is not None:
                continue
            for key in entity.join_keys:
                column = node.columns.get(key)
                if found[key] is None and column is not None and column.type:
                    found[key] = column.type
        types[entity.name] = found
    return types
