"""The post-hook of a window_agg model: its tiles, computed in SQL from the events in the warehouse (every level,
as far back as a read can reach), written as blocks to each entity's hash. A run replaces the model's tiles of
each entity it writes (a recomputed tile overwrites, never adds twice), refusing to go back past a newer run's
generation (online/store.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from skewless.core.sqlbuild import quoted_column
from skewless.core.tilesql import TILE, tile_distinct_values, tile_partials
from skewless.core.windowagg import WindowAgg

from . import format as fmt
from . import tiles
from .catalog import OnlineModel
from .events import stream_key

if TYPE_CHECKING:
    from skewless.adapters.base import WarehouseAdapter
    from skewless.online.store import OnlineStore



def tile_query(model: OnlineModel, spec: WindowAgg, level: int, after: datetime, until: datetime) -> exp.Select:
    """Partial aggregates per (entity, tile of `level`) over the events in (after, until], columns named as the
    layout's words (online/tiles.py)."""
    return tile_partials(model.relation, model.join_keys, model.timestamp, spec, level, [
        exp.GT(this=quoted_column(model.timestamp), expression=_timestamp(after)),
        exp.LTE(this=quoted_column(model.timestamp), expression=_timestamp(until)),
        *[quoted_column(k).is_(exp.null()).not_() for k in model.join_keys],
    ])


def distinct_query(model: OnlineModel, spec: WindowAgg, level: int, after: datetime, until: datetime,
                   column: str) -> exp.Select:
    """The distinct non-NULL values of `column` per (entity, tile of `level`) over the events in (after, until]."""
    return tile_distinct_values(model.relation, model.join_keys, model.timestamp, spec, level, column, [
        exp.GT(this=quoted_column(model.timestamp), expression=_timestamp(after)),
        exp.LTE(this=quoted_column(model.timestamp), expression=_timestamp(until)),
        *[quoted_column(k).is_(exp.null()).not_() for k in model.join_keys],
    ])


class TileWriter:
    """Writes window_agg models' tiles as of `now` (events dated after `now`, less the model's delay, wait)."""

    def __init__(self, warehouse: "WarehouseAdapter", store: "OnlineStore", project: str, now: datetime) -> None:
        self.warehouse = warehouse
        self.store = store
        self.project = project
        self.now = now

    def write(self, model: OnlineModel) -> dict[str, int]:
        spec = model.window
        assert spec is not None
        tiling = spec.tiling
        layout = tiles.Layout.of(spec)
        until = self.now - (model.delay or timedelta(0))
        retention_from = until
        cutoff = None
        if model.stream is not None:  # the stream owns what is newer than the cutoff: run writes up to it
            cutoff = self._cutoff(model, spec, until)
            if cutoff is None:
                return {"sent": 0, "written": 0}
            until = fmt.EPOCH.replace(tzinfo=None) + timedelta(microseconds=cutoff)
        prefix = model.tile_prefix
        value_blocks: dict[tuple[Any, ...], dict[bytes, dict[int, list[Any]]]] = defaultdict(dict)
        distinct_blocks: dict[tuple[Any, ...], dict[bytes, dict[tuple[int, int], list[int]]]] = defaultdict(dict)
        expiry: dict[tuple[Any, ...], int] = defaultdict(int)
        keys = model.join_keys
        for index, level in enumerate(tiling.levels):
            retention = tiling.retention(level, spec.windows)
            after = retention_from - timedelta(microseconds=retention + level)
            for batch in self.warehouse.fetch_arrow_batches(tile_query(model, spec, level, after, until), log=False):
                data = batch.to_pydict()
                entity_keys = list(zip(*[data[k] for k in keys], strict=True))
                words = [data[name] for name in layout.names]
                for row, (entity, end) in enumerate(zip(entity_keys, data[TILE], strict=True)):
                    block, slot = tiling.block_of(level, end)
                    field = tiles.value_field(prefix, index, block)
                    value_blocks[entity].setdefault(field, {})[slot] = [
                        _word(w[row], position in layout.floats) for position, w in enumerate(words)]
                    expiry[entity] = max(expiry[entity], end + retention)
            for position, column in enumerate(spec.distinct_columns):
                query = distinct_query(model, spec, level, after, until, column)
                for batch in self.warehouse.fetch_arrow_batches(query, log=False):
                    data = batch.to_pydict()
                    entity_keys = list(zip(*[data[k] for k in keys], strict=True))
                    for entity, end, value in zip(entity_keys, data[TILE], data[column], strict=True):
                        block, slot = tiling.block_of(level, end)
                        field = tiles.distinct_field(prefix, index, block)
                        distinct_blocks[entity].setdefault(field, {}).setdefault((slot, position), []).append(
                            tiles.value_hash(value))
        rows = []
        entities = list(value_blocks)
        redis_keys = fmt.entity_keys(self.project, model.entity, [list(c) for c in zip(*entities, strict=True)]) \
            if entities else []
        for entity, key in zip(entities, redis_keys, strict=True):
            fields = [(field, tiles.encode_values(layout, slots)) for field, slots in value_blocks[entity].items()]
            fields += [(field, tiles.encode_distinct(entries))
                       for field, entries in distinct_blocks.get(entity, {}).items()]
            rows.append((key, prefix, fields, expiry[entity] // 1000 + 1))
        generation = fmt.micros(self.now)
        if cutoff is None:
            written = self.store.replace_fields(rows, generation)
        else:
            stream = stream_key(self.project, model.stream or "")
            self.store.set_cutoff(stream, model.name, cutoff)
            geometry = [(level, tiling.block_span(level)) for level in tiling.levels]
            written = self.store.replace_closed(rows, cutoff, geometry, layout.width, generation)
        return {"sent": len(rows), "written": written}

    def _cutoff(self, model: OnlineModel, spec: WindowAgg, until: datetime) -> int | None:
        """The newest event time in the warehouse (by `until`), less the allowed lateness, up to the next hop
        boundary: the warehouse is taken as complete up to there, and every event the stream refused as late (older
        than its watermark less the lateness) is by then in a tile run owns. None when it holds no event."""
        newest = self.warehouse.fetch_all(
            exp.select(exp.Max(this=quoted_column(model.timestamp))).from_(model.relation.copy())
            .where(exp.LTE(this=quoted_column(model.timestamp), expression=_timestamp(until))), log=False)
        if not newest or newest[0][0] is None:
            return None
        closed = fmt.micros(newest[0][0]) - spec.allowed_lateness
        return -(-closed // spec.hop) * spec.hop


def _word(value: Any, is_float: bool) -> int | float:
    if value is None:
        return 0.0 if is_float else 0
    return float(value) if is_float else int(value)


def _timestamp(value: datetime) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "timestamp")
