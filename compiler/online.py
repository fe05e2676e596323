"""The online post-hook and reader: newest row per entity from the warehouse into Redis, and back out.

Writes are incremental: the last snapshot written for a model is kept in the warehouse (schema
`skewless_state`), and only rows that differ from it are sent, unless the store's epoch or the model's schema
version changed (then everything is sent). Writes are monotonic in Redis itself (see adapters/redis_online.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlglot import exp

from . import online_format as fmt
from .errors import SkewlessError
from .project import CompiledProject
from .sqlbuild import quoted_column, relation_table

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from skewless.adapters.base import WarehouseAdapter
    from skewless.adapters.redis_online import RedisOnlineStore

    from .on_demand import OnlineExpression
    from .serving import ServingCatalog

STATE_SCHEMA = "skewless_state"
STATE_TABLE = "online_state"
HASH = "__skewless_hash"


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

    @property
    def field(self) -> bytes:
        return fmt.field_name(self.name, self.version)


def online_models(compiled: CompiledProject) -> dict[str, OnlineModel]:
    """Every model with online=true, with its schema version."""
    models = {}
    for name in compiled.order:
        node = compiled.nodes[name]
        if not node.config.online or node.relation is None or node.config.entity is None:
            continue
        definition = "\n".join(
            compiled.sql(n) for n in [*sorted(compiled.graph.ancestors(name)), name]
            if compiled.nodes[n].relation is not None
        )
        keys = tuple(node.meta["join_keys"])
        assert node.config.timestamp is not None
        models[name] = OnlineModel(
            name=name,
            entity=node.config.entity,
            join_keys=keys,
            timestamp=node.config.timestamp,
            created_timestamp=node.config.created_timestamp,
            features=tuple(node.features),
            ttl=node.config.ttl,
            version=fmt.schema_version(name, keys, node.config.timestamp, node.features, definition),
            relation=node.relation,
        )
    return models


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class OnlineWriter:
    """Upserts the newest feature row per entity of online models into the online store."""

    def __init__(
        self, compiled: CompiledProject, warehouse: "WarehouseAdapter", store: "RedisOnlineStore",
        now: datetime | None = None,
    ) -> None:
        self.compiled = compiled
        self.warehouse = warehouse
        self.store = store
        self.now = now or _utcnow()
        self.models = online_models(compiled)
        self.project = compiled.config.name

    def write(self, names: Sequence[str]) -> dict[str, dict[str, int]]:
        """Write the named online models; returns rows sent and rows that were newer than the store's."""
        names = [n for n in names if n in self.models]
        if not names:
            return {}
        epoch = self.store.epoch(self.project)
        self._ensure_state_table()
        report = {}
        for name in names:
            report[name] = self._write_model(self.models[name], epoch)
        return report

    # -- warehouse side ----------------------------------------------------------------------------

    def _state(self) -> exp.Table:
        return relation_table(STATE_TABLE, STATE_SCHEMA)

    def _ensure_state_table(self) -> None:
        self.warehouse.ensure_schema(STATE_SCHEMA)
        schema = exp.Schema(this=self._state(), expressions=[
            exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=exp.DataType.build(kind))
            for name, kind in (("model", "text"), ("version", "text"), ("epoch", "text"), ("rows", "bigint"),
                               ("written_at", "timestamp"))
        ])
        self.warehouse.execute(exp.Create(this=schema, kind="TABLE", exists=True), log=False)

    def _snapshot_table(self, model: OnlineModel, suffix: str) -> exp.Table:
        return relation_table(f"{self.compiled.config.target.schema}__{model.name}__{suffix}", STATE_SCHEMA)

    def snapshot_query(self, model: OnlineModel) -> exp.Select:
        """The newest row per entity key, with a hash of it (ties: created ts, then the values: a stable pick)."""
        columns = [*model.join_keys, model.timestamp]
        if model.created_timestamp:
            columns.append(model.created_timestamp)
        columns.extend(model.features)
        conditions: list[exp.Expression] = [
            quoted_column(c).is_(exp.null()).not_() for c in [*model.join_keys, model.timestamp]
        ]
        if model.ttl is not None:
            cutoff = (self.now - model.ttl).isoformat(sep=" ")
            conditions.append(exp.GTE(this=quoted_column(model.timestamp),
                                      expression=exp.cast(exp.Literal.string(cutoff), "timestamp")))
        newest = self.warehouse.newest_rows(
            model.relation, model.join_keys, columns[len(model.join_keys):], columns, exp.and_(*conditions)
        )
        digest = exp.func("md5", exp.Concat(expressions=[
            part
            for c in columns
            for part in (
                exp.Coalesce(this=exp.cast(quoted_column(c), "text"), expressions=[exp.Literal.string("\x01")]),
                exp.Literal.string("\x1f"),
            )
        ]))
        return exp.select(*[quoted_column(c) for c in columns], exp.alias_(digest, HASH, quoted=True)).from_(
            newest.subquery("newest_rows")
        )

    def _previous_state(self, model: OnlineModel) -> tuple[str, str] | None:
        query = (
            exp.select("version", "epoch").from_(self._state())
            .where(exp.column("model").eq(exp.Literal.string(model.name)))
        )
        rows = self.warehouse.fetch_all(query, log=False)
        return (rows[0][0], rows[0][1]) if rows else None

    def _write_model(self, model: OnlineModel, epoch: str) -> dict[str, int]:
        warehouse = self.warehouse
        current = self._snapshot_table(model, "online")
        pending = self._snapshot_table(model, "pending")
        warehouse.drop(pending, "table")
        warehouse.execute(exp.Create(this=pending, kind="TABLE", expression=self.snapshot_query(model)), log=False)
        incremental = (
            self._previous_state(model) == (model.version, epoch)
            and warehouse.relation_kind(current) == "table"
        )
        changed: exp.Select = exp.select("*").from_(pending.copy())
        if incremental:
            keys = [*model.join_keys, model.timestamp, HASH]
            same = exp.and_(*[
                exp.EQ(this=quoted_column(k, "p"), expression=quoted_column(k, "n")) for k in keys
            ])
            changed = (
                exp.select("*").from_(exp.alias_(pending.copy(), "n", table=True))
                .where(exp.Exists(this=exp.select("1").from_(exp.alias_(current.copy(), "p", table=True))
                                  .where(same)).not_())
            )
        table = warehouse.fetch_arrow(changed)
        sent = table.num_rows
        written = self.store.write(self.encode(model, table))
        with warehouse.transaction():
            warehouse.drop(current, "table")
            warehouse.rename(pending, current.name)
            warehouse.execute(exp.delete(self._state(), where=exp.column("model").eq(exp.Literal.string(model.name))),
                              log=False)
            warehouse.execute(exp.insert(
                exp.select(
                    exp.Literal.string(model.name), exp.Literal.string(model.version), exp.Literal.string(epoch),
                    exp.Literal.number(sent), exp.cast(exp.Literal.string(self.now.isoformat(sep=" ")), "timestamp"),
                ),
                self._state(),
            ), log=False)
        return {"sent": sent, "written": written}

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self, model: OnlineModel, table: "pa.Table") -> list[tuple[bytes, bytes, bytes, int]]:
        """(key, field, value, expire_at_ms) per row, built column by column; a value the format cannot hold
        is a clear error naming the model, column and entity key."""
        import numpy as np

        if table.num_rows == 0:
            return []
        stamps = _micros(table.column(model.timestamp))
        created = None
        if model.created_timestamp:
            created = np.where(
                table.column(model.created_timestamp).is_null().to_numpy(zero_copy_only=False),
                fmt.NO_CREATED, _micros(table.column(model.created_timestamp), fill=0),
            )
        columns = [fmt.encode_headers(stamps, created)]
        for name in model.features:
            try:
                columns.append(fmt.encode_column(table.column(name)))
            except fmt.EncodeError as error:
                key = [table.column(k)[error.index].as_py() for k in model.join_keys]
                raise SkewlessError(
                    f"model {model.name!r}, column {name!r}, entity key {key!r}: {error}",
                    hint="cast the column to a number, string, boolean, date or timestamp in the model's SELECT",
                ) from None
        values = [b"".join(parts) for parts in zip(*columns, strict=True)]
        keys = fmt.entity_keys(self.project, model.entity, [table.column(k).to_pylist() for k in model.join_keys])
        if model.ttl is not None:
            expiry = ((stamps + model.ttl // timedelta(microseconds=1)) // 1000 + 1).tolist()
        else:
            expiry = [0] * table.num_rows
        field = model.field
        return [(key, field, value, expire) for key, value, expire in zip(keys, values, expiry, strict=True)]


def _micros(column: "pa.ChunkedArray", fill: int | None = None) -> "np.ndarray":
    """A timestamp or date column as int64 microseconds since the epoch, computed by Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_date(kind):
        column = pc.cast(column, pa.timestamp("us"))
    elif pa.types.is_timestamp(kind):
        column = pc.cast(column, pa.timestamp("us", tz=kind.tz))
    else:
        raise SkewlessError(f"a timestamp column has type {kind}; cast it to a timestamp in the model")
    numbers = pc.cast(column, pa.int64())
    if fill is not None:
        numbers = pc.fill_null(numbers, fill)
    return numbers.to_numpy(zero_copy_only=False)


class _EntityRead(NamedTuple):
    """One key per entity row, and the fields of the models read from it."""

    entity: str
    join_keys: tuple[str, ...]
    models: tuple[OnlineModel, ...]
    fields: list[bytes]


@dataclass(frozen=True)
class _ReadPlan:
    """Everything about a list of features that does not depend on the entity rows: worked out once per list."""

    derived: tuple["OnlineExpression", ...]  # on-demand features asked for
    groups: tuple[_EntityRead, ...]  # one per entity the stored features belong to
    keys_needed: tuple[str, ...]
    request_fields: tuple[str, ...]
    picks: tuple[tuple[str, int, int, int], ...]  # stored feature -> (group, model in group, value position)
    needed: frozenset[str]  # the names every entity row must hold: join keys and request fields


class OnlineReader:
    """Reads features back, typed, with ttl applied at read time, and computes on-demand features per row."""

    def __init__(self, catalog: "ServingCatalog", store: "RedisOnlineStore") -> None:
        self.catalog = catalog
        self.store = store
        self.project = catalog.project
        self._plans: dict[tuple[str, ...], _ReadPlan] = {}

    def features_of(self, entity: str) -> list[str]:
        return [f for m in self.catalog.models.values() if m.entity == entity for f in m.features]

    def plan(self, features: Sequence[str]) -> _ReadPlan:
        """What to read for these features, checked; kept for the next call with the same list."""
        key = tuple(features)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(key)
            if len(self._plans) < 1024:
                self._plans[key] = plan
        return plan

    def _make_plan(self, features: tuple[str, ...]) -> _ReadPlan:
        catalog = self.catalog
        for feature in features:
            catalog.check(feature)
        derived = tuple(catalog.evaluators[f] for f in features if f in catalog.on_demand)
        for evaluator in derived:
            for name in evaluator.input_names:
                if name not in catalog.by_feature:
                    raise SkewlessError(
                        f"on-demand feature {evaluator.feature.name!r} reads {name!r}, which is not served online",
                        hint=f"set online=true on model {catalog.offline_features.get(name)!r} and run again",
                    )
        stored = list(dict.fromkeys(
            [f for f in features if f not in catalog.on_demand] + [i for d in derived for i in d.input_names]
        ))
        models = list(dict.fromkeys(catalog.by_feature[f] for f in stored))
        groups = []
        for entity in dict.fromkeys(m.entity for m in models):
            entity_models = tuple(m for m in models if m.entity == entity)
            groups.append(_EntityRead(entity, entity_models[0].join_keys, entity_models,
                                      [m.field for m in entity_models]))
        picks = []
        for feature in stored:
            model = catalog.by_feature[feature]
            group = next(i for i, g in enumerate(groups) if model in g.models)
            picks.append((feature, group, groups[group].models.index(model), model.features.index(feature)))
        keys_needed = tuple(dict.fromkeys(k for g in groups for k in g.join_keys))
        request_fields = tuple(dict.fromkeys(n for d in derived for n in d.request_names))
        return _ReadPlan(
            derived=derived, groups=tuple(groups), keys_needed=keys_needed,
            request_fields=request_fields, picks=tuple(picks), needed=frozenset(keys_needed + request_fields),
        )

    def read(
        self, entity_rows: Sequence[Mapping[str, Any]], features: Sequence[str], now: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """Columnar result: the join key columns given, then one column per feature in the order asked.

        Entity rows also carry the request fields on-demand features read. One round trip reads every stored
        value, the on-demand inputs included."""
        plan = self.plan(features)
        needed = plan.needed
        for row in entity_rows:
            if not row.keys() >= needed:
                missing = [k for k in plan.keys_needed if k not in row]
                if missing:
                    raise SkewlessError(f"entity row {dict(row)!r} lacks join key(s) {missing}")
                raise SkewlessError(
                    f"entity row {dict(row)!r} lacks request field(s) "
                    f"{[n for n in plan.request_fields if n not in row]}",
                    hint="on-demand features read them from each entity row",
                )
        columns = {name: [row[name] for row in entity_rows] for name in needed}
        return self.read_columns(columns, len(entity_rows), features, now)

    def read_columns(
        self, columns: Mapping[str, Sequence[Any]], count: int, features: Sequence[str], now: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """`read` for entity rows given as columns of `count` values (as the HTTP API sends them)."""
        plan = self.plan(features)
        missing = [k for k in plan.keys_needed if k not in columns]
        if missing:
            raise SkewlessError(f"the entities lack join key(s) {missing}")
        absent = [n for n in plan.request_fields if n not in columns]
        if absent:
            raise SkewlessError(f"the entities lack request field(s) {absent}",
                                hint="on-demand features read them from each entity row")
        values = self._read_stored(columns, count, plan, now)
        for evaluator in plan.derived:
            inputs = [values[name] for name in evaluator.input_names]
            requests = [columns[name] for name in evaluator.request_names]
            values[evaluator.feature.name] = [
                evaluator([column[index] for column in inputs],
                          dict(zip(evaluator.request_names, [r[index] for r in requests], strict=True)))
                for index in range(count)
            ]
        result = {k: list(columns[k]) for k in plan.keys_needed}
        for feature in features:
            result[feature] = values[feature]
        return result

    def _read_stored(
        self, columns: Mapping[str, Sequence[Any]], count: int, plan: _ReadPlan, now: datetime | None,
    ) -> dict[str, list[Any]]:
        """Each stored feature's values: one key per row and entity, all read in one round trip."""
        requests: list[tuple[bytes, list[bytes]]] = []
        for group in plan.groups:
            keys = fmt.entity_keys(self.project, group.entity, [columns[k] for k in group.join_keys])
            requests.extend((key, group.fields) for key in keys)
        if not requests:
            return {}
        replies = self.store.read(requests)
        now_us = fmt.micros(now) if now is not None else time.time_ns() // 1000
        decoded: dict[tuple[int, int], list[list[Any] | None]] = {}
        columns: dict[str, list[Any]] = {}
        for feature, group, position, at in plan.picks:
            rows = decoded.get((group, position))
            if rows is None:
                ttl = plan.groups[group].models[position].ttl
                oldest = None if ttl is None else now_us - ttl // timedelta(microseconds=1)
                rows = fmt.decode_values((reply[position] for reply in replies[group * count:(group + 1) * count]),
                                         oldest)
                decoded[(group, position)] = rows
            columns[feature] = [None if values is None else values[at] for values in rows]
        return columns
