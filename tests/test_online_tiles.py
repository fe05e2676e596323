"""online/tiles.py: reading many entities' window features at once (merge_rows) gives what merging each entity alone
(merge) gives — same values, same types, same bits — on random blocks."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.core.windowagg import parse_spec
from skewless.online import tiles

SPEC = parse_spec(
    {"aggs": [("*", "count"), ("qty", "sum"), ("qty", "min"), ("qty", "max"), ("qty", "last"), ("qty", "avg"),
              ("amount", "sum"), ("amount", "avg"), ("amount", "min"), ("amount", "max"), ("amount", "last"),
              ("amount", "count"), ("merchant", "count_distinct")],
     "windows": ["5m", "1h", "1d"], "hop": "5m"},
    {"qty": "BIGINT", "amount": "DOUBLE", "merchant": "VARCHAR"})
LAYOUT = tiles.Layout.of(SPEC)
FEATURES = SPEC.features("user")
HOUR = 3_600_000_000


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)  # type: ignore[arg-type]
    return a == b


def _word(name: str, kind_float: bool) -> st.SearchStrategy:
    if name == "n" or name.startswith("n:"):
        return st.integers(0, 3)  # counts
    if kind_float:
        return st.floats(allow_nan=False, allow_infinity=False, width=64) | st.sampled_from([0.0, -0.0, 1.5, math.nan])
    return st.integers(-(2**40), 2**40) | st.sampled_from([0, 1, 2])


_slot_words = st.tuples(*[_word(name, i in LAYOUT.floats) for i, name in enumerate(LAYOUT.names)])


@st.composite
def _reads(draw: st.DrawFn) -> tuple[tiles.TileRead, list[list[bytes | None]]]:
    at = draw(st.integers(100 * 24 * HOUR, 101 * 24 * HOUR))
    read = tiles.read_plan(SPEC, b"m@v~", FEATURES, at)
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        raws: list[bytes | None] = []
        for _ in range(read.distinct_offset):
            slots = draw(st.dictionaries(st.integers(0, 31), _slot_words, max_size=4))
            raws.append(None if not slots and draw(st.booleans()) else tiles.encode_values(LAYOUT, slots))
        for _ in range(len(read.fields) - read.distinct_offset):
            entries = draw(st.dictionaries(st.tuples(st.integers(0, 31), st.just(0)),
                                           st.lists(st.integers(0, 2**64 - 1), max_size=3), max_size=3))
            raws.append(tiles.encode_distinct(entries) if entries else None)
        rows.append(raws)
    return read, rows


@settings(max_examples=300, deadline=None)
@given(case=_reads())
def test_merging_many_entities_at_once_equals_merging_each(case: tuple[tiles.TileRead, list]) -> None:
    """Both ways merge_rows merges a read, entity by entity for a few slots and with array operations over every
    window at once for many, on the same reads (drawing a read costs more than merging it)."""
    read, rows = case
    alone = [tiles.merge(SPEC, LAYOUT, read, raws) for raws in rows]
    for way, few_words in (("entity by entity", 10**9), ("arrays", 0)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tiles, "FEW_WORDS", few_words)
            columns = tiles.merge_rows(SPEC, LAYOUT, read, rows)
        for position, name in enumerate(read.names):
            for entity, row in enumerate(alone):
                got, want = columns[position][entity], row[position]
                assert _same(got, want), (way, name, entity, got, want)


def test_a_sum_past_int64_is_left_to_the_entity_by_entity_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """The array merge adds in int64; a sum past it raises, and the reader merges that read entity by entity in
    Python's integers (as merge_rows does for a few slots)."""
    read = tiles.read_plan(SPEC, b"m@v~", FEATURES, 100 * 24 * HOUR + 13 * HOUR + HOUR // 2)  # tiles of 3 levels
    big = [2**62 if name.startswith("sum:qty") else 1 for name in LAYOUT.names]
    raws = [tiles.encode_values(LAYOUT, dict.fromkeys(range(32), big)) for _ in range(read.distinct_offset)]
    raws += [None] * (len(read.fields) - read.distinct_offset)
    merged = dict(zip(read.names, tiles.merge(SPEC, LAYOUT, read, raws), strict=True))
    assert merged["user__qty_sum__1d"] > 2**63
    monkeypatch.setattr(tiles, "FEW_WORDS", 10**9)
    few = dict(zip(read.names, tiles.merge_rows(SPEC, LAYOUT, read, [raws]), strict=True))
    assert few["user__qty_sum__1d"] == [merged["user__qty_sum__1d"]]
    monkeypatch.setattr(tiles, "FEW_WORDS", 0)
    with pytest.raises(OverflowError):
        tiles.merge_rows(SPEC, LAYOUT, read, [raws])
