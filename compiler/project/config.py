"""The project's YAML files turned into typed, validated objects.

`skewless_project.yml`, `profiles.yml`, `entities.yml` and `sources.yml`; every error points at file:line:col.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skewless.core.engines import ONLINE_STORES, TARGET_TYPES, engine_for_target
from skewless.core.errors import Location, ProjectError, SkewlessError, did_you_mean
from skewless.core.sourcefile import is_utf8
from skewless.core.yamlfile import MarkedDict, expect_mapping, expect_text, load_yaml, yaml_kind

PROJECT_FILE = "skewless_project.yml"
PROFILES_FILE = "profiles.yml"

_PROJECT_KEYS = {
    "name", "version", "profile", "model-paths", "macro-paths", "dataset-paths", "target-path",
    "vars", "online_store", "defaults", "description", "dialect", "naming",
}
NAMING_SEVERITIES = ("error", "warn", "off")


@dataclass(frozen=True)
class Entity:
    """A thing features describe, identified by its join key column(s)."""

    name: str
    join_keys: tuple[str, ...]
    key_types: Mapping[str, str | None]
    description: str | None
    location: Location


@dataclass(frozen=True)
class SourceTable:
    """A raw table in the warehouse, or a seed file that `run` loads into one."""

    source: str
    name: str
    schema: str
    identifier: str
    file: Path | None
    timestamp: str | None
    created_timestamp: str | None
    columns: Mapping[str, str | None]
    description: str | None
    location: Location

    @property
    def unique_id(self) -> str:
        return f"source.{self.source}.{self.name}"


@dataclass(frozen=True)
class Target:
    """One output of a profile: where and how to connect."""

    profile: str
    name: str
    type: str
    settings: Mapping[str, Any]

    @property
    def schema(self) -> str:
        return str(self.settings.get("schema", "main"))


@dataclass
class ProjectConfig:
    """Everything in the project's YAML files, validated."""

    root: Path
    name: str
    version: str
    model_paths: list[str]
    macro_paths: list[str]
    dataset_paths: list[str]
    target_path: Path
    vars: dict[str, Any]
    online_store: dict[str, Any]
    defaults: dict[str, Any]
    target: Target
    dialect: str = "duckdb"  # the SQL dialect models are written in; compiled to the target's
    naming: str = "warn"  # the feature naming convention (entity__feature__window): error, warn or off
    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[tuple[str, str], SourceTable] = field(default_factory=dict)


def env_var(name: str, default: Any = None) -> Any:
    """Jinja's `env_var('X', 'default')`: a missing variable with no default is a clear error."""
    if name in os.environ:
        value = os.environ[name]
        if not is_utf8(value):  # bytes that are not UTF-8, kept by Python as lone surrogates
            raise ProjectError(f"environment variable {name!r} is not UTF-8 text",
                               hint=f"set {name} to UTF-8 text (its value is not shown: it may be a secret)")
        return value
    if default is not None:
        return default
    raise ProjectError(
        f"environment variable {name!r} is not set",
        hint=f"export {name}=... or give a default: env_var('{name}', 'value')",
    )


def _render_values(value: Any, path: Path, where: Location) -> Any:
    """`{{ env_var() }}` rendered inside each string value of parsed YAML (dbt's order: parse, then render), so
    the YAML's own quoting rules hold and a rendered value can never change the file's structure."""
    if isinstance(value, MarkedDict):
        for key in list(value):
            value[key] = _render_values(value[key], path, value.location(key))
        return value
    if isinstance(value, list):
        return [_render_values(item, path, where) for item in value]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        from .rendering import render_string  # Jinja is only imported when a YAML file uses it

        try:
            return render_string(value, path, {"env_var": env_var})
        except SkewlessError as error:
            error.location = where
            raise
    return value


def _load(path: Path) -> MarkedDict:
    data = load_yaml(path)
    return expect_mapping(_render_values(data, path, Location(path, 1, 1)), Location(path, 1, 1), path.name)


def _check_keys(data: MarkedDict, allowed: set[str], what: str) -> None:
    for key in data:
        if key not in allowed:
            raise ProjectError(
                f"unknown key {key!r} in {what}",
                location=data.location(key),
                hint=did_you_mean(key, allowed) or f"allowed keys: {', '.join(sorted(allowed))}",
            )


def _data_type(data: MarkedDict, key: str, what: str, dialect: str) -> str | None:
    """A column type: text that the warehouse's SQL dialect knows as a type."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    kind = expect_text(data, key, what)
    if kind is None:
        return None
    try:
        exp.DataType.build(kind, dialect=dialect, udt=False)
    except (SqlglotError, ValueError):  # not parsed, or not even tokenized (an unclosed quote)
        raise ProjectError(f"{what}: {kind!r} is not a SQL type", location=data.location(key),
                           hint="e.g. bigint, varchar, double, date, timestamp") from None
    return kind


def _naming(data: MarkedDict) -> str:
    if data.get("naming") is False:  # YAML reads a bare `off` as false
        return "off"
    value = expect_text(data, "naming", PROJECT_FILE, "warn")
    if value not in NAMING_SEVERITIES:
        raise ProjectError(f"naming must be one of {', '.join(NAMING_SEVERITIES)}, not {value!r}",
                           location=data.location("naming"),
                           hint="error fails compile on a misnamed feature, warn prints it, off skips the check")
    return str(value)


def _models_dialect(data: MarkedDict) -> str:
    from .modelconfig import sql_dialect

    try:
        return sql_dialect(expect_text(data, "dialect", PROJECT_FILE, "duckdb"))
    except ValueError as error:
        raise ProjectError(str(error), location=data.location("dialect"),
                           hint="name the dialect your models are written in (compiled to the target's)") from None


def _inside(root: Path, relative: str, data: MarkedDict, key: str) -> str:
    """A project folder named in skewless_project.yml: inside the project, so no other file is read as a model."""
    if not (root / relative).resolve().is_relative_to(root):
        raise ProjectError(f"{key!r} names {relative!r}, which is outside the project folder",
                           location=data.location(key), hint="name a folder inside the project, e.g. models")
    return relative


def _string_list(data: MarkedDict, key: str, default: list[str]) -> list[str]:
    value = data.get(key, default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{key!r} must be a list of strings", location=data.location(key))
    return value


def load_project_config(
    root: Path | str,
    target: str | None = None,
    vars_override: Mapping[str, Any] | None = None,
) -> ProjectConfig:
    """Read and validate a project's YAML files (not its models)."""
    root = Path(root).resolve()
    project_file = root / PROJECT_FILE
    if not project_file.is_file():
        raise ProjectError(
            f"no {PROJECT_FILE} in {root}",
            hint="run from a project folder, pass --project-dir, or create one with `skewless init DIR`",
        )
    data = _load(project_file)
    _check_keys(data, _PROJECT_KEYS, PROJECT_FILE)
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ProjectError(
            "the project needs a 'name' made of letters, digits and underscores",
            location=data.location("name"),
        )
    variables = dict(expect_mapping(data.get("vars", MarkedDict()), data.location("vars"), "vars"))
    variables.update(vars_override or {})
    online = data.get("online_store") or {"type": "redis"}
    online_data = expect_mapping(online, data.location("online_store"), "online_store")
    store_type = expect_text(online_data, "type", "online_store", "redis")
    if store_type not in ONLINE_STORES:
        raise ProjectError(f"unknown online_store type {store_type!r}", location=online_data.location("type"),
                           hint=did_you_mean(str(store_type), ONLINE_STORES)
                           or f"use one of: {', '.join(ONLINE_STORES)}")
    online = dict(online_data)
    defaults = data.get("defaults", MarkedDict())
    defaults = expect_mapping(defaults, data.location("defaults"), "defaults")
    config = ProjectConfig(
        root=root,
        name=name,
        version=str(data.get("version", "0")),
        model_paths=[_inside(root, p, data, "model-paths") for p in _string_list(data, "model-paths", ["models"])],
        macro_paths=[_inside(root, p, data, "macro-paths") for p in _string_list(data, "macro-paths", ["macros"])],
        dataset_paths=[_inside(root, p, data, "dataset-paths")
                       for p in _string_list(data, "dataset-paths", ["datasets"])],
        target_path=root / str(expect_text(data, "target-path", PROJECT_FILE, "target")),
        vars=variables,
        online_store=online,
        defaults=defaults,
        target=load_target(root, str(expect_text(data, "profile", PROJECT_FILE, name)), target,
                           data.location("profile")),
        dialect=_models_dialect(data),
        naming=_naming(data),
    )
    if config.target_path.exists() and not config.target_path.is_dir():
        raise ProjectError(f"target-path {config.target_path} is a file, not a folder", location=data.location(
            "target-path"), hint="name a folder (skewless creates it), e.g. target-path: target")
    engine_for_target(config.target.type)  # a target type skewless knows, before anything reads it
    # Declared column types are written in the models' dialect, as the models are.
    config.entities = load_entities(root / "entities.yml", config.dialect)
    config.sources = load_sources(root / "sources.yml", root, config.dialect)
    return config


def profiles_search_path(root: Path) -> list[Path]:
    """Where profiles.yml is looked for: the project first, then SKEWLESS_PROFILES_DIR or ~/.skewless."""
    home = Path(os.environ.get("SKEWLESS_PROFILES_DIR", Path.home() / ".skewless"))
    return [root / PROFILES_FILE, home / PROFILES_FILE]


def load_target(root: Path, profile: str, target: str | None, where: Location) -> Target:
    """Find the profile in the first profiles.yml that has it and pick the target."""
    searched = profiles_search_path(root)
    for path in searched:
        if not path.is_file():
            continue
        profiles = _load(path)
        if profile not in profiles:
            continue
        entry = expect_mapping(profiles[profile], profiles.location(profile), f"profile {profile!r}")
        outputs = expect_mapping(entry.get("outputs"), entry.location("outputs"), "outputs")
        chosen = (target or os.environ.get("SKEWLESS_TARGET") or expect_text(entry, "target", f"profile {profile!r}")
                  or "dev")
        if chosen not in outputs:
            raise ProjectError(
                f"target {chosen!r} is not in profile {profile!r}",
                location=outputs.location(),
                hint=did_you_mean(str(chosen), outputs) or f"targets here: {', '.join(outputs)}",
            )
        settings = expect_mapping(outputs[chosen], outputs.location(chosen), f"target {chosen!r}")
        kind = settings.get("type")
        if not isinstance(kind, str):
            raise ProjectError(
                f"target {chosen!r} needs a 'type' (duckdb, postgres, spark)", location=settings.location()
            )
        if kind not in TARGET_TYPES:
            raise ProjectError(f"unknown target type {kind!r}", location=settings.location("type"),
                               hint=did_you_mean(kind, TARGET_TYPES) or f"use one of {', '.join(TARGET_TYPES)}")
        return Target(profile=profile, name=str(chosen), type=kind, settings=dict(settings))
    raise ProjectError(
        f"profile {profile!r} not found",
        location=where,
        hint="add it to one of: " + ", ".join(str(p) for p in searched),
    )


def _key_list(entry: MarkedDict, dialect: str) -> tuple[tuple[str, ...], dict[str, str | None]]:
    raw = entry.get("join_keys", entry.get("join_key"))
    if isinstance(raw, (str, MarkedDict)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ProjectError(
            f"entity {entry.get('name')!r} needs join_keys: a list of column names",
            location=entry.location(),
            hint="e.g. join_keys: [user_id] or join_keys: [{name: user_id, type: bigint}]",
        )
    keys: list[str] = []
    types: dict[str, str | None] = {}
    for item in raw:
        if isinstance(item, MarkedDict):
            _check_keys(item, {"name", "type", "description"}, "a join key")
            key, kind = item.get("name"), _data_type(item, "type", "a join key", dialect)
        else:
            key, kind = item, None
        if not isinstance(key, str) or not key:
            raise ProjectError("a join key needs a column name", location=entry.location("join_keys"))
        keys.append(key)
        types[key] = kind
    return tuple(keys), types


def load_entities(path: Path, dialect: str = "duckdb") -> dict[str, Entity]:
    """entities.yml: `entities: [{name, join_keys, description}]`; a missing file means no entities."""
    if not path.is_file():
        return {}
    data = _load(path)
    entries = data.get("entities", [])
    if not isinstance(entries, list):
        raise ProjectError("'entities' must be a list", location=data.location("entities"))
    entities: dict[str, Entity] = {}
    for raw in entries:
        entry = expect_mapping(raw, data.location("entities"), "an entity")
        _check_keys(entry, {"name", "join_keys", "join_key", "description"}, "an entity")
        name = entry.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise ProjectError("an entity needs a 'name' (an identifier)", location=entry.location())
        if name in entities:
            raise ProjectError(f"entity {name!r} is declared twice", location=entry.location("name"))
        keys, types = _key_list(entry, dialect)
        entities[name] = Entity(name, keys, types, expect_text(entry, "description", f"entity {name!r}"),
                                entry.location("name"))
    return entities


_SOURCE_KEYS = {"name", "schema", "description", "tables"}
_TABLE_KEYS = {"name", "identifier", "file", "timestamp", "created_timestamp", "columns", "description"}


def load_sources(path: Path, root: Path, dialect: str = "duckdb") -> dict[tuple[str, str], SourceTable]:
    """sources.yml: `sources: [{name, schema, tables: [{name, file, timestamp, columns}]}]`."""
    if not path.is_file():
        return {}
    data = _load(path)
    entries = data.get("sources", [])
    if not isinstance(entries, list):
        raise ProjectError("'sources' must be a list", location=data.location("sources"))
    tables: dict[tuple[str, str], SourceTable] = {}
    for raw in entries:
        source = expect_mapping(raw, data.location("sources"), "a source")
        _check_keys(source, _SOURCE_KEYS, "a source")
        source_name = source.get("name")
        if not isinstance(source_name, str):
            raise ProjectError("a source needs a 'name'", location=source.location())
        schema = str(expect_text(source, "schema", f"source {source_name!r}", source_name))
        expect_text(source, "description", f"source {source_name!r}")
        for raw_table in source.get("tables") or []:
            table = expect_mapping(raw_table, source.location("tables"), "a source table")
            _check_keys(table, _TABLE_KEYS, f"source {source_name!r} table")
            table_name = table.get("name")
            if not isinstance(table_name, str):
                raise ProjectError("a source table needs a 'name'", location=table.location())
            if (source_name, table_name) in tables:
                raise ProjectError(
                    f"source table {source_name}.{table_name} is declared twice",
                    location=table.location("name"),
                )
            what = f"source table {source_name}.{table_name}"
            file = expect_text(table, "file", what)
            file_path = None
            if file is not None:
                file_path = (root / str(file)).resolve()
                if not file_path.is_file():
                    raise ProjectError(
                        f"seed file {file} does not exist",
                        location=table.location("file"),
                        hint="paths are relative to the project folder",
                    )
            tables[(source_name, table_name)] = SourceTable(
                source=source_name,
                name=table_name,
                schema=schema,
                identifier=str(expect_text(table, "identifier", what, table_name)),
                file=file_path,
                timestamp=expect_text(table, "timestamp", what),
                created_timestamp=expect_text(table, "created_timestamp", what),
                columns=_columns(table, what, dialect),
                description=expect_text(table, "description", what),
                location=table.location("name"),
            )
    return tables


def _columns(table: MarkedDict, what: str, dialect: str) -> dict[str, str | None]:
    """`columns:` as a list of names or {name, type, description} mappings."""
    columns: dict[str, str | None] = {}
    items = table.get("columns") or []
    if not isinstance(items, list):
        raise ProjectError(f"{what}: 'columns' must be a list", location=table.location("columns"),
                           hint="e.g. columns: [user_id, {name: amount, type: double}]")
    for item in items:
        if isinstance(item, MarkedDict):
            _check_keys(item, {"name", "type", "description"}, f"a column of {what}")
            name = expect_text(item, "name", f"a column of {what}")
            if not name:
                raise ProjectError(f"a column of {what} needs a 'name'", location=item.location())
            columns[name] = _data_type(item, "type", f"column {name!r} of {what}", dialect)
        elif isinstance(item, str):
            columns[item] = None
        else:
            raise ProjectError(f"{what}: a column is a name or {{name, type}}, got {yaml_kind(item)}",
                               location=table.location("columns"))
    return columns
