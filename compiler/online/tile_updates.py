"""One event's updates to a window model's tiles: what the stream sends the online store to apply (a server-side
script merges them into the blocks of online/tiles.py), computed on the client so that the store does no more
than add, compare and append.

An update is the event's contribution to one tile of one level: the slot's words as if the tile held that event
alone (merged by each word's role: add, min, max, or newest-wins for the last value), and for count_distinct the
value's hash. Integer words are merged by the store as doubles (Redis scripts compute in doubles): sums stay exact
while their magnitude is below 2^53.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skewless.core.windowagg import WindowAgg

from . import tiles

STALE_BLOCKS = 4  # older blocks than retention removed per level and update (a long gap leaves a few behind)


@dataclass(frozen=True)
class ModelLayout:
    """What the store's script needs to merge a model's value slots: packing, roles and guards per word."""

    layout: tiles.Layout
    struct_format: str  # Redis' Lua struct: "<" then i8 (int64) or d (float64) per word
    roles: str  # a (add), n (min), x (max), t (newest time; with the next word, the last value), l
    guards: str  # per word, comma-separated: the 1-based word holding its column's count (0: none)

    @classmethod
    def of(cls, spec: WindowAgg) -> "ModelLayout":
        layout = tiles.Layout.of(spec)
        roles, guards, formats = [], [], []
        for position, name in enumerate(layout.names):
            part, _, column = name.partition(":")
            formats.append("d" if position in layout.floats else "i8")
            if part in ("n", "sum"):
                roles.append("a")
                guards.append(0)
            else:
                roles.append({"min": "n", "max": "x", "lts": "t", "last": "l"}[part])
                guards.append(layout.position(f"n:{column}") + 1)
        return cls(layout, "<" + "".join(formats), "".join(roles), ",".join(map(str, guards)))


def contribution(spec: WindowAgg, layout: tiles.Layout, event: Mapping[str, Any], ts: int) -> list[int | float]:
    """The words of a tile holding only this event."""
    words: list[int | float] = []
    for position, name in enumerate(layout.names):
        part, _, column = name.partition(":")
        value = event.get(column) if column else None
        is_float = position in layout.floats
        if part == "n":
            words.append(1 if not column else int(value is not None))
        elif value is None:
            words.append(0.0 if is_float else 0)
        elif part == "lts":
            words.append(ts)
        else:
            words.append(float(value) if is_float else int(value))
    return words


def updates(spec: WindowAgg, model: ModelLayout, prefix: bytes, event: Mapping[str, Any], ts: int, now: int
            ) -> tuple[list[tuple[Any, ...]], int]:
    """The updates of one event to a model's tiles at every level, and the time (ms) until which the key must live.

    ("v", field, slot, contribution bytes) per level; ("d", field, slot, column index, hash bytes) per
    count_distinct column with a value; ("x", field) for blocks past retention as of the event's time (or `now`
    for an event dated in the future), removed."""
    tiling = spec.tiling
    words = model.layout.pack(contribution(spec, model.layout, event, ts))
    result: list[tuple[Any, ...]] = []
    keep_until = 0
    for index, level in enumerate(tiling.levels):
        end = tiling.tile_end(ts, level)
        block, slot = tiling.block_of(level, end)
        result.append(("v", tiles.value_field(prefix, index, block), slot, words))
        for column_index, column in enumerate(spec.distinct_columns):
            value = event.get(column)
            if value is not None:
                result.append(("d", tiles.distinct_field(prefix, index, block), slot, column_index,
                               tiles.value_hash(value).to_bytes(8, "little")))
        retention = tiling.retention(level, spec.windows)
        keep_until = max(keep_until, end + retention)
        span = tiling.block_span(level)
        oldest_kept = (min(end, tiling.tile_end(now, level)) - retention) // span
        for stale in range(oldest_kept - STALE_BLOCKS, oldest_kept):
            result.append(("x", tiles.value_field(prefix, index, stale)))
            if spec.distinct_columns:
                result.append(("x", tiles.distinct_field(prefix, index, stale)))
    return result, keep_until // 1000 + 1


def flatten(model: ModelLayout, items: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The script's arguments for one event's updates of one model (see APPLY_SCRIPT in the Redis store)."""
    args: list[Any] = []
    for item in items:
        if item[0] == "v":
            args.extend(("v", item[1], item[2], model.struct_format, model.roles, model.guards, item[3]))
        elif item[0] == "d":
            args.extend(("d", item[1], item[2], item[3], item[4]))
        else:
            args.extend(("x", item[1]))
    return args
