"""Training-set definitions and feature services (`datasets/*.yml`, `services.yml`), as written; references are
resolved by `skewless.core.features.FeatureIndex`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skewless.core.errors import CompileError, Location, ProjectError, did_you_mean
from skewless.core.features import FeatureIndex
from skewless.core.yamlfile import MarkedDict, expect_mapping, load_yaml

SPINE_KINDS = ("source", "model", "file", "sql", "table")


@dataclass(frozen=True)
class FeatureService:
    name: str
    features: tuple[str, ...]
    description: str | None
    location: Location
    features_location: Location


@dataclass(frozen=True)
class Spine:
    kind: str  # source | model | file | sql | table
    value: str
    timestamp: str
    columns: tuple[str, ...] | None  # None: every column of the spine


@dataclass(frozen=True)
class Dataset:
    name: str
    spine: Spine
    features: tuple[str, ...]
    as_known: bool
    description: str | None
    location: Location
    features_location: Location


@dataclass
class DatasetCatalog:
    datasets: dict[str, Dataset]
    services: dict[str, FeatureService]

    def service_references(self) -> dict[str, tuple[str, ...]]:
        """Each feature service's references, as written (resolved by the project's FeatureIndex)."""
        return {name: service.features for name, service in self.services.items()}

    def resolve(self, index: FeatureIndex, owner: Dataset | FeatureService) -> list[str]:
        """A dataset's or service's features, resolved; a bad reference is located at its `features:` list."""
        try:
            return index.resolve([f"service:{owner.name}"] if isinstance(owner, FeatureService) else owner.features)
        except CompileError as error:
            if error.location is None:
                error.location = owner.features_location
            raise

    def check(self, index: FeatureIndex) -> None:
        """Every reference of every service and dataset names something: `compile` says so before a run does."""
        for owner in [*self.services.values(), *self.datasets.values()]:
            self.resolve(index, owner)

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise ProjectError(
                f"no dataset named {name!r}",
                hint=did_you_mean(name, self.datasets) or "datasets are declared in datasets/*.yml",
            )
        return self.datasets[name]


def load_catalog(root: Path, paths: list[str]) -> DatasetCatalog:
    catalog = DatasetCatalog({}, {})
    files = [p for folder in paths for p in sorted((root / folder).rglob("*.yml")) if (root / folder).is_dir()]
    files.append(root / "services.yml")
    for path in files:
        if not path.is_file():
            continue
        data = expect_mapping(load_yaml(path), Location(path, 1, 1), path.name)
        _check_keys(data, {"feature_services", "datasets"}, path.name)
        for raw in _entries(data, "feature_services"):
            entry = expect_mapping(raw, data.location("feature_services"), "a feature service")
            _check_keys(entry, {"name", "features", "description"}, "a feature service")
            service = FeatureService(
                name=_name(entry, "feature service"), features=_names(entry, "features"),
                description=_text(entry, "description"), location=entry.location("name"),
                features_location=entry.location("features"),
            )
            _unique(catalog.services, service.name, entry)
            catalog.services[service.name] = service
        for raw in _entries(data, "datasets"):
            entry = expect_mapping(raw, data.location("datasets"), "a dataset")
            _check_keys(entry, {"name", "spine", "features", "as_known", "description"}, "a dataset")
            dataset = Dataset(
                name=_name(entry, "dataset"), spine=_spine(entry), features=_names(entry, "features"),
                as_known=_boolean(entry, "as_known", False), description=_text(entry, "description"),
                location=entry.location("name"), features_location=entry.location("features"),
            )
            _unique(catalog.datasets, dataset.name, entry)
            catalog.datasets[dataset.name] = dataset
    return catalog


def _check_keys(entry: MarkedDict, allowed: set[str], what: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ProjectError(f"unknown key {key!r} in {what}", location=entry.location(key),
                               hint=did_you_mean(key, allowed) or f"allowed: {', '.join(sorted(allowed))}")


def _boolean(entry: MarkedDict, key: str, default: bool) -> bool:
    """A YAML boolean: `true`/`false`, never a string ("false" is not false)."""
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise ProjectError(f"{key!r} must be true or false, not {value!r}", location=entry.location(key),
                           hint=f"write {key}: true or {key}: false, without quotes")
    return value


def _name(entry: MarkedDict, what: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ProjectError(f"a {what} needs a 'name' (letters, digits, underscores)", location=entry.location())
    return name


def _text(entry: MarkedDict, key: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ProjectError(f"{key!r} must be text", location=entry.location(key))
    return value


def _entries(data: MarkedDict, key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ProjectError(f"{key!r} must be a list", location=data.location(key),
                           hint=f"write each entry as a list item: {key}: [{{name: ...}}]")
    return value


def _names(entry: MarkedDict, key: str) -> tuple[str, ...]:
    value = entry.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{key!r} must be a non-empty list of names", location=entry.location(key))
    return tuple(value)


def _unique(existing: dict[str, Any], name: str, entry: MarkedDict) -> None:
    if name in existing:
        raise ProjectError(f"{name!r} is declared twice", location=entry.location("name"))


def _spine(entry: MarkedDict) -> Spine:
    spine = expect_mapping(entry.get("spine"), entry.location("spine"), "spine")
    _check_keys(spine, {*SPINE_KINDS, "timestamp", "columns"}, "a spine")
    kinds = [k for k in SPINE_KINDS if k in spine]
    if len(kinds) != 1:
        raise ProjectError(
            "a spine needs exactly one of: " + ", ".join(SPINE_KINDS), location=spine.location(),
            hint="e.g. spine: {source: shop.transactions, timestamp: event_ts, columns: [txn_id, user_id, label]}",
        )
    timestamp = spine.get("timestamp")
    if not isinstance(timestamp, str):
        raise ProjectError("a spine needs 'timestamp': the column holding each row's time", location=spine.location())
    value = spine[kinds[0]]
    if not isinstance(value, str) or not value:
        raise ProjectError(f"a spine's {kinds[0]!r} must be text", location=spine.location(kinds[0]))
    columns = _names(spine, "columns") if "columns" in spine else None
    return Spine(kinds[0], value, timestamp, columns)
