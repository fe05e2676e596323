"""The window rule's arithmetic: tiles cover a read's interval exactly, few of them, and blocks hold them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skewless.core.tiles import DAY, HOUR, MINUTE, SECOND, Tiling, check_hop

HOPS = [SECOND, 30 * SECOND, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 2 * DAY]


@st.composite
def reads(draw: st.DrawFn) -> tuple[Tiling, int, int]:
    hop = draw(st.sampled_from(HOPS))
    window = hop * draw(st.integers(1, 24 * 40 if hop >= HOUR else 2000))
    at = draw(st.one_of(
        st.integers(-10 * DAY, 80 * 365 * DAY),
        st.integers(0, 60 * 365).map(lambda d: d * DAY + draw(st.sampled_from([-1, 0, 1]))),
    ))
    return Tiling(hop, window if draw(st.booleans()) else None), window, at


@given(reads())
@settings(max_examples=400, deadline=None)
def test_cover_is_exact_and_small(read: tuple[Tiling, int, int]) -> None:
    tiling, window, at = read
    start = tiling.start(at, window)
    granule = tiling.granularity(window)
    assert start % granule == 0 and start <= at - window < start + granule
    tiles = tiling.read_cover(at, window)
    position = start
    for level, end in tiles:
        assert level in tiling.levels and end % level == 0 and end - level == position
        position = end
    assert position == Tiling.tile_end(at, tiling.hop) and position - tiling.hop < at <= position
    # Bounded by the blocks of each level at both ends, plus whole top-level tiles.
    levels = tiling.levels
    bound = sum(2 * (tiling.slots(level) - 1) for level in levels[:-1]) + window // levels[-1] + 2
    assert len(tiles) <= bound


@given(reads())
@settings(max_examples=200, deadline=None)
def test_tiles_read_are_retained(read: tuple[Tiling, int, int]) -> None:
    tiling, window, at = read
    for level, end in tiling.read_cover(at, window):
        assert at - end < tiling.retention(level, (window,))


def test_levels_and_granularity() -> None:
    tiling = Tiling(5 * MINUTE)
    assert tiling.levels == (5 * MINUTE, HOUR, DAY)
    assert [tiling.granularity(w) for w in (5 * MINUTE, HOUR, 7 * DAY, 30 * DAY)] == [
        5 * MINUTE, 5 * MINUTE, HOUR, DAY]
    assert tiling.block_of(5 * MINUTE, 5 * MINUTE) == (0, 0)
    assert tiling.block_of(5 * MINUTE, HOUR) == (0, 11)
    assert tiling.block_of(DAY, 33 * DAY) == (1, 0)
    assert Tiling(DAY).levels == (DAY,) and Tiling(2 * HOUR).levels == (2 * HOUR, DAY)


def test_coarser_levels_need_two_tiles_of_the_longest_window() -> None:
    """A level the longest window cannot hold twice is not kept (each event would write it for no read), and
    dropping it leaves the blocks of the other levels as they are."""
    assert Tiling(5 * MINUTE, HOUR).levels == (5 * MINUTE,)
    assert Tiling(5 * MINUTE, 2 * HOUR).levels == (5 * MINUTE, HOUR)
    assert Tiling(5 * MINUTE, DAY).levels == (5 * MINUTE, HOUR)
    assert Tiling(5 * MINUTE, 2 * DAY).levels == (5 * MINUTE, HOUR, DAY)
    spans = {HOUR: {5 * MINUTE: HOUR}, 2 * HOUR: {5 * MINUTE: HOUR, HOUR: 32 * HOUR},
             DAY: {5 * MINUTE: HOUR, HOUR: DAY}, 2 * DAY: {5 * MINUTE: HOUR, HOUR: DAY, DAY: 32 * DAY}}
    for longest, expected in spans.items():
        tiling = Tiling(5 * MINUTE, longest)
        assert {level: tiling.block_span(level) for level in tiling.levels} == expected
        assert all(tiling.granularity(w) in tiling.levels for w in range(5 * MINUTE, longest + 1, 5 * MINUTE))


def test_window_rule_at_hop_boundaries() -> None:
    """(floor_g(T - W), T]: an event exactly at the old end is out, one microsecond later is in."""
    tiling = Tiling(5 * MINUTE)
    boundary = 1000 * DAY
    assert tiling.start(boundary, HOUR) == boundary - HOUR
    assert tiling.start(boundary + 1, HOUR) == boundary - HOUR
    assert tiling.start(boundary - 1, HOUR) == boundary - HOUR - 5 * MINUTE


@pytest.mark.parametrize("hop", [7 * MINUTE, 5 * HOUR, 36 * HOUR, 0])
def test_hops_that_do_not_nest_are_refused(hop: int) -> None:
    with pytest.raises(ValueError):
        check_hop(hop)


@given(reads(), st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_a_cutoff_splits_the_cover_without_a_tile_across_it(read: tuple[Tiling, int, int], back: int) -> None:
    tiling, window, at = read
    cutoff = (at // tiling.hop - back) * tiling.hop
    tiles = tiling.read_cover(at, window, cutoff)
    position = tiling.start(at, window)
    for level, end in tiles:
        assert end - level == position and not end - level < cutoff < end
        position = end
    assert position == Tiling.tile_end(at, tiling.hop)
