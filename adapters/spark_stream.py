"""`skewless stream --engine spark`: the same window aggregation as a Spark Structured Streaming job.

Events land as files (JSON lines or Parquet) in a folder; Spark's file source reads new files in micro-batches,
and `foreachBatch` applies each batch through the online-store interface, as the Redis consumer does: the
StreamConsumer's lateness, cutoff and tile updates, one server-side script call per batch.

Exactly once: Spark commits a micro-batch to its checkpoint after `foreachBatch` returns; a job killed before that
runs the same batch again (same id, same files) when it restarts. Each event's id is `<batch id>-<position>`
(positions in file order), so the entity's applied field recognises what the killed run applied; ids of earlier
batches are committed and forgotten (the low watermark is `<batch id>-0`). The watermark a batch was judged
against is kept beside it, so a batch run again judges lateness exactly as the first time.

Kafka: the Kafka source's jar is not part of the pyspark wheel. On a cluster with it
(`spark.jars.packages=org.apache.spark:spark-sql-kafka-0-10_2.13:<spark version>`), a Kafka topic feeds the same
`foreachBatch` (the message value holding the event as JSON); see docs/streaming.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from skewless.core.errors import ProjectError, SkewlessError
from skewless.online.events import EventError, to_text
from skewless.online.store import EventStream, StreamEntry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from skewless.online.stream import StreamConsumer, StreamStats

FILE_COLUMN = "__skewless_file"
FORMATS = ("json", "parquet")


class _BatchEvents(EventStream):
    """One micro-batch seen as an event stream: nothing to read or acknowledge (Spark's checkpoint does that);
    the watermark, cutoffs and late entries are the store's, as for the Redis consumer."""

    timed_ids = False  # ids are <batch>-<position>, not XADD times

    def __init__(self, store_side: EventStream, batch_id: int) -> None:
        self.side = store_side
        self.batch_id = batch_id

    def read(self, count: int, block_ms: int) -> list[StreamEntry]:
        return []

    def pending(self, count: int) -> list[StreamEntry]:
        return []

    def claim(self, min_idle_ms: int, count: int) -> list[StreamEntry]:
        return []

    def ack(self, ids: Sequence[str]) -> None:
        pass

    def low_watermark(self) -> str:
        return f"{self.batch_id}-0"

    def health(self) -> dict[str, Any]:
        return {}

    def advance_watermark(self, newest: int | None) -> int | None:
        return self.side.advance_watermark(newest)

    def cutoffs(self, models: Sequence[str]) -> dict[str, int]:
        return self.side.cutoffs(models)

    def report_late(self, entries: Sequence[tuple[StreamEntry, str]]) -> None:
        self.side.report_late(entries)


class BatchLog:
    """Per stream, the micro-batch in progress and the watermark it is judged against (in Redis, beside the
    stream): a batch run again after a crash finds its first run's watermark."""

    def __init__(self, side: Any) -> None:
        self.client = side.client
        self.key = side.key + ":spark"

    def get(self, batch_id: int) -> int | None | bool:
        """The watermark of `batch_id`'s first run (None: there was none); False when it never ran."""
        state = self.client.hgetall(self.key)
        if not state or int(state[b"batch"]) != batch_id:
            return False
        value = state[b"watermark"]
        return None if value == b"none" else int(value)

    def set(self, batch_id: int, watermark: int | None) -> None:
        self.client.hset(self.key, mapping={"batch": batch_id, "watermark": "none" if watermark is None
                                            else watermark})


def spark_schema(columns: dict[str, str | None], file_format: str) -> str:
    """The file source's schema as Spark DDL: every column as text for JSON (typed as the Redis path types
    them), as the source declares for Parquet."""
    if file_format == "json":
        return ", ".join(f"`{name}` STRING" for name in columns)
    return ", ".join(f"`{name}` {exp.DataType.build(kind or 'text', dialect='duckdb').sql('spark')}"
                     for name, kind in columns.items())


def batch_entries(rows: list[dict[str, Any]], batch_id: int, columns: dict[str, str | None],
                  stream: str) -> list[StreamEntry]:
    """A batch's rows as stream entries, in file order, with ids `<batch>-<position>`; a row that does not fit
    the source's types keeps its raw text, to be reported as invalid."""
    rows = sorted(rows, key=lambda row: row.get(FILE_COLUMN) or "")  # stable: file order within a file
    entries = []
    for position, row in enumerate(rows):
        values = {k: v for k, v in row.items() if k != FILE_COLUMN and v is not None}
        try:
            fields = to_text(values, columns, stream)
        except EventError:
            fields = {k: str(v) for k, v in values.items()}
        entries.append((f"{batch_id}-{position}", fields))
    return entries


def batch_handler(consumer: "StreamConsumer", side: EventStream, batches: BatchLog
                  ) -> Callable[["DataFrame", int], None]:
    """The `foreachBatch` function: a micro-batch's rows applied as stream entries (`__skewless_file` orders them:
    a file name, or a Kafka partition and offset), exactly once across runs of the same batch."""

    def apply(batch: "DataFrame", batch_id: int) -> None:
        rows = batch.toArrow().to_pylist()
        if not rows:
            return
        state = batches.get(batch_id)
        if state is False:  # the first run of this batch: judged against the watermark as it is now
            watermark = consumer.watermark if consumer.watermark is not None else side.advance_watermark(None)
            batches.set(batch_id, watermark)
        else:  # run again after a crash: judged as the first time
            watermark = state
        consumer.events = _BatchEvents(side, batch_id)
        consumer.process(batch_entries(rows, batch_id, consumer.columns, consumer.stream), watermark=watermark)

    return apply


def run_files(session: "SparkSession", consumer: "StreamConsumer", side: EventStream, batches: BatchLog, *,
              path: Path, file_format: str, checkpoint: Path, until_idle: bool, files_per_batch: int = 100,
              stop: Callable[[], bool] = lambda: False, report: Callable[["StreamStats"], None] | None = None,
              report_every: float = 5.0) -> "StreamStats":
    """Run the Structured Streaming job over `path` until `stop()` (or, `until_idle`, until the files there are
    all applied: trigger availableNow)."""
    if file_format not in FORMATS:
        raise ProjectError(f"unknown event file format {file_format!r}", hint="use json or parquet")
    from pyspark.sql import functions

    columns = consumer.columns
    source: DataFrame = (session.readStream.schema(spark_schema(columns, file_format)).format(file_format)
                         .option("maxFilesPerTrigger", files_per_batch).load(str(path)))
    source = source.select("*", functions.input_file_name().alias(FILE_COLUMN))

    apply = batch_handler(consumer, side, batches)
    writer = source.writeStream.foreachBatch(apply).option("checkpointLocation", str(checkpoint))
    writer = writer.trigger(availableNow=True) if until_idle else writer.trigger(processingTime="1 second")
    query = writer.start()
    last = time.monotonic()
    try:
        while query.isActive and not stop():
            query.awaitTermination(0.5)
            if report is not None and time.monotonic() - last >= report_every:
                last = time.monotonic()
                report(consumer.stats)
    finally:
        if query.isActive:
            query.stop()
    error = query.exception()
    if error is not None:
        raise SkewlessError(f"the Spark streaming job failed: {str(error).splitlines()[0]}",
                            hint="its checkpoint is kept: run the command again to resume")
    return consumer.stats
