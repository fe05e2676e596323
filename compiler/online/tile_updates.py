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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
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
        """The words of a tile holding only this event, packed."""
        return self.packer.pack(*[word(event, ts) for word in self._word_values])

    @cached_property
    def _word_values(self) -> tuple[Callable[[Mapping[str, Any], int], int | float], ...]:
        """Per word, its value for a tile holding only the event (the consumer's hot path: one call per word)."""
        def word(part: str, column: str | None, is_float: bool) -> Callable[[Mapping[str, Any], int], int | float]:
            zero = 0.0 if is_float else 0
            if part == "n":
                return (lambda event, ts: 1) if column is None else (lambda event, ts: event.get(column) is not None)
            if part == "lts":
                return lambda event, ts: zero if event.get(column) is None else ts
            convert = float if is_float else int
            return lambda event, ts: zero if (value := event.get(column)) is None else convert(value)

        return tuple(word(*w) for w in self.words)

    @cached_property
    def _level_steps(self) -> tuple[tuple[int, int, int, bytes, bytes], ...]:
        return tuple((level.size, level.span, level.retention, level.value_prefix, level.distinct_prefix)
                     for level in self.levels)

    def updates(self, event: Mapping[str, Any], ts: int, now: int) -> tuple[list[Any], int]:
        """The script's arguments for one event's updates at every level (see APPLY_SCRIPT in the Redis store),
        and the time (ms) until which the key must live.

        v, value prefix, block, slot, spec, contribution, oldest block kept
        d, distinct prefix, block, slot, column index, hash"""
        words = self.contribution(event, ts)
        args: list[Any] = []
        keep_until = 0
        hashes = [(index, tiles.value_hash(event[c]).to_bytes(8, "little"))
                  for index, c in enumerate(self.distinct) if event.get(c) is not None] if self.distinct else ()
        spec = self.merge_spec
        for size, span, retention, value_prefix, distinct_prefix in self._level_steps:
            end = -(-ts // size) * size
            block, offset = divmod(end - size, span)
            slot = offset // size
            # Blocks older than this are past retention (as of the event, or now for one dated in the future).
            oldest = (min(end, -(-now // size) * size) - retention) // span
            args += (b"v", value_prefix, block, slot, spec, words, oldest)
            for column_index, value_hash in hashes:
                args += (b"d", distinct_prefix, block, slot, column_index, value_hash)
            if end + retention > keep_until:
                keep_until = end + retention
        return args, keep_until // 1000 + 1
