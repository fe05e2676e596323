"""One event's updates to a window model's tiles: what the stream sends the online store to apply (a server-side
script merges them into the blocks of online/tiles.py), computed on the client so that the store does no more
than add, compare and append.

An update is the event's contribution to one tile of one level: the slot's words as if the tile held that event
alone (merged by each word's role: add, min, max, or newest-wins for the last value), and for count_distinct the
value's hash. Integer words are merged by the store as doubles (Redis scripts compute in doubles): sums stay exact
while their magnitude is below 2^53. When an update starts a new block, the store removes the blocks of that level
that fell out of retention (`STALE_BLOCKS` of them before the oldest kept; a gap longer than that leaves a few
behind, removed by the next run or with the key).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skewless.core.windowagg import WindowAgg

from . import tiles

STALE_BLOCKS = 4


@dataclass(frozen=True)
class _Level:
    index: int
    size: int  # tile length, µs
    span: int  # block span, µs
    retention: int  # how long after its end a tile may be read, µs
    value_prefix: bytes  # b"<model>@<version>~<level>:"
    distinct_prefix: bytes  # b"<model>@<version>~<level>d:"


@dataclass(frozen=True)
class ModelLayout:
    """Everything about a model's tiles that does not depend on the event, worked out once: the script's packing,
    roles and guards per word, and each level's sizes, retention and field prefixes."""

    spec: WindowAgg
    layout: tiles.Layout
    struct_format: str  # Redis' Lua struct: "<" then i8 (int64) or d (float64) per word
    roles: str  # a (add), n (min), x (max), t (newest time; with the next word, the last value), l
    guards: str  # per word, comma-separated: the 1-based word holding its column's count (0: none)
    levels: tuple[_Level, ...]
    words: tuple[tuple[str, str | None, bool], ...]  # per word: part, column, is float
    distinct: tuple[str, ...]
    packer: struct.Struct

    @classmethod
    def of(cls, spec: WindowAgg, prefix: bytes) -> "ModelLayout":
        layout = tiles.Layout.of(spec)
        roles, guards, formats, words = [], [], [], []
        for position, name in enumerate(layout.names):
            part, _, column = name.partition(":")
            is_float = position in layout.floats
            formats.append("d" if is_float else "i8")
            words.append((part, column or None, is_float))
            if part in ("n", "sum"):
                roles.append("a")
                guards.append(0)
            else:
                roles.append({"min": "n", "max": "x", "lts": "t", "last": "l"}[part])
                guards.append(layout.position(f"n:{column}") + 1)
        tiling = spec.tiling
        levels = tuple(
            _Level(index, level, tiling.block_span(level), tiling.retention(level, spec.windows),
                   prefix + f"{index}:".encode(), prefix + f"{index}d:".encode())
            for index, level in enumerate(tiling.levels)
        )
        packer = struct.Struct("<" + "".join("d" if w[2] else "q" for w in words))
        return cls(spec, layout, "<" + "".join(formats), "".join(roles), ",".join(map(str, guards)), levels,
                   tuple(words), spec.distinct_columns, packer)

    def contribution(self, event: Mapping[str, Any], ts: int) -> bytes:
        """The words of a tile holding only this event, packed."""
        values: list[int | float] = []
        for part, column, is_float in self.words:
            value = event.get(column) if column else None
            if part == "n":
                values.append(1 if column is None else int(value is not None))
            elif value is None:
                values.append(0.0 if is_float else 0)
            elif part == "lts":
                values.append(ts)
            else:
                values.append(float(value) if is_float else int(value))
        return self.packer.pack(*values)

    def updates(self, event: Mapping[str, Any], ts: int, now: int) -> tuple[list[Any], int]:
        """The script's arguments for one event's updates at every level (see APPLY_SCRIPT in the Redis store),
        and the time (ms) until which the key must live.

        v, value prefix, block, slot, struct format, roles, guards, contribution, oldest block kept, distinct?
        d, distinct prefix, block, slot, column index, hash"""
        words = self.contribution(event, ts)
        args: list[Any] = []
        keep_until = 0
        hashes = [(index, tiles.value_hash(event[c]).to_bytes(8, "little"))
                  for index, c in enumerate(self.distinct) if event.get(c) is not None]
        for level in self.levels:
            end = -(-ts // level.size) * level.size
            block = (end - level.size) // level.span
            slot = (end - level.size - block * level.span) // level.size
            # Blocks older than this are past retention (as of the event, or now for one dated in the future).
            oldest = (min(end, -(-now // level.size) * level.size) - level.retention) // level.span
            args.extend(("v", level.value_prefix, block, slot, self.struct_format, self.roles, self.guards, words,
                         oldest, 1 if self.distinct else 0))
            for column_index, value_hash in hashes:
                args.extend(("d", level.distinct_prefix, block, slot, column_index, value_hash))
            keep_until = max(keep_until, end + level.retention)
        return args, keep_until // 1000 + 1
