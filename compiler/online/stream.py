"""`skewless stream`: keep window features current from a stream of events.

A consumer reads the stream's events through a consumer group, applies each event to the tiles of every model fed
by that stream (one server-side script call per batch), then acknowledges them. Exactly once, across crashes: an
event applied and not acknowledged (the consumer died in between) is delivered again, to this consumer when it
restarts or to another that claims it after `claim_idle_ms`; the entity's applied field recognises it and it is
skipped. Several consumers of one group share the stream's events. While one batch is written (the script runs
in Redis), the next is read and prepared: one batch in flight at most.

An event is late when its event time is older than the stream's watermark (the newest event time seen) minus the
model's allowed_lateness, or when it falls in a tile that `run` has closed (at or before the cutoff `run` last
wrote for the model): it is not applied, it is counted, and it is kept in the `<stream>:late` stream with the
reason; `run` covers it from the warehouse.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from skewless.core.errors import SkewlessError
from skewless.core.windowagg import format_duration_us

from . import events as ev
from . import format as fmt
from .tile_updates import ModelLayout

if TYPE_CHECKING:
    from .catalog import OnlineModel, ServingCatalog
    from .store import EventStream, OnlineStore, StreamEntry


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class StreamStats:
    """Counters since the consumer started, and the stream's health at the last look."""

    events: int = 0  # entries processed (applied, skipped, late or invalid)
    applied: int = 0  # (entity, event) units applied
    duplicates: int = 0  # units skipped as applied before (redelivered after a crash, or claimed)
    late: int = 0
    invalid: int = 0
    claimed: int = 0
    started: float = field(default_factory=time.monotonic)
    health: dict[str, Any] = field(default_factory=dict)
    # Milliseconds from XADD (the entry id's time) to applied, for the last entries: what a reader waits for.
    delays: deque[int] = field(default_factory=lambda: deque(maxlen=10_000))

    def delay_ms(self, quantile: float) -> int | None:
        if not self.delays:
            return None
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "applied": self.applied, "duplicates": self.duplicates, "late": self.late,
                "invalid": self.invalid, "claimed": self.claimed, "events_per_second": round(self.rate, 1),
                "delay_ms_p50": self.delay_ms(0.5), "delay_ms_p99": self.delay_ms(0.99), **self.health}


class StreamConsumer:
    """One consumer of one stream in a consumer group."""

    def __init__(self, catalog: "ServingCatalog", store: "OnlineStore", stream: str, *, group: str = "skewless",
                 consumer: str | None = None, batch_size: int = 500, claim_idle_ms: int = 30_000,
                 clock: Callable[[], float] = time.time) -> None:
        models = [m for m in catalog.models.values() if m.stream == stream and m.window is not None]
        if not models:
            known = sorted({m.stream for m in catalog.models.values() if m.stream})
            raise SkewlessError(f"no online window_agg model is fed by stream {stream!r}",
                                hint=f"streams: {', '.join(known)}" if known else
                                "set stream='...' (and online=true) in a window_agg model's config")
        self.stream = stream
        self.models = models
        self.columns = catalog.streams[stream]
        self.project = catalog.project
        self.store = store
        self.consumer = consumer or default_consumer_name()
        self.events: EventStream = store.open_stream(ev.stream_key(self.project, stream), group, self.consumer)
        self.batch_size = batch_size
        self.claim_idle_ms = claim_idle_ms
        self.clock = clock
        self.feeds = [_Feed.of(m, self.project) for m in models]
        self.applied_field = f"sk1s:{stream}#applied".encode()
        self.stats = StreamStats()
        self.parse = ev.parser(self.columns, stream)
        self.watermark: int | None = None
        self.cutoffs: dict[str, int] = {}
        self._recovered = False
        self._last_claim = 0.0
        self._writer: ThreadPoolExecutor | None = None  # run(): batches are written while the next one is prepared
        self._writing: Future[None] | None = None
        self._low = (-1e9, "0-0")  # (when, the stream's low watermark then)

    # -- the loop -------------------------------------------------------------------------------------------

    def step(self, block_ms: int = 1000) -> int:
        """Process one batch: first this consumer's own unacknowledged entries (after a restart), then entries
        other consumers left pending too long, else new ones. Returns how many entries were processed."""
        entries: list[StreamEntry] = []
        if not self._recovered:
            self.drain()  # the batch being written is still pending: not to be read twice
            entries = self.events.pending(self.batch_size)
            if not entries:
                self._recovered = True
        if not entries and time.monotonic() - self._last_claim >= self.claim_idle_ms / 1000 / 2:
            self._last_claim = time.monotonic()
            self.drain()
            entries = self.events.claim(self.claim_idle_ms, self.batch_size)
            self.stats.claimed += len(entries)
        if entries:
            self.process(entries, redelivered=True)
            return len(entries)
        entries = self.events.read(self.batch_size, block_ms)
        if entries:
            self.process(entries)
        return len(entries)

    def run(self, stop: Callable[[], bool], report: Callable[[StreamStats], None] | None = None,
            report_every: float = 5.0, block_ms: int = 500) -> StreamStats:
        """Process until `stop()` is true; `report` gets the stats every `report_every` seconds."""
        last = time.monotonic()
        switch = sys.getswitchinterval()
        # The writer thread waits on Redis most of the time; handed the interpreter soon after its reply arrives,
        # it keeps Redis busy while this thread prepares the next batch.
        sys.setswitchinterval(min(switch, 0.0005))
        with ThreadPoolExecutor(1, thread_name_prefix="skewless-apply") as writer:
            self._writer = writer
            try:
                while not stop():
                    self.step(block_ms)
                    if report is not None and time.monotonic() - last >= report_every:
                        last = time.monotonic()
                        self.stats.health = self.events.health()
                        report(self.stats)
            finally:
                self._writer = None
                sys.setswitchinterval(switch)
                self.drain()
        self.stats.health = self.events.health()
        return self.stats

    def drain(self) -> None:
        """Wait for the batch being written (run() writes one batch while it reads and prepares the next)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def process(self, entries: Sequence["StreamEntry"], redelivered: bool = False,
                watermark: "int | None | object" = ...) -> None:
        """Apply a batch of entries to the tiles, report the late and invalid ones, then acknowledge them all
        (within run(), in the background while the next batch is read and prepared).

        Lateness against the watermark is judged when an entry is first delivered, in arrival order; an entry
        delivered again (its consumer died before acknowledging it) is applied unless it was applied already.
        `watermark`: judge lateness against this one (a Spark micro-batch run again judges as the first time)."""
        typed: list[tuple[StreamEntry, dict[str, Any]]] = []
        rejected: list[tuple[StreamEntry, str]] = []
        for entry in entries:
            try:
                typed.append((entry, self.parse(entry[1])))
            except ev.EventError as error:
                rejected.append((entry, f"invalid: {error}"))
                self.stats.invalid += 1
        if watermark is not ...:
            self.watermark = watermark  # type: ignore[assignment]
        elif self.watermark is None:
            self.watermark = self.events.advance_watermark(None)
        self.cutoffs = self.events.cutoffs([m.name for m in self.models])
        now_us = int(self.clock() * 1_000_000)
        units: dict[tuple[bytes, str], list[Any]] = {}
        expiry: dict[tuple[bytes, str], int] = {}
        feeds = [(feed, self.cutoffs.get(feed.model.name)) for feed in self.feeds]
        for entry, event in typed:
            late_reason = None
            newest = None if redelivered else self.watermark  # late is judged in arrival order
            for feed, cutoff in feeds:
                value = event.get(feed.timestamp)
                keys = [event.get(k) for k in feed.join_keys]
                if value is None or None in keys:
                    late_reason = late_reason or "invalid: no event time or entity key"
                    continue
                ts = (value - _NAIVE_EPOCH) // _MICROSECOND if type(value) is datetime else fmt.micros(value)
                if self.watermark is None or ts > self.watermark:
                    self.watermark = ts
                if ((newest is not None and ts < newest - feed.lateness)
                        or (cutoff is not None and -(-ts // feed.hop) * feed.hop <= cutoff)):
                    late_reason = self._late(feed.model, ts, newest)
                    continue
                args, keep_until = feed.layout.updates(event, ts, now_us)
                unit = (feed.key(keys), entry[0])
                if unit in units:
                    units[unit] += args
                    expiry[unit] = max(expiry[unit], keep_until)
                else:
                    units[unit] = args
                    expiry[unit] = keep_until
            if late_reason is not None:
                rejected.append((entry, late_reason))
                if late_reason.startswith("invalid"):
                    self.stats.invalid += 1
                else:
                    self.stats.late += 1
        if self.watermark is not None:
            self.watermark = self.events.advance_watermark(self.watermark)
        apply = None
        if units:
            if time.monotonic() - self._low[0] >= 1.0:
                # an id below which all are acknowledged; an older one is as good (markers kept a little longer)
                self._low = (time.monotonic(), self.events.low_watermark())
            apply = self.store.prepare_events([(key, entry_id, self.applied_field, expiry[(key, entry_id)], args)
                                               for (key, entry_id), args in units.items()], self._low[1])
        batch = _Batch(entries, apply, rejected, redelivered)
        self.drain()
        if self._writer is None:
            self._write(batch)
        else:
            self._writing = self._writer.submit(self._write, batch)

    def _write(self, batch: "_Batch") -> None:
        """Apply a batch's updates, keep its late entries, then acknowledge it: an entry is acknowledged only once
        its updates are in the store."""
        if batch.apply is not None:
            applied, skipped = batch.apply()
            self.stats.applied += applied
            self.stats.duplicates += skipped
        if batch.rejected:
            self.events.report_late(batch.rejected)
        self.events.ack([entry[0] for entry in batch.entries])
        self.stats.events += len(batch.entries)
        if not batch.redelivered and getattr(self.events, "timed_ids", True):  # an id starts with its XADD time
            applied_ms = int(self.clock() * 1000)
            self.stats.delays.extend(applied_ms - int(entry[0].split("-", 1)[0]) for entry in batch.entries)

    def _late(self, model: "OnlineModel", ts: int, watermark: int | None) -> str | None:
        assert model.window is not None
        lateness = model.window.allowed_lateness
        if watermark is not None and ts < watermark - lateness:
            return (f"late: event time {_iso(ts)} is more than allowed_lateness ({format_duration_us(lateness)}) "
                    f"before the watermark {_iso(watermark)}")
        cutoff = self.cutoffs.get(model.name)
        if cutoff is not None and -(-ts // model.window.hop) * model.window.hop <= cutoff:
            return f"late: model {model.name}'s tiles up to {_iso(cutoff)} are `run`'s (its cutoff)"
        return None


@dataclass(frozen=True)
class _Batch:
    """A processed batch, to be written and acknowledged."""

    entries: Sequence["StreamEntry"]
    apply: Callable[[], tuple[int, int]] | None  # applies its events (OnlineStore.prepare_events)
    rejected: list[tuple["StreamEntry", str]]
    redelivered: bool


@dataclass(frozen=True)
class _Feed:
    """What the consumer needs of one model fed by the stream, worked out once."""

    model: "OnlineModel"
    layout: ModelLayout
    timestamp: str
    join_keys: tuple[str, ...]
    key: Callable[[Sequence[Any]], bytes]  # the entity's Redis key from its join key values
    lateness: int
    hop: int

    @classmethod
    def of(cls, model: "OnlineModel", project: str) -> "_Feed":
        assert model.window is not None
        return cls(model, ModelLayout.of(model.window, model.tile_prefix), model.timestamp, tuple(model.join_keys),
                   fmt.entity_key_maker(project, model.entity, len(model.join_keys)), model.window.allowed_lateness,
                   model.window.hop)


_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _iso(micros: int) -> str:
    return (fmt.EPOCH + timedelta(microseconds=micros)).replace(tzinfo=None).isoformat()
