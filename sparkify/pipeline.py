"""The order of stages: extract -> transform -> load, timed, with a summary of what was written."""

from __future__ import annotations

import time

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sparkify import transform
from sparkify.config import Settings
from sparkify.extract import check_local_input, extract
from sparkify.load import write_table
from sparkify.report import RunResult
from sparkify.schemas import ARTISTS, CORRUPT_RECORD, SONGPLAYS, SONGS, TIME, USERS
from sparkify.session import build_session


def run(spark: SparkSession, settings: Settings) -> RunResult:
    result = RunResult(input_root=settings.input_root, output_root=settings.output_root)
    started = time.monotonic()

    raw = extract(spark, settings.input_root)
    songs = transform.clean_songs(raw.songs.where(F.col(CORRUPT_RECORD).isNull()))
    songs = songs.persist(StorageLevel.MEMORY_AND_DISK)
    events = transform.clean_events(raw.logs.where(F.col(CORRUPT_RECORD).isNull() & F.col("ts").isNotNull()))
    events = events.persist(StorageLevel.MEMORY_AND_DISK)
    plays = transform.song_plays(events)
    result.seconds["extract"] = time.monotonic() - started

    tables = (
        (SONGS, transform.songs_table(songs)),
        (ARTISTS, transform.artists_table(songs)),
        (USERS, transform.users_table(events)),
        (TIME, transform.time_table(plays)),
        (SONGPLAYS, transform.songplays_table(plays, songs, settings.duration_tolerance)),
    )
    for table, frame in tables:
        begun = time.monotonic()
        result.tables.append(write_table(spark, frame, table, settings.output_root))
        result.seconds[f"write {table.name}"] = time.monotonic() - begun

    songs.unpersist()
    events.unpersist()
    result.seconds["total"] = time.monotonic() - started
    return result


def execute(settings: Settings) -> RunResult:
    """Check what can be checked without Spark, start the session, run."""
    check_local_input(settings.input_root)
    spark = build_session(settings)
    return run(spark, settings)
