"""Near-real-time: log_data/ as a stream (Spark Structured Streaming, file source).

Each micro-batch goes through the batch run's stages: parse and flag, quarantine and the reject
limit, ``transform.star_schema`` against the songs read from song_data/ when the stream starts,
then publish through the same sink (``load.ParquetSink``): songplays and time appended, users
merged. Each micro-batch writes a report (OUTPUT/_reports/stream-batch-<id>.json); the checks
run over the output when the stream stops (pipeline.execute).

Exactly once, kill and restart included: the source's offsets and the batch ids live in the
checkpoint (OUTPUT/_checkpoints/log_data); a batch's rows go to files named after the batch
(``songplays/year=…/month=…/batch-00000042.parquet``), moved into place only when complete, so a
batch replayed after a crash rewrites the same files instead of adding copies. Rows already in
the table (an event seen in an earlier batch) are not added again.

Sources are one function each (``SOURCES``): new files under log_data/, or a Kafka topic whose
messages carry the same JSON text, read with Spark's Kafka connector.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, List, Optional, Set, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from sparkify import catalogs as catalog
from sparkify import transform
from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.results import RunResult, SourceCounts, new_run_id
from sparkify.core.schemas import (
    ARTISTS,
    LOG_SCHEMA,
    SONG_SCHEMA,
    SONGPLAYS,
    SONGS,
    TIME,
    USERS,
    songs_table_spec,
)
from sparkify.platform.fs import FileListing, join_uri
from sparkify.platform.lock import OutputLock
from sparkify.runs.engine import cached_logs, count_source, play_months, register_tables, stage, write_report
from sparkify.sinks import quarantine_path, sink_for
from sparkify.sources import source_named
from sparkify.sources.files import parse_json_lines, read_json_tree


def _alert_rejects(result: RunResult, totals: SourceCounts, settings: Settings) -> None:
    """The reject limit of a stream: bad messages never stop it (they are quarantined and
    counted); when the share rejected since the stream started is above MAX_REJECTED_SHARE,
    each batch's report and a warning on stderr say so."""
    batch = result.sources["log_data"]
    totals.read += batch.read
    totals.rejected += batch.rejected
    if totals.read and totals.rejected / totals.read > settings.max_rejected_share:
        result.message = (
            f"warning: {totals.rejected:,} of {totals.read:,} records read since the stream started were rejected "
            f"({totals.rejected / totals.read:.1%}), above MAX_REJECTED_SHARE {settings.max_rejected_share:.1%}: see "
            f"{quarantine_path(settings.output_root, result.run_id)} and the earlier batches' quarantine."
        )
        print(result.message, file=sys.stderr, flush=True)


def process_batch(
    spark: SparkSession,
    settings: Settings,
    songs: DataFrame,
    lines: DataFrame,
    batch_id: int,
    totals: Optional[SourceCounts] = None,
    registered: Optional[Set[Tuple[int, int]]] = None,
) -> RunResult:
    """One micro-batch through the batch stages; its rows published under batch-named files.
    ``totals``: records read and rejected since the stream started; ``registered``: the months
    the catalog already knows (a batch with no new month registers nothing)."""
    result = RunResult(
        run_id=f"stream-batch-{batch_id:08d}", input_root=settings.input_root, output_root=settings.output_root
    )
    sink = sink_for(spark, settings, result.run_id)
    totals = totals if totals is not None else SourceCounts()
    flagged = cached_logs(spark, parse_json_lines(lines, LOG_SCHEMA), 0)  # a batch: files_per_batch, max offsets
    try:
        with stage(result.seconds, "extract", log=False):
            result.sources["log_data"] = count_source(flagged, FileListing(0, 0, 0), plays=True)
        with stage(result.seconds, "load", log=False):
            result.quarantine.append(sink.quarantine(transform.rejected(flagged, "log_data")))
        _alert_rejects(result, totals, settings)
        events = transform.usable(flagged)  # cleaned as they were cached
        tables = transform.star_schema(songs, events, sink.read(USERS), settings.duration_tolerance)
        with stage(result.seconds, "load", log=False):
            songplays = sink.unseen(SONGPLAYS, tables[SONGPLAYS.name], "songplay_id", batch_id)
            times = sink.unseen(TIME, tables[TIME.name], "start_time", batch_id)
            result.tables.append(sink.append_batch(SONGPLAYS, songplays, batch_id))
            result.tables.append(sink.append_batch(TIME, times, batch_id))
            result.tables.append(sink.replace(USERS, tables[USERS.name]))
        months = set(play_months(transform.song_plays(events))) if settings.catalog_type != "none" else set()
        if registered is None or not months <= registered:  # new partitions: the catalog learns them
            register_tables(spark, settings, result, sink, only=(SONGPLAYS.name, TIME.name, USERS.name))
            if registered is not None:
                registered |= months
        result.status = "ok"
        return result
    except Exception as exc:
        result.status, result.message = "failed", str(exc) if isinstance(exc, UserError) else type(exc).__name__
        raise
    finally:
        flagged.unpersist()
        sink.close()
        write_report(spark, result)


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
    ``source``: "files" (new files under log_data/) or "kafka" (the [KAFKA] topic).
    The output is held for the stream's whole life."""
    run_id = new_run_id()
    with OutputLock(settings, run_id, "stream"):
        songs = _songs(spark, settings, run_id)
        batches: List[int] = []
        failures: List[BaseException] = []
        totals = SourceCounts()  # records read and rejected since the stream started
        registered: Set[Tuple[int, int]] = set()  # (year, month) partitions registered in the catalog

        def each(lines: DataFrame, batch_id: int) -> None:
            begun = time.monotonic()
            try:
                process_batch(spark, settings, songs, lines, batch_id, totals, registered)
            except BaseException as exc:
                failures.append(exc)
                raise
            batches.append(batch_id)
            print(f"{time.strftime('%H:%M:%S')} batch {batch_id} done in {time.monotonic() - begun:.1f} s", flush=True)
            if on_batch is not None:
                on_batch(batch_id)

        chosen = source_named(source)
        writer = (
            chosen.stream_frame(spark, settings, files_per_batch)
            .writeStream.foreachBatch(each)
            .option("checkpointLocation", join_uri(settings.output_root, chosen.checkpoint(settings)))
        )
        trigger = {"availableNow": True} if available_now else {"processingTime": f"{interval_seconds} seconds"}
        query = writer.trigger(**trigger).start()
        try:
            query.awaitTermination(timeout_seconds) if timeout_seconds is not None else query.awaitTermination()
        except Exception:
            if failures and isinstance(failures[0], UserError):
                raise failures[0] from None
            raise
        finally:
            query.stop()
            songs.unpersist()
        if query.exception() is not None:
            if failures and isinstance(failures[0], UserError):
                raise failures[0]
            raise RuntimeError(str(query.exception()))
    return batches


def _songs(spark: SparkSession, settings: Settings, run_id: str) -> DataFrame:
    """The songs the plays are matched against; the songs and artists tables written once."""
    song_data = read_json_tree(spark, join_uri(settings.input_root, "song_data"), SONG_SCHEMA, settings)
    songs = transform.clean_songs(transform.usable(transform.flag_song_rows(song_data)))
    songs = songs.persist(StorageLevel.MEMORY_AND_DISK)
    songs.count()
    sink = sink_for(spark, settings, f"{run_id}-songs")
    try:
        if not sink.exists(SONGS):
            sink.replace(songs_table_spec(settings.songs_partition_by), transform.songs_table(songs))
            sink.replace(ARTISTS, transform.artists_table(songs))
            catalog.register(spark, settings, (SONGS.name, ARTISTS.name), None, sink.metadata_location)
    finally:
        sink.close()
    return songs
