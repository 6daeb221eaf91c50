"""Near-real-time: log_data/ as a stream (Spark Structured Streaming, file source).

The stream runs the engine (``runs.engine.run``) once when it starts, on song_data/ (read, flagged,
bad songs quarantined and counted, the reject limit; songs and artists written when the output has none),
then once per micro-batch: parse and flag, quarantine (bad events never stop a stream: a warning above
the reject limit), ``transform.star_schema`` against the songs read at the start, then publish through
the same sink: songplays and time appended, users merged. Each run writes a report
(OUTPUT/_reports/stream-batch-<id>.json for a micro-batch); the checks run over the output when the
stream stops (``runs.modes.execute``).

Exactly once, kill and restart included: the source's offsets and the batch ids live in the
checkpoint (OUTPUT/_checkpoints/log_data); a batch's rows go to files named after the batch
(``songplays/year=…/month=…/batch-00000042.parquet``), moved into place only when complete, so a
batch replayed after a crash rewrites the same files instead of adding copies. Rows already in
the table (an event seen in an earlier batch) are not added again.

Sources are one module each (``sparkify.sources.SOURCES``): new files under log_data/, or a Kafka topic
whose messages carry the same JSON text, read with Spark's Kafka connector.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.results import RunResult, new_run_id
from sparkify.platform.fs import join_uri
from sparkify.platform.lock import OutputLock
from sparkify.runs.engine import run
from sparkify.runs.plan import MICRO_BATCH, STREAM_SONGS, Job
from sparkify.sources import Source, source_named


def process_batch(spark: SparkSession, settings: Settings, stream: Job, lines: DataFrame, batch_id: int) -> RunResult:
    """One micro-batch through the engine; its rows published under batch-named files. ``stream``: the
    stream's start (its songs, records read and rejected so far, months the catalog knows)."""
    batch = Job(
        MICRO_BATCH,
        run_id=f"stream-batch-{batch_id:08d}",
        lines=lines,
        batch_id=batch_id,
        songs=stream.songs,
        totals=stream.totals,
        registered=stream.registered,
    )
    return run(spark, settings, batch)


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
    with OutputLock(settings, run_id, "stream"):
        stream = Job(STREAM_SONGS, run_id=f"stream-{run_id}-songs")
        run(spark, settings, stream)
        batches: List[int] = []
        failures: List[BaseException] = []

        def each(lines: DataFrame, batch_id: int) -> None:
            begun = time.monotonic()
            try:
                process_batch(spark, settings, stream, lines, batch_id)
            except BaseException as exc:
                failures.append(exc)
                raise
            batches.append(batch_id)
            print(f"{time.strftime('%H:%M:%S')} batch {batch_id} done in {time.monotonic() - begun:.1f} s", flush=True)
            if on_batch is not None:
                on_batch(batch_id)

        trigger = {"availableNow": True} if available_now else {"processingTime": f"{interval_seconds} seconds"}
        try:
            query = _start(spark, settings, source_named(source), files_per_batch, each, trigger)
            _await(query, timeout_seconds, failures)
        finally:
            if stream.songs is not None:
                stream.songs.unpersist()
    return batches


def _start(
    spark: SparkSession,
    settings: Settings,
    source: Source,
    per_batch: int,
    each: Callable[[DataFrame, int], None],
    trigger: Dict[str, Any],
) -> StreamingQuery:
    """The streaming query: the source's new events, each micro-batch to ``each``, its checkpoint (offsets,
    batch ids) under the output root."""
    writer = (
        source.stream_frame(spark, settings, per_batch)
        .writeStream.foreachBatch(each)
        .option("checkpointLocation", join_uri(settings.output_root, source.checkpoint(settings)))
    )
    return writer.trigger(**trigger).start()


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
