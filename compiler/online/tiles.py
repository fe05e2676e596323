"""Window features online: partial aggregates per tile, kept in blocks in the entity's hash, merged at read time
so that a window slides while no event arrives (the rule and the tile arithmetic: core/tiles.py).

Fields (in the entity's hash, beside its other models):
    <model>@<version>~<level>:<block>    the value slots of the block's tiles
    <model>@<version>~<level>d:<block>   the distinct-value hashes of the block's tiles (count_distinct)
    <model>@<version>~#gen               the generation of the batch run that last replaced the model's tiles
`level` is the level's index (0 = the hop). A value block: 0x01, then per tile holding events: its slot (1 byte)
and one 8-byte little-endian word per entry of the layout (int64, or float64 for a float column's values):
rows, then per counted column its non-NULL count, then per value column sum, min, max, the newest event time
with a value (µs) and that value (a tie on time: the greatest). A distinct block: 0x01, then per (slot, column):
slot (1 byte), column index (1 byte), count (4 bytes), that many 8-byte hashes (the first 8 bytes of SHA-1 of the
value's canonical text): counted exactly up to a hash collision (p < n² / 2^65 for n values).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain, compress, repeat
from operator import is_not
from typing import Any

import numpy as np

from skewless.core.tiles import Tiling
from skewless.core.windowagg import WindowAgg, WindowFeature

BLOCK_VERSION = 1
_SLOT = struct.Struct("<B")
_DISTINCT_HEAD = struct.Struct("<BBI")
_HASH = struct.Struct("<Q")


@dataclass(frozen=True)
class Layout:
    """The words of one tile's slot, from the model's aggregations."""

    names: tuple[str, ...]
    floats: frozenset[int]  # positions holding float64

    @classmethod
    def of(cls, spec: WindowAgg) -> "Layout":
        words = spec.words()
        return cls(tuple(name for name, _ in words),
                   frozenset(i for i, (_, kind) in enumerate(words) if kind == "DOUBLE"))

    @property
    def width(self) -> int:
        return len(self.names)

    def position(self, name: str) -> int:
        return self.names.index(name)

    def pack(self, words: Sequence[int | float]) -> bytes:
        return b"".join(struct.pack("<d" if i in self.floats else "<q", w) for i, w in enumerate(words))


def value_field(prefix: bytes, level: int, block: int) -> bytes:
    return prefix + f"{level}:{block}".encode()


def distinct_field(prefix: bytes, level: int, block: int) -> bytes:
    return prefix + f"{level}d:{block}".encode()


def encode_values(layout: Layout, slots: dict[int, Sequence[int | float]]) -> bytes:
    parts = [bytes([BLOCK_VERSION])]
    for slot in sorted(slots):
        parts.append(_SLOT.pack(slot))
        parts.append(layout.pack(slots[slot]))
    return b"".join(parts)


def encode_distinct(entries: dict[tuple[int, int], Iterable[int]]) -> bytes:
    parts = [bytes([BLOCK_VERSION])]
    for (slot, column), hashes in sorted(entries.items()):
        values = sorted(set(hashes))
        parts.append(_DISTINCT_HEAD.pack(slot, column, len(values)))
        parts.extend(_HASH.pack(h) for h in values)
    return b"".join(parts)


def decode_distinct(raw: bytes) -> dict[tuple[int, int], list[int]]:
    if raw[0] != BLOCK_VERSION:
        raise ValueError(f"unknown tile block version {raw[0]}")
    entries = {}
    at = 1
    while at < len(raw):
        slot, column, count = _DISTINCT_HEAD.unpack_from(raw, at)
        at += _DISTINCT_HEAD.size
        entries[(slot, column)] = list(struct.unpack_from(f"<{count}Q", raw, at))
        at += 8 * count
    return entries


def value_hash(value: Any) -> int:
    """The hash count_distinct counts: of a canonical text, so that one SQL value is one hash whichever path
    (batch or stream) saw it: 42 and 42.0 are one value, as SQL compares them; -0.0 is 0.0."""
    if isinstance(value, bool):
        text = "b:" + ("1" if value else "0")
    elif isinstance(value, int):
        text = f"n:{value}"
    elif isinstance(value, float):
        if value.is_integer():
            text = f"n:{int(value)}"
        elif math.isnan(value):
            text = "n:nan"
        else:
            text = f"n:{value!r}"
    elif isinstance(value, (datetime, date)):
        text = "t:" + value.isoformat()
    else:
        text = "s:" + str(value)
    return _HASH.unpack(hashlib.sha1(text.encode()).digest()[:8])[0]


# -- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pick:
    """One feature of a read: where its result goes, its function and the words it reads (-1: none)."""

    out: int
    function: str
    counted: int  # the column's count word (0: rows)
    value: int  # sum, min, max or last word
    newest: int  # lts word (last)
    distinct: int  # the column's index among distinct columns (count_distinct)


@dataclass(frozen=True)
class TileRead:
    """What to fetch for a model's window features at one instant, and how to merge it: features that read the
    same tiles (one window) are merged from one gathering of them."""

    fields: tuple[bytes, ...]
    groups: tuple[tuple[tuple[tuple[int, int], ...], tuple[_Pick, ...]], ...]  # tiles (field, slot), picks
    names: tuple[str, ...]  # the features, in the order merge returns them
    distinct_offset: int  # fields from here on are distinct blocks (same order as the value blocks)
    unpack: Any  # struct unpack_from of one slot's words
    layout: Layout
    # (group, value field index, slot) -> the tile's place in the group's tiles, -1 where not among them
    places: np.ndarray = field(repr=False)


def read_plan(spec: WindowAgg, prefix: bytes, features: Sequence[WindowFeature], at: int,
              cutoff: int | None = None) -> TileRead:
    tiling: Tiling = spec.tiling
    layout = Layout.of(spec)
    levels = tiling.levels
    blocks: dict[tuple[int, int], int] = {}
    by_window: dict[int, tuple[list[tuple[int, int]], list[_Pick]]] = {}
    for out, feature in enumerate(features):
        if feature.window not in by_window:
            tiles = []
            for level, end in tiling.read_cover(at, feature.window, cutoff):
                block, slot = tiling.block_of(level, end)
                index = blocks.setdefault((levels.index(level), block), len(blocks))
                tiles.append((index, slot))
            by_window[feature.window] = (tiles, [])
        by_window[feature.window][1].append(_pick(spec, layout, feature, out))
    fields = [value_field(prefix, level, block) for level, block in blocks]
    distinct = bool(spec.distinct_columns)
    if distinct:
        fields += [distinct_field(prefix, level, block) for level, block in blocks]
    unpack = struct.Struct("<" + "".join("d" if i in layout.floats else "q" for i in range(layout.width))).unpack_from
    places = np.full((len(by_window), len(blocks), 256), -1, dtype=np.int64)
    for group, (tiles, _) in enumerate(by_window.values()):
        for place, (index, slot) in enumerate(tiles):
            places[group, index, slot] = place
    return TileRead(tuple(fields), tuple((tuple(t), tuple(p)) for t, p in by_window.values()),
                    tuple(f.name for f in features),
                    len(blocks) if distinct else len(fields), unpack, layout, places)


def _pick(spec: WindowAgg, layout: Layout, feature: WindowFeature, out: int) -> _Pick:
    function, column = feature.aggregation.function, feature.aggregation.column
    names = layout.names

    def word(part: str) -> int:
        name = f"{part}:{column}"
        return names.index(name) if name in names else -1

    counted = 0 if column is None or function == "count_distinct" else word("n")
    value = word({"sum": "sum", "avg": "sum", "min": "min", "max": "max", "last": "last"}.get(function, "sum"))
    distinct = spec.distinct_columns.index(column) if function == "count_distinct" and column else -1
    return _Pick(out, function, counted, value, word("lts"), distinct)


def merge(spec: WindowAgg, layout: Layout, read: TileRead, raws: Sequence[bytes | None]) -> list[Any]:
    """The read's features, in order, for one entity, from the fetched blocks (None: absent)."""
    unpack = read.unpack
    size = 1 + 8 * layout.width
    values: list[dict[int, tuple[Any, ...]] | None] = []
    for raw in raws[:read.distinct_offset]:
        if raw is None:
            values.append(None)
            continue
        if raw[0] != BLOCK_VERSION or (len(raw) - 1) % size:
            raise ValueError("a tile block of an unknown version or length")
        values.append({raw[at]: unpack(raw, at + 1) for at in range(1, len(raw), size)})
    distinct = [None if raw is None else decode_distinct(raw) for raw in raws[read.distinct_offset:]]
    result: list[Any] = [None] * len(read.names)
    for tiles, picks in read.groups:
        slots = [block[slot] for index, slot in tiles if (block := values[index]) is not None and slot in block]
        holding_by: dict[int, list[tuple[Any, ...]]] = {}  # the slots where a column has values, per column
        for pick in picks:
            function = pick.function
            if function == "count_distinct":
                result[pick.out] = _distinct_count(tiles, pick, distinct)
                continue
            counted = pick.counted
            if function == "count":
                result[pick.out] = sum([s[counted] for s in slots])
                continue
            holding = holding_by.get(counted)
            if holding is None:
                holding = holding_by[counted] = [s for s in slots if s[counted]]
            if not holding:
                continue
            value = pick.value
            if function == "sum":
                result[pick.out] = _total(holding, value)
            elif function == "avg":
                result[pick.out] = float(_total(holding, value)) / sum([s[counted] for s in holding])
            elif function == "min":
                result[pick.out] = min([s[value] for s in holding], key=sql_order)
            elif function == "max":
                result[pick.out] = max([s[value] for s in holding], key=sql_order)
            else:  # last
                newest = pick.newest
                best = holding[0]
                for s in holding:
                    if s[newest] > best[newest]:
                        best = s
                result[pick.out] = best[value]
    return result


def sql_order(value: int | float) -> tuple[bool, int | float]:
    """The order SQL engines give numbers: NaN above every other (MIN skips it, MAX returns it)."""
    return (value != value, value)  # NaN: the value unequal to itself


def _above(a: int | float, b: int | float) -> bool:
    """a > b in sql_order."""
    return a > b or (a != a and b == b)


def _total(slots: Sequence[Sequence[int | float]], position: int) -> int | float:
    """Tiles' partial sums added oldest first (the order the stream and a training set's engine may differ in
    for floats: see the README's bound)."""
    total = slots[0][position]
    for s in slots[1:]:
        total += s[position]
    return total


def _distinct_count(tiles: Sequence[tuple[int, int]], pick: _Pick,
                    distinct: Sequence[dict[tuple[int, int], list[int]] | None]) -> int:
    seen: set[int] = set()
    for index, slot in tiles:
        entries = distinct[index] if distinct else None
        if entries is not None:
            seen.update(entries.get((slot, pick.distinct), ()))
    return len(seen)


_INT_MAX = int(np.iinfo(np.int64).max)
FEW_WORDS = 256  # slots x features of a read up to which merging entity by entity beats array operations


def merge_rows(spec: WindowAgg, layout: Layout, read: TileRead, rows: Sequence[Sequence[bytes | None]]
               ) -> list[list[Any]]:
    """`merge` for many entities at once, each feature a column: the same values, types and bits. The read path:
    array operations over every entity's slots in every window of the read at once, a few calls per aggregation
    (not per feature), since array calls, not words, are what a read of 100 entities costs. A few slots are merged
    entity by entity instead. Raises OverflowError for an integer sum past int64 (the caller merges that read
    entity by entity, in Python's integers)."""
    count = len(rows)
    size = 1 + 8 * layout.width
    value_fields = read.distinct_offset
    flat = list(chain.from_iterable(rows if value_fields == len(read.fields) else
                                    (raws[:value_fields] for raws in rows)))
    held = list(map(is_not, flat, repeat(None)))
    raws = list(compress(flat, held))
    sizes = list(map(len, raws))
    if (sum(sizes) // size) * len(read.names) <= FEW_WORDS:
        merged = [merge(spec, layout, read, entity) for entity in rows]
        return [list(column) for column in zip(*merged, strict=True)] if merged else [[] for _ in read.names]
    data = np.frombuffer(b"".join(raws), dtype=np.uint8)
    lengths = np.array(sizes, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    if (data[starts] != BLOCK_VERSION).any() or ((lengths - 1) % size).any():
        raise ValueError("a tile block of an unknown version or length")
    records = np.delete(data, starts).view(np.dtype([("slot", "u1"), ("words", "<i8", (layout.width,))]))
    entity, block = np.divmod(np.array(list(compress(range(len(flat)), held)), dtype=np.int64), value_fields)
    lengths = (lengths - 1) // size
    slots = _Slots(read, np.repeat(entity, lengths), np.repeat(block, lengths), records, count)
    distinct = None
    if value_fields < len(read.fields):
        distinct = [[None if raw is None else decode_distinct(raw) for raw in fields[value_fields:]]
                    for fields in rows]
    columns: list[list[Any]] = [[] for _ in read.names]
    results: dict[tuple[str, int, int, int], list[list[Any]]] = {}
    with np.errstate(over="ignore", invalid="ignore"):  # floats past the range are inf, as merge makes them
        for window, (tiles, picks) in enumerate(read.groups):
            for pick in picks:
                if pick.function == "count_distinct":
                    assert distinct is not None
                    columns[pick.out] = [_distinct_count(tiles, pick, d) for d in distinct]
                    continue
                key = (pick.function, pick.counted, pick.value, pick.newest)
                found = results.get(key)
                if found is None:
                    found = results[key] = slots.feature(pick, pick.value in layout.floats)
                columns[pick.out] = found[window]
    return columns


class _Slots:
    """The slots a read's windows cover, for all entities: a slot in several windows is there once per window,
    and they are sorted by (entity, window), oldest tile first. A feature is computed for every window at once:
    each (entity, window) is one segment."""

    def __init__(self, read: TileRead, entity: np.ndarray, block: np.ndarray, records: np.ndarray, count: int
                 ) -> None:
        windows = len(read.groups)
        places = read.places[:, block, records["slot"]]  # (window, record) -> its tile's place in the window, or -1
        window, record = np.nonzero(places >= 0)
        segment = entity[record] * windows + window
        order = np.lexsort((places[window, record], segment))
        self.segment = segment[order]
        self.words = np.ascontiguousarray(records["words"][record[order]])
        self.floats = self.words.view(np.float64)
        self.count = count
        self.windows = windows
        self._holding: dict[int, _Segments] = {}

    def holding(self, counted: int) -> "_Segments":
        """The slots where the column `counted` has values (all slots for the row count), cut into segments."""
        found = self._holding.get(counted)
        if found is None:
            where = None if counted == 0 else np.flatnonzero(self.words[:, counted])
            if where is not None and len(where) == len(self.segment):  # no NULLs: the segments of all slots
                found = self.holding(0)
            else:
                found = _Segments(self, where)
            self._holding[counted] = found
        return found

    def feature(self, pick: _Pick, is_float: bool) -> list[list[Any]]:
        """The pick's feature in every window of the read: per window, one value per entity."""
        function = pick.function
        if function == "count":
            return self._columns(self.holding(0).total(pick.counted, False, counts=True), None)
        part = self.holding(pick.counted)
        if function == "sum":
            out = part.total(pick.value, is_float)
        elif function == "avg":
            rows = part.total(pick.counted, False, counts=True)
            out = part.total(pick.value, is_float).astype(np.float64) / np.maximum(rows, 1).astype(np.float64)
        elif function == "last":
            out = part.last(pick.value, pick.newest, is_float)
        else:
            out = part.extreme(pick.value, is_float, function == "min")
        return self._columns(out, part.missing)

    def _columns(self, out: np.ndarray, missing: np.ndarray | None) -> list[list[Any]]:
        """Per window, the entities' values as Python ints and floats, None for the entities without any."""
        if missing is not None and len(missing):
            out = out.astype(object)
            out[missing] = None
        return out.reshape(self.count, self.windows).T.tolist()  # type: ignore[no-any-return]


class _Segments:
    """Some of the read's slots (all, or those holding a column's values), cut into (entity, window) segments."""

    def __init__(self, slots: _Slots, where: np.ndarray | None) -> None:
        self.words = slots.words if where is None else slots.words[where]
        self.floats = self.words.view(np.float64)
        segment = slots.segment if where is None else slots.segment[where]
        self.segment = segment
        self.size = slots.count * slots.windows
        change = np.ones(len(segment), dtype=bool)
        np.not_equal(segment[1:], segment[:-1], out=change[1:])
        self.starts = np.flatnonzero(change)
        self.ids = segment[self.starts]  # the (entity, window) of each segment
        self.single = len(self.starts) == len(segment)  # one slot per segment (sparse entities, the common case)
        has = np.zeros(self.size, dtype=bool)
        has[self.ids] = True
        self.missing = np.flatnonzero(~has)
        self._totals: dict[int, np.ndarray] = {}  # a word's type is the layout's: the word is the key

    def _dense(self, values: np.ndarray, fill: int | float = 0) -> np.ndarray:
        out = np.full(self.size, fill, dtype=values.dtype)
        out[self.ids] = values
        return out

    def total(self, word: int, is_float: bool, counts: bool = False) -> np.ndarray:
        """Per segment, the sum of a word over its slots. Floats are added one slot at a time, oldest tile first
        (np.add.at is unbuffered and in order), from -0.0 (-0.0 + x is x, bit for bit). `counts`: the word counts
        rows (no sum of counts comes near int64's end)."""
        found = self._totals.get(word)
        if found is not None:
            return found
        if self.single or not len(self.segment):
            found = self._dense((self.floats if is_float else self.words)[:, word], -0.0 if is_float else 0)
        elif is_float:
            found = np.full(self.size, -0.0)
            np.add.at(found, self.segment, self.floats[:, word])
        else:
            column = self.words[:, word]
            bound = _INT_MAX // len(column)
            if not counts and (int(column.max()) > bound or int(column.min()) < -bound):
                raise OverflowError  # past int64: the caller merges entity by entity, in Python's integers
            found = self._dense(np.add.reduceat(column, self.starts))
        self._totals[word] = found
        return found

    def extreme(self, word: int, is_float: bool, smallest: bool) -> np.ndarray:
        """Per segment, the least or greatest value in sql_order, the first of equal values (as min() and max()
        keep): np.fmin/np.maximum return the second of equal values (0.0 and -0.0), so they are fed the last slot
        first. NaN: fmin skips it (from NaN: NaN only when every value is), maximum returns it."""
        values = (self.floats if is_float else self.words)[:, word]
        if self.single or not len(values):
            return self._dense(values)
        if not is_float:
            return self._dense((np.minimum if smallest else np.maximum).reduceat(values, self.starts))
        out = np.full(self.size, np.nan if smallest else -np.inf)
        (np.fmin if smallest else np.maximum).at(out, self.segment[::-1], values[::-1])
        return out

    def last(self, word: int, newest: int, is_float: bool) -> np.ndarray:
        """Per segment, the value of the slot with the newest time, the first of a tie (which tiles holding
        disjoint times never make): sorted by segment, then newest time first, stably."""
        values = (self.floats if is_float else self.words)[:, word]
        if self.single or not len(values):
            return self._dense(values)
        order = np.lexsort((~self.words[:, newest], self.segment))  # segments keep their places
        return self._dense(values[order[self.starts]])
