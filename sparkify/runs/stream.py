"""Near-real-time: log_data/ as a stream (Spark Structured Streaming, file source), or a Kafka topic.

The stream runs the engine (``runs.engine.run``) once when it starts, on song_data/ (read, flagged,
bad songs quarantined and counted, the reject limit; songs and artists written when the output has none),
then once per micro-batch. Before a micro-batch reaches the engine, the streaming query itself parses,
flags and cleans its events and drops those its earlier micro-batches held, with Structured Streaming's
own state (``transform.deduplicated``: ``dropDuplicatesWithinWatermark`` on each event's identity, a
watermark of [STREAM] WATERMARK on event time, the state in RocksDB with changelog checkpointing). An
event older than the watermark is quarantined as late. The engine then appends the batch's plays and new
play timestamps, merges its users, and quarantines its bad records (a warning above the reject limit, never
a stop). Nothing is read back from the tables to find repeats. Each micro-batch writes a report
(OUTPUT/_reports/stream-batch-<id>.json, with the Spark jobs it ran); the checks run over the output when
the stream stops (``runs.modes.execute``).

Exactly once, kill and restart included: the source's offsets, the batch ids and the state live in the
checkpoint (OUTPUT/_checkpoints/…); a batch's rows go to files named after the batch (Parquet) or to one
commit per table carrying the batch id (Iceberg), so a batch replayed after a crash replaces its own files
or commits nothing again. A stream whose checkpoint is gone while the output holds its micro-batches is
refused (``refuse_lost_checkpoint``): it would read every event again, with no state to recognise them.

Sources are one module each (``sparkify.sources.SOURCES``): new files under log_data/, or a Kafka topic
whose messages carry the same JSON text, read with Spark's Kafka connector.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from sparkify import transform
from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.results import RunResult, new_run_id
from sparkify.core.schemas import LOG_SCHEMA
from sparkify.platform.fs import file_names, join_uri, read_text
from sparkify.platform.lock import OutputLock
from sparkify.quality import site
from sparkify.runs.engine import run
from sparkify.runs.plan import MICRO_BATCH, STREAM_SONGS, Job
from sparkify.sources import Source, source_named
from sparkify.sources.files import parse_json_lines


def process_batch(spark: SparkSession, settings: Settings, stream: Job, rows: DataFrame, batch_id: int) -> RunResult:
    """One micro-batch through the engine (``rows``: as ``transform.deduplicated`` lets them through).
    ``stream``: the stream's start (its songs, records read and rejected so far, months the catalog knows,
    what the report says of the stream)."""
    batch = Job(
        MICRO_BATCH,
        run_id=f"stream-batch-{batch_id:08d}",
        lines=rows,
        batch_id=batch_id,
        songs=stream.songs,
        totals=stream.totals,
        registered=stream.registered,
        stream={**stream.stream, "batch_id": batch_id},
    )
    return run(spark, settings, batch)


def stream_rows(spark: SparkSession, settings: Settings, source: Source, per_batch: int) -> DataFrame:
    """The source's new events, parsed, flagged and cleaned as a batch run's, then deduplicated by the
    stream's state (``transform.deduplicated``): what each micro-batch gets."""
    parsed = parse_json_lines(source.stream_frame(spark, settings, per_batch), LOG_SCHEMA)
    flagged = transform.flagged_events(parsed, repeats=False, keep_raw=True)
    return transform.deduplicated(flagged, settings.stream_watermark)


def refuse_lost_checkpoint(spark: SparkSession, settings: Settings, checkpoint: str) -> None:
    """UserError when the output holds micro-batches written by a stream with this checkpoint (its latest
    batch report says so) but the checkpoint has no committed batch: its offsets and state are gone."""
    if file_names(spark, join_uri(checkpoint, "commits")):
        return
    reports = join_uri(settings.output_root, "_reports")
    batches = [n for n in file_names(spark, reports) if n.startswith("stream-batch-") and n.endswith(".json")]
    if not batches:
        return
    latest = json.loads(read_text(spark, join_uri(reports, batches[-1])) or "{}")
    if latest.get("stream", {}).get("checkpoint") != checkpoint:
        return
    raise UserError(
        f"The stream's checkpoint {checkpoint} is gone, but {settings.output_root} holds the micro-batches it wrote "
        f"(the last: batch {latest['stream'].get('batch_id')}). Without it the stream knows neither which events it "
        "has read nor the repeats its state recognises: it would add every event again. Restore the whole checkpoint "
        "folder (offsets, commits, state), or write the stream to a new output (--output), or load the events with "
        "a batch run (etl.py, or --since for some days)."
    )


def run_stream(
    spark: SparkSession,
    settings: Settings,
    available_now: bool,
    interval_seconds: float = 10.0,
    timeout_seconds: Optional[float] = None,
    files_per_batch: int = 1000,
    on_batch: Optional[Callable[[int], None]] = None,
    source: str = "files",
) -> List[int]:
    """Run the stream: ``available_now`` processes what is there and stops; otherwise a
    micro-batch every ``interval_seconds`` until ``timeout_seconds`` (None: until stopped).
    ``source``: a name in ``sparkify.sources.SOURCES`` (files: new files under log_data/; kafka: the
    [KAFKA] topic). The output is held for the stream's whole life."""
    run_id = new_run_id()
    chosen = source_named(source)
    checkpoint = join_uri(settings.output_root, chosen.checkpoint(settings))
    with OutputLock(settings, run_id, "stream"):
        refuse_lost_checkpoint(spark, settings, checkpoint)
        stream = Job(STREAM_SONGS, run_id=f"stream-{run_id}-songs")
        stream.stream = {"checkpoint": checkpoint, "watermark": settings.stream_watermark}
        run(spark, settings, stream)
        batches: List[int] = []
        failures: List[BaseException] = []
        indexed = [time.strftime("%Y%m%d%H", time.gmtime())]  # the hour the index was last rebuilt

        def each(lines: DataFrame, batch_id: int) -> None:
            begun = time.monotonic()
            try:
                process_batch(spark, settings, stream, lines, batch_id)
            except BaseException as exc:
                failures.append(exc)
                raise
            batches.append(batch_id)
            hour = time.strftime("%Y%m%d%H", time.gmtime())
            if hour != indexed[-1]:  # the index summarises micro-batches by the hour: rebuilt once an hour
                indexed.append(hour)
                site.write_index(spark, settings.output_root)
            print(f"{time.strftime('%H:%M:%S')} batch {batch_id} done in {time.monotonic() - begun:.1f} s", flush=True)
            if on_batch is not None:
                on_batch(batch_id)

        trigger = {"availableNow": True} if available_now else {"processingTime": f"{interval_seconds} seconds"}
        query = _start(spark, settings, chosen, checkpoint, files_per_batch, each, trigger)
        try:
            _await(query, timeout_seconds, failures)  # (the songs: a local checkpoint, freed with the session)
        finally:
            site.write_index(spark, settings.output_root)
    return batches


# What the streaming query's own session is started with (it keeps a copy of the session's settings): the
# state operator's partitions, fixed by a checkpoint's first start: one per core, not the batch run's 64
# (each is a RocksDB store that commits every micro-batch). (Spark's micro-batch without new data after one
# that moved the watermark stays: a late event is one older than the watermark of the batch before.)
def _stream_conf(spark: SparkSession) -> Dict[str, str]:
    return {"spark.sql.shuffle.partitions": str(spark.sparkContext.defaultParallelism)}


def _start(
    spark: SparkSession,
    settings: Settings,
    source: Source,
    checkpoint: str,
    per_batch: int,
    each: Callable[[DataFrame, int], None],
    trigger: Dict[str, Any],
) -> StreamingQuery:
    """The streaming query: the source's new events deduplicated (``stream_rows``), each micro-batch to
    ``each``, its checkpoint (offsets, batch ids, state) under the output root."""
    writer = stream_rows(spark, settings, source, per_batch).writeStream.foreachBatch(each)
    writer = writer.option("checkpointLocation", checkpoint).trigger(**trigger)
    conf = _stream_conf(spark)
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        return writer.start()
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _await(query: StreamingQuery, timeout_seconds: Optional[float], failures: List[BaseException]) -> None:
    """Until the query stops (or ``timeout_seconds``); a micro-batch's UserError is raised as it is."""
    try:
        query.awaitTermination(timeout_seconds) if timeout_seconds is not None else query.awaitTermination()
    except Exception:
        if failures and isinstance(failures[0], UserError):
            raise failures[0] from None
        raise
    finally:
        query.stop()
    if query.exception() is not None:
        if failures and isinstance(failures[0], UserError):
            raise failures[0]
        raise RuntimeError(str(query.exception()))
