"""The online store interface: what the writer, the reader, the server (and streaming tiles) need of a key/value
store, and a small registry that opens the one `online_store: {type: ...}` names.

Keys and values are bytes in the versioned format of online/format.py; a store only has to keep them. Redis is
the implementation (skewless/adapters/redis_online.py); a new store implements this class and joins the table.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skewless.core.engines import ONLINE_STORES  # the table of store types
from skewless.core.errors import ProjectError, did_you_mean

WriteRow = tuple[bytes, bytes, bytes, int]  # entity key, field, value (b"": remove), expire-at in ms (0: none)
ReadRequest = tuple[bytes, Sequence[bytes]]  # entity key, the fields to read from it
# entity key, a field prefix, the fields that are to hold it (name, value), expire-at in ms (0: none)
ReplaceRow = tuple[bytes, bytes, Sequence[tuple[bytes, bytes]], int]
# One event applied to one entity: its key, the event's id in its stream, the field recording applied ids, the
# expire-at (ms) the key needs, and the updates (encoded by online/tile_updates.py) of every model of that entity.
EventUnit = tuple[bytes, str, bytes, int, Sequence[bytes]]
StreamEntry = tuple[str, dict[str, str]]  # an event's id in its stream and its fields as text


class EventStream(ABC):
    """One consumer of a stream of events in a consumer group: the stream's entries are shared among the group's
    consumers, each acknowledged after its updates are applied; what a consumer read and did not acknowledge
    (it died) is pending, and another consumer may claim it."""

    @abstractmethod
    def read(self, count: int, block_ms: int) -> list[StreamEntry]:
        """New entries for this consumer (waiting up to block_ms for one)."""

    @abstractmethod
    def pending(self, count: int) -> list[StreamEntry]:
        """Entries delivered to this consumer before and not acknowledged (after a restart: what it was doing)."""

    @abstractmethod
    def claim(self, min_idle_ms: int, count: int) -> list[StreamEntry]:
        """Entries pending at other consumers for longer than min_idle_ms, taken over by this one."""

    @abstractmethod
    def ack(self, ids: Sequence[str]) -> None:
        """Acknowledge entries whose updates are applied."""

    @abstractmethod
    def low_watermark(self) -> str:
        """An id below which every entry of the group is acknowledged (never to be delivered again)."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """pending (entries delivered and not acknowledged), lag (entries not yet delivered, when known),
        oldest_pending_ms (age of the oldest pending entry)."""

    @abstractmethod
    def advance_watermark(self, newest: int | None) -> int | None:
        """Raise the stream's watermark (the newest event time seen, µs) to `newest` if higher; the watermark."""

    @abstractmethod
    def cutoffs(self, models: Sequence[str]) -> dict[str, int]:
        """Per model, the time (µs) up to which `run` owns its tiles (OnlineStore.set_cutoff); absent: none."""

    @abstractmethod
    def report_late(self, entries: Sequence[tuple[StreamEntry, str]]) -> None:
        """Keep entries that came too late to be applied (with the reason), for inspection."""


class OnlineStore(ABC):
    """One connection (or pool) to an online store; safe to read from several threads."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the store is, for messages: never holds a secret."""

    @abstractmethod
    def write(self, rows: Iterable[WriteRow], generation: int) -> int:
        """Upsert rows (an empty value removes the field) as one run of the writer, `generation` being the instant
        that run read the warehouse (microseconds). A field last written by a newer generation is left alone, so a
        run racing a newer one never goes back in time; the same or a newer generation replaces it, whatever its
        event time: the warehouse's corrected truth wins. Returns how many rows were applied."""

    @abstractmethod
    def replace_fields(self, rows: Iterable[ReplaceRow], generation: int) -> int:
        """For each row, make the key's fields that start with the prefix exactly the given ones (others with that
        prefix are removed), unless a newer generation replaced them (its mark: the field `prefix + b"#gen"`).
        Keeps the key until at least expire-at. Returns how many rows were applied. (Window tiles.)"""

    @abstractmethod
    def apply_events(self, units: Sequence[EventUnit], low_watermark: str) -> tuple[int, int]:
        """Apply events to tiles, each at most once: a unit whose event id the entity's applied field holds is
        skipped (it was applied before a crash, and delivered again); ids below `low_watermark` are forgotten.
        Returns (units applied, units skipped as already applied)."""

    def prepare_events(self, units: Sequence[EventUnit], low_watermark: str) -> Callable[[], tuple[int, int]]:
        """apply_events in two steps: encode the calls now, in the caller's thread, and return what applies them
        (a consumer encodes its next batch while the store applies one). A store with nothing to encode ahead
        applies them all in the returned function."""
        return lambda: self.apply_events(units, low_watermark)

    @abstractmethod
    def replace_closed(self, rows: Iterable[ReplaceRow], cutoff: int, geometry: Sequence[tuple[int, int]],
                       width: int, generation: int) -> int:
        """As replace_fields, for tiles `run` owns: those ending at or before `cutoff`. The prefix's blocks
        (fields `<level>:<block>` and `<level>d:<block>`, `geometry` giving each level's tile size and block span
        in µs, `width` the words of a value slot) that end by the cutoff become exactly the ones given; blocks
        after it are kept, and a block spanning it keeps its slots after the cutoff (the stream's)."""

    @abstractmethod
    def cutoffs(self, stream: str, models: Sequence[str]) -> dict[str, int]:
        """Per model fed by `stream`, the cutoff `run` last recorded (set_cutoff); absent: none."""

    @abstractmethod
    def set_cutoff(self, stream: str, model: str, cutoff: int) -> None:
        """Record that `run` owns the model's tiles ending at or before `cutoff`: the stream leaves them alone
        (their events are late), and readers cover each side of the cutoff with its own tiles."""

    @abstractmethod
    def stream_health(self, stream: str, group: str) -> dict[str, Any]:
        """A stream's length, late entries and, for the group, pending entries, lag, entries read and the age of
        the oldest pending entry (ms); empty for a stream that does not exist. Reads only."""

    @abstractmethod
    def append_events(self, stream: str, rows: Sequence[Mapping[str, str]]) -> list[str]:
        """Append events (fields as text) to a stream; their ids."""

    @abstractmethod
    def open_stream(self, stream: str, group: str, consumer: str) -> EventStream:
        """A consumer of `stream` in `group` (created, from the stream's first entry, when missing)."""

    @abstractmethod
    def read(self, requests: Sequence[ReadRequest]) -> list[list[bytes | None]]:
        """For each request, its fields' values (None where absent), in one round trip where the store allows."""

    @abstractmethod
    def marker(self, project: str, model: str) -> str | None:
        """The marker the last complete write of a model left in the store, None when there is none (a flushed
        or new store). The writer records it in the warehouse beside the snapshot it wrote: a store that does
        not hold that marker (flushed, or restored from an older snapshot) is sent everything again."""

    @abstractmethod
    def set_marker(self, project: str, model: str, marker: str) -> None:
        """Record a complete write of a model."""

    @abstractmethod
    def ping(self) -> None:
        """Return when the store answers; raise AdapterError (with a message free of secrets) when it does not."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""



def open_online_store(settings: Mapping[str, Any], target_path: Path) -> OnlineStore:
    """Open the store that `settings["type"]` names (default redis); its module is imported only now."""
    kind = str(settings.get("type", "redis"))
    if kind not in ONLINE_STORES:
        raise ProjectError(f"unknown online_store type {kind!r}",
                           hint=did_you_mean(kind, ONLINE_STORES) or f"use one of: {', '.join(ONLINE_STORES)}")
    module_name, class_name = ONLINE_STORES[kind].split(":")
    store_class = getattr(importlib.import_module(module_name), class_name)
    return store_class.from_settings(settings, target_path)
