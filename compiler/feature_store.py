"""FeatureStore: the library object behind every command. The CLI is a thin layer over it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from skewless.core.errors import SkewlessError, did_you_mean
from skewless.offline.runner import PostHook, Runner, RunReporter, RunResults
from skewless.project import artifacts
from skewless.project.compile import CompiledProject, Project

if TYPE_CHECKING:
    from pathlib import Path

    from sqlglot import exp

    from skewless.adapters.base import WarehouseAdapter
    from skewless.offline.datasets import Dataset, DatasetCatalog
    from skewless.offline.monitoring import MonitorReport
    from skewless.offline.retrieval import RetrievalJob
    from skewless.offline.testing import TestResult, TestResults
    from skewless.online.catalog import ServingCatalog
    from skewless.online.reader import OnlineReader
    from skewless.online.store import OnlineStore
    from skewless.online.stream import StreamConsumer, StreamStats
    from skewless.online.writer import OnlineWriter
    from skewless.project.config import Entity, ProjectConfig
    from skewless.project.lineage import ColumnLineage
    from skewless.project.nodes import ModelNode
    from skewless.project.state import StateDiff
    from skewless.serving.server import FeatureServer, Limits


def _references(features: Any, call: str) -> list[str]:
    """Feature references given to the library: text, or an iterable of texts (checked: a swapped argument
    otherwise fails deep inside the lookup)."""
    references = [features] if isinstance(features, str) else list(features) if isinstance(
        features, Iterable) and not isinstance(features, Mapping) else None
    if references is None or not all(isinstance(reference, str) for reference in references):
        raise SkewlessError(f"features are names, `model:*` or `service:NAME` (text), not {features!r:.60}",
                            hint=f"{call}: the features come second")
    return references


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
        self._online: OnlineStore | None = None
        self._catalog: DatasetCatalog | None = None
        self._written = False
        self._reader: OnlineReader | None = None
        self._resend_online = False
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

    def selected(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                 state: str | Path | None = None) -> list[str]:
        """The selected models in dependency order; `state`: an earlier manifest, for state:modified."""
        compiled = self.compile(write=False)
        modified = self.diff(state).modified() if state is not None else None
        return compiled.selected(select, exclude, modified)

    def diff(self, state: str | Path) -> "StateDiff":
        """This project against an earlier manifest: each changed model classified breaking or not, and what
        depends on the breaking ones (models, on-demand features, datasets, feature services)."""
        from skewless.project.state import diff, load_state

        compiled = self.compile(write=False)
        result = diff(compiled, load_state(state))
        affected = result.affected_features()
        on_demand = {f.name for node in compiled.nodes.values() if node.on_demand is not None
                     for f in node.on_demand.features if set(f.inputs) & affected}
        reach = affected | on_demand
        result.on_demand = sorted(on_demand)
        result.datasets = sorted(name for name, dataset in self.catalog.datasets.items()
                                 if set(self._dataset_features(dataset)) & reach)
        result.services = sorted(name for name, features in self.feature_services().items() if set(features) & reach)
        return result

    def lineage(self, feature: str) -> "ColumnLineage":
        """A feature's column-level lineage down to source tables (project/lineage.py)."""
        from skewless.project.lineage import feature_lineage

        return feature_lineage(self.compile(write=False), feature)

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

    def ls(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
           state: str | Path | None = None) -> list[dict[str, Any]]:
        """One row per selected model: what it is, who owns it, what it serves."""
        compiled = self.compile(write=False)
        rows = []
        for name in self.selected(select, exclude, state):
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
        resend_online: bool = False,
        reporter: RunReporter | None = None,
        state: str | Path | None = None,
        after_build: Callable[["ModelNode"], bool] | None = None,
    ) -> RunResults:
        """Build the selected models in dependency order; then, unless `online=False`, the post-hooks.

        The warehouse's own column types (and the columns of models a `*` left unknown) are kept from here on."""
        try:
            selected = self.selected(select, exclude, state)  # a bad selection writes nothing
            compiled = self.compile()
            runner = Runner(compiled, self.adapter, reporter)
            self._resend_online = resend_online
            results = runner.run(selected, full_refresh=full_refresh, hooks=self.post_hooks if online else (),
                                 after_build=after_build)
        except SkewlessError as error:
            artifacts.write_failed_run(self.config, error)
            raise
        self._compiled = compiled = compiled.with_observed(results.observed)
        self._reader = None
        for result in results.results:
            if result.sql:
                artifacts.write_executed(compiled, result.name, result.sql)
        artifacts.write_manifest(compiled, self.feature_services())
        artifacts.write_run_results(compiled.config, results.to_json())
        return results

    # -- tests ---------------------------------------------------------------------------------------

    def test(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None, *,
             state: str | Path | None = None, now: Callable[[], datetime] | None = None,
             report: Callable[["TestResult"], None] | None = None) -> "TestResults":
        """Run the selected models' tests (generic and singular on the warehouse, unit tests on DuckDB);
        results go to target/run_results.json. `now`: the clock freshness tests read."""
        from skewless.offline.testing import TestRunner

        compiled = self.compile()
        tests = compiled.tests.for_models(set(self.selected(select, exclude, state)))
        runner = TestRunner(compiled, self.adapter, **({"now": now} if now else {}), report=report)
        results = runner.run(tests)
        artifacts.write_run_results(compiled.config, results.to_json())
        return results

    def build(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None, *,
              state: str | Path | None = None, full_refresh: bool = False, online: bool = True,
              reporter: RunReporter | None = None, now: Callable[[], datetime] | None = None,
              report: Callable[["TestResult"], None] | None = None) -> tuple[RunResults, "TestResults"]:
        """Models and their tests in dependency order, as dbt build: each model's tests right after it; a model
        whose test fails (severity error) stops what reads it. Unit tests run first (they need no warehouse)."""
        from skewless.offline.testing import TestResult, TestResults, TestRunner

        selected = self.selected(select, exclude, state)
        compiled = self.compile()
        tests = compiled.tests.for_models(set(selected))
        runner = TestRunner(compiled, self.adapter, **({"now": now} if now else {}), report=report)
        done: list = [runner.unit_test(t) for t in tests.unit]
        failed_units = {r.model for r in done if r.status in ("fail", "error")}
        pending = list(tests.data)
        built: set[str] = {n for n in compiled.nodes if not compiled.nodes[n].builds}

        def after_build(node: "ModelNode") -> bool:
            built.add(node.name)
            ready = [t for t in pending if set(t.depends_on) <= built and node.name in t.depends_on]
            results = [runner.data_test(t) for t in ready]
            for test in ready:
                pending.remove(test)
            done.extend(results)
            return node.name not in failed_units and not any(r.status in ("fail", "error") for r in results)

        started = time.perf_counter()
        runs = self.run(selected, full_refresh=full_refresh, online=online, reporter=reporter,
                        after_build=after_build)
        for test in pending:
            if set(test.depends_on) <= built:
                done.append(runner.data_test(test))
            else:
                done.append(TestResult(test.name, test.kind, test.model, "skipped",
                                       message="skipped: a model it reads was not built"))
        results = TestResults(done, time.perf_counter() - started)
        artifacts.write_run_results(compiled.config, {**runs.to_json(), "success": runs.ok and results.ok,
                                                      "tests": results.to_json()["results"]})
        return runs, results

    # -- the catalog ---------------------------------------------------------------------------------

    def docs_generate(self) -> "Path":
        """target/docs/index.html: the catalog as a static site, with the last test results (run_results.json)
        and the last monitor report (monitor.json) when target/ holds them."""
        from pathlib import Path

        from skewless.project.docs_site import catalog_data, write_site

        compiled = self.compile()
        target = Path(compiled.config.target_path)
        run_results = _read_json(target / "run_results.json")
        monitor = _read_json(target / "monitor.json")
        datasets = {name: self._dataset_features(d) for name, d in self.catalog.datasets.items()}
        data = catalog_data(compiled, services=self.feature_services(), datasets=datasets,
                            run_results=run_results, monitor=monitor)
        return write_site(data, target / "docs")

    # -- monitoring ----------------------------------------------------------------------------------

    def monitor(self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None, *,
                reference_window: str = "30d", current_window: str = "1d", sample: int = 100,
                now: datetime | None = None, check_online: bool = True,
                reference: str | None = None) -> "MonitorReport":
        """Per feature: freshness, null rate and drift (PSI) between the reference and current windows ending at
        `now`; and `sample` entities per online model read online and through a training set at one instant.
        `reference="dataset:NAME"`: the dataset's training set is the reference (its features only)."""
        from datetime import timezone

        from skewless.core.durations import parse_duration
        from skewless.offline import monitoring

        compiled = self.compile(write=False)
        moment = now or datetime.now(timezone.utc).replace(tzinfo=None)
        thresholds = {name: monitoring.thresholds(raw) for name, raw in compiled.monitor.items()}
        windows = {}
        for option, text in (("--reference-window", reference_window), ("--current-window", current_window)):
            try:
                windows[option] = parse_duration(text)
            except ValueError as error:
                raise SkewlessError(f"{option}: {error}", hint="e.g. 30d, 12h, 90m") from None
        only, reference_table = None, None
        if reference is not None:
            if not reference.startswith("dataset:"):
                raise SkewlessError(f"unknown reference {reference!r}",
                                    hint="--reference dataset:NAME (a dataset's training set), or leave it out "
                                    "and set --reference-window")
            only, reference_table = self._reference_dataset(reference.split(":", 1)[1])
        monitor = monitoring.Monitor(compiled, self.adapter, moment, windows["--reference-window"],
                                     windows["--current-window"], thresholds, reference_table)
        selected = self.selected(select, exclude)
        try:
            features = [health for name in selected if monitoring.monitorable(compiled.nodes[name])
                        and (only is None or set(compiled.nodes[name].features) & only)
                        for health in monitor.model(compiled.nodes[name], only)]
        finally:
            if reference_table is not None:
                self.adapter.unregister_arrow(reference_table.name)
        checks = []
        if check_online and sample > 0:
            def online(keys: Any, names: Any, at: datetime) -> Any:
                return self._online_reader().read(keys, names, now=at)

            def offline(keys: Any, names: Any, at: datetime) -> Any:
                import pyarrow as pa

                spine = pa.Table.from_pylist([{**key, "__monitor_ts": at} for key in keys])
                table = self.get_historical_features(spine, names, timestamp="__monitor_ts").to_arrow()
                return {name: table.column(name).to_pylist() for name in names}

            checks = monitoring.consistency(compiled, self.adapter, selected, sample, online, offline,
                                            self._newest_online, datetime.now(timezone.utc).replace(tzinfo=None))
            served = {check.model: check.newest_online for check in checks}
            for health in features:
                health.newest_online = served.get(health.model)
        report = monitoring.MonitorReport(moment, features, checks)
        artifacts.write_text_atomic(compiled.config.target_path / "monitor.json", json.dumps(report.to_json()) + "\n")
        return report

    def _reference_dataset(self, name: str) -> tuple[set[str], "exp.Table"]:
        """A dataset's training set, readable by the warehouse's queries: the drift reference."""
        from skewless.offline.spines import dataset_spine

        dataset = self.catalog.dataset(name)
        compiled = self.compile(write=False)
        features = self._dataset_features(dataset)
        spine = dataset_spine(dataset, compiled).load(self.adapter)
        from skewless.offline.retrieval import RetrievalJob

        table = RetrievalJob(self.adapter, compiled, spine, features, dataset.as_known).to_arrow()
        return set(features), self.adapter.register_arrow("__skewless_monitor_reference", table)

    def _newest_online(self, model: str, keys: Iterable[Mapping[str, Any]]) -> datetime | None:
        """The newest event time the online store holds for these entities of a model."""
        from skewless.online import format as fmt

        online = self._online_reader().catalog.models.get(model)
        if online is None or online.window is not None:
            return None
        field_name = fmt.field_name(model, online.version)
        requests = [(fmt.entity_key(self.config.name, online.entity, [key[k] for k in online.join_keys]),
                     [field_name]) for key in keys]
        times = [fmt.decode_row(raw)[0] for (raw,) in self.online_store.read(requests) if raw is not None]
        return fmt.from_micros(max(times)) if times else None

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
        from skewless.offline.retrieval import RetrievalJob
        from skewless.offline.spines import spine_from

        compiled = self.compile(write=False)
        names = self.resolve_features(_references(features, "get_historical_features(spine, features)"))
        spine_input = spine_from(spine, self.adapter, compiled.dialect, timestamp)
        try:
            return RetrievalJob(self.adapter, compiled, spine_input, names, as_known, preserve_order)
        except BaseException:
            if spine_input.cleanup is not None:
                spine_input.cleanup()
            raise

    def _dataset_features(self, dataset: "Dataset") -> list[str]:
        catalog = self.catalog
        return catalog.resolve(self.compile(write=False).feature_index(catalog.service_references()), dataset)

    def resolve_features(self, references: Iterable[str]) -> list[str]:
        """Feature names for references (names, `model:*`, `service:NAME`), as training sets and serving read them."""
        index = self.compile(write=False).feature_index(self.catalog.service_references())
        return index.resolve(list(references))

    @property
    def catalog(self) -> "DatasetCatalog":
        from skewless.offline.datasets import load_catalog

        if self._catalog is None:
            self._catalog = load_catalog(self.config.root, self.config.dataset_paths)
        return self._catalog

    def dataset_sql(self, name: str, dialect: str | None = None) -> str:
        """A dataset's point-in-time query, in the target's dialect or any other supported one."""
        from skewless.adapters import adapter_class
        from skewless.offline.retrieval import finishing_step, training_query
        from skewless.offline.spines import dataset_spine

        compiled = self.compile(write=False)
        dataset = self.catalog.dataset(name)
        def file_scan(path: "Path") -> "exp.Query":  # the target's adapter is needed (and imported) only for a file
            return adapter_class(self.config.target.type).file_scan(path)

        spine = dataset_spine(dataset, compiled).shown(file_scan)
        features = self._dataset_features(dataset)
        query = training_query(compiled, spine, features, as_known=dataset.as_known, dialect=dialect)
        text = query.sql(dialect=dialect or compiled.dialect, pretty=True)
        finish = finishing_step(compiled, spine.columns, features, dialect or compiled.dialect)
        if finish is None:
            return text
        shown = "\n".join(f"--   {line}" for line in finish.sql(dialect="duckdb", pretty=True).splitlines())
        return (f"-- On {dialect or compiled.dialect}, the on-demand features are computed after this query, by DuckDB "
                f"over its result (table \"result\"),\n-- as the online evaluator computes them:\n{shown}\n{text}")

    def build_dataset(
        self, name: str, output: str = "table", path: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Build a dataset into the warehouse (schema `datasets`) or a parquet file; returns where and how many."""
        from skewless.core.sqlbuild import relation_table
        from skewless.offline.retrieval import RetrievalJob
        from skewless.offline.spines import dataset_spine

        if output not in ("table", "parquet"):
            raise SkewlessError(f"unknown output {output!r}", hint="use table or parquet")
        dataset = self.catalog.dataset(name)
        compiled = self.compile(write=False)
        features = self._dataset_features(dataset)
        spine = dataset_spine(dataset, compiled).load(self.adapter)
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
        rows = job.write_table(relation)
        return {"output": relation.sql(dialect=compiled.dialect), "rows": rows,
                "columns": len(spine.columns) + len(features)}

    # -- online store ------------------------------------------------------------------------------

    @property
    def online_store(self) -> "OnlineStore":
        """The project's online store (the target may override its settings), opened by its type."""
        if self._online is None:
            from skewless.online.store import open_online_store

            settings = {**self.config.online_store, **(self.config.target.settings.get("online_store") or {})}
            self._online = open_online_store(settings, self.config.target_path)
        return self._online

    def online_writer(self, compiled: CompiledProject | None = None, now: datetime | None = None) -> "OnlineWriter":
        """The online post-hook's writer over the project's online models, warehouse and online store; `now`
        (naive UTC, default the clock) is the instant whose servable rows it writes."""
        from skewless.online.writer import OnlineWriter
        from skewless.project.online_view import online_models

        compiled = compiled or self.compile(write=False)
        return OnlineWriter(online_models(compiled), self.adapter, self.online_store, project=self.config.name,
                            schema=self.config.target.schema, now=now)

    def _write_online(self, compiled: CompiledProject, adapter: "WarehouseAdapter", results: RunResults) -> Any:
        built = [r.name for r in results.results if r.status == "success" and compiled.nodes[r.name].config.online]
        if not built:
            return {}
        return self.online_writer(compiled).write(built, resend=self._resend_online)

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
        names = reader.catalog.resolve(_references(features, "get_online_features(entity_rows, features)"))
        rows = list(entity_rows)
        try:
            return reader.read(rows, names)
        except (AttributeError, TypeError):
            given = next((row for row in rows if not isinstance(row, Mapping)), None)
            if given is None:
                raise
            raise SkewlessError(  # looked at only after a failure: the read path checks nothing per row
                f"entity rows are mappings of join keys, e.g. [{{'user_id': 42}}], not {type(given).__name__} "
                f"(in a {type(entity_rows).__name__})",
                hint="a DataFrame: df.to_dict('records'); a dict of columns: one dict per row") from None

    # -- streams -----------------------------------------------------------------------------------

    def push(self, stream: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Append events to a stream (checked against its source's columns and types); their ids. `skewless
        stream` applies them to the window features it feeds.

        >>> fs.push("transactions", [{"user_id": 42, "amount": 9.5, "event_ts": "2026-11-27T10:00Z"}])  # doctest: +SKIP
        """
        from skewless.online.events import stream_key, to_text

        catalog = self.serving_catalog()
        columns = catalog.streams.get(stream)
        if columns is None:
            raise SkewlessError(f"no model is fed by stream {stream!r}",
                                hint=did_you_mean(stream, catalog.streams) or
                                "set stream='...' in a window_agg model's config")
        fields = [to_text(row, columns, stream) for row in rows]
        return self.online_store.append_events(stream_key(self.config.name, stream), fields)

    def streams(self, select: Iterable[str] | None = None) -> list[str]:
        """The streams that feed the selected models (every online window model by default)."""
        compiled = self.compile(write=False)
        names = compiled.selected(select) if select else compiled.order
        return list(dict.fromkeys(compiled.nodes[n].config.stream for n in names
                                  if compiled.nodes[n].config.stream and compiled.nodes[n].config.online))

    def stream_consumer(self, stream: str, *, group: str = "skewless", consumer: str | None = None,
                        batch_size: int = 500, claim_idle_ms: int = 30_000) -> "StreamConsumer":
        """A consumer of `stream` in a consumer group, applying its events to the window features it feeds."""
        from skewless.online.stream import StreamConsumer

        return StreamConsumer(self.serving_catalog(), self.online_store, stream, group=group, consumer=consumer,
                              batch_size=batch_size, claim_idle_ms=claim_idle_ms)

    def stream_files(self, stream: str, path: str | "Path", *, file_format: str = "json",
                     checkpoint: str | "Path | None" = None, until_idle: bool = False, files_per_batch: int = 100,
                     stop: Any = lambda: False, report: Any = None) -> "StreamStats":
        """`skewless stream --engine spark`: a Spark Structured Streaming job over event files landing in `path`
        (JSON lines or Parquet), applying them to the window features `stream` feeds, exactly once across
        restarts (its checkpoint: target/stream_checkpoints/<stream> unless given). Runs on a Spark target."""
        from pathlib import Path

        from skewless.adapters.spark_stream import BatchLog, run_files

        if self.adapter.engine.target_type != "spark":
            raise SkewlessError(f"--engine spark runs on a Spark target, not {self.adapter.engine.target_type!r}",
                                hint="pass --target with a target of type spark (profiles.yml)")
        consumer = self.stream_consumer(stream, group="spark", consumer="spark")
        consumer.applied_field = f"sk1s:{stream}#spark".encode()  # ids of its own: <batch>-<position>
        side = consumer.events
        folder = Path(path)
        if not folder.is_dir():
            raise SkewlessError(f"no folder {folder} to read event files from",
                                hint="create it, or pass the folder the producers write to")
        where = Path(checkpoint) if checkpoint else self.config.target_path / "stream_checkpoints" / stream
        return run_files(self.adapter.session, consumer, side, BatchLog(side), path=folder.resolve(),
                         file_format=file_format, checkpoint=where.resolve(), until_idle=until_idle,
                         files_per_batch=files_per_batch, stop=stop, report=report)

    def entity_rows(self, entity: str, keys: Iterable[str]) -> list[dict[str, Any]]:
        """Entity rows from key text as typed on a command line ("42", or "7,13" for a composite key).

        Values stay text; a read brings them to the key's type, as it does for the Python API: "007" is 7 for an
        integer key and stays "007" for a text key."""
        from skewless.online.format import entity_rows_from_text

        return entity_rows_from_text(self._entity(entity).join_keys, keys)

    def online_features_of(self, entity: str) -> list[str]:
        """Every online feature of an entity, in model order."""
        return self._online_reader().features_of(self._entity(entity).name)

    def _entity(self, name: str) -> "Entity":
        definition = self.config.entities.get(name)
        if definition is None:
            raise SkewlessError(
                f"unknown entity {name!r}",
                hint=did_you_mean(name, self.config.entities) or "entities are declared in entities.yml",
            )
        return definition

    def serving_catalog(self) -> "ServingCatalog":
        """What serving needs (online models, on-demand features, feature services), built from the project."""
        from skewless.project.online_view import serving_catalog

        return serving_catalog(self.compile(write=False), self.feature_services())

    def feature_services(self) -> dict[str, list[str]]:
        """Each feature service's features, resolved (`model:*` and nested services expanded)."""
        catalog = self.catalog
        index = self.compile(write=False).feature_index(catalog.service_references())
        catalog.check(index)
        return {name: catalog.resolve(index, service) for name, service in catalog.services.items()}

    def _online_reader(self) -> "OnlineReader":
        """Built once: schema versions, field names and on-demand callables are worked out here, not per read."""
        if self._reader is None:
            from skewless.online.reader import OnlineReader

            self._reader = OnlineReader(self.serving_catalog(), self.online_store)
        return self._reader

    # -- serving -----------------------------------------------------------------------------------

    def feature_server(self, limits: "Limits | None" = None, reload_interval: float = 2.0) -> "FeatureServer":
        """The HTTP feature server over this project's manifest and online store (closing it closes this)."""
        from skewless.serving.server import FeatureServer

        return FeatureServer(
            self.online_store, self.config.target_path / "manifest.json", limits=limits,
            reload_interval=reload_interval, write_manifest=self._write_manifest, on_close=self.close,
        )

    def _write_manifest(self) -> None:
        """compile(), which writes target/, once more: a later call writes the artifacts again."""
        self._written = False
        self.compile()

    def serve(self, host: str = "127.0.0.1", port: int = 6566, workers: int = 1, limits: "Limits | None" = None,
              log_level: str = "warning") -> None:
        """Serve features over HTTP until interrupted; with several workers each process builds its own server."""
        import socket

        import uvicorn

        from skewless.core.errors import AdapterError
        from skewless.serving.server import Limits

        limits = limits or Limits()
        try:  # a clear error for a port that is taken, before any worker starts
            with socket.create_server((host, port)):
                pass
        except OSError as error:
            raise AdapterError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                               hint="choose another --port, or stop what listens there") from None
        if workers > 1:
            os.environ[_SERVE_ENV] = json.dumps({
                "project_dir": str(self.config.root), "target": self.project.target_name, "vars": self.project.vars,
                "limits": [limits.max_body_bytes, limits.max_entities, limits.max_features],
            })
            uvicorn.run("skewless.feature_store:_worker_app", factory=True, host=host, port=port, workers=workers,
                        log_level=log_level, access_log=False, **_BOUNDS)
            return
        server = self.feature_server(limits)
        try:
            uvicorn.run(server.app(), host=host, port=port, log_level=log_level, access_log=False, **_BOUNDS)
        finally:
            server.close()

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


_SERVE_ENV = "SKEWLESS_SERVE"
# Bounded resources: connections at once (more are answered 503), idle keep-alive connections closed after 5 s.
_BOUNDS = {"limit_concurrency": 512, "timeout_keep_alive": 5}


def _worker_app() -> Any:
    """The app of one worker process of `skewless serve --workers N`."""
    from skewless.serving.server import Limits

    settings = json.loads(os.environ[_SERVE_ENV])
    store = FeatureStore(settings["project_dir"], settings["target"], vars=settings["vars"])
    return store.feature_server(Limits(*settings["limits"])).app()


def _read_json(path: "Path") -> Any:
    """A JSON artifact of an earlier command, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
