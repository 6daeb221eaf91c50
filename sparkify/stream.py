"""Near-real-time: log_data/ as a stream (Spark Structured Streaming, file source).

Each micro-batch of new log files is turned into songplays, time and users rows with the same
transforms as the batch job, against the songs read from song_data/ when the stream starts.

Exactly once, kill and restart included: the source's offsets and the batch ids live in the
checkpoint (OUTPUT/_checkpoints/log_data); a batch's rows go to files named after the batch
(``songplays/year=…/month=…/batch-00000042.parquet``), moved into place only when complete, so a
batch replayed after a crash rewrites the same files instead of adding copies. Rows already in
the table (an event seen in an earlier batch) are not added again.

The source is pluggable (``source_frame``): a Kafka source (``spark.readStream.format("kafka")``
with the connector jar and a broker) yields the same JSON text in its ``value`` column.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify import transform
from sparkify.config import Settings
from sparkify.extract import parse_json_lines, read_json_tree
from sparkify.load import read_existing, table_path, write_frame, write_quarantine, write_table
from sparkify.schemas import (
    ARTISTS,
    INPUT_GLOB,
    LOG_SCHEMA,
    SONG_SCHEMA,
    SONGPLAYS,
    SONGS,
    SOURCE_FILE,
    TIME,
    USERS,
    Table,
)
from sparkify.storage import hadoop_path, join_uri, path_exists

CHECKPOINT = "_checkpoints/log_data"


def source_frame(spark: SparkSession, input_root: str, files_per_batch: int) -> DataFrame:
    """New *.json(.gz) files under log_data/, as text lines (column ``value``)."""
    return (
        spark.readStream.format("text")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", INPUT_GLOB)
        .option("maxFilesPerTrigger", files_per_batch)
        .load(join_uri(input_root, "log_data"))
    )


def _publish(spark: SparkSession, staged: str, live: str, name: str) -> int:
    """Move each partition's data file from ``staged`` to the same partition folder of ``live``
    as ``name`` (replacing a file of that name: a replayed batch)."""
    root, fs = hadoop_path(spark, staged)
    if not fs.exists(root):
        return 0
    moved = 0
    files = fs.listFiles(root, True)
    base = root.toUri().getPath().rstrip("/")
    while files.hasNext():
        status = files.next()
        source = status.getPath()
        if not source.getName().endswith(".parquet"):
            continue
        folder = source.getParent().toUri().getPath()[len(base) :].strip("/")
        target, _ = hadoop_path(spark, join_uri(live, folder, name))
        fs.mkdirs(target.getParent())
        if fs.exists(target):
            fs.delete(target, False)
        if not fs.rename(source, target):
            raise RuntimeError(f"could not move {source} to {target}")
        moved += 1
    fs.delete(root, True)
    return moved


def _new_rows(spark: SparkSession, output_root: str, table: Table, rows: DataFrame, key: str, own: str) -> DataFrame:
    """Rows whose key is not yet in the table (files of this same batch ignored: a replay)."""
    path = table_path(output_root, table)
    if not path_exists(spark, path):
        return rows
    months = rows.select("year", "month").distinct()
    written = (
        spark.read.schema(table.columns)
        .parquet(path)
        .where(~F.col("_metadata.file_name").endswith(own))
        .join(F.broadcast(months), on=["year", "month"], how="inner")
        .select(key)
    )
    return rows.join(written, on=key, how="left_anti")


def process_batch(spark: SparkSession, settings: Settings, songs: DataFrame, lines: DataFrame, batch_id: int) -> None:
    """One micro-batch: the batch transforms, then publish its rows under batch-named files."""
    own = f"batch-{batch_id:08d}.parquet"
    staging = join_uri(settings.output_root, "_staging", f"stream-{batch_id:08d}")
    text = lines.select(F.input_file_name().alias(SOURCE_FILE), "value")
    flagged = transform.flag_log_rows(parse_json_lines(text, LOG_SCHEMA)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rejects = transform.rejected(flagged, "log_data")
        write_quarantine(spark, rejects, settings.output_root, f"stream-batch-{batch_id:08d}")
        events = transform.clean_events(transform.usable(flagged))
        plays = transform.song_plays(events)
        songplays = transform.songplays_table(plays, songs, settings.duration_tolerance)
        songplays = _new_rows(spark, settings.output_root, SONGPLAYS, songplays, "songplay_id", own)
        times = _new_rows(spark, settings.output_root, TIME, transform.time_table(plays), "start_time", own)
        for table, frame in ((SONGPLAYS, songplays), (TIME, times)):
            staged = join_uri(staging, table.name)
            write_frame(frame, table, staged)
            _publish(spark, staged, table_path(settings.output_root, table), own)
        old_users = read_existing(spark, settings.output_root, USERS)
        users = transform.users_table(events, old_users)
        write_table(spark, users, USERS, settings.output_root, staging, keep_partitions=False)
        if old_users is not None:
            old_users.unpersist()
    finally:
        flagged.unpersist()
        folder, fs = hadoop_path(spark, staging)
        fs.delete(folder, True)


def run_stream(
    spark: SparkSession,
    settings: Settings,
    available_now: bool,
    interval_seconds: float = 10.0,
    timeout_seconds: Optional[float] = None,
    files_per_batch: int = 1000,
    on_batch: Optional[Callable[[int], None]] = None,
) -> List[int]:
    """Run the stream: ``available_now`` processes what is there and stops; otherwise a
    micro-batch every ``interval_seconds`` until ``timeout_seconds`` (None: until stopped)."""
    song_data = read_json_tree(spark, join_uri(settings.input_root, "song_data"), SONG_SCHEMA)
    songs = transform.clean_songs(transform.usable(transform.flag_song_rows(song_data)))
    songs = songs.persist(StorageLevel.MEMORY_AND_DISK)
    songs.count()
    staging = join_uri(settings.output_root, "_staging", "stream-songs")
    if not path_exists(spark, table_path(settings.output_root, SONGS)):
        write_table(spark, transform.songs_table(songs), SONGS, settings.output_root, staging, keep_partitions=False)
        write_table(spark, transform.artists_table(songs), ARTISTS, settings.output_root, staging, False)
    batches: List[int] = []

    def each(lines: DataFrame, batch_id: int) -> None:
        begun = time.monotonic()
        process_batch(spark, settings, songs, lines, batch_id)
        batches.append(batch_id)
        print(f"{time.strftime('%H:%M:%S')} batch {batch_id} done in {time.monotonic() - begun:.1f} s", flush=True)
        if on_batch is not None:
            on_batch(batch_id)

    writer = (
        source_frame(spark, settings.input_root, files_per_batch)
        .writeStream.foreachBatch(each)
        .option("checkpointLocation", join_uri(settings.output_root, CHECKPOINT))
    )
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=f"{interval_seconds} seconds")
    )
    query = writer.start()
    try:
        if timeout_seconds is None:
            query.awaitTermination()
        else:
            query.awaitTermination(timeout_seconds)
    finally:
        query.stop()
        songs.unpersist()
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()))
    return batches
