"""The online post-hook: the newest servable row per entity, from the warehouse into the online store.

Writes are incremental: the last snapshot written for a model is kept in the warehouse (schema
`skewless_state`), and only rows that differ from it are sent, unless the store does not hold the marker of that
write (flushed, or restored from an older snapshot) or the model's schema version, ttl or delay changed (then
everything is sent); entities whose servable row is gone are removed. Each run writes with
its generation (when it read the warehouse), so a run never undoes a later run's writes (see online/store.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from skewless.core.errors import SkewlessError
from skewless.core.sqlbuild import interval, quoted_column, relation_table

from . import format as fmt
from .catalog import OnlineModel

if TYPE_CHECKING:
    import numpy as np

    from skewless.adapters.base import WarehouseAdapter
    from skewless.online.store import OnlineStore

STATE_SCHEMA = "skewless_state"
STATE_TABLE = "online_state"
HASH = "__skewless_hash"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class OnlineWriter:
    """Upserts the newest feature row per entity of online models into the online store."""

    def __init__(
        self, models: Mapping[str, OnlineModel], warehouse: "WarehouseAdapter", store: "OnlineStore", *,
        project: str, schema: str, now: datetime | None = None,
    ) -> None:
        self.models = dict(models)
        self.warehouse = warehouse
        self.store = store
        self.project = project
        self.schema = schema  # the target schema: snapshots of two targets sharing a warehouse stay apart
        self.now = now or _utcnow()

    def write(self, names: Sequence[str], resend: bool = False) -> dict[str, dict[str, int]]:
        """Write the named online models; returns rows sent and rows applied. `resend` sends every value, whatever
        the last snapshot says (`skewless run --resend-online`)."""
        names = [n for n in names if n in self.models]
        if not names:
            return {}
        self._ensure_state_table()
        report = {}
        for name in names:
            model = self.models[name]
            if model.window is not None:  # tiles, recomputed whole for each entity (online/tile_writer.py)
                from .tile_writer import TileWriter

                report[name] = TileWriter(self.warehouse, self.store, self.project, self.now).write(model)
            else:
                report[name] = self._write_model(model, resend)
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
        return relation_table(f"{self.schema}__{model.name}__{suffix}", STATE_SCHEMA)

    def snapshot_query(self, model: OnlineModel) -> exp.Select:
        """The newest row per entity key, with a hash of it (ties: created ts, then the values: a stable pick)."""
        columns = [*model.join_keys, model.timestamp]
        if model.created_timestamp:
            columns.append(model.created_timestamp)
        columns.extend(model.features)
        conditions: list[exp.Expression] = [
            quoted_column(c).is_(exp.null()).not_() for c in [*model.join_keys, model.timestamp]
        ]
        # Servable now, as a training set at this instant sees it: available (event time + delay) by now, and
        # not older than the ttl. A row dated in the future reaches the store with the first run after its time.
        available: exp.Expression = quoted_column(model.timestamp)
        if model.delay:
            available = exp.Add(this=available, expression=interval(model.delay))
        conditions.append(exp.LTE(this=available, expression=_timestamp(self.now)))
        if model.ttl is not None:
            conditions.append(exp.GTE(this=quoted_column(model.timestamp), expression=_timestamp(self.now - model.ttl)))
        newest = self.warehouse.newest_rows(
            model.relation, model.join_keys, columns[len(model.join_keys):], columns, exp.and_(*conditions)
        )
        digest = exp.func("md5", exp.Concat(expressions=[_field_text(quoted_column(c)) for c in columns]))
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

    def _write_model(self, model: OnlineModel, resend: bool) -> dict[str, int]:
        warehouse = self.warehouse
        current = self._snapshot_table(model, "online")
        pending = self._snapshot_table(model, "pending")
        warehouse.drop(pending, "table")
        warehouse.execute(exp.Create(this=pending, kind="TABLE", expression=self.snapshot_query(model)), log=False)
        marker = self.store.marker(self.project, model.name)
        incremental = (
            not resend and marker is not None
            and self._previous_state(model) == (_state_version(model), marker)
            and warehouse.relation_kind(current) == "table"
        )
        changed: exp.Select = exp.select("*").from_(pending.copy())
        removed = None
        if incremental:
            keys = [*model.join_keys, model.timestamp, HASH]
            changed = (
                exp.select("*").from_(exp.alias_(pending.copy(), "n", table=True))
                .where(_absent_from(current, "p", "n", keys))
            )
            # Entities whose servable row is gone (a correction removed it, moved it to another key or out of the
            # ttl): their value is removed, as a training set at this instant would no longer see it.
            removed = warehouse.fetch_arrow(
                exp.select(*[quoted_column(k, "p") for k in model.join_keys])
                .from_(exp.alias_(current.copy(), "p", table=True))
                .where(_absent_from(pending, "n", "p", model.join_keys))
            )
        # In batches: an engine that can hand rows over piece by piece (Spark) never holds them all at once.
        sent = written = 0
        generation = fmt.micros(self.now)
        for batch in warehouse.fetch_arrow_batches(changed):
            rows = self.encode(model, pa.Table.from_batches([batch]))
            sent += len(rows)
            written += self.store.write(rows, generation)
        if removed is not None and removed.num_rows:
            rows = self.removals(model, removed)
            sent += len(rows)
            written += self.store.write(rows, generation)
        # Refused rows mean a newer run wrote since this one read the warehouse: what the store holds is not this
        # snapshot, so the next run sends everything rather than a difference from it.
        recorded = ""
        if written == sent:
            recorded = uuid.uuid4().hex
            self.store.set_marker(self.project, model.name, recorded)
        with warehouse.transaction():
            warehouse.drop(current, "table")
            warehouse.rename(pending, current.name)
            warehouse.delete_where(self._state(), exp.column("model").eq(exp.Literal.string(model.name)))
            warehouse.execute(exp.insert(
                exp.select(
                    exp.Literal.string(model.name), exp.Literal.string(_state_version(model)),
                    exp.Literal.string(recorded),
                    exp.Literal.number(sent), exp.cast(exp.Literal.string(self.now.isoformat(sep=" ")), "timestamp"),
                ),
                self._state(),
            ), log=False)
        return {"sent": sent, "written": written}

    # -- encoding ----------------------------------------------------------------------------------

    def removals(self, model: OnlineModel, keys: "pa.Table") -> list[tuple[bytes, bytes, bytes, int]]:
        """(key, field, b"", 0) per entity whose value is to be removed."""
        field = model.field
        return [(key, field, b"", 0)
                for key in fmt.entity_keys(self.project, model.entity, [keys.column(k).to_pylist()
                                                                        for k in model.join_keys])]

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


def _state_version(model: OnlineModel) -> str:
    """What the last snapshot was written under: the schema version, and the ttl and delay, so that a changed ttl
    sends every value again (their keys then expire on the new ttl) and a changed delay re-picks the rows."""
    return f"{model.version} ttl={model.ttl} delay={model.delay}"


def _field_text(value: exp.Expression) -> exp.Expression:
    """A prefix-free text of one value: 'N' for NULL, else 'V' + its text's length + ':' + its text. Concatenated,
    two different rows never give the same text (a separator inside a string cannot shift a field, and NULL is
    not any string); -0.0 and 0.0 differ as text too."""
    text = exp.cast(value, "text")
    return exp.Case(
        ifs=[exp.If(this=value.copy().is_(exp.null()), true=exp.Literal.string("N"))],
        default=exp.Concat(expressions=[
            exp.Literal.string("V"), exp.cast(exp.Length(this=text.copy()), "text"), exp.Literal.string(":"), text,
        ]),
    )


def _absent_from(table: exp.Table, alias: str, outer: str, columns: Sequence[str]) -> exp.Expression:
    """NOT EXISTS a row of `table` (as `alias`) equal to the outer row (`outer`) on `columns`."""
    same = exp.and_(*[exp.EQ(this=quoted_column(c, alias), expression=quoted_column(c, outer)) for c in columns])
    return exp.Exists(this=exp.select("1").from_(exp.alias_(table.copy(), alias, table=True)).where(same)).not_()


def _timestamp(value: datetime) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")


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


