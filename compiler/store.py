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
        self.post_hooks: list[tuple[str, PostHook]] = [("online", self._write_online)]

    @property
    def config(self):  # noqa: ANN201
        return self.project.config

    # -- compile -----------------------------------------------------------------------------------

    def compile(self, write: bool = True) -> CompiledProject:
        """Compile every model (once per FeatureStore) and write target/ artifacts."""
        if self._compiled is None:
            self._compiled = self.project.compile()
            if write:
                artifacts.write_compiled(self._compiled)
                artifacts.write_manifest(self._compiled)
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
                "materialized": node.materialized,
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
        artifacts.write_manifest(compiled)
        artifacts.write_run_results(compiled, results)
        return results

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

        >>> fs.get_online_features([{"user_id": 42}], ["user__txn_count__7d"])   # doctest: +SKIP
        {'user_id': [42], 'user__txn_count__7d': [3]}
        """
        from .online import OnlineReader

        names = [features] if isinstance(features, str) else list(features)
        return OnlineReader(self.compile(write=False), self.online_store).read(list(entity_rows), names)

    def online_features_of(self, entity: str) -> list[str]:
        """Every online feature of an entity, in model order."""
        from .online import OnlineReader

        compiled = self.compile(write=False)
        if entity not in self.config.entities:
            raise SkewlessError(
                f"unknown entity {entity!r}",
                hint=did_you_mean(entity, self.config.entities) or "entities are declared in entities.yml",
            )
        return OnlineReader(compiled, self.online_store).features_of(entity)

    def close(self) -> None:
        if self._adapter is not None:
            self._adapter.close()
            self._adapter = None
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
