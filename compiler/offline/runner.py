"""Run compiled models against a warehouse in dependency order, then the post-hooks (the online store)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skewless.core.errors import CompileError, Location, ProjectError, SkewlessError
from skewless.core.sourcefile import read_source
from skewless.core.sqlbuild import relation_table
from skewless.project.compile import CompiledProject
from skewless.project.config import SourceTable
from skewless.project.nodes import ModelNode
from skewless.project.online_types import online_type_problem

if TYPE_CHECKING:
    from skewless.adapters.base import WarehouseAdapter


@dataclass
class ModelResult:
    name: str
    status: str  # success | error | skipped
    materialized: str
    rows: int | None = None
    seconds: float = 0.0
    message: str | None = None
    sql: list[str] = field(default_factory=list)
    columns: dict[str, str] | None = None  # what the warehouse reported after the build: name -> type

    def to_json(self) -> dict[str, Any]:
        return {
            "unique_id": f"model.{self.name}",
            "name": self.name,
            "status": self.status,
            "materialized": self.materialized,
            "rows": self.rows,
            "execution_time": round(self.seconds, 6),
            "message": self.message,
        }


@dataclass
class RunResults:
    results: list[ModelResult]
    seeds: dict[str, int]
    elapsed: float
    hooks: dict[str, Any] = field(default_factory=dict)
    hook_errors: dict[str, str] = field(default_factory=dict)

    @property
    def observed(self) -> dict[str, dict[str, str]]:
        """Each built model's columns and types as the warehouse reports them (see CompiledProject.with_observed)."""
        return {r.name: r.columns for r in self.results if r.columns is not None}

    @property
    def failed(self) -> list[ModelResult]:
        return [r for r in self.results if r.status == "error"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.hook_errors and not any(r.status == "skipped" for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "success": self.ok,
            "elapsed_time": round(self.elapsed, 6),
            "seeds": self.seeds,
            "results": [r.to_json() for r in self.results],
            "hooks": self.hooks,
            "hook_errors": self.hook_errors,
        }


def seed_error(source: SourceTable, error: SkewlessError) -> ProjectError:
    """A seed file the warehouse refused, named by source and file (and line, when the engine says it). A text
    seed holding a byte that is not UTF-8 is told as such, at that byte, whatever each engine makes of it."""
    assert source.file is not None
    what = f"seed {source.source}.{source.name} ({source.file.name}) cannot be loaded"
    if source.file.suffix in (".csv", ".json"):  # text (not parquet, not compressed)
        try:
            read_source(source.file)  # read again only on this failure path
        except ProjectError as not_text:
            return ProjectError(f"{what}: {not_text.message}", location=not_text.location, snippet=not_text.snippet,
                                hint=f"{not_text.hint}; the previous table is kept")
    line = _CSV_LINE.search(error.message)
    return ProjectError(
        f"{what}: {error.message}",
        location=Location(source.file, int(line.group(1)) if line else None),
        hint=error.hint or "fix the file (or the columns its source declares); the previous table is kept",
    )


_CSV_LINE = re.compile(r"\bon line:? (\d+)", re.I)


class RunReporter:
    """Progress events; the CLI draws them, the library default stays silent."""

    def start(self, total: int) -> None: ...

    def seed(self, name: str, rows: int) -> None: ...

    def model_start(self, node: ModelNode, index: int, total: int) -> None: ...

    def model_end(self, result: ModelResult, index: int, total: int) -> None: ...

    def finish(self, results: RunResults) -> None: ...


PostHook = Callable[[CompiledProject, "WarehouseAdapter", RunResults], Any]


class Runner:
    """Executes selected models. A failure stops the model's dependents, never its siblings."""

    def __init__(
        self,
        compiled: CompiledProject,
        adapter: "WarehouseAdapter",
        reporter: RunReporter | None = None,
    ) -> None:
        self.compiled = compiled
        self.adapter = adapter
        self.reporter = reporter or RunReporter()

    def run(
        self,
        selected: list[str],
        *,
        full_refresh: bool = False,
        hooks: Iterable[tuple[str, PostHook]] = (),
        after_build: Callable[[ModelNode], bool] | None = None,
    ) -> RunResults:
        """`after_build`: called after each model builds (`build` runs its tests); False stops what reads it."""
        started = time.perf_counter()
        seeds = self._load_seeds(selected)
        buildable = [n for n in selected if self.compiled.nodes[n].builds]
        self.reporter.start(len(buildable))
        results: list[ModelResult] = []
        broken: set[str] = set()
        for index, name in enumerate(buildable, start=1):
            node = self.compiled.nodes[name]
            self.reporter.model_start(node, index, len(buildable))
            upstream = self.compiled.graph.ancestors(name) & broken
            if upstream:
                result = ModelResult(name, "skipped", node.materialized,
                                     message=f"skipped: upstream {', '.join(sorted(upstream))} failed")
                broken.add(name)
            else:
                result = self._build(node, full_refresh)
                if result.status != "success":
                    broken.add(name)
            results.append(result)
            self.reporter.model_end(result, index, len(buildable))
            if result.status == "success" and after_build is not None and not after_build(node):
                broken.add(name)
        run = RunResults(results, seeds, 0.0)
        observed = self.compiled.with_observed(run.observed) if hooks else self.compiled
        for hook_name, hook in hooks:
            # A hook's failure (the online store down) fails the run but keeps every warehouse table.
            try:
                run.hooks[hook_name] = hook(observed, self.adapter, run)
            except SkewlessError as error:
                run.hook_errors[hook_name] = str(error)
        run.elapsed = time.perf_counter() - started
        self.reporter.finish(run)
        return run

    def _load_seeds(self, selected: list[str]) -> dict[str, int]:
        """Load the seed files of the sources the selected models read (and their ephemeral parents)."""
        needed: dict[tuple[str, str], None] = {}
        for name in selected:
            for parent in [name, *self.compiled.ephemeral_closure.get(name, [])]:
                for key in self.compiled.nodes[parent].sources:
                    needed[key] = None
        loaded: dict[str, int] = {}
        for key in needed:
            source = self.compiled.config.sources[key]
            if source.file is None:
                continue
            try:
                rows = self.adapter.load_file(source.file, relation_table(source.identifier, source.schema),
                                              source.columns)
            except SkewlessError as error:
                raise seed_error(source, error) from None
            loaded[f"{source.source}.{source.name}"] = rows
            self.reporter.seed(f"{source.source}.{source.name}", rows)
        return loaded

    def _build(self, node: ModelNode, full_refresh: bool) -> ModelResult:
        assert node.relation is not None
        mark = len(self.adapter.log)
        started = time.perf_counter()
        columns = None
        try:
            build = self._materialize(node, full_refresh)
            columns = self.adapter.columns(node.relation)
            status, rows, message = "success", build, None
        except SkewlessError as error:
            status, rows, message = "error", None, str(error)
        return ModelResult(
            node.name, status, node.materialized, rows=rows, seconds=time.perf_counter() - started,
            message=message, sql=self.adapter.log[mark:], columns=columns,
        )

    def _materialize(self, node: ModelNode, full_refresh: bool) -> int | None:
        adapter, relation = self.adapter, node.relation
        assert relation is not None
        def check(columns: dict[str, str]) -> None:
            self._check_columns(node, columns)

        if node.materialized == "view":
            return adapter.replace_view(relation, node.query, check).rows
        if node.materialized == "incremental" and not full_refresh and adapter.relation_kind(relation) == "table":
            rows = adapter.merge_incremental(relation, node.build_query(incremental=True), node.config.unique_key,
                                             check).rows
        else:
            rows = adapter.replace_table(relation, node.build_query(), check).rows
        if node.config.entity is not None and node.config.timestamp is not None and node.columns_known:
            times = [node.config.timestamp, *([node.config.created_timestamp] if node.config.created_timestamp else [])]
            adapter.index_for_lookups(relation, node.join_keys, times)
        return rows

    @staticmethod
    def _check_columns(node: ModelNode, actual: dict[str, str]) -> None:
        """What the warehouse built, checked before it replaces the previous table (a refusal keeps that one):
        the key columns of a model whose columns were unknown at compile time, the types of an online model."""
        if node.config.online:
            for column, kind in actual.items():
                problem = online_type_problem(column, kind)
                if problem is not None:
                    raise CompileError(f"online model {node.name!r}: {problem}", location=Location(node.path),
                                       hint="or set online=false for this model")
        if not node.columns_known:
            missing = [c for c in node.key_columns if c not in actual]
            if missing:
                raise CompileError(
                    f"model {node.name!r} has no column {', '.join(repr(m) for m in missing)}",
                    location=Location(node.path),
                    hint="select the entity's join key(s) and the timestamp column",
                )
