"""The engine's quarantine, build and publish steps: rejects set aside (and the reject limit), the tables
built by ``transform`` (the same rules in every mode), then written through the sink."""

from __future__ import annotations

import sys
from functools import reduce
from typing import Any, Dict, List, Optional, Tuple

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sparkify import transform
from sparkify.core.config import Settings
from sparkify.core.errors import UserError, mask_secrets
from sparkify.core.results import RunResult, SourceCounts, Written
from sparkify.core.schemas import (
    ARTISTS,
    CLASSIC_SONGS_PARTITION_BY,
    SONGPLAYS,
    SONGS,
    TIME,
    USERS,
    Table,
    songs_table_spec,
)
from sparkify.platform import s3
from sparkify.platform.fs import join_uri
from sparkify.runs.plan import MICRO_BATCH, STREAM_SONGS, Plan
from sparkify.runs.read import Inputs
from sparkify.runs.timing import stage
from sparkify.sinks import ParquetSink, quarantine_path

# --- quarantine ---------------------------------------------------------------------------------


def publish_rejects(sink: ParquetSink, inputs: Inputs, result: RunResult, settings: Settings) -> None:
    """Quarantine what cannot be used. A run (and a stream's start) stops before any table is written when
    too much is. (A micro-batch never stops for bad events: ``publish_batch`` quarantines them and warns.)"""
    read = ((inputs.songs, "song_data"), (inputs.logs, "log_data"))
    parts = [transform.rejected(frame, name) for frame, name in read if frame is not None]
    rejects = reduce(DataFrame.unionByName, parts)
    with stage(result.seconds, "load", log=False), stage(result.stages, "write _quarantine", log=False):
        result.quarantine.append(sink.quarantine(rejects))
    if any(counts.rejected for counts in result.sources.values()):
        result.rejects = reject_summary(rejects, settings)
    check_rejects(result.sources, settings, quarantine_path(settings.output_root, result.run_id))


SECRET_WORDS = ("jaas", "password", "secret", "token", "key")  # [KAFKA] options whose values are masked


def reject_summary(rejects: DataFrame, settings: Settings) -> Dict[str, Dict[str, Any]]:
    """The report's rejects: per reason its count and up to 5 examples (raw text cut to 200 characters,
    the run's secrets and anything like an AWS access key masked)."""
    summary: Dict[str, Dict[str, Any]] = {}
    kafka = [v for k, v in settings.kafka.options.items() if any(w in k.lower() for w in SECRET_WORDS)]
    secrets = [*settings.aws.secrets, *kafka]
    for row in sorted(transform.reject_examples(rejects).collect(), key=lambda r: (r["reason"], r["n"])):
        found = summary.setdefault(row["reason"], {"count": row["count"], "examples": []})
        raw = mask_secrets(row["raw"], secrets)
        found["examples"].append({"source": row["source"], "file": row["source_file"], "raw": raw})
    return summary


def check_rejects(sources: Dict[str, SourceCounts], settings: Settings, quarantine: str) -> None:
    """The reject limit ([ETL] MAX_REJECTED_SHARE), per source; an empty source is an error too."""
    for name, counts in sources.items():
        if counts.read == 0:
            raise UserError(
                f"No records found under {join_uri(settings.input_root, name)} ({counts.files} files). "
                "Check that INPUT_DATA / --input points at the root holding song_data/ and log_data/ with *.json files."
            )
        share = counts.rejected / counts.read
        if share > settings.max_rejected_share:
            raise UserError(
                f"{name}: {share:.1%} of records were rejected ({counts.rejected:,} of {counts.read:,}), above "
                f"MAX_REJECTED_SHARE {settings.max_rejected_share:.1%}. Each one is in {quarantine} with its file "
                "and reason: fix the input, or raise [ETL] MAX_REJECTED_SHARE in dl.cfg. The tables were not written."
            )


def alert_rejects(result: RunResult, totals: SourceCounts, settings: Settings) -> None:
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


# --- build --------------------------------------------------------------------------------------


def build(
    sink: ParquetSink, inputs: Inputs, plan: Plan, settings: Settings, seconds: Dict[str, float]
) -> Tuple[Dict[str, DataFrame], Optional[DataFrame]]:
    """The tables to publish (and the plays, for the checks). An incremental run adds its rows
    to the months it touches: their rows already written are read and merged in; a micro-batch keeps
    only the rows its table does not hold yet. A stream's start builds songs and artists only (no plays)."""
    with stage(seconds, "transform", log=plan.job.announced):
        songs = inputs.usable_songs()
        if plan.job.kind == STREAM_SONGS:  # kept for the stream's micro-batches, as a plan of one step
            # (a local checkpoint: each micro-batch's joins with it would analyse the read of song_data/ again)
            songs = plan.job.songs = songs.localCheckpoint(eager=True)
            tables = {SONGS.name: transform.songs_table(songs), ARTISTS.name: transform.artists_table(songs)}
            return ({} if plan.songs_kept else tables), None
        if plan.job.kind == MICRO_BATCH:
            return _batch_tables(sink, inputs, songs, settings), None
        events = transform.usable(inputs.logs)  # cleaned as they were cached
        tables = transform.star_schema(songs, events, sink.read(USERS), settings.duration_tolerance)
        plays = transform.song_plays(events)
        if plan.incremental:
            months = play_months(plays)
            for table, key in ((SONGPLAYS, "songplay_id"), (TIME, "start_time")):
                old = sink.read(table, months)
                if old is not None:
                    tables[table.name] = transform.upsert(tables[table.name], old, key, table)
        if plan.songs_kept:
            del tables[SONGS.name], tables[ARTISTS.name]
    return tables, plays


def _batch_tables(sink: ParquetSink, inputs: Inputs, songs: DataFrame, settings: Settings) -> Dict[str, DataFrame]:
    """A micro-batch's rows (the stream's state let through only events it had not seen: nothing is read
    back from the tables): its plays matched to the stream's songs, its new play timestamps, its users merged
    into the table's (Iceberg: by MERGE INTO, the batch's users only; Parquet has no row-level merge: the
    users file is read, by the write that replaces it, and written again)."""
    events = transform.usable(inputs.logs)
    assert inputs.moments is not None
    known = None if sink.merges_rows else sink.read_lazily(USERS)
    plays = transform.song_plays(events)
    return {
        USERS.name: transform.users_table(events, known),
        TIME.name: transform.time_table(inputs.moments, distinct=False),
        SONGPLAYS.name: transform.songplays_table(plays, songs, settings.duration_tolerance),
    }


def play_months(plays: DataFrame) -> List[Tuple[int, int]]:
    """The (year, month) of the plays (a small collect: one row per month)."""
    rows = plays.select(F.year("start_time").alias("y"), F.month("start_time").alias("m")).distinct().collect()
    return sorted((r["y"], r["m"]) for r in rows)


# --- publish ------------------------------------------------------------------------------------


# The checks query a table as the run wrote it (held in memory: ParquetSink.as_written) rather than reading
# it back when that read would cost more than holding it (a cache during the write, a checkpoint after it):
# - songs in the classic (year, artist_id) layout, from at most HOLD_MAX_RECORDS records: thousands of
#   one-row files, which a read back would open again one by one;
# - on S3, every table written whole (songs, artists, users), each file's read back costing a LIST, about
#   4 HEADs and 3 GETs one after another (public at +20 ms per request: 460 of the checks' 727 requests).
# Every other table is a file, or a few per partition, that the checks read back in one scan. Measured
# (bench/README.md), alternating pairs: events-1m with every table held 99.6 / 97.3 / 98.1 s, with the log
# tables read back 94.7 / 88.2 / 89.2 s.
HOLD_MAX_RECORDS = 2_000_000
WHOLE_TABLES = (SONGS.name, ARTISTS.name, USERS.name)  # replaced whole by every run that writes them


def held_for_checks(table: Table, records: int, on_s3: bool = False) -> bool:
    """Whether the checks query ``table`` as written rather than reading it back (HOLD_MAX_RECORDS)."""
    if records > HOLD_MAX_RECORDS:
        return False
    return table == songs_table_spec(CLASSIC_SONGS_PARTITION_BY) or (on_s3 and table.name in WHOLE_TABLES)


# Above this many records of their sources, songplays and time are written by every core into each
# month (``sinks.parquet.laid_out``'s spread), not one task per month. 10M events in one month (many-events):
# songplays write 37.3 -> 27.2 s, checks 36.4 -> 29.4 s; 1M (events-1m): no difference shown.
SPREAD_MIN_RECORDS = 2_000_000


def publish(
    sink: ParquetSink, tables: Dict[str, DataFrame], plan: Plan, settings: Settings, result: RunResult, checked: bool
) -> None:
    """Dimensions first, the fact last. songplays and time keep the months this run has no rows for; a
    micro-batch appends its rows in files named after the batch. ``checked``: the checks follow, and query
    some tables as written (``held_for_checks``). Big songplays and time are written by every core into each
    month (SPREAD_MIN_RECORDS)."""
    songs = songs_table_spec(settings.songs_partition_by)
    with stage(result.seconds, "load", log=plan.job.announced):
        for table in (songs, ARTISTS, USERS, TIME, SONGPLAYS):
            if table.name in tables:
                with stage(result.stages, f"write {table.name}", log=False):
                    result.tables.append(_publish_table(sink, table, tables[table.name], plan, result, checked))


def publish_batch(
    sink: ParquetSink, tables: Dict[str, DataFrame], inputs: Inputs, plan: Plan, settings: Settings, result: RunResult
) -> None:
    """A micro-batch: its users merged, its new time rows and plays appended under its batch id
    (``sink.append_batch``: a batch replayed after a crash replaces its own files or commits nothing again),
    its rejects quarantined and counted against the reject limit (a warning). A batch of nothing (Spark's run
    after the watermark moved, to drop expired state) writes nothing."""
    counts = result.sources["log_data"]
    with stage(result.seconds, "load", log=False):
        if counts.used:
            with stage(result.stages, "write users", log=False):
                result.tables.append(sink.replace(USERS, tables[USERS.name]))
        for table in (TIME, SONGPLAYS):
            if counts.next_song:
                with stage(result.stages, f"write {table.name}", log=False):
                    result.tables.append(sink.append_batch(table, tables[table.name], plan.job.batch_id))
        if counts.rejected:
            rejects = transform.rejected(inputs.logs, "log_data")
            with stage(result.stages, "write _quarantine", log=False):
                result.quarantine.append(sink.quarantine(rejects))
            result.rejects = reject_summary(rejects, settings)
    alert_rejects(result, plan.job.totals, settings)


def _publish_table(
    sink: ParquetSink, table: Table, frame: DataFrame, plan: Plan, result: RunResult, checked: bool
) -> Written:
    records = max(result.sources[s].read for s in table.sources if s in result.sources)
    hold = checked and held_for_checks(table, records, s3.is_s3(sink.root))
    if table in (TIME, SONGPLAYS):
        return sink.replace_partitions(table, frame, hold, records > SPREAD_MIN_RECORDS)
    return sink.replace(table, frame, hold)
