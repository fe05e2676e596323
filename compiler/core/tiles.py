"""The window rule of `window_agg` features, and the tiles that compute it: one place for the arithmetic that the
training-set SQL, the batch writer, the online reader and the stream must all agree on.

The rule: the value of a window W at instant T covers the events with event time in (floor_g(T - W), T], where g
is the window's granularity (the coarsest tile level at most a twelfth of W, and never below the hop), and
floor_g rounds down to a multiple of g since the Unix epoch. A window therefore slides in steps of g at its old
end (W to W + g long) and is exact at its new end, T. Times are integer microseconds since the epoch, UTC.

Tiles: level L cuts time into (k*L, (k+1)*L], named by their end. The levels are the hop, then one hour and one
day where they are coarser multiples of the one before and the longest window holds at least two of them (a
coarser tile would rarely be read, and every event would write it). The interval (start, ceil_hop(T)] of a read
is covered by whole tiles, largest first where aligned (a 30-day window: about 30 day tiles, 23 hour tiles, 11
hop tiles); the last tile holds the events up to T. Online, tiles of one level are kept in blocks (all the hop
tiles of an hour, the hour tiles of a day, the day tiles of 32 days), so a read fetches a few blocks, not dozens
of tiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
TOP_BLOCK_TILES = 32  # day tiles per block (the coarsest level's block)
SPAN_PER_GRANULE = 12  # a window's granularity is at most W / 12: its old end is within 1/12 of W


def micros_of(value: timedelta) -> int:
    return value // timedelta(microseconds=1)


def check_hop(hop: int) -> None:
    """A hop that tiles an hour (below one), a day (below one) or whole days: the levels then nest."""
    if hop <= 0:
        raise ValueError("the hop must be longer than 0s")
    if hop < HOUR and HOUR % hop:
        raise ValueError("a hop below one hour must divide an hour (e.g. 1m, 5m, 10m, 15m, 30m)")
    if HOUR <= hop < DAY and DAY % hop:
        raise ValueError("a hop between one hour and one day must divide a day (e.g. 1h, 2h, 6h, 12h)")
    if hop >= DAY and hop % DAY:
        raise ValueError("a hop of a day or more must be whole days")


@dataclass(frozen=True)
class Tiling:
    """The tile levels of one hop, and the window arithmetic over them (all in microseconds)."""

    hop: int
    longest: int | None = None  # the longest window: coarser levels than it are never read, so not kept

    def __post_init__(self) -> None:
        check_hop(self.hop)
        nested = [self.hop]
        for coarser in (HOUR, DAY):
            if coarser > nested[-1] and coarser % nested[-1] == 0 and (self.longest is None or coarser <= self.longest):
                nested.append(coarser)
        # A coarser level is kept only where the longest window holds two of its tiles: below that it saves a
        # read nothing (the finer level's blocks are fetched anyway) and costs every event a second block to write.
        kept = [level for level in nested if level == self.hop or self.longest is None or 2 * level <= self.longest]
        object.__setattr__(self, "_nested", tuple(nested))
        object.__setattr__(self, "_levels", tuple(kept))

    @property
    def levels(self) -> tuple[int, ...]:
        """The levels whose tiles are kept and read, finest (the hop) first."""
        return self._levels  # type: ignore[attr-defined, no-any-return]

    def granularity(self, window: int) -> int:
        """The step of a window's old end: the coarsest level L with 12 * L <= W (the hop at least)."""
        fitting = [level for level in self.levels if SPAN_PER_GRANULE * level <= window]
        return fitting[-1] if fitting else self.hop

    def start(self, at: int, window: int) -> int:
        """The (excluded) old end of window W at instant `at`: floor_g(at - W)."""
        granule = self.granularity(window)
        return (at - window) // granule * granule

    @staticmethod
    def tile_end(ts: int, level: int) -> int:
        """The end of the level-`level` tile (k*L, (k+1)*L] holding instant `ts`."""
        return -(-ts // level) * level

    def cover(self, start: int, end: int) -> list[tuple[int, int]]:
        """Tiles (level, tile end) exactly covering (start, end]; `start` aligned to the hop at least, `end` a
        tile end of the hop. Largest tiles first where the position is aligned: few tiles for a long window."""
        tiles = []
        position = start
        levels = self.levels[::-1]
        while position < end:
            level = next(lv for lv in levels if position % lv == 0 and position + lv <= end)
            position += level
            tiles.append((level, position))
        return tiles

    def read_cover(self, at: int, window: int, cutoff: int | None = None) -> list[tuple[int, int]]:
        """The tiles whose events make window W's value at `at` (the last one holds events after `at` only when
        they are dated in the future). With a `cutoff` (a hop boundary: `run` wrote the tiles ending at or before
        it, the stream those after it), no tile spans the cutoff: each side is covered on its own."""
        start, end = self.start(at, window), self.tile_end(at, self.hop)
        if cutoff is not None and start < cutoff < end:
            return self.cover(start, cutoff) + self.cover(cutoff, end)
        return self.cover(start, end)

    # -- blocks: how tiles are grouped online ------------------------------------------------------------

    def block_span(self, level: int) -> int:
        """The time one block of level `level` spans: the next level up to the longest window (kept or not: a
        block's shape does not depend on which coarser levels are kept), or 32 tiles for the coarsest."""
        levels = self._nested  # type: ignore[attr-defined]
        index = levels.index(level)
        return levels[index + 1] if index + 1 < len(levels) else TOP_BLOCK_TILES * level

    def slots(self, level: int) -> int:
        return self.block_span(level) // level

    def block_of(self, level: int, tile_end: int) -> tuple[int, int]:
        """(block number, slot in the block) of the tile ending at `tile_end`."""
        span = self.block_span(level)
        tile_start = tile_end - level
        block = tile_start // span
        return block, (tile_start - block * span) // level

    def retention(self, level: int, windows: tuple[int, ...]) -> int:
        """How long after its end a tile of `level` may still be read: at a window's old end (windows whose
        granularity is at most this level) or in the tail before the next level's tile closes."""
        levels = self.levels
        index = levels.index(level)
        tail = levels[index + 1] if index + 1 < len(levels) else 0
        edges = [w + self.granularity(w) for w in windows if self.granularity(w) <= level]
        return max([tail, *edges]) + self.hop
