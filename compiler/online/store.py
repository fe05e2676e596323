"""The online store interface: what the writer, the reader, the server (and streaming tiles) need of a key/value
store, and a small registry that opens the one `online_store: {type: ...}` names.

Keys and values are bytes in the versioned format of online/format.py; a store only has to keep them. Redis is
the implementation (skewless/adapters/redis_online.py); a new store implements this class and joins the table.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skewless.core.engines import ONLINE_STORES  # the table of store types
from skewless.core.errors import ProjectError, did_you_mean

WriteRow = tuple[bytes, bytes, bytes, int]  # entity key, field, value (b"": remove), expire-at in ms (0: none)
ReadRequest = tuple[bytes, Sequence[bytes]]  # entity key, the fields to read from it
# entity key, a field prefix, the fields that are to hold it (name, value), expire-at in ms (0: none)
ReplaceRow = tuple[bytes, bytes, Sequence[tuple[bytes, bytes]], int]


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
