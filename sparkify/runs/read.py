"""The engine's read step: the planned sources parsed, flagged (transform.REASON), cached and counted.

Each parsed row carries the file it came from (SOURCE_FILE), its raw text (RAW_TEXT), whether its bytes
are valid UTF-8 (VALID_UTF8) and, when it could not be parsed into the schema, CORRUPT_RECORD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession

from sparkify import transform
from sparkify.core.config import Settings
from sparkify.core.results import RunResult, SourceCounts
from sparkify.platform.fs import FileListing, count_input, join_uri
from sparkify.runs.plan import Plan
from sparkify.runs.timing import stage
from sparkify.sources.files import read_logs, read_songs


@dataclass(frozen=True)
class Inputs:
    """The sources, parsed and flagged, cached for the run (None: not read by this run); the logs cleaned
    too (``transform.flagged_events``). ``clean_songs``: the usable songs, cleaned, when the run was given
    them (a stream's micro-batch) rather than reading song_data/. A micro-batch's ``moments``: its new play
    timestamps (``read_batch``)."""

    songs: Optional[DataFrame]
    logs: Optional[DataFrame]
    clean_songs: Optional[DataFrame] = None
    moments: Optional[DataFrame] = None
    cached: Optional[DataFrame] = None

    def usable_songs(self) -> DataFrame:
        if self.clean_songs is not None:
            return self.clean_songs
        assert self.songs is not None
        return transform.clean_songs(transform.usable(self.songs))

    def release(self) -> None:
        for frame in (self.songs, self.logs, self.cached):
            if frame is not None:
                frame.unpersist()


def read_inputs(spark: SparkSession, settings: Settings, plan: Plan, result: RunResult) -> Inputs:
    """Parse and flag what the plan reads: song_data/, the log files, or a micro-batch's events; count them
    into the report."""
    songs = logs = None
    with stage(result.seconds, "extract", log=plan.job.announced):
        if plan.reads_songs:
            with stage(result.stages, "read songs (parse, flag, cache, count)", log=False):
                parsed = read_songs(spark, settings, plan.song_tree)
                songs = transform.flag_song_rows(parsed).persist(StorageLevel.MEMORY_AND_DISK)
                result.sources["song_data"] = count_source(songs, plan.song_listing, plays=False)
        if plan.job.lines is not None:
            return read_batch(plan, result)
        if plan.reads_logs:
            logs = _read_logs(spark, settings, plan, result)
    return Inputs(songs, logs, plan.job.songs if not plan.reads_songs else None)


def read_batch(plan: Plan, result: RunResult) -> Inputs:
    """A stream's micro-batch: its rows as the stream's state let them through (``transform.deduplicated``:
    parsed, flagged, cleaned, repeats gone), cached by one pass that counts them too (an Observation), and
    the (year, month) of its plays into ``plan.months``."""
    counted = Observation("micro-batch")
    cached = plan.job.lines.observe(counted, *transform.batch_tally()).persist(StorageLevel.MEMORY_AND_DISK)
    with stage(result.stages, "read batch (source, state, parse, cache, count)", log=False):
        cached.count()
    got = counted.get
    result.sources["log_data"] = SourceCounts(
        read=got["read"], used=got["used"], rejected=got["rejected"], next_song=got["next_song"]
    )
    plan.months = sorted((int(m) // 100, int(m) % 100) for m in got["months"].split(",") if m)
    events, moments = transform.batch_events(cached), transform.batch_moments(cached)
    return Inputs(None, events, plan.job.songs, moments=moments, cached=cached)


def _read_logs(spark: SparkSession, settings: Settings, plan: Plan, result: RunResult) -> DataFrame:
    with stage(result.stages, "list input", log=False):
        if plan.incremental:
            sizes = sum(status[0] for status in plan.log_statuses.values() if status)
            listing = FileListing(len(plan.log_statuses), sizes, 0)
        else:
            listing = count_input(spark, join_uri(settings.input_root, "log_data"))
    with stage(result.stages, "read logs (parse, flag repeats, cache, count)", log=False):
        logs = cached_logs(spark, read_logs(spark, settings, plan.log_files), listing.bytes)
        result.sources["log_data"] = count_source(logs, listing, plays=True)
    return logs


def count_source(flagged: DataFrame, listing: FileListing, plays: bool) -> SourceCounts:
    row = transform.tally(flagged, plays).first()
    return SourceCounts(
        files=listing.files,
        bytes=listing.bytes,
        read=row["read"],
        used=row["used"],
        rejected=row["rejected"],
        next_song=row["next_song"] if plays else 0,
        ignored_files=listing.ignored,
    )


# The flagged logs are cached in one partition per this many input bytes, at least one per core (a
# stream batch, whose bytes are not known: one per core). A cached plan keeps its shuffles' partitions
# (adaptive execution coalesces none inside it): the repeat-finding window's 64 made every later stage
# over the events run 64 tasks. The bundled sample: songplays write 9.7-12.6 s -> 5.5 s, users 2.5-3.4
# -> 1.5-1.7 s, the whole run 35-43 -> 30-31 s.
CACHED_LOG_BYTES_PER_PARTITION = 128 * 1024 * 1024


def cached_partitions(spark: SparkSession, input_bytes: int) -> int:
    cores = spark.sparkContext.defaultParallelism
    return max(
        cores,
        min(-(-input_bytes // CACHED_LOG_BYTES_PER_PARTITION), int(spark.conf.get("spark.sql.shuffle.partitions"))),
    )


def repeat_count_partitions(spark: SparkSession, cached: int) -> int:
    """The tasks that count the events' identity hashes (``transform.repeated_events``): twice the cached
    logs' partitions, at most the shuffle's, so each task's table holds about 64 MiB of logs' events (10M
    events: 64 tasks of ~160k hashes). 10M events, one warm session, alternating: 20.1 (cold) / 8.4 / 8.2 /
    7.0 s coalesced by adaptive execution, 7.2 / 6.1 / 5.4 / 5.0 s in 64; 1M: 1.66 / 1.10 / 1.03 / 1.04 s vs
    1.09 / 0.95 / 1.01 / 0.81 s in 8."""
    return min(2 * cached, int(spark.conf.get("spark.sql.shuffle.partitions")))


def cached_logs(spark: SparkSession, parsed: DataFrame, input_bytes: int) -> DataFrame:
    """Parsed log lines flagged and cleaned (``transform.flagged_events``), cached in
    ``cached_partitions``: what a run and a stream batch read their counts, rejects and events from.

    They are first cached without looking for repeated events, then the usable events' identities
    are counted (a hash aggregate of their 64-bit hashes, ``transform.repeated_events``). Only when
    one is held twice are they flagged again with the repeat-finding window, a shuffle and sort of
    every event with its raw text (the real logs hold no repeat; 10M events: 49 s of the read's 192 s)."""
    partitions = cached_partitions(spark, input_bytes)

    def cached(repeats: bool) -> DataFrame:
        flagged = transform.flagged_events(parsed, repeats).coalesce(partitions)
        return flagged.persist(StorageLevel.MEMORY_AND_DISK)

    first = cached(repeats=False)
    if transform.repeated_events(first, repeat_count_partitions(spark, partitions)).isEmpty():
        return first
    first.unpersist()
    return cached(repeats=True)
