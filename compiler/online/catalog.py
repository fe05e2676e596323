"""What serving needs to know, built once: online models with their schema versions, on-demand features compiled
into callables, feature services. Built from a compiled project (the library) or from target/manifest.json (the
feature server, which never compiles); both give the same catalog. The project side builds it in
skewless.project.online_view; nothing here imports the compiler or Jinja.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from skewless.core.durations import parse_duration
from skewless.core.errors import SkewlessError, did_you_mean
from skewless.core.features import FeatureIndex, FeatureInfo, UnknownFeature
from skewless.core.windowagg import WindowAgg
from skewless.ondemand.evaluator import Unsupported
from skewless.ondemand.model import OnDemandFeature, OnlineExpression, feature_from_json

from . import format as fmt


@dataclass(frozen=True)
class OnlineModel:
    """What the writer and the reader need to know of one online model."""

    name: str
    entity: str
    join_keys: tuple[str, ...]
    timestamp: str
    created_timestamp: str | None
    features: tuple[str, ...]
    ttl: timedelta | None
    version: str
    relation: exp.Table
    delay: timedelta | None = None  # a row is servable from event time + delay (the writer waits for it)
    window: WindowAgg | None = None  # window_agg(): served from tiles merged at read time (online/tiles.py)
    stream: str | None = None  # the stream that keeps its tiles current (`skewless stream`)

    @property
    def field(self) -> bytes:
        return fmt.field_name(self.name, self.version)

    @property
    def tile_prefix(self) -> bytes:
        """What every tile field of a window_agg model starts with."""
        return self.field + b"~"


@dataclass
class ServingCatalog:
    project: str
    models: dict[str, OnlineModel]  # online models by name
    on_demand: dict[str, OnDemandFeature]
    offline_features: dict[str, str]  # every stored feature -> its model (to explain what is not online)
    services: dict[str, list[str]] = field(default_factory=dict)  # feature service -> feature names
    entities: dict[str, list[str]] = field(default_factory=dict)  # entity -> join keys
    key_types: dict[str, dict[str, str | None]] = field(default_factory=dict)  # entity -> join key -> SQL type
    streams: dict[str, dict[str, str | None]] = field(default_factory=dict)  # stream -> its source's column types
    by_feature: dict[str, OnlineModel] = field(init=False)
    evaluators: dict[str, OnlineExpression] = field(init=False)
    index: FeatureIndex = field(init=False)

    def __post_init__(self) -> None:
        self.by_feature = {f: m for m in self.models.values() for f in m.features}
        self.evaluators = {name: feature.evaluator() for name, feature in self.on_demand.items()}
        features = {f: FeatureInfo(f, model, None) for f, model in self.offline_features.items()}
        features.update({f: FeatureInfo(f, d.model, None, on_demand=True) for f, d in self.on_demand.items()})
        self.index = FeatureIndex(features, self.services)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "ServingCatalog":
        """Raises SkewlessError for a manifest that lacks what serving needs (one written by an older skewless)."""
        if not isinstance(manifest, Mapping) or "feature_services" not in manifest or "metadata" not in manifest:
            raise SkewlessError("the manifest lacks what serving needs (written by an older skewless?)",
                                hint="run `skewless compile` (or `skewless run`) to write it again")
        try:
            return cls._from_manifest(manifest)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, SqlglotError, Unsupported) as error:
            # a value of the wrong form anywhere in the file (edited, cut short, another version's): the reading
            # above trusts the manifest's form, and what it raises for a damaged one is told, never a traceback
            raise SkewlessError(f"the manifest cannot be read: {type(error).__name__}: {error}",
                                hint="run `skewless compile` to write it again") from None

    @classmethod
    def _from_manifest(cls, manifest: Mapping[str, Any]) -> "ServingCatalog":
        metadata = manifest["metadata"]
        dialect = metadata["dialect"]
        models: dict[str, OnlineModel] = {}
        offline: dict[str, str] = {}
        for node in manifest["nodes"].values():
            config = node["config"]
            if config.get("kind") == "on_demand":
                continue
            for feature in node["features"]:
                offline[feature] = node["name"]
            online = node.get("online")
            if online is None:
                continue
            models[node["name"]] = OnlineModel(
                name=node["name"], entity=config["entity"], join_keys=tuple(online["join_keys"]),
                timestamp=online["timestamp"], created_timestamp=online["created_timestamp"],
                features=tuple(node["features"]), ttl=parse_duration(config["ttl"]) if config["ttl"] else None,
                version=online["schema_version"], relation=exp.to_table(node["relation"], dialect=dialect),
                delay=parse_duration(config["delay"]) if config.get("delay") else None,
                window=WindowAgg.from_json(node["window_agg"]) if node.get("window_agg") else None,
                stream=config.get("stream"),
            )
        on_demand = {
            name: feature_from_json(name, {**entry["on_demand"], "model": entry["model"], "type": entry["type"]},
                                    dialect)
            for name, entry in manifest["features"].items() if entry.get("on_demand")
        }
        services = {name: list(entry["features"]) for name, entry in manifest.get("feature_services", {}).items()}
        entities = {name: [k["name"] for k in entry["join_keys"]] for name, entry in manifest["entities"].items()}
        key_types = {name: {k["name"]: k.get("type") for k in entry["join_keys"]}
                     for name, entry in manifest["entities"].items()}
        streams = {
            node["config"]["stream"]: dict(manifest["sources"][node["depends_on"]["sources"][0]]["columns"])
            for node in manifest["nodes"].values() if node["config"].get("stream")
        }
        return cls(metadata["project"], models, on_demand, offline, services, entities, key_types, streams)

    # -- lookups -----------------------------------------------------------------------------------------

    def resolve(self, references: list[str]) -> list[str]:
        """Feature names for names, `service:NAME` references and `model:*`, in order, without repeats."""
        return self.index.resolve(references)

    def check(self, feature: str) -> None:
        """A clear error for a feature that cannot be served."""
        if feature in self.by_feature or feature in self.on_demand:
            return
        if feature in self.offline_features:
            raise SkewlessError(
                f"feature {feature!r} is not served online: model {self.offline_features[feature]!r} has "
                "online=false", hint="set online=true in its config and run again",
            )
        raise UnknownFeature(
            f"unknown feature {feature!r}",
            hint=did_you_mean(feature, [*self.by_feature, *self.on_demand]) or "`skewless ls` lists the features",
        )

    def catalog(self) -> list[dict[str, Any]]:
        """Every servable feature, for listings (GET /features)."""
        rows: list[dict[str, Any]] = []
        for model in self.models.values():
            for feature in model.features:
                rows.append({"name": feature, "model": model.name, "entity": model.entity,
                             "join_keys": list(model.join_keys),
                             "ttl": None if model.ttl is None else int(model.ttl.total_seconds()), "on_demand": False})
        for name, feature in self.on_demand.items():
            rows.append({"name": name, "model": feature.model, "type": str(feature.type), "on_demand": True,
                         "inputs": list(feature.inputs), "request_fields": {k: str(v) for k, v in
                                                                            feature.request.items()},
                         "expression": feature.sql})
        return rows
