"""Project: load a project folder and compile its models into sqlglot trees. Knows no database driver."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from skewless.core.durations import format_duration
from skewless.core.engines import engine_for_target
from skewless.core.errors import CompileError, Location, did_you_mean, snippet_at
from skewless.core.features import FeatureIndex, FeatureInfo
from skewless.core.graph import CycleError, Graph
from skewless.core.sourcefile import read_source
from skewless.core.sqlbuild import explicit_zoned_timestamps, interval, quoted_column, relation_table
from skewless.core.windowagg import parse_spec
from skewless.core.windows import numeric_range_frames
from skewless.core.yamlfile import MarkedDict, expect_mapping, expect_text, load_yaml

from .columns import output_columns
from .config import ProjectConfig, env_var, load_project_config
from .data_tests import DataTest, ProjectTests, generic_tests, unit_tests
from .modelconfig import ModelConfig, build_config
from .naming import check_naming
from .nodes import Column, ModelNode, Prepare
from .online_types import online_type_problem
from .parsing import parse_query
from .relations import EPHEMERAL_PREFIX, Resolved, substitute, with_ctes
from .rendering import RelationRef, Renderer, RenderResult, TargetInfo, builtin_macro_dir
from .selection import select


@dataclass
class _ModelFile:
    name: str
    path: Path
    rel_path: str
    text: str


@dataclass
class CompiledProject:
    """Every enabled model compiled, in dependency order."""

    config: ProjectConfig
    dialect: str
    nodes: dict[str, ModelNode]
    graph: Graph
    order: list[str]
    ephemeral_closure: dict[str, list[str]] = field(default_factory=dict)
    by_relation: dict[tuple[str, str], ModelNode] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # located messages about models that compile but mislead
    tests: ProjectTests = field(default_factory=ProjectTests)  # generic, singular and unit tests (data_tests.py)
    monitor: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # per model, its YAML `monitor:` thresholds
    _text: dict[str, str] = field(default_factory=dict, repr=False)

    def selected(self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                 modified: set[str] | None = None) -> list[str]:
        """Selected model names in dependency order (`modified`: for state:modified)."""
        chosen = select(self.nodes, self.graph, include, exclude, modified)
        return [name for name in self.order if name in chosen]

    def node(self, name: str) -> ModelNode:
        if name not in self.nodes:
            raise CompileError(
                f"no model named {name!r}", hint=did_you_mean(name, self.nodes) or "`skewless ls` lists the models"
            )
        return self.nodes[name]

    def sql(self, name: str, dialect: str | None = None, pretty: bool = True) -> str:
        """The model's compiled SELECT in any sqlglot dialect (the target's is generated once and kept)."""
        node = self.node(name)
        if (dialect is None or dialect == self.dialect) and pretty:
            if name not in self._text:
                self._text[name] = node.query.sql(dialect=self.dialect, pretty=True)
            return self._text[name]
        return node.query.sql(dialect=dialect or self.dialect, pretty=pretty)

    def with_observed(self, observed: Mapping[str, Mapping[str, str]]) -> "CompiledProject":
        """A copy whose nodes carry the columns and types a run saw in the warehouse (this one is unchanged).

        A model whose columns were unknown at compile time gets them, and its features, from what was built."""
        if not observed:
            return self
        nodes = dict(self.nodes)
        for name, actual in observed.items():
            node = nodes.get(name)
            if node is None:
                continue
            if node.columns_known:
                columns = {c: replace(col, type=actual.get(c, col.type)) for c, col in node.columns.items()}
                nodes[name] = replace(node, columns=columns)
            else:
                features = [c for c in actual if c not in node.key_columns]
                nodes[name] = replace(node, columns={c: Column(c, kind) for c, kind in actual.items()},
                                      columns_known=True, features=features)
        by_relation = {key: nodes[node.name] for key, node in self.by_relation.items()}
        return replace(self, nodes=nodes, by_relation=by_relation, _text=dict(self._text))

    def features(self) -> dict[str, ModelNode]:
        """Feature name -> the model that computes it (names are unique: the compiler checks)."""
        return {feature: node for node in self.nodes.values() for feature in node.features}

    def feature_index(self, services: Mapping[str, Sequence[str]] | None = None) -> FeatureIndex:
        """The resolver of feature references over this project, with the feature services as written."""
        features = {
            feature: FeatureInfo(feature, node.name, node.config.entity if node.on_demand is None else None,
                                 on_demand=node.on_demand is not None)
            for node in self.nodes.values() for feature in node.features
        }
        return FeatureIndex(features, dict(services or {}))


class Project:
    """A project folder: its configuration, and a compiler for its models."""

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> None:
        self.config = load_project_config(Path(project_dir), target=target, vars_override=vars)
        self.target_name = target  # as asked (None: the profile's default), to open the same project elsewhere
        self.vars = dict(vars or {})
        self.engine = engine_for_target(self.config.target.type)
        self.dialect = self.engine.dialect
        self._sources_by_relation = {(s.schema, s.identifier): s for s in self.config.sources.values()}
        self._sources_by_folded_relation = {(str(s.schema).lower(), str(s.identifier).lower()): s
                                            for s in self.config.sources.values()}

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def target_path(self) -> Path:
        return self.config.target_path

    def compile(self) -> CompiledProject:
        """Render, parse and validate every model; raises the first CompileError found."""
        files = self._discover()
        self._unit_entries: list[tuple[Path, MarkedDict]] = []
        docs = self._model_docs(set(files))
        renderer = Renderer(
            dialect=self.config.dialect,  # macros write the dialect models are written in
            variables=self.config.vars,
            target=TargetInfo(
                self.config.target.name, self.config.target.type, self.config.target.schema,
                self.config.target.profile,
            ),
            model_names=files,
            sources=self.config.sources,
            macro_dirs=[builtin_macro_dir()] + [self.root / p for p in self.config.macro_paths],
            env_var=env_var,
            cache_dir=self.target_path / ".jinja_cache",
            template_dirs=[self.root / p for p in self.config.model_paths],
        )
        rendered: dict[str, RenderResult] = {}
        configs: dict[str, ModelConfig] = {}
        for name, file in files.items():
            result = renderer.render_model(file.path, file.text)
            config = self._config(file, result, docs.get(name))
            if config.enabled:
                rendered[name], configs[name] = result, config
        for name, result in rendered.items():
            for ref in result.refs:
                if ref.parts[0] not in rendered:
                    raise CompileError(
                        f"ref({ref.parts[0]!r}) names a disabled model",
                        location=_where(files[name], ref.line, "ref("),
                        hint="enable that model or remove the ref",
                    )
        graph = Graph({name: [r.parts[0] for r in result.refs] for name, result in rendered.items()})
        try:
            order = graph.order()
        except CycleError as error:
            first = error.cycle[0]
            line = next((r.line for r in rendered[first].refs if r.parts[0] == error.cycle[1]), None)
            raise CompileError(
                "models depend on each other in a cycle: " + " -> ".join(error.cycle),
                location=_where(files[first], line, f"ref('{error.cycle[1]}'"),
                hint="break the cycle: one of these models must not ref the next",
            ) from None
        compiled = CompiledProject(self.config, self.dialect, {}, graph, order)
        on_demand = [name for name in order if configs[name].kind == "on_demand"]
        owners: dict[tuple[str, str], ModelNode] = {}
        for name in order:
            if name in on_demand:
                continue
            node = self._compile_node(files[name], rendered[name], configs[name], compiled, docs.get(name))
            compiled.nodes[name] = node
            table = node.relation or relation_table(EPHEMERAL_PREFIX + name)
            self._check_owner(node, files[name], rendered[name], owners)
            compiled.by_relation[(table.db, table.name)] = node
        self._check_feature_names(compiled)
        if on_demand:
            # on-demand models read features, not tables: they come last, with their input models as parents
            stored = compiled.features()
            for name in on_demand:
                compiled.nodes[name] = self._compile_on_demand(files[name], rendered[name], configs[name],
                                                               compiled, docs.get(name))
            parents = {n: list(graph.parents[n]) for n in order}
            for name in on_demand:
                node = compiled.nodes[name]
                assert node.on_demand is not None
                parents[name] = sorted({stored[i].name for i in node.on_demand.inputs})
                node.refs = parents[name]
            compiled.graph = Graph(parents)
            compiled.order = compiled.graph.order()
            compiled.nodes = {n: compiled.nodes[n] for n in compiled.order}
            self._check_feature_names(compiled)
        compiled.warnings.extend(check_naming(compiled))
        compiled.monitor = {name: doc["monitor"] for name, doc in docs.items()
                            if isinstance(doc.get("monitor"), Mapping)}
        compiled.tests = ProjectTests(
            generic_tests(compiled.nodes, docs, self.dialect) + self._singular_tests(renderer, compiled),
            unit_tests(self._unit_entries, compiled.nodes, set(self.config.sources), self.root))
        return compiled

    # -- discovery ---------------------------------------------------------------------------------

    def _discover(self) -> dict[str, _ModelFile]:
        files: dict[str, _ModelFile] = {}
        for model_path in self.config.model_paths:
            folder = self.root / model_path
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*.sql")):
                name = path.stem
                rel_path = path.relative_to(self.root).as_posix()
                if name in files:
                    raise CompileError(
                        f"two models are named {name!r}: {files[name].rel_path} and {rel_path}",
                        location=Location(path, 1, 1),
                        hint="model names are file names and must be unique; rename one file",
                    )
                files[name] = _ModelFile(name, path, rel_path, read_source(path))
        return files

    def _model_docs(self, names: set[str]) -> dict[str, MarkedDict]:
        """`models:` entries of the YAML files beside the models: descriptions, columns, config."""
        docs: dict[str, MarkedDict] = {}
        for model_path in self.config.model_paths:
            folder = self.root / model_path
            if not folder.is_dir():
                continue
            for path in sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")]):
                data = expect_mapping(load_yaml(path), Location(path, 1, 1), path.name)
                for raw in data.get("models") or []:
                    entry = expect_mapping(raw, data.location("models"), "a model entry")
                    name = expect_text(entry, "name", "a model entry")
                    if name not in names:
                        raise CompileError(
                            f"{path.name} documents a model {name!r} that has no .sql file",
                            location=entry.location("name"),
                            hint=did_you_mean(str(name), names) or "remove the entry or add the model",
                        )
                    unknown = set(entry) - {"name", "description", "config", "columns", "meta", "tests", "data_tests",
                                            "monitor"}
                    if unknown:
                        key = sorted(unknown)[0]
                        raise CompileError(
                            f"unknown key {key!r} in a model entry",
                            location=entry.location(key),
                            hint=did_you_mean(key, ["description", "config", "columns", "tests"]) or
                            "allowed: name, description, config, columns, tests, meta",
                        )
                    docs[name] = entry
                for raw in data.get("unit_tests") or []:
                    self._unit_entries.append((path, expect_mapping(raw, data.location("unit_tests"), "a unit test")))
        return docs

    # -- per model ---------------------------------------------------------------------------------

    def _config(self, file: _ModelFile, result: RenderResult, doc: MarkedDict | None) -> ModelConfig:
        project_file = self.root / "skewless_project.yml"
        layers: list[tuple[Mapping[str, Any], Location]] = [
            (self.config.defaults, Location(project_file, *getattr(self.config.defaults, "start", (None, None))))
        ]
        if doc is not None:
            yaml_config = doc.get("config") or {}
            layers.append((yaml_config, doc.location("config")))
            if doc.get("description") and "description" not in yaml_config:
                layers.append(({"description": doc["description"]}, doc.location("description")))
        layers.append((result.config, _where(file, result.config_line, "config(")))
        return build_config(layers)

    def _compile_node(
        self, file: _ModelFile, result: RenderResult, config: ModelConfig, compiled: CompiledProject,
        doc: MarkedDict | None,
    ) -> ModelNode:
        query = parse_query(result.sql, dialect=config.dialect or self.config.dialect, path=file.path,
                            template=file.text)
        incremental = None
        if result.incremental_sql is not None:
            incremental = parse_query(result.incremental_sql, dialect=config.dialect or self.config.dialect,
                                      path=file.path, template=file.text)
        schema = config.schema or self.config.target.schema
        own = None if config.materialized == "ephemeral" else relation_table(config.alias or file.name, schema)
        own_ref = Resolved(own) if own is not None else Resolved(
            relation_table(EPHEMERAL_PREFIX + file.name), ephemeral=file.name
        )

        def resolve(ref: RelationRef) -> Resolved:
            return own_ref if ref.kind == "this" else self._resolve(ref, compiled)

        body, ephemerals = substitute(query, result.relations, resolve)
        closure = _ephemeral_closure(ephemerals, compiled)
        compiled.ephemeral_closure[file.name] = closure
        ctes = [(EPHEMERAL_PREFIX + n, compiled.nodes[n].body) for n in closure]
        full = with_ctes(body, ctes)
        incremental_full = None
        if incremental is not None:
            inc_body, _ = substitute(incremental, result.relations, resolve)
            incremental_full = with_ctes(inc_body, ctes)

        _check_output_names(body, file)
        types = output_columns(body, lambda t: self._relation_columns(t, compiled), self.dialect)
        described = _column_docs(doc)
        columns = {
            name: Column(name, kind, described.get(name)) for name, kind in (types or {}).items()
        }
        node = ModelNode(
            name=file.name,
            path=file.path,
            rel_path=file.rel_path,
            raw_sql=file.text,
            config=config,
            refs=sorted({r.parts[0] for r in result.refs}),
            sources=sorted({(r.parts[0], r.parts[1]) for r in result.sources}),
            query=full,
            incremental_query=incremental_full,
            columns=columns,
            columns_known=types is not None,
            features=[],
            relation=own,
            description=config.description,
            body=body,
        )
        self._check_entity(node, file, result)
        if result.window is not None:
            self._plan_window(node, file, result, _column_docs(doc))
        elif config.stream is not None:
            raise CompileError("stream= applies to window_agg() models: their windows are kept current from the "
                               "stream", location=_where(file, result.config_line, "stream"),
                               hint="declare the features with skewless.window_agg(...), or drop stream=")
        unique_key = node.config.unique_key or ()
        missing = [c for c in unique_key if c not in node.columns] if node.columns_known else []
        if node.config.materialized == "incremental" and missing:
            raise CompileError(
                f"unique_key {', '.join(repr(c) for c in missing)} is not a column of the model's SELECT: "
                "merging by it would fail at every incremental run",
                location=_where(file, result.config_line, "unique_key"),
                hint=did_you_mean(missing[0], node.columns) or "select the column, or fix unique_key",
            )
        if config.ttl is not None and config.delay is not None and config.delay > config.ttl:
            where = _where(file, result.config_line, "delay")
            compiled.warnings.append(
                f"{where}: delay ({format_duration(config.delay)}) is longer than ttl "
                f"({format_duration(config.ttl)}): a row expires before it is servable, so no value is ever "
                "served or joined; shorten the delay or lengthen the ttl")
        if config.materialized == "incremental" and incremental is None and config.timestamp and own is not None:
            node.incremental_query = watermark_query(node, own)
        _plan_feature_table(node)
        if self.engine.numeric_range_frames:
            node.query = numeric_range_frames(node.query)
            if node.incremental_query is not None:
                node.incremental_query = numeric_range_frames(node.incremental_query)
        if self.engine.timestamp_ntz:
            node.query = explicit_zoned_timestamps(node.query)
            if node.incremental_query is not None:
                node.incremental_query = explicit_zoned_timestamps(node.incremental_query)
        if (config.dialect or self.config.dialect) != self.dialect:
            self._check_transpiles(node)
        return node

    def _plan_window(self, node: ModelNode, file: _ModelFile, result: RenderResult,
                     described: Mapping[str, str | None]) -> None:
        """A window_agg() model: its relation keeps the events (keys, time, the columns aggregated), and its
        features are the declared windows over them, computed at each instant asked (core/tiles.py)."""
        config = node.config
        where = _where(file, result.window_line, "window_agg")
        if config.entity is None:
            raise CompileError("window_agg() needs an entity: its features are windows per entity",
                               location=_where(file, result.config_line, "config("),
                               hint="add entity='...' and timestamp='...' to config()")
        if config.ttl is not None:
            raise CompileError("a window_agg() model takes no ttl: each window bounds the events it reads, and an "
                               "empty window gives 0 (counts) or NULL", location=_where(file, result.config_line,
                                                                                         "ttl"),
                               hint="remove ttl= from the config")
        if config.materialized == "ephemeral":
            raise CompileError("a window_agg() model cannot be ephemeral: training sets read its events",
                               location=_where(file, result.config_line, "materialized"),
                               hint="use materialized='feature_table' (the default), 'incremental' or 'view'")
        types = {name: column.type for name, column in node.columns.items()} if node.columns_known else None
        try:
            spec = parse_spec(result.window, types)
        except ValueError as error:
            raise CompileError(f"window_agg(): {error}", location=where) from None
        kept = [*node.join_keys, config.timestamp, *([config.created_timestamp] if config.created_timestamp else []),
                *[c for c, _ in spec.input_types]]
        kept = list(dict.fromkeys(c for c in kept if c))
        assert node.body is not None
        node.query = exp.select(*[quoted_column(c) for c in kept]).from_(node.query.subquery("events"))
        node.body = exp.select(*[quoted_column(c) for c in kept]).from_(node.body.subquery("events"))
        if node.columns_known:
            node.columns = {c: node.columns[c] for c in kept}
        if config.stream is not None:
            self._check_stream(node, file, result, spec)
        node.window = spec
        node.features = [f.name for f in spec.features(config.entity)]
        node.feature_docs = {f: described.get(f) for f in node.features}

    def _check_stream(self, node: ModelNode, file: _ModelFile, result: RenderResult, spec: Any) -> None:
        """A streamed model's events are a source's rows, as they arrive: the stream carries that source's columns,
        and the model may not reshape them with SQL the stream cannot run."""
        where = _where(file, result.config_line, "stream")
        if result.refs or len(result.sources) != 1 or spec.where:
            raise CompileError(
                "a model with stream= aggregates one source's events as they arrive: window_agg(source(...)) "
                "without ref() or where=", location=where,
                hint="aggregate the source directly (filter with a separate model that has no stream), or drop "
                     "stream=",
            )
        source = self.config.sources[(result.sources[0].parts[0], result.sources[0].parts[1])]
        untyped = [c for c in [*node.join_keys, node.config.timestamp, *[c for c, _ in spec.input_types]]
                   if c and not source.columns.get(c)]
        if untyped:
            raise CompileError(f"stream events are typed by their source's columns: {untyped[0]!r} of source "
                               f"{source.source}.{source.name} has no declared type", location=where,
                               hint="list the source's columns with their types in sources.yml")

    def _check_transpiles(self, node: ModelNode) -> None:
        """A model written in one dialect and run in another: what the target cannot express is a compile error
        naming the construct, never SQL with a different meaning."""
        try:
            node.query.sql(dialect=self.dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as error:
            raise CompileError(
                f"this model cannot be written faithfully in {self.config.target.type} SQL: {error}",
                location=Location(node.path, 1, 1),
                hint="rewrite that part with what both dialects have, or give the model dialect= of its own",
            ) from None

    def _compile_on_demand(
        self, file: _ModelFile, result: RenderResult, config: ModelConfig, compiled: CompiledProject,
        doc: MarkedDict | None,
    ) -> ModelNode:
        from skewless.ondemand.model import compile_model, parse_types

        where = _where(file, result.config_line, "config(")
        if result.refs or result.sources:
            raise CompileError("an on-demand model reads features and request fields, not tables",
                               location=_where(file, (result.refs or result.sources)[0].line, "{{"),
                               hint="drop ref()/source(); name the features it reads directly")
        if config.online or config.materialized not in ("feature_table",) or config.timestamp or config.ttl:
            raise CompileError(
                "an on-demand model is computed per request: materialized, timestamp, ttl and online do not apply",
                location=where, hint="keep kind='on_demand', request_fields, inputs and the docs keys",
            )
        query = parse_query(result.sql, dialect=config.dialect or self.config.dialect, path=file.path,
                            template=file.text)
        request = parse_types(config.request_fields, "request field", where)
        declared = None
        if config.inputs is not None:
            declared = {k: None for k in config.inputs}
            declared.update(parse_types({k: v for k, v in config.inputs.items() if v}, "input", where))
        feature_types = {f: n.feature_column(f).type for f, n in compiled.features().items() if n.on_demand is None}
        model = compile_model(file.name, query, self.dialect, request, declared, feature_types, file.path, file.text)
        described = _column_docs(doc)
        columns = {f.name: Column(f.name, str(f.type), described.get(f.name)) for f in model.features}
        return ModelNode(
            name=file.name, path=file.path, rel_path=file.rel_path, raw_sql=file.text, config=config,
            refs=[], sources=[], query=query, incremental_query=None, columns=columns, columns_known=True,
            features=list(columns), relation=None, description=config.description, on_demand=model,
        )

    def _check_owner(self, node: ModelNode, file: _ModelFile, result: RenderResult,
                     owners: dict[tuple[str, str], ModelNode]) -> None:
        """One relation, one owner: a model whose schema/alias lands on another model's table or on a declared
        source would replace it at run (identifiers compared as the warehouse does, case-insensitively).
        `owners` holds the relations of the models compiled so far, by lower-cased (schema, name)."""
        if node.relation is None:
            return
        key = (node.relation.db.lower(), node.relation.name.lower())
        other = owners.get(key)
        source = self._sources_by_folded_relation.get(key)
        if other is None and source is None:
            owners[key] = node
            return
        where = _where(file, result.config_line, "alias" if node.config.alias else "schema")
        if other is not None:
            if not (node.config.alias or node.config.schema) and (other.config.alias or other.config.schema):
                where = _text_location(other.path, other.raw_sql, "alias" if other.config.alias else "schema")
            raise CompileError(
                f"models {other.name!r} ({other.rel_path}) and {node.name!r} ({node.rel_path}) both build "
                f"{node.relation.sql(dialect=self.dialect)}: each run would replace the other's table",
                location=where, hint="give one of them another alias= or schema=")
        assert source is not None
        raise CompileError(
            f"model {node.name!r} would build {node.relation.sql(dialect=self.dialect)}, which is the "
            f"declared source {source.source}.{source.name}: a run would replace the source's data",
            location=where, hint="give the model another alias= or schema=")

    def _resolve(self, ref: RelationRef, compiled: CompiledProject) -> Resolved:
        """A ref() or source() as the table it reads (an ephemeral model: the CTE it becomes)."""
        if ref.kind == "source":
            source = self.config.sources[(ref.parts[0], ref.parts[1])]
            return Resolved(relation_table(source.identifier, source.schema))
        parent = compiled.nodes[ref.parts[0]]
        if parent.relation is None:
            return Resolved(relation_table(EPHEMERAL_PREFIX + parent.name), ephemeral=parent.name)
        return Resolved(parent.relation)

    def _singular_tests(self, renderer: Renderer, compiled: CompiledProject) -> list[DataTest]:
        """The project's `tests/*.sql`: each a query over ref()s and source()s returning the failing rows."""
        folder = self.root / "tests"
        tests = []
        for path in sorted(folder.rglob("*.sql")) if folder.is_dir() else []:
            text = read_source(path)
            result = renderer.render_model(path, text)
            query = parse_query(result.sql, dialect=self.config.dialect, path=path, template=text)
            for ref in result.refs:
                if ref.parts[0] not in compiled.nodes or compiled.nodes[ref.parts[0]].on_demand is not None:
                    raise CompileError(f"ref({ref.parts[0]!r}) names no model with rows",
                                       location=Location(path, ref.line), hint=did_you_mean(ref.parts[0],
                                                                                            compiled.nodes))
            def resolve(ref: RelationRef, test: str = path.stem) -> Resolved:
                # a test is no relation: `this` names the test itself, which no warehouse holds
                return Resolved(relation_table(test)) if ref.kind == "this" else self._resolve(ref, compiled)

            body, ephemerals = substitute(query, result.relations, resolve)
            ctes = [(EPHEMERAL_PREFIX + n, compiled.nodes[n].body) for n in _ephemeral_closure(ephemerals, compiled)]
            tests.append(DataTest(path.stem, "singular", None, tuple(sorted({r.parts[0] for r in result.refs})),
                                  Location(path, 1, 1), with_ctes(body, ctes), str(result.config.get("severity",
                                                                                                      "error"))))
        return tests

    def _relation_columns(self, table: exp.Table, compiled: CompiledProject) -> dict[str, str | None] | None:
        """Known columns of a table the model reads: a parent model, or a declared source."""
        node = compiled.by_relation.get((table.db, table.name))
        if node is not None:
            return {c.name: c.type for c in node.columns.values()} if node.columns_known else None
        source = self._sources_by_relation.get((table.db, table.name))
        if source is None:
            return None
        if source.columns:
            return dict(source.columns)
        return _seed_file_columns(source.file) if source.file is not None else None

    def _check_entity(self, node: ModelNode, file: _ModelFile, result: RenderResult) -> None:
        config = node.config
        where = _where(file, result.config_line, "entity")
        if config.entity is None:
            if config.online:
                raise CompileError(
                    "online=true needs an entity: the online store is keyed by the entity's join keys",
                    location=_where(file, result.config_line, "online"),
                    hint="add entity='...' to config() or drop online=true",
                )
            return
        entity = self.config.entities.get(config.entity)
        if entity is None:
            raise CompileError(
                f"unknown entity {config.entity!r}",
                location=where,
                hint=did_you_mean(config.entity, self.config.entities) or "declare it in entities.yml",
            )
        if config.timestamp is None:
            raise CompileError(
                "a feature model needs timestamp='<event time column>' in its config",
                location=where,
                hint="the point-in-time join and the online store order values by this column",
            )
        if config.online and config.materialized in ("ephemeral", "view"):
            raise CompileError(
                f"a {config.materialized} model cannot be online: "
                + ("it is never stored" if config.materialized == "ephemeral" else
                   "a view is computed again by every query, so the value written online and the one a training "
                   "set reads could differ (float sums change with summation order)"),
                location=_where(file, result.config_line, "online"),
                hint="use materialized='feature_table' (or 'incremental'): both paths then read one stored table",
            )
        node.join_keys = tuple(entity.join_keys)
        required = [*entity.join_keys, config.timestamp]
        if config.created_timestamp:
            required.append(config.created_timestamp)
        if node.columns_known:
            missing = [c for c in required if c not in node.columns]
            if missing:
                raise CompileError(
                    f"the model's SELECT lacks {', '.join(repr(m) for m in missing)} "
                    f"(entity {entity.name!r} keys {list(entity.join_keys)}, timestamp {config.timestamp!r})",
                    location=_select_location(file),
                    snippet=snippet_at(file.text, _select_location(file).line or 1, 1),
                    hint="select the join key(s) and the timestamp column, or fix the config",
                )
            node.features = [c for c in node.columns if c not in required]
            if config.online:
                for column in node.columns.values():
                    problem = online_type_problem(column.name, column.type)
                    if problem is not None:
                        raise CompileError(f"online model {node.name!r}: {problem}",
                                           location=_column_location(node, column.name),
                                           hint="or set online=false for this model")
        elif config.online:
            raise CompileError(
                "an online model's columns must be known when it compiles: a server or another process serves it "
                "from the compiled project, without running it",
                location=_select_location(file),
                hint="select its columns by name, or list the source's columns (columns: [...]) in sources.yml",
            )
        if config.materialized == "incremental" and config.unique_key is None:
            node.config = replace(config, unique_key=tuple(entity.join_keys) + (config.timestamp,))

    def _check_feature_names(self, compiled: CompiledProject) -> None:
        seen: dict[tuple[str, str], ModelNode] = {}
        every = {f: n for n in compiled.nodes.values() if n.on_demand is None for f in n.features}
        for node in compiled.nodes.values():
            for feature in node.features if node.on_demand is not None else ():
                key = ("", feature)
                other = seen.get(key) or every.get(feature)
                if other is not None:
                    raise CompileError(
                        f"on-demand feature {feature!r} has the name of a feature of {other.rel_path}",
                        location=_column_location(node, feature), hint="rename one of them",
                    )
                seen[key] = node
            for feature in node.features if node.on_demand is None else ():
                key = ("", feature)
                if key in seen:
                    other = seen[key]
                    entities = {other.config.entity, node.config.entity}
                    where = "" if len(entities) == 1 else " (entities " + " and ".join(
                        repr(e) for e in (other.config.entity, node.config.entity)) + ")"
                    raise CompileError(
                        f"feature {feature!r} is defined by two models: {other.rel_path} and {node.rel_path}{where}",
                        location=_column_location(node, feature),
                        hint="feature names are unique in a project (training sets and services name features "
                             "alone): rename one column, e.g. entity__feature__window",
                    )
                seen[key] = node


def _check_output_names(body: exp.Query, file: _ModelFile) -> None:
    """Two output columns with one name: a table keeps one of them (a feature holding the wrong values, or a
    feature silently shadowing a key such as `count(*) as user_id`). Refused, located at the second."""
    seen: set[str] = set()
    for name in body.named_selects:
        if name in seen:
            lines = file.text.splitlines()
            hits = [i for i, line in enumerate(lines) if re.search(rf"\b{re.escape(name)}\b", line)]
            line = hits[1] if len(hits) > 1 else (hits[0] if hits else None)
            location = Location(file.path) if line is None else Location(
                file.path, line + 1, re.search(rf"\b{re.escape(name)}\b", lines[line]).start() + 1)
            raise CompileError(f"the model's SELECT has two columns named {name!r}: one would silently replace "
                               "the other", location=location,
                               hint="rename one of them (a feature may not take a key or timestamp column's name)")
        seen.add(name)


def _plan_feature_table(node: ModelNode) -> None:
    """Feature tables are prepared once at build for every point-in-time join that reads them: sorted by keys
    and time, and either one row per (keys, event time) — the greatest values win — or, when the model has a
    created timestamp, every version with a flag on the one that wins (newest created, then greatest values),
    since as-known training sets need the versions that were later corrected. See ModelNode.build_query."""
    config = node.config
    if config.materialized not in ("feature_table", "incremental") or not node.columns_known:
        return
    if node.window is not None:  # every event counts: duplicates are not folded
        return
    if config.entity is None or config.timestamp is None:
        return
    keys = (*node.join_keys, config.timestamp)
    if config.materialized == "incremental" and tuple(config.unique_key or ()) != keys:
        return
    node.prepare = Prepare.FLAG if config.created_timestamp else Prepare.DEDUP


def watermark_query(node: ModelNode, table: exp.Table) -> exp.Query:
    """Rows of the full query past the table's newest timestamp (minus the lookback, for late data).

    The filter sits outside the model's query, so rolling windows still see the full history.
    """
    ts = node.config.timestamp
    assert ts is not None
    newest: exp.Expression = exp.select(exp.Max(this=quoted_column(ts))).from_(table.copy()).subquery()
    if node.config.lookback is not None:
        newest = exp.Sub(this=newest, expression=interval(node.config.lookback))
    names = [quoted_column(c) for c in node.columns] if node.columns_known else [exp.Star()]
    return (
        exp.select(*names)
        .from_(node.query.copy().subquery("__skewless_new"))
        .where(exp.GT(this=quoted_column(ts), expression=exp.Coalesce(this=newest, expressions=[
            exp.Cast(this=exp.Literal.string("0001-01-01"), to=exp.DataType.build("timestamp"))
        ])))
    )


def _where(file: _ModelFile, line: int | None, needle: str) -> Location:
    if line is None:
        return Location(file.path)
    lines = file.text.splitlines()
    for offset in range(0, 15):
        index = line - 1 + offset
        if 0 <= index < len(lines) and needle in lines[index]:
            return Location(file.path, index + 1, lines[index].index(needle) + 1)
    return Location(file.path, line)


_SELECT = re.compile(r"\bselect\b", re.IGNORECASE)


def _select_location(file: _ModelFile) -> Location:
    """The last top-level-looking SELECT keyword in the file: where output columns are listed."""
    lines = file.text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        match = _SELECT.search(lines[index])
        if match and not lines[index].lstrip().startswith("--"):
            return Location(file.path, index + 1, match.start() + 1)
    return Location(file.path, 1, 1)


def _text_location(path: Path, text: str, needle: str) -> Location:
    for index, line in enumerate(text.splitlines()):
        if needle in line:
            return Location(path, index + 1, line.index(needle) + 1)
    return Location(path)


def _column_location(node: ModelNode, column: str) -> Location:
    for index, line in enumerate(node.raw_sql.splitlines()):
        found = re.search(rf"\b{re.escape(column)}\b", line)
        if found:
            return Location(node.path, index + 1, found.start() + 1)
    return Location(node.path)


def _ephemeral_closure(ephemerals: Iterable[str], compiled: CompiledProject) -> list[str]:
    """The ephemeral models a query reads, with the ones they read, each once, readers after what they read."""
    closure: list[str] = []
    for name in ephemerals:
        for needed in compiled.ephemeral_closure[name] + [name]:
            if needed not in closure:
                closure.append(needed)
    return closure


def _column_docs(doc: MarkedDict | None) -> dict[str, str | None]:
    if doc is None:
        return {}
    return {
        str(expect_text(c, "name", "a column entry")): c.get("description")
        for c in doc.get("columns") or [] if isinstance(c, MarkedDict)
    }


def _seed_file_columns(path: Path) -> dict[str, str | None] | None:
    """Column names and types of a parquet seed, read from its footer; None for other formats."""
    if path.suffix != ".parquet":
        return None
    import pyarrow.parquet as pq  # only when a star over an undeclared parquet seed needs expanding

    schema = pq.read_schema(path)
    return {field.name: _arrow_type_name(field.type) for field in schema}


def _arrow_type_name(arrow_type: Any) -> str | None:
    text = str(arrow_type)
    mapping = {"int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE", "float": "FLOAT", "string": "VARCHAR",
               "large_string": "VARCHAR", "bool": "BOOLEAN", "date32[day]": "DATE"}
    if text.startswith("timestamp"):
        return "TIMESTAMPTZ" if "tz=" in text else "TIMESTAMP"
    return mapping.get(text)
