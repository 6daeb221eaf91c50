"""The order of stages: extract -> validate -> transform -> load -> checks -> report."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify import s3, transform
from sparkify.config import Settings
from sparkify.errors import UserError, note_stage
from sparkify.extract import check_local_input, day_files, extract
from sparkify.load import quarantine_path, read_existing, write_quarantine, write_table
from sparkify.quality import DEFAULT_CHECKS, Check, format_results, run_checks
from sparkify.report import RunResult, SourceCounts, new_run_id, summary
from sparkify.schemas import ARTISTS, SONGPLAYS, SONGS, TIME, USERS, Table, songs_table_spec
from sparkify.session import build_session, local_jars
from sparkify.storage import (
    FileListing,
    count_input,
    file_status,
    is_local,
    join_uri,
    local_path,
    path_exists,
    read_text,
    recover,
    write_text,
)

STAGING = "_staging"  # local output: tables are written here, then swapped in whole
STATE = "_state/inputs.json"  # what the last successful run read (for incremental runs)


@contextmanager
def stage(seconds: Dict[str, float], name: str, log: bool = True) -> Iterator[None]:
    """Time a stage (adding up repeats) and say on stderr when it starts and ends."""
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


def _counts(flagged: DataFrame, listing: FileListing, plays: bool) -> SourceCounts:
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


def _fingerprint(listing: FileListing) -> str:
    return f"{listing.files}:{listing.bytes}:{listing.newest:.3f}"


def _read_state(spark: SparkSession, output_root: str) -> Dict[str, Any]:
    text = read_text(spark, join_uri(output_root, STATE))
    return json.loads(text) if text else {}


def _check_rejects(result: RunResult, settings: Settings) -> None:
    for name, counts in result.sources.items():
        if counts.read == 0:
            raise UserError(
                f"No records found under {join_uri(settings.input_root, name)} ({counts.files} files). "
                "Check that INPUT_DATA / --input points at the root holding song_data/ and log_data/ with *.json files."
            )
        share = counts.rejected / counts.read
        if share > settings.max_rejected_share:
            raise UserError(
                f"{name}: {share:.1%} of records were rejected ({counts.rejected:,} of {counts.read:,}), above "
                f"MAX_REJECTED_SHARE {settings.max_rejected_share:.1%}. Each one is in "
                f"{quarantine_path(settings.output_root, result.run_id)} with its file and reason: fix the input, "
                "or raise [ETL] MAX_REJECTED_SHARE in dl.cfg. The tables were not written."
            )


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
    seconds = result.seconds
    staging = join_uri(settings.output_root, STAGING, result.run_id)
    if is_local(settings.output_root):  # finish what a killed run left behind
        recover(
            local_path(settings.output_root),
            local_path(join_uri(settings.output_root, STAGING)),
            local_path(join_uri(settings.output_root, STAGING, "_trash")),
        )
    state = _read_state(spark, settings.output_root)
    held: List[DataFrame] = []  # old tables read into memory because this run replaces them
    stages = result.stages
    stages.update(session_seconds or {})
    with stage(stages, "list input", log=False):
        song_listing = count_input(spark, join_uri(settings.input_root, "song_data"))
    log_files: Optional[List[str]] = None
    if days is not None:
        log_files = day_files(spark, settings.input_root, *days)
        statuses = {uri: list(file_status(spark, uri) or ()) for uri in log_files}
        seen = state.get("log_files", {})
        span = f"{days[0]:%Y-%m-%d}..{days[1]:%Y-%m-%d}"
        if not log_files:
            result.status, result.message = "nothing new", f"Nothing to do: no log files for {span}."
            return result
        if state.get("song_data") == _fingerprint(song_listing) and all(seen.get(u) == statuses[u] for u in log_files):
            result.status = "nothing new"
            result.message = (
                f"Nothing new: the {len(log_files)} log files of {span} and song_data/ are unchanged since "
                f"run {state.get('run_id')}; nothing was written."
            )
            return result
    songs_kept = (
        days is not None
        and not rebuild_songs
        and state.get("song_data") == _fingerprint(song_listing)
        and path_exists(spark, join_uri(settings.output_root, SONGS.name))
    )
    try:
        with stage(seconds, "extract"):
            with stage(stages, "read songs (parse, flag, cache, count)", log=False):
                raw = extract(spark, settings.input_root, log_files)
                songs_flagged = transform.flag_song_rows(raw.songs).persist(StorageLevel.MEMORY_AND_DISK)
                result.sources["song_data"] = _counts(songs_flagged, song_listing, plays=False)
            with stage(stages, "list input", log=False):
                if log_files is None:
                    log_listing = count_input(spark, join_uri(settings.input_root, "log_data"))
                else:
                    log_listing = FileListing(len(log_files), sum(st[0] for st in statuses.values() if st), 0)
            with stage(stages, "read logs (parse, flag repeats, cache, count)", log=False):
                logs_flagged = transform.flag_log_rows(raw.logs).persist(StorageLevel.MEMORY_AND_DISK)
                result.sources["log_data"] = _counts(logs_flagged, log_listing, plays=True)
        with stage(seconds, "load", log=False):
            rejects = transform.rejected(songs_flagged, "song_data").unionByName(
                transform.rejected(logs_flagged, "log_data")
            )
            with stage(stages, "write _quarantine", log=False):
                result.quarantine.append(write_quarantine(spark, rejects, settings.output_root, result.run_id))
        _check_rejects(result, settings)

        with stage(seconds, "transform"):
            songs = transform.clean_songs(transform.usable(songs_flagged))
            events = transform.clean_events(transform.usable(logs_flagged))
            plays = transform.song_plays(events)
            old_users = _hold(held, read_existing(spark, settings.output_root, USERS))
            users = transform.users_table(events, old_users)
            songplays = transform.songplays_table(plays, songs, settings.duration_tolerance)
            time_rows = transform.time_table(plays)
            if days is not None:  # incremental: add to the months it touches, keep their other days
                touched = _play_months(plays)
                songplays = _upsert_months(spark, settings, held, SONGPLAYS, songplays, touched, "songplay_id")
                time_rows = _upsert_months(spark, settings, held, TIME, time_rows, touched, "start_time")
            # (table, frame, keep partitions this run has no rows for)
            tables = (
                ()
                if songs_kept
                else (
                    (songs_table_spec(settings.songs_partition_by), transform.songs_table(songs), False),
                    (ARTISTS, transform.artists_table(songs), False),
                )
            ) + (
                (USERS, users, False),
                (TIME, time_rows, True),
                (SONGPLAYS, songplays, True),
            )
        with stage(seconds, "load"):
            for table, frame, keep in tables:
                with stage(stages, f"write {table.name}", log=False):
                    result.tables.append(write_table(spark, frame, table, settings.output_root, staging, keep))
        songs_flagged.unpersist()
        logs_flagged.unpersist()

        if checks is not None and len(checks) > 0:
            with stage(seconds, "checks"), stage(stages, "checks", log=False):
                context = {"written_partitions": _written_condition(result, plays)}
                if days is None:  # an incremental run adds to months that hold other days too
                    context["next_song_events"] = result.sources["log_data"].next_song
                result.checks = run_checks(spark, settings.output_root, checks, context)
        result.status = "checks failed" if result.checks_failed else "ok"
        if songs_kept:
            result.message = "songs and artists: song_data/ unchanged, tables kept (--rebuild-songs rebuilds them)"
        processed = {**state.get("log_files", {}), **statuses} if log_files is not None else {}
        new_state = {"run_id": result.run_id, "song_data": _fingerprint(song_listing), "log_files": processed}
        write_text(spark, join_uri(settings.output_root, STATE), json.dumps(new_state, indent=1))
    except UserError as exc:
        result.status, result.message = "failed", str(exc)
        raise
    except Exception as exc:
        result.status, result.message = "failed", type(exc).__name__
        raise
    finally:
        # Cached copies of replaced tables would be served for the same path from now on.
        for frame in held:
            frame.unpersist()
        if is_local(settings.output_root):  # nothing staged outlives the run
            shutil.rmtree(local_path(join_uri(settings.output_root, STAGING)), ignore_errors=True)
        seconds["total"] = sum(v for k, v in seconds.items() if k in ("extract", "transform", "load", "checks"))
        _write_report(spark, settings, result)
    return result


def _hold(held: List[DataFrame], frame: Optional[DataFrame]) -> Optional[DataFrame]:
    """Note an old table read into memory (read_existing), to unpersist once it is replaced."""
    if frame is not None:
        held.append(frame)
    return frame


def _upsert_months(
    spark: SparkSession,
    settings: Settings,
    held: List[DataFrame],
    table: Table,
    new: DataFrame,
    months: List[Tuple[int, int]],
    key: str,
) -> DataFrame:
    """New rows plus the rows already written in the same (year, month) partitions; a row of
    this run replaces the old row with the same key."""
    old = _hold(held, read_existing(spark, settings.output_root, table, months))
    return new if old is None else transform.upsert(new, old, key, table)


def _play_months(plays: DataFrame) -> List[Tuple[int, int]]:
    """The (year, month) of the plays (a small collect: one row per month)."""
    rows = plays.select(F.year("start_time").alias("y"), F.month("start_time").alias("m")).distinct().collect()
    return sorted((r["y"], r["m"]) for r in rows)


def _written_condition(result: RunResult, plays: DataFrame) -> str:
    """SQL condition selecting the songplays partitions this run wrote."""
    written = next(t for t in result.tables if t.table == SONGPLAYS.name).partitions_written
    if written:
        pairs = [dict(part.split("=", 1) for part in folder.split("/")) for folder in written]
        months = [(int(p["year"]), int(p["month"])) for p in pairs]
    else:  # written in place (S3): ask the data
        months = _play_months(plays)
    return " OR ".join(f"(year = {y} AND month = {m})" for y, m in sorted(months)) or "FALSE"


def _write_report(spark: SparkSession, settings: Settings, result: RunResult) -> None:
    try:
        write_text(spark, report_uri(settings.output_root, result.run_id), result.to_json())
    except Exception as exc:  # a report that cannot be written must not hide the run's own error
        print(f"warning: could not write the run report ({type(exc).__name__})", file=sys.stderr)


def report_uri(output_root: str, run_id: str) -> str:
    return join_uri(output_root, "_reports", f"{run_id}.json")


def _validate_paths(settings: Settings) -> None:
    for value, key, flag in (
        (settings.input_root, "INPUT_DATA", "--input"),
        (settings.output_root, "OUTPUT_DATA", "--output"),
    ):
        if not value:
            raise UserError(f"No {key}: set [ETL] {key} in dl.cfg, or pass {flag}.")
    source, target = (
        uri.rstrip("/") if "://" in uri else os.path.abspath(uri) for uri in (settings.input_root, settings.output_root)
    )
    if target == source or target.startswith(source + "/"):
        raise UserError(
            f"The output {settings.output_root} is inside the input {settings.input_root}: the tables would be "
            "written among the raw data. Choose an OUTPUT_DATA / --output outside the input root."
        )
    parsed = urlparse(settings.output_root)
    if s3.is_s3(settings.output_root) and parsed.path.strip("/") == "" and not settings.allow_bucket_root:
        raise UserError(
            f"The output {settings.output_root} is a bucket's root: overwriting tables there could replace "
            "other data in the bucket. Use a prefix (s3://bucket/lake), or pass --force if you mean it."
        )
    if is_local(settings.output_root):
        folder = local_path(settings.output_root)
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise UserError(
                f"The output {settings.output_root} is not writable ({exc.strerror}). "
                "Choose a writable OUTPUT_DATA / --output."
            ) from None


def prepare(settings: Settings) -> Settings:
    """Map URIs to the platform's S3 scheme and check what can be checked without Spark."""
    emr = s3.on_emr()
    settings = settings.with_overrides(
        input_root=s3.normalize_uri(settings.input_root, emr), output_root=s3.normalize_uri(settings.output_root, emr)
    )
    _validate_paths(settings)
    uses_s3a = any(s3.is_s3(uri) for uri in (settings.input_root, settings.output_root))
    if uses_s3a and not emr and not local_jars() and not settings.jars_packages:
        raise UserError(
            "The S3A connector is not installed: run `make jars` (it extracts hadoop-aws and the AWS SDK "
            "bundle from a PyPI package into .jars/), or set [SPARK] JARS_PACKAGES in dl.cfg to "
            "org.apache.hadoop:hadoop-aws:3.3.4 where Maven is reachable."
        )
    check_local_input(settings.input_root)
    return settings


def execute(
    settings: Settings,
    checks_only: bool = False,
    skip_checks: bool = False,
    days: Optional[Tuple[dt.date, dt.date]] = None,
    rebuild_songs: bool = False,
    stream: Optional[Dict[str, Any]] = None,
) -> int:
    """The job from settings to exit code: 0 ok, 1 a check failed, 2 a problem the user can fix."""
    settings = prepare(settings) if not checks_only else settings
    started: Dict[str, float] = {}
    with stage(started, "start Spark session", log=False):
        spark = build_session(settings)
    if stream is not None:
        from sparkify.stream import run_stream

        batches = run_stream(spark, settings, **stream)
        print(f"Stream stopped after {len(batches)} micro-batches; output: {settings.output_root}")
        return 0
    if checks_only:
        results = run_checks(spark, settings.output_root, DEFAULT_CHECKS)
        print(format_results(results))
        return 1 if any(r.failed for r in results) else 0
    checks = None if skip_checks else DEFAULT_CHECKS
    result = run(spark, settings, checks, days=days, rebuild_songs=rebuild_songs, session_seconds=started)
    print(summary(result, report_uri(settings.output_root, result.run_id)))
    return 1 if result.checks_failed else 0
