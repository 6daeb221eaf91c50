"""One flow for every batch run: plan -> read -> build -> publish -> verify -> report.

- plan: what to read (all of log_data/, or some days' files) and whether anything changed;
- read: the sources, parsed and flagged, counted; rejects quarantined; the reject limit;
- build: the five tables (``transform.star_schema``: the same for every mode, the stream too);
- publish: through the sink (``load.ParquetSink``), which owns staging, swaps and partitions;
- verify: the data-quality checks over the tables as written;
- report: OUTPUT/_reports/<run id>.json, whatever happened.

A run holds its output (``lock.OutputLock``) from plan to report.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify import catalogs as catalog
from sparkify import transform
from sparkify.core.config import Settings
from sparkify.core.errors import UserError, note_stage, redact
from sparkify.core.results import RunResult, SourceCounts, Written, new_run_id
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
from sparkify.platform.fs import (
    FileListing,
    count_input,
    file_status,
    join_uri,
    partition_keys_found,
    read_text,
    write_text,
)
from sparkify.platform.lock import OutputLock
from sparkify.platform.session import run_failure
from sparkify.quality.checks import Check, run_checks
from sparkify.sinks import ParquetSink, quarantine_path, read_table, sink_for
from sparkify.sources.files import InputTree, day_files, extract, list_tree

STATE = "_state/inputs.json"  # what the last successful run read (for incremental runs)


@contextmanager
def stage(seconds: Dict[str, float], name: str, log: bool = True) -> Iterator[None]:
    """Time a stage (adding up repeats), say on stderr when it starts and ends, and name it on
    an error that passes through it."""
    begun = time.monotonic()
    if log:
        print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
    try:
        yield
    except BaseException as exc:
        note_stage(exc, name)
        raise
    finally:
        took = time.monotonic() - begun
        seconds[name] = seconds.get(name, 0.0) + took
        if log:
            print(f"{time.strftime('%H:%M:%S')} {name} done in {took:.1f} s", file=sys.stderr, flush=True)


@dataclass
class Plan:
    """What a run reads and writes. ``log_files`` None: all of log_data/ (a full run)."""

    song_listing: FileListing
    state: Dict[str, Any]
    log_files: Optional[List[str]] = None
    log_statuses: Dict[str, List[Any]] = field(default_factory=dict)
    songs_kept: bool = False  # incremental, song_data/ unchanged: songs and artists stay as written
    nothing_new: str = ""  # why there is nothing to do ("" when there is)
    song_tree: Optional[InputTree] = None  # song_data/ as listed for the plan, read from that listing
    relaid: str = ""  # the songs table found in the other layout: rebuilt whole (the line that says so)

    @property
    def incremental(self) -> bool:
        return self.log_files is not None


@dataclass(frozen=True)
class Inputs:
    """The sources, parsed and flagged (transform.REASON), cached for the run; the logs cleaned
    too (``transform.flagged_events``)."""

    songs: DataFrame
    logs: DataFrame


def run(
    spark: SparkSession,
    settings: Settings,
    checks: Optional[Sequence[Check]] = None,
    run_id: Optional[str] = None,
    days: Optional[Tuple[dt.date, dt.date]] = None,
    rebuild_songs: bool = False,
    session_seconds: Optional[Dict[str, float]] = None,
) -> RunResult:
    """Build and write the five tables; check them; write the report. Returns what happened.

    ``days`` (since, until): an incremental run that reads only those days' log files; it
    rewrites the songplays/time partitions they touch, merges users, and rebuilds songs/artists
    only when song_data/ changed (or ``rebuild_songs``). With nothing new it writes nothing."""
    result = RunResult(run_id=run_id or new_run_id(), input_root=settings.input_root, output_root=settings.output_root)
    result.stages.update(session_seconds or {})
    sink = sink_for(spark, settings, result.run_id)
    lock = OutputLock(settings, result.run_id, "incremental" if days else "full")
    with (
        lock,
        _reported(spark, result, sink, settings),
        _catalog_opened(spark, settings, ahead=days is None) as opening,
    ):
        sink.recover()
        plan = make_plan(spark, settings, sink, days, rebuild_songs, result.stages)
        if plan.nothing_new:
            result.status, result.message = "nothing new", plan.nothing_new
            return result
        inputs = read_inputs(spark, settings, plan, result)
        if opening:  # done with the folders of the tables it registered ahead, before any output is written
            opening.wait()
        publish_rejects(sink, inputs, result, settings)
        tables, plays = build(sink, inputs, plan, settings, result.seconds)
        publish(sink, tables, plan, settings, result, checked=bool(checks))
        inputs.songs.unpersist()
        inputs.logs.unpersist()
        sink.release()
        if checks:
            verify(spark, settings, checks, plan, plays, result, sink.as_written())
        result.status = "checks failed" if result.checks_failed else "ok"
        if plan.songs_kept:
            result.message = "songs and artists: song_data/ unchanged, tables kept (--rebuild-songs rebuilds them)"
        result.message = result.message or plan.relaid
        save_state(spark, settings, plan, result.run_id)
        register_tables(spark, settings, result, sink, ahead=opening.ahead if opening else None)
    return result


def register_tables(
    spark: SparkSession,
    settings: Settings,
    result: RunResult,
    sink: ParquetSink,
    only: Sequence[str] = (),
    ahead: Optional[catalog.Registered] = None,
) -> None:
    """The tables by name in the catalog ([CATALOG] TYPE), once written by ``sink``; recorded in the report.
    ``ahead``: those registered before they were written (``catalog.open_in_background``)."""
    with stage(result.stages, "register in catalog", log=False):
        registered = catalog.register(spark, settings, only, ahead, sink.metadata_location)
    if registered is not None:
        result.catalog = asdict(registered)


@contextmanager
def _catalog_opened(spark: SparkSession, settings: Settings, ahead: bool) -> Iterator[Optional[catalog.Opening]]:
    """The local catalog opening beside the run, once it holds the output (``catalog.open_in_background``;
    ``ahead``: a full run's tables registered before they are written). A run that fails leaves in the
    catalog no table it registered ahead."""
    opening = catalog.open_in_background(spark, settings, register_ahead=ahead)
    try:
        yield opening
    except BaseException:
        if opening:
            opening.undo()
        raise


@contextmanager
def _reported(spark: SparkSession, result: RunResult, sink: ParquetSink, settings: Settings) -> Iterator[None]:
    """The report is written whatever happens, with what the command says of a failure (a JVM that
    died: its Java error and stage); what the run held is released."""
    try:
        yield
    except Exception as exc:
        secrets = settings.aws.secrets
        message = str(exc) if isinstance(exc, UserError) else run_failure(exc, secrets)[0] or type(exc).__name__
        result.status, result.message = "failed", redact(message, secrets)
        raise
    finally:
        try:
            sink.close()
        finally:
            result.seconds["total"] = sum(
                v for k, v in result.seconds.items() if k in ("extract", "transform", "load", "checks")
            )
            write_report(spark, result)


# --- plan -------------------------------------------------------------------------------------


def _fingerprint(listing: FileListing) -> str:
    return f"{listing.files}:{listing.bytes}:{listing.newest:.3f}"


def make_plan(
    spark: SparkSession,
    settings: Settings,
    sink: ParquetSink,
    days: Optional[Tuple[dt.date, dt.date]],
    rebuild_songs: bool,
    stages: Dict[str, float],
) -> Plan:
    """What to read: everything, or the log files of ``days``; nothing when they and song_data/
    are unchanged since the last run that read them. song_data/ is listed once, for the plan and for
    the read (``extract.list_tree``)."""
    text = read_text(spark, join_uri(settings.output_root, STATE))
    state = json.loads(text) if text else {}
    with stage(stages, "list input", log=False):
        song_data = join_uri(settings.input_root, "song_data")
        tree = list_tree(song_data, settings)
        listing = tree.listing if tree is not None else count_input(spark, song_data)
        plan = Plan(song_listing=listing, state=state, song_tree=tree, relaid=songs_relaid(spark, settings))
    if plan.relaid:
        print(plan.relaid, file=sys.stderr, flush=True)
    if days is None:
        return plan
    span = f"{days[0]:%Y-%m-%d}..{days[1]:%Y-%m-%d}"
    plan.log_files = day_files(spark, settings.input_root, *days)
    plan.log_statuses = {uri: list(file_status(spark, uri) or ()) for uri in plan.log_files}
    songs_unchanged = state.get("song_data") == _fingerprint(plan.song_listing)
    seen = state.get("log_files", {})
    if not plan.log_files:
        plan.nothing_new = f"Nothing to do: no log files for {span}."
    elif songs_unchanged and not plan.relaid and all(seen.get(u) == status for u, status in plan.log_statuses.items()):
        plan.nothing_new = (
            f"Nothing new: the {len(plan.log_files)} log files of {span} and song_data/ are unchanged since "
            f"run {state.get('run_id')}; nothing was written."
        )
    plan.songs_kept = songs_unchanged and not rebuild_songs and not plan.relaid and sink.exists(SONGS)
    return plan


def songs_relaid(spark: SparkSession, settings: Settings) -> str:
    """The line that says the run rebuilds the songs table whole because the output holds it in the other
    layout ([ETL] SONGS_PARTITION_BY); "" when it holds none or the same. (Iceberg: always by year.)"""
    if settings.table_format != "parquet":
        return ""
    found = partition_keys_found(spark, join_uri(settings.output_root, SONGS.name))
    if not found or found == settings.songs_partition_by:
        return ""
    return (
        f"songs: the output holds it by ({', '.join(found)}), [ETL] SONGS_PARTITION_BY says "
        f"({', '.join(settings.songs_partition_by)}): the table is rebuilt whole in the new layout."
    )


def save_state(spark: SparkSession, settings: Settings, plan: Plan, run_id: str) -> None:
    """What this run read, for the next incremental run's plan."""
    processed = {**plan.state.get("log_files", {}), **plan.log_statuses} if plan.incremental else {}
    state = {"run_id": run_id, "song_data": _fingerprint(plan.song_listing), "log_files": processed}
    write_text(spark, join_uri(settings.output_root, STATE), json.dumps(state, indent=1))


# --- read -------------------------------------------------------------------------------------


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


def read_inputs(spark: SparkSession, settings: Settings, plan: Plan, result: RunResult) -> Inputs:
    """Parse and flag song_data/ and the planned log files; count them into the report."""
    stages = result.stages
    with stage(result.seconds, "extract"):
        with stage(stages, "read songs (parse, flag, cache, count)", log=False):
            raw = extract(spark, settings.input_root, plan.log_files, settings, plan.song_tree)
            songs = transform.flag_song_rows(raw.songs).persist(StorageLevel.MEMORY_AND_DISK)
            result.sources["song_data"] = count_source(songs, plan.song_listing, plays=False)
        with stage(stages, "list input", log=False):
            if plan.incremental:
                sizes = sum(status[0] for status in plan.log_statuses.values() if status)
                log_listing = FileListing(len(plan.log_statuses), sizes, 0)
            else:
                log_listing = count_input(spark, join_uri(settings.input_root, "log_data"))
        with stage(stages, "read logs (parse, flag repeats, cache, count)", log=False):
            logs = cached_logs(spark, raw.logs, log_listing.bytes)
            result.sources["log_data"] = count_source(logs, log_listing, plays=True)
    return Inputs(songs=songs, logs=logs)


def publish_rejects(sink: ParquetSink, inputs: Inputs, result: RunResult, settings: Settings) -> None:
    """Quarantine what cannot be used; stop before any table is written when too much is."""
    rejects = transform.rejected(inputs.songs, "song_data").unionByName(transform.rejected(inputs.logs, "log_data"))
    with stage(result.seconds, "load", log=False), stage(result.stages, "write _quarantine", log=False):
        result.quarantine.append(sink.quarantine(rejects))
    check_rejects(result.sources, settings, quarantine_path(settings.output_root, result.run_id))


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


# --- build and publish ------------------------------------------------------------------------


def build(
    sink: ParquetSink, inputs: Inputs, plan: Plan, settings: Settings, seconds: Dict[str, float]
) -> Tuple[Dict[str, DataFrame], DataFrame]:
    """The tables to publish (and the plays, for the checks). An incremental run adds its rows
    to the months it touches: their rows already written are read and merged in."""
    with stage(seconds, "transform"):
        songs = transform.clean_songs(transform.usable(inputs.songs))
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
            del tables["songs"], tables["artists"]
    return tables, plays


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
# month (``load.laid_out``'s spread), not one task per month. 10M events in one month (many-events):
# songplays write 37.3 -> 27.2 s, checks 36.4 -> 29.4 s; 1M (events-1m): no difference shown.
SPREAD_MIN_RECORDS = 2_000_000


def publish(
    sink: ParquetSink, tables: Dict[str, DataFrame], plan: Plan, settings: Settings, result: RunResult, checked: bool
) -> None:
    """Dimensions first, the fact last. songplays and time keep the months this run has no rows for.
    ``checked``: the checks follow, and query the songs table as written (``held_for_checks``). Big
    songplays and time are written by every core into each month (SPREAD_MIN_RECORDS)."""
    songs = songs_table_spec(settings.songs_partition_by)
    with stage(result.seconds, "load"):
        for table in (songs, ARTISTS, USERS, TIME, SONGPLAYS):
            if table.name not in tables:
                continue
            records = max(result.sources[s].read for s in table.sources)
            hold = checked and held_for_checks(table, records, s3.is_s3(settings.output_root))
            with stage(result.stages, f"write {table.name}", log=False):
                if table in (TIME, SONGPLAYS):
                    spread = records > SPREAD_MIN_RECORDS
                    result.tables.append(sink.replace_partitions(table, tables[table.name], hold, spread))
                else:
                    result.tables.append(sink.replace(table, tables[table.name], hold))


def play_months(plays: DataFrame) -> List[Tuple[int, int]]:
    """The (year, month) of the plays (a small collect: one row per month)."""
    rows = plays.select(F.year("start_time").alias("y"), F.month("start_time").alias("m")).distinct().collect()
    return sorted((r["y"], r["m"]) for r in rows)


# --- verify and report ------------------------------------------------------------------------


def verify(
    spark: SparkSession,
    settings: Settings,
    checks: Sequence[Check],
    plan: Plan,
    plays: DataFrame,
    result: RunResult,
    as_written: Optional[Dict[str, DataFrame]] = None,
) -> None:
    """The checks over the tables as written (``as_written``: those the run held, ``held_for_checks``, as
    cached during the write; the others read back). A full run's songplays must hold every usable
    NextSong event read (an incremental run adds to months that hold other days too)."""
    with stage(result.seconds, "checks"), stage(result.stages, "checks", log=False):
        written = next(t for t in result.tables if t.table == SONGPLAYS.name)
        context = {"written_partitions": _written_condition(written, plays)}
        if not plan.incremental:
            context["next_song_events"] = result.sources["log_data"].next_song
        result.checks = run_checks(spark, partial(read_table, spark, settings.output_root), checks, context, as_written)


def _written_condition(written: Written, plays: DataFrame) -> str:
    """SQL condition selecting the songplays partitions this run wrote."""
    if written.partitions_written:
        pairs = [dict(part.split("=", 1) for part in folder.split("/")) for folder in written.partitions_written]
        months = [(int(p["year"]), int(p["month"])) for p in pairs]
    else:  # written in place (S3): ask the data
        months = play_months(plays)
    return " OR ".join(f"(year = {y} AND month = {m})" for y, m in sorted(months)) or "FALSE"


def check_output(spark: SparkSession, settings: Settings, checks: Sequence[Check]) -> RunResult:
    """The checks alone over the output as it is (--checks-only, and after a stream), reported.
    Checks that need a run's counts are skipped."""
    result = RunResult(run_id=new_run_id(), input_root="", output_root=settings.output_root)
    with OutputLock(settings, result.run_id, "checks"):
        with stage(result.seconds, "checks", log=False):
            result.checks = run_checks(spark, partial(read_table, spark, settings.output_root), checks)
        result.status = "checks failed" if result.checks_failed else "ok"
        write_report(spark, result)
    return result


def write_report(spark: SparkSession, result: RunResult) -> None:
    try:
        write_text(spark, report_uri(result.output_root, result.run_id), result.to_json())
    except Exception as exc:  # a report that cannot be written must not hide the run's own error
        print(f"warning: could not write the run report ({type(exc).__name__})", file=sys.stderr)


def report_uri(output_root: str, run_id: str) -> str:
    return join_uri(output_root, "_reports", f"{run_id}.json")
