"""One event's updates to a window model's tiles: what the stream sends the online store to apply (a server-side
script merges them into the blocks of online/tiles.py), computed on the client so that the store does no more
than add, compare and append.

An update is the event's contribution to one tile of one level: the slot's words as if the tile held that event
alone (merged by each word's role: add, min, max, or newest-wins for the last value), and for count_distinct the
value's hash. Integer words are merged by the store as doubles (Redis scripts compute in doubles): sums stay exact
while their magnitude is below 2^53. When an update starts a new block, the store removes the blocks of that level
that fell out of retention (`STALE_BLOCKS` of them before the oldest kept; a gap longer than that leaves a few
behind, removed by the next run or with the key). Each update travels as one byte string (value_update,
distinct_update), a key's updates joined into one argument: few arguments per event to pack and to read.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from skewless.core.windowagg import WindowAgg

from . import tiles

STALE_BLOCKS = 4
_VALUE_PLACE = struct.Struct("<qBq")  # block, slot, oldest block kept
_DISTINCT_PLACE = struct.Struct("<qBB")  # block, slot, column index


def _text(value: bytes) -> bytes:
    return struct.pack("<H", len(value)) + value


def value_update(prefix: bytes, spec: bytes, block: int, slot: int, oldest: int, contribution: bytes) -> bytes:
    """One value update as the store's script reads it: b"v", the prefix and the merge spec (each after its
    uint16 length), block (int64), slot (uint8), the oldest block kept (int64), then the slot's words."""
    return b"v" + _text(prefix) + _text(spec) + _VALUE_PLACE.pack(block, slot, oldest) + contribution


def distinct_update(prefix: bytes, block: int, slot: int, column: int, value_hash: bytes) -> bytes:
    """One distinct update: b"d", the prefix (after its uint16 length), block (int64), slot and column index
    (uint8 each), then the value's 8-byte hash."""
    return b"d" + _text(prefix) + _DISTINCT_PLACE.pack(block, slot, column) + value_hash


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
    merge_spec: bytes  # what the script needs to merge a slot: "<struct format>|<roles>|<guards>|<has distinct blocks>"

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
        struct_format, role_text, guard_text = "<" + "".join(formats), "".join(roles), ",".join(map(str, guards))
        return cls(spec, layout, struct_format, role_text, guard_text, levels, tuple(words), spec.distinct_columns,
                   packer, f"{struct_format}|{role_text}|{guard_text}|{1 if spec.distinct_columns else 0}".encode())

    def contribution(self, event: Mapping[str, Any], ts: int) -> bytes:
        """The words of a tile holding only this event, packed (the consumer's hot path)."""
        counted, valued = self._columns
        words: list[Any] = [1]
        for column in counted:
            words.append(event.get(column) is not None)
        for column, convert, zero in valued:
            value = event.get(column)
            if value is None:
                words += (zero, zero, zero, 0, zero)
            else:
                value = convert(value)
                words += (value, value, value, ts, value)  # sum, min, max, newest time, last
        return self.packer.pack(*words)

    @cached_property
    def _columns(self) -> tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any], int | float], ...]]:
        """The counted columns, and per value column its conversion and zero, in the layout's order."""
        counted = self.spec.counted_columns
        valued = tuple((c, float, 0.0) if self.layout.position(f"sum:{c}") in self.layout.floats else (c, int, 0)
                       for c in self.spec.value_columns)
        names = ["n", *(f"n:{c}" for c in counted)]
        for column, *_ in valued:
            names += [f"{part}:{column}" for part in ("sum", "min", "max", "lts", "last")]
        assert tuple(names) == self.layout.names, "contribution() follows WindowAgg.words()"
        return counted, valued

    @cached_property
    def _level_steps(self) -> tuple[tuple[int, int, int, bytes, bytes], ...]:
        return tuple((level.size, level.span, level.retention, level.value_prefix, level.distinct_prefix)
                     for level in self.levels)

    @cached_property
    def _placements(self) -> dict[tuple[int, int], tuple[tuple[bytes, ...], tuple[tuple[bytes, int, int], ...], int]]:
        return {}

    def _placement(self, ts: int, now: int) -> tuple[tuple[bytes, ...], tuple[tuple[bytes, int, int], ...], int]:
        """Each level's value update with the contribution left out, each level's distinct prefix, block and slot,
        and the key's keep-until: the same for every event of one hop tile (every level's tile is a whole number
        of hops), so kept."""
        hop = self.levels[0].size
        key = (-(-ts // hop), now)
        found = self._placements.get(key)
        if found is None:
            heads = []
            places = []
            keep_until = 0
            for size, span, retention, value_prefix, distinct_prefix in self._level_steps:
                end = -(-ts // size) * size
                block, offset = divmod(end - size, span)
                # Blocks older than this are past retention (as of the event, or now for one dated in the future).
                oldest = (min(end, -(-now // size) * size) - retention) // span
                heads.append(value_update(value_prefix, self.merge_spec, block, offset // size, oldest, b""))
                places.append((distinct_prefix, block, offset // size))
                keep_until = max(keep_until, end + retention)
            if len(self._placements) > 4096:
                self._placements.clear()
            found = self._placements[key] = (tuple(heads), tuple(places), keep_until // 1000 + 1)
        return found

    def updates(self, event: Mapping[str, Any], ts: int, now: int) -> tuple[list[bytes], int]:
        """The event's encoded updates at every level (value_update, distinct_update: what APPLY_SCRIPT in the
        Redis store reads), and the time (ms) until which the key must live."""
        heads, places, keep_until = self._placement(ts, now)
        words = self.contribution(event, ts)
        updates = [head + words for head in heads]
        if self.distinct:
            hashes = [(index, tiles.value_hash(event[c]).to_bytes(8, "little"))
                      for index, c in enumerate(self.distinct) if event.get(c) is not None]
            for prefix, block, slot in places:
                updates += [distinct_update(prefix, block, slot, index, value_hash) for index, value_hash in hashes]
        return updates, keep_until
