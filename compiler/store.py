"""FeatureStore: the library object behind every command. The CLI is a thin layer over it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import artifacts
from .errors import SkewlessError, did_you_mean
from .project import CompiledProject, Project
from .runner import PostHook, Runner, RunReporter, RunResults

if TYPE_CHECKING:
    from skewless.adapters.base import WarehouseAdapter
    from skewless.adapters.redis_online import RedisOnlineStore

    from .config import ProjectConfig
    from .datasets import Dataset, DatasetCatalog
    from .online import OnlineReader
    from .retrieval import RetrievalJob
    from .serving import ServingCatalog


class FeatureStore:
    """A project bound to a target: compile it, run it, inspect it.

    >>> fs = FeatureStore("example_project")          # doctest: +SKIP
    >>> fs.run(select=["tag:fraud"]).ok                # doctest: +SKIP
    """

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> None:
        self.project = Project(project_dir, target=target, vars=vars)
        self._compiled: CompiledProject | None = None
        self._adapter: WarehouseAdapter | None = None
        self._online: RedisOnlineStore | None = None
        self._catalog: DatasetCatalog | None = None
        self._written = False
        self._reader: OnlineReader | None = None
        self.post_hooks: list[tuple[str, PostHook]] = [("online", self._write_online)]

    @property
    def config(self) -> "ProjectConfig":
        return self.project.config

    # -- compile -----------------------------------------------------------------------------------

    def compile(self, write: bool = True) -> CompiledProject:
        """Compile every model (once per FeatureStore); `write` also writes the target/ artifacts (once)."""
        if self._compiled is None:
            self._compiled = self.project.compile()
        if write and not self._written:
            artifacts.write_compiled(self._compiled)
            artifacts.write_manifest(self._compiled, self.feature_services())
            self._written = True
        return self._compiled

    def show(self, name: str, dialect: str | None = None) -> str:
        """A model's compiled SELECT, in the target's dialect or any other sqlglot dialect."""
        compiled = self.compile(write=False)
        try:
            return compiled.sql(name, dialect=dialect)
        except SkewlessError:
            raise
        except Exception as error:  # sqlglot cannot write this construct in that dialect
            raise SkewlessError(f"cannot write model {name!r} in dialect {dialect!r}: {error}") from None

    def executed_sql(self, name: str) -> str:
        """What the last run executed for a model (target/run/<path>)."""
        node = self.compile(write=False).node(name)
        path = self.config.target_path / "run" / node.rel_path
        if not path.is_file():
            raise SkewlessError(f"model {name!r} has not been compiled or run yet", hint="run `skewless run` first")
        return path.read_text(encoding="utf-8")

    def ls(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """One row per selected model: what it is, who owns it, what it serves."""
        compiled = self.compile(write=False)
        rows = []
        for name in compiled.selected(select, exclude):
            node = compiled.nodes[name]
            rows.append({
                "name": name,
                "path": node.rel_path,
                "materialized": "on_demand" if node.on_demand is not None else node.materialized,
                "entity": node.config.entity,
                "ttl": node.config.to_json()["ttl"],
                "online": node.config.online,
                "owner": node.config.owner,
                "tags": list(node.config.tags),
                "features": list(node.features),
            })
        return rows

    # -- run ---------------------------------------------------------------------------------------

    @property
    def adapter(self) -> "WarehouseAdapter":
        if self._adapter is None:
            from skewless.adapters import open_adapter

            self._adapter = open_adapter(self.config)
        return self._adapter

    def run(
        self,
        select: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        *,
        full_refresh: bool = False,
        online: bool = True,
        reporter: RunReporter | None = None,
    ) -> RunResults:
        """Build the selected models in dependency order; then, unless `online=False`, the post-hooks."""
        compiled = self.compile()
        selected = compiled.selected(select, exclude)
        runner = Runner(compiled, self.adapter, reporter)
        results = runner.run(selected, full_refresh=full_refresh, hooks=self.post_hooks if online else ())
        for result in results.results:
            if result.sql:
                artifacts.write_executed(compiled, result.name, result.sql)
        artifacts.write_manifest(compiled, self.feature_services())
        artifacts.write_run_results(compiled, results)
        return results

    # -- training sets -----------------------------------------------------------------------------

    def get_historical_features(
        self, spine: Any, features: Iterable[str] | str, *, timestamp: str | None = None, as_known: bool = False,
        preserve_order: bool = True,
    ) -> "RetrievalJob":
        """A point-in-time correct training set: every spine row once, its columns first, then the features.

        `spine`: a pandas DataFrame, a pyarrow Table, or a warehouse table name / SELECT. `features`: names,
        `model:*` or `service:NAME`. `as_known=True` sees only values created by each row's time.
        `preserve_order=False` returns the rows in any order, which saves a sort of the whole result.

        >>> fs.get_historical_features(df, ["user__txn_count__7d"]).to_pandas()   # doctest: +SKIP
        """
        from .datasets import resolve_features
        from .retrieval import RetrievalJob, spine_from

        compiled = self.compile(write=False)
        names = resolve_features(compiled, self.catalog, [features] if isinstance(features, str) else list(features))
        spine_input = spine_from(spine, self.adapter, compiled.dialect, timestamp)
        try:
            return RetrievalJob(self.adapter, compiled, spine_input, names, as_known, preserve_order)
        except BaseException:
            if spine_input.cleanup is not None:
                spine_input.cleanup()
            raise

    @property
    def catalog(self) -> "DatasetCatalog":
        from .datasets import load_catalog

        if self._catalog is None:
            self._catalog = load_catalog(self.config.root, self.config.dataset_paths)
        return self._catalog

    def dataset_sql(self, name: str, dialect: str | None = None) -> str:
        """A dataset's point-in-time query, in the target's dialect or any other supported one."""
        from .datasets import resolve_features
        from .retrieval import SpineInput, training_query

        compiled = self.compile(write=False)
        dataset = self.catalog.dataset(name)
        source, columns = self._dataset_spine_source(dataset, compiled)
        if isinstance(source, _ArrowSpine):  # shown as DuckDB reads the file
            from sqlglot import exp

            reader = exp.Anonymous(this="read_parquet", expressions=[exp.Literal.string(dataset.spine.value)])
            source = exp.select("*").from_(reader)
        spine = SpineInput(source, columns, dataset.spine.timestamp)
        features = resolve_features(compiled, self.catalog, list(dataset.features))
        query = training_query(compiled, spine, features, as_known=dataset.as_known, dialect=dialect)
        return query.sql(dialect=dialect or compiled.dialect, pretty=True)

    def build_dataset(
        self, name: str, output: str = "table", path: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Build a dataset into the warehouse (schema `datasets`) or a parquet file; returns where and how many."""
        from .datasets import resolve_features
        from .retrieval import RetrievalJob, SpineInput, arrow_spine
        from .sqlbuild import relation_table

        if output not in ("table", "parquet"):
            raise SkewlessError(f"unknown output {output!r}", hint="use table or parquet")
        dataset = self.catalog.dataset(name)
        compiled = self.compile(write=False)
        features = resolve_features(compiled, self.catalog, list(dataset.features))
        source, columns = self._dataset_spine_source(dataset, compiled)
        if isinstance(source, _ArrowSpine):
            spine = arrow_spine(self.adapter, source.table, dataset.spine.timestamp)
        else:
            spine = SpineInput(source, columns, dataset.spine.timestamp)
        job = RetrievalJob(self.adapter, compiled, spine, features, dataset.as_known,
                           preserve_order=output == "parquet")
        if output == "parquet":
            from pathlib import Path

            import pyarrow.parquet as pq

            target = Path(path) if path else self.config.target_path / "datasets" / f"{name}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            table = job.to_arrow()
            pq.write_table(table, target)
            return {"output": str(target), "rows": table.num_rows, "columns": table.num_columns}
        relation = relation_table(name, "datasets")
        try:
            rows = self.adapter.replace_table(relation, job.query).rows
        finally:
            job.close()
        return {"output": relation.sql(dialect=compiled.dialect), "rows": rows, "columns": len(job.query.expressions)}

    def _dataset_spine_source(self, dataset: "Dataset", compiled: CompiledProject) -> tuple[Any, tuple[str, ...]]:
        from sqlglot import exp

        from .sqlbuild import relation_table

        spine = dataset.spine
        if spine.kind == "source":
            source_name, _, table_name = spine.value.partition(".")
            source = self.config.sources.get((source_name, table_name))
            if source is None:
                raise SkewlessError(f"dataset {dataset.name!r}: no source {spine.value!r}", location=dataset.location)
            relation: Any = relation_table(source.identifier, source.schema)
            known = tuple(source.columns)
        elif spine.kind == "model":
            node = compiled.node(spine.value)
            if node.relation is None:
                raise SkewlessError(f"dataset {dataset.name!r}: the spine model is ephemeral",
                                    location=dataset.location)
            relation, known = node.relation, tuple(node.columns)
        elif spine.kind == "file":
            import pyarrow.csv as pcsv
            import pyarrow.parquet as pq

            file = (self.config.root / spine.value).resolve()
            if not file.is_file():
                raise SkewlessError(f"dataset {dataset.name!r}: no file {spine.value}", location=dataset.location)
            table = pq.read_table(file) if file.suffix == ".parquet" else pcsv.read_csv(file)
            if spine.columns:
                table = table.select(list(spine.columns))
            return _ArrowSpine(table), tuple(table.column_names)
        elif spine.kind == "table":
            relation, known = exp.to_table(spine.value, dialect=compiled.dialect), ()
        else:
            from .retrieval import parse_spine_query

            try:
                relation, known = parse_spine_query(spine.value, compiled.dialect), ()
            except SkewlessError as error:
                raise SkewlessError(f"dataset {dataset.name!r}: {error}", location=dataset.location,
                                    hint=error.hint) from None
        columns = spine.columns or known
        if not columns:
            raise SkewlessError(f"dataset {dataset.name!r}: list the spine's columns (spine: columns: [...])",
                                location=dataset.location)
        return relation, tuple(columns)

    # -- online store ------------------------------------------------------------------------------

    @property
    def online_store(self) -> "RedisOnlineStore":
        """The Redis online store of the project (or of the target, which may override it)."""
        if self._online is None:
            from skewless.adapters.redis_online import RedisOnlineStore

            settings = {**self.config.online_store, **(self.config.target.settings.get("online_store") or {})}
            if settings.get("type", "redis") != "redis":
                raise SkewlessError(f"unknown online_store type {settings.get('type')!r}", hint="use type: redis")
            url = settings.get("url") or None
            self._online = RedisOnlineStore(
                url, self.config.target_path / "online" / "redis.db", cluster=bool(settings.get("cluster", False))
            )
        return self._online

    def _write_online(self, compiled: CompiledProject, adapter: "WarehouseAdapter", results: RunResults) -> Any:
        from .online import OnlineWriter

        built = [r.name for r in results.results if r.status == "success" and compiled.nodes[r.name].config.online]
        if not built:
            return {}
        return OnlineWriter(compiled, adapter, self.online_store).write(built)

    def get_online_features(
        self, entity_rows: Iterable[Mapping[str, Any]], features: Iterable[str] | str,
    ) -> dict[str, list[Any]]:
        """Newest values from the online store, typed; None where missing or past the model's ttl.

        `features`: names, `model:*` or `service:NAME`. On-demand features are computed per entity row from
        its request fields and the stored features they read, exactly as the training-set query computes them.

        >>> fs.get_online_features([{"user_id": 42}], ["user__txn_count__7d"])   # doctest: +SKIP
        {'user_id': [42], 'user__txn_count__7d': [3]}
        """
        reader = self._online_reader()
        names = reader.catalog.resolve([features] if isinstance(features, str) else list(features))
        return reader.read(list(entity_rows), names)

    def online_features_of(self, entity: str) -> list[str]:
        """Every online feature of an entity, in model order."""
        if entity not in self.config.entities:
            raise SkewlessError(
                f"unknown entity {entity!r}",
                hint=did_you_mean(entity, self.config.entities) or "entities are declared in entities.yml",
            )
        return self._online_reader().features_of(entity)

    def serving_catalog(self) -> "ServingCatalog":
        """What serving needs (online models, on-demand features, feature services), built from the project."""
        from .serving import ServingCatalog

        return ServingCatalog.from_compiled(self.compile(write=False), self.feature_services())

    def feature_services(self) -> dict[str, list[str]]:
        """Each feature service's features, resolved (`model:*` and nested services expanded)."""
        from .datasets import resolve_features

        compiled = self.compile(write=False)
        catalog = self.catalog
        return {name: resolve_features(compiled, catalog, [f"service:{name}"]) for name in catalog.services}

    def _online_reader(self) -> "OnlineReader":
        """Built once: schema versions, field names and on-demand callables are worked out here, not per read."""
        if self._reader is None:
            from .online import OnlineReader

            self._reader = OnlineReader(self.serving_catalog(), self.online_store)
        return self._reader

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        if self._online is not None:
            self._online.close()
            self._online = None
            self._reader = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ArrowSpine:
    """A dataset spine read from a file."""

    def __init__(self, table: Any) -> None:
        self.table = table
