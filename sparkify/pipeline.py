"""The order of stages: extract -> validate -> transform -> load -> checks -> report."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Sequence
from urllib.parse import urlparse

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify import s3, transform
from sparkify.config import Settings
from sparkify.errors import UserError
from sparkify.extract import check_local_input, extract
from sparkify.load import QUARANTINE, write_quarantine, write_table
from sparkify.quality import DEFAULT_CHECKS, Check, format_results, run_checks
from sparkify.report import RunResult, SourceCounts, new_run_id, summary
from sparkify.schemas import ARTISTS, SONGPLAYS, SONGS, TIME, USERS, Table
from sparkify.session import build_session, local_jars
from sparkify.storage import count_input, is_local, join_uri, local_path, path_exists, recover, write_text

STAGING = "_staging"  # local output: tables are written here, then swapped in whole


@contextmanager
def stage(seconds: Dict[str, float], name: str, log: bool = True) -> Iterator[None]:
    """Time a stage (adding up repeats) and say on stderr when it starts and ends."""
    begun = time.monotonic()
    if log:
        print(f"{time.strftime('%H:%M:%S')} {name} ...", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        took = time.monotonic() - begun
        seconds[name] = seconds.get(name, 0.0) + took
        if log:
            print(f"{time.strftime('%H:%M:%S')} {name} done in {took:.1f} s", file=sys.stderr, flush=True)


def _counts(spark: SparkSession, flagged: DataFrame, folder: str, plays: bool) -> SourceCounts:
    listing = count_input(spark, folder)
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
                f"{join_uri(settings.output_root, QUARANTINE)} with its file and reason: fix the input, or raise "
                "[ETL] MAX_REJECTED_SHARE in dl.cfg. The tables were not written."
            )


def run(
    spark: SparkSession, settings: Settings, checks: Optional[Sequence[Check]] = None, run_id: Optional[str] = None
) -> RunResult:
    """Build and write the five tables; check them; write the report. Returns what happened."""
    result = RunResult(run_id=run_id or new_run_id(), input_root=settings.input_root, output_root=settings.output_root)
    seconds = result.seconds
    staging = join_uri(settings.output_root, STAGING, result.run_id)
    if is_local(settings.output_root):  # finish what a killed run left behind
        recover(
            local_path(settings.output_root),
            local_path(join_uri(settings.output_root, STAGING)),
            local_path(join_uri(settings.output_root, STAGING, "_trash")),
        )
    try:
        with stage(seconds, "extract"):
            raw = extract(spark, settings.input_root)
            songs_flagged = transform.flag_song_rows(raw.songs).persist(StorageLevel.MEMORY_AND_DISK)
            logs_flagged = transform.flag_log_rows(raw.logs).persist(StorageLevel.MEMORY_AND_DISK)
            result.sources["song_data"] = _counts(
                spark, songs_flagged, join_uri(settings.input_root, "song_data"), plays=False
            )
            result.sources["log_data"] = _counts(
                spark, logs_flagged, join_uri(settings.input_root, "log_data"), plays=True
            )
        with stage(seconds, "load", log=False):
            rejects = transform.rejected(songs_flagged, "song_data").unionByName(
                transform.rejected(logs_flagged, "log_data")
            )
            result.quarantine.append(write_quarantine(spark, rejects, settings.output_root))
        _check_rejects(result, settings)

        with stage(seconds, "transform"):
            songs = transform.clean_songs(transform.usable(songs_flagged))
            events = transform.clean_events(transform.usable(logs_flagged))
            plays = transform.song_plays(events)
            users = transform.users_table(events)
            old_users = _existing(spark, settings.output_root, USERS)
            if old_users is not None:
                users = transform.merge_users(users, old_users)
            # (table, frame, keep partitions this run has no rows for)
            tables = (
                (SONGS, transform.songs_table(songs), False),
                (ARTISTS, transform.artists_table(songs), False),
                (USERS, users, False),
                (TIME, transform.time_table(plays), True),
                (SONGPLAYS, transform.songplays_table(plays, songs, settings.duration_tolerance), True),
            )
        with stage(seconds, "load"):
            for table, frame, keep in tables:
                result.tables.append(write_table(spark, frame, table, settings.output_root, staging, keep))
        songs_flagged.unpersist()
        logs_flagged.unpersist()

        if checks is not None and len(checks) > 0:
            with stage(seconds, "checks"):
                context = {
                    "next_song_events": result.sources["log_data"].next_song,
                    "written_partitions": _written_condition(result, plays),
                }
                result.checks = run_checks(spark, settings.output_root, checks, context)
        result.status = "checks failed" if result.checks_failed else "ok"
    except UserError as exc:
        result.status, result.message = "failed", str(exc)
        raise
    except Exception as exc:
        result.status, result.message = "failed", type(exc).__name__
        raise
    finally:
        if is_local(settings.output_root):  # nothing staged outlives the run
            shutil.rmtree(local_path(join_uri(settings.output_root, STAGING)), ignore_errors=True)
        seconds["total"] = sum(v for k, v in seconds.items() if k in ("extract", "transform", "load", "checks"))
        _write_report(spark, settings, result)
    return result


def _existing(spark: SparkSession, output_root: str, table: Table) -> Optional[DataFrame]:
    """A table already in the output, read into memory (it is about to be replaced)."""
    path = join_uri(output_root, table.name)
    if not path_exists(spark, path):
        return None
    frame = spark.read.schema(table.columns).parquet(path).persist(StorageLevel.MEMORY_AND_DISK)
    frame.count()  # materialise before the table is overwritten
    return frame


def _written_condition(result: RunResult, plays: DataFrame) -> str:
    """SQL condition selecting the songplays partitions this run wrote."""
    written = next(t for t in result.tables if t.table == SONGPLAYS.name).partitions_written
    if written:
        pairs = [dict(part.split("=", 1) for part in folder.split("/")) for folder in written]
        months = [(int(p["year"]), int(p["month"])) for p in pairs]
    else:  # written in place (S3): ask the data
        rows = plays.select(F.year("start_time").alias("y"), F.month("start_time").alias("m")).distinct().collect()
        months = [(r["y"], r["m"]) for r in rows]
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


def execute(settings: Settings, checks_only: bool = False, skip_checks: bool = False) -> int:
    """The job from settings to exit code: 0 ok, 1 a check failed, 2 a problem the user can fix."""
    settings = prepare(settings) if not checks_only else settings
    spark = build_session(settings)
    if checks_only:
        results = run_checks(spark, settings.output_root, DEFAULT_CHECKS)
        print(format_results(results))
        return 1 if any(r.failed for r in results) else 0
    result = run(spark, settings, checks=None if skip_checks else DEFAULT_CHECKS)
    print(summary(result, report_uri(settings.output_root, result.run_id)))
    return 1 if result.checks_failed else 0
