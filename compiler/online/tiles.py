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
    # per group: (value field index, slot) -> the tile's place in the group's tiles, -1 where not among them
    ranks: tuple[np.ndarray, ...] = field(default=(), repr=False)


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
    ranks = []
    for tiles, _ in by_window.values():
        rank = np.full((len(blocks), 256), -1, dtype=np.int64)
        for place, (index, slot) in enumerate(tiles):
            rank[index, slot] = place
        ranks.append(rank)
    return TileRead(tuple(fields), tuple((tuple(t), tuple(p)) for t, p in by_window.values()),
                    tuple(f.name for f in features),
                    len(blocks) if distinct else len(fields), unpack, layout, tuple(ranks))


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
FEW_WORDS = 256  # slots x features of one window up to which merging in Python beats array operations


def merge_rows(spec: WindowAgg, layout: Layout, read: TileRead, rows: Sequence[Sequence[bytes | None]]
               ) -> list[list[Any]]:
    """`merge` for many entities at once, each feature a column (the read path: array operations over all the
    entities' slots instead of a loop per entity). The same values, types and bits as `merge`: float sums are added
    one slot at a time, oldest tile first (np.add.at is unbuffered and in order), from -0.0."""
    count = len(rows)
    size = 1 + 8 * layout.width
    value_fields = read.distinct_offset
    flat = list(chain.from_iterable(rows if value_fields == len(read.fields) else
                                    (raws[:value_fields] for raws in rows)))
    held = list(map(is_not, flat, repeat(None)))
    present = list(compress(range(len(flat)), held))
    raws = list(compress(flat, held))
    data = np.frombuffer(b"".join(raws), dtype=np.uint8)
    sizes = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
    starts = np.cumsum(sizes) - sizes
    if (data[starts] != BLOCK_VERSION).any() or ((sizes - 1) % size).any():
        raise ValueError("a tile block of an unknown version or length")
    records = np.delete(data, starts).view(np.dtype([("slot", "u1"), ("words", "<i8", (layout.width,))]))
    lengths = (sizes - 1) // size
    where = np.array(present, dtype=np.int64)
    owner = np.repeat(where // value_fields, lengths)
    block = np.repeat(where % value_fields, lengths)
    slots = records["slot"].astype(np.int64)
    words = np.ascontiguousarray(records["words"])
    distinct = None
    if read.distinct_offset < len(read.fields):
        distinct = [[None if raw is None else decode_distinct(raw) for raw in raws[read.distinct_offset:]]
                    for raws in rows]
    columns: list[list[Any]] = [[None] * count for _ in read.names]
    with np.errstate(over="ignore", invalid="ignore"):  # floats past the range are inf, as merge makes them
        for (tiles, picks), rank in zip(read.groups, read.ranks, strict=True):
            _merge_group(tiles, picks, rank, owner, block, slots, words, count, distinct, layout, columns)
    return columns


def _merge_group(tiles: Sequence[tuple[int, int]], picks: Sequence[_Pick], rank: np.ndarray, owner: np.ndarray,
                 block: np.ndarray, slots: np.ndarray, words: np.ndarray, count: int, distinct: Any, layout: Layout,
                 columns: list[list[Any]]) -> None:
    place = rank[block, slots]
    chosen = np.flatnonzero(place >= 0)
    chosen = chosen[np.lexsort((place[chosen], owner[chosen]))]  # per entity, oldest tile first
    group = _Group(owner[chosen], words[chosen], count)
    few = len(chosen) * len(picks) <= FEW_WORDS
    for pick in picks:
        if pick.function == "count_distinct":
            assert distinct is not None
            columns[pick.out] = [_distinct_count(tiles, pick, d) for d in distinct]
        elif few:
            columns[pick.out] = group.few_feature(pick, layout)
        else:
            columns[pick.out] = group.feature(pick, layout)


class _Group:
    """The slots one window reads, for all entities (sorted by entity, oldest tile first)."""

    def __init__(self, owner: np.ndarray, words: np.ndarray, count: int) -> None:
        self.owner = owner
        self.words = words
        self.floats = words.view(np.float64)
        self.count = count
        # at most one slot per entity (sparse entities, the common case): each value is that slot's
        self.single = len(owner) < 2 or bool((owner[1:] != owner[:-1]).all())
        self._holding: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._totals: dict[tuple[int, int | None], np.ndarray] = {}
        self._few: dict[int | None, list[tuple[int, list[int], list[float]]]] = {}

    def few_feature(self, pick: _Pick, layout: Layout) -> list[Any]:
        """`feature` in Python, slot by slot (entity, then oldest tile first), as `merge` does: for the few slots
        of a read of sparse entities, cheaper than the array operations' calls."""
        function, counted, value = pick.function, pick.counted, pick.value
        if function == "count":
            counts = [0] * self.count
            for owner, row, _ in self._few_rows(None):
                counts[owner] += row[counted]
            return counts
        column: list[Any] = [None] * self.count
        slots = self._few_rows(counted)
        is_float = value in layout.floats
        if function in ("sum", "avg"):
            rows = [0] * self.count
            for owner, row, floats in slots:
                word = floats[value] if is_float else row[value]
                current = column[owner]
                column[owner] = word if current is None else current + word
                rows[owner] += row[counted]
            if function == "avg":
                column = [None if total is None else float(total) / rows[owner]
                          for owner, total in enumerate(column)]
        elif function == "last":
            newest = pick.newest
            times: list[int] = [0] * self.count
            for owner, row, floats in slots:
                if column[owner] is None or row[newest] > times[owner]:
                    column[owner], times[owner] = (floats[value] if is_float else row[value]), row[newest]
        else:  # min, max in sql_order: the first of equal values, as min() and max() keep
            smaller = function == "min"
            for owner, row, floats in slots:
                word = floats[value] if is_float else row[value]
                current = column[owner]
                if current is None or (_above(current, word) if smaller else _above(word, current)):
                    column[owner] = word
        return column

    def _few_rows(self, counted: int | None) -> list[tuple[int, list[int], list[float]]]:
        """(entity, the slot's words as ints, as floats) of every slot, or of those holding the column's values."""
        found = self._few.get(counted)
        if found is None:
            if None not in self._few:
                self._few[None] = list(zip(self.owner.tolist(), self.words.tolist(), self.floats.tolist(),
                                           strict=True))
            found = self._few[None]
            if counted is not None:
                found = self._few[counted] = [slot for slot in found if slot[1][counted]]
        return found

    def total(self, word: int, is_float: bool, counted: int | None = None, counts: bool = False) -> np.ndarray:
        """Per entity, the sum of a word over its slots (only those where the column `counted` has values).
        `counts`: the word counts rows (no sum of counts comes near int64's end)."""
        key = (word, counted)
        found = self._totals.get(key)
        if found is None:
            where, owner = (slice(None), self.owner) if counted is None else self.holding(counted)[:2]
            column = (self.floats if is_float else self.words)[where, word]
            if is_float:
                found = np.full(self.count, -0.0)
            else:
                bound = _INT_MAX // max(1, len(column))
                if (not counts and not self.single and len(column)
                        and (int(column.max()) > bound or int(column.min()) < -bound)):
                    raise OverflowError  # past int64: the caller merges entity by entity, in Python's integers
                found = np.zeros(self.count, dtype=np.int64)
            if self.single:
                found[owner] = column  # -0.0 + x is x, bit for bit
            else:
                np.add.at(found, owner, column)
            self._totals[key] = found
        return found

    def holding(self, counted: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The slots where the column has values: their positions, their owners, and the entities without any."""
        found = self._holding.get(counted)
        if found is None:
            where = np.flatnonzero(self.words[:, counted])
            owner = self.owner[where]
            has = np.zeros(self.count, dtype=bool)
            has[owner] = True
            found = self._holding[counted] = (where, owner, np.flatnonzero(~has))
        return found

    def feature(self, pick: _Pick, layout: Layout) -> list[Any]:
        if pick.function == "count":
            return self.total(pick.counted, False, counts=True).tolist()
        where, owner, missing = self.holding(pick.counted)
        is_float = pick.value in layout.floats
        if pick.function == "sum":
            out = self.total(pick.value, is_float, pick.counted)
        elif pick.function == "avg":
            rows = self.total(pick.counted, False, pick.counted, counts=True)
            total = self.total(pick.value, is_float, pick.counted)
            out = total.astype(np.float64) / np.maximum(rows, 1).astype(np.float64)
        else:  # min, max, last: per entity one slot's value, the first of a tie (as merge, that keeps the first)
            values = (self.floats if is_float else self.words)[where, pick.value]
            if self.single:
                out = np.zeros(self.count, dtype=values.dtype)
                out[owner] = values
            elif pick.function == "last":
                out = self._last(values, owner, self.words[where, pick.newest], len(missing))
            else:
                # np.fmin/np.maximum return the second of equal values (0.0 and -0.0): fed last slot first, the
                # first slot's wins, as in merge. NaN in sql_order: fmin skips it (from NaN: NaN only when every
                # value is), maximum returns it.
                start: float | int = (np.nan if pick.function == "min" else -np.inf) if is_float else (
                    _INT_MAX if pick.function == "min" else -_INT_MAX - 1)
                out = np.full(self.count, start, dtype=values.dtype)
                (np.fmin if pick.function == "min" else np.maximum).at(out, owner[::-1], values[::-1])
        if not len(missing):
            return out.tolist()
        held = out.astype(object)  # Python ints and floats, and None for the entities without values
        held[missing] = None
        return held.tolist()

    def _last(self, values: np.ndarray, owner: np.ndarray, newest: np.ndarray, missing: int) -> np.ndarray:
        """Per entity, the value of the slot with the newest time (the first of a tie, which tiles holding
        disjoint times never make)."""
        out = np.zeros(self.count, dtype=values.dtype)
        latest = np.full(self.count, -_INT_MAX - 1, dtype=np.int64)
        np.maximum.at(latest, owner, newest)
        at_latest = np.flatnonzero(newest == latest[owner])
        if len(at_latest) == self.count - missing:  # one slot per entity
            out[owner[at_latest]] = values[at_latest]
            return out
        order = np.lexsort((-np.arange(len(owner)), newest, owner))
        ends = np.ones(len(order), dtype=bool)
        np.not_equal(owner[order][1:], owner[order][:-1], out=ends[:-1])  # each entity's last: its newest
        out[owner[order[ends]]] = values[order[ends]]
        return out
