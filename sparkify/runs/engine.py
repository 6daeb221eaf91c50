"""One engine for every mode: plan -> read -> quarantine -> build -> publish -> verify -> report -> register.

- plan (``runs.plan``): what to read (all of log_data/, some days' files, a stream's songs or micro-batch,
  or nothing: checks only) and whether anything changed;
- read (``runs.read``): the sources, parsed and flagged, counted;
- quarantine, build, publish (``runs.write``): rejects set aside and the reject limit; the tables by
  ``transform`` (the same rules in every mode); written through the sink of [ETL] TABLE_FORMAT;
- verify: the data-quality checks over the tables as written;
- report: OUTPUT/_reports/<run id>.json, whatever happened;
- register: the tables by name in the catalog of [CATALOG] TYPE.

A run holds its output (``platform.lock.OutputLock``) from plan to report; a stream holds it for its whole
life, and its micro-batches run inside.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from functools import partial
from typing import Dict, Iterator, Optional, Sequence, Set

from pyspark.sql import DataFrame, SparkSession

from sparkify import catalogs as catalog
from sparkify.core.config import Settings
from sparkify.core.errors import EXIT_JVM_DIED, UserError, redact
from sparkify.core.results import RunResult, Written, new_run_id
from sparkify.core.schemas import SONGPLAYS
from sparkify.platform.fs import join_uri, write_text
from sparkify.platform.lock import OutputLock
from sparkify.platform.session import jobs_started, run_failure
from sparkify.quality import site
from sparkify.quality.checks import Check, run_checks
from sparkify.runs.plan import CHECKS, FULL, INCREMENTAL, MICRO_BATCH, Job, Plan, make_plan, save_state
from sparkify.runs.read import Inputs, read_inputs
from sparkify.runs.timing import stage
from sparkify.runs.write import build, play_months, publish, publish_batch, publish_rejects
from sparkify.sinks import ParquetSink, read_table, sink_for


def run(
    spark: SparkSession,
    settings: Settings,
    job: Optional[Job] = None,
    checks: Sequence[Check] = (),
    session_seconds: Optional[Dict[str, float]] = None,
) -> RunResult:
    """The job's one engine: ``job`` (default: a full run) says what to read and how to publish; ``checks``:
    the checks to run over the tables once written. Returns what happened, as the report says it."""
    job = job or Job()
    run_id = job.run_id or new_run_id()
    result = RunResult(run_id=run_id, input_root=settings.input_root, output_root=settings.output_root)
    result.stages.update(session_seconds or {})
    result.stream = dict(job.stream)
    result.mode = job.kind
    sink = sink_for(spark, settings, result.run_id)
    held = nullcontext() if job.in_stream else OutputLock(settings, result.run_id, job.kind)
    reported = _reported(spark, result, sink, settings, jobs_started(spark))
    with held, reported, _catalog_opened(spark, settings, job) as opening:
        if job.kind != MICRO_BATCH:  # (a micro-batch's stream recovered the output when it started)
            sink.recover()
        plan = make_plan(spark, settings, sink, job, result.stages)
        if plan.nothing_new:
            result.status, result.message = "nothing new", plan.nothing_new
            return result
        plays = _write(spark, settings, sink, plan, result, opening, checked=bool(checks)) if job.writes else None
        if checks:
            verify(spark, settings, checks, plan, plays, result, sink.as_written())
        _conclude(spark, settings, sink, plan, result, opening)
    return result


def _write(
    spark: SparkSession,
    settings: Settings,
    sink: ParquetSink,
    plan: Plan,
    result: RunResult,
    opening: Optional[catalog.Opening],
    checked: bool,
) -> Optional[DataFrame]:
    """Read, quarantine, build and publish; the plays built, for the checks."""
    inputs = Inputs(None, None)
    try:
        inputs = read_inputs(spark, settings, plan, result)
        if opening:  # done with the folders of the tables it registered ahead, before any output is written
            opening.wait()
        if plan.job.kind == MICRO_BATCH:
            tables, _ = build(sink, inputs, plan, settings, result.seconds)
            publish_batch(sink, tables, inputs, plan, settings, result)
            return None
        publish_rejects(sink, inputs, result, settings)
        tables, plays = build(sink, inputs, plan, settings, result.seconds)
        publish(sink, tables, plan, settings, result, checked)
    finally:
        inputs.release()
        sink.release()
    return plays


def _conclude(
    spark: SparkSession,
    settings: Settings,
    sink: ParquetSink,
    plan: Plan,
    result: RunResult,
    opening: Optional[catalog.Opening],
) -> None:
    """The run's status and message, what it read (for the next incremental run), the catalog told."""
    result.status = "checks failed" if result.checks_failed else "ok"
    if plan.songs_kept and plan.job.kind == INCREMENTAL:
        result.message = "songs and artists: song_data/ unchanged, tables kept (--rebuild-songs rebuilds them)"
    result.message = result.message or plan.relaid
    save_state(spark, settings, plan, result.run_id)
    if plan.job.writes:
        register_tables(spark, settings, result, sink, plan, opening.ahead if opening else None)


def register_tables(
    spark: SparkSession,
    settings: Settings,
    result: RunResult,
    sink: ParquetSink,
    plan: Plan,
    ahead: Optional[catalog.Registered] = None,
) -> None:
    """The tables this run wrote, by name in the catalog ([CATALOG] TYPE); recorded in the report. A
    micro-batch registers only when it wrote into a month the catalog does not know yet. ``ahead``: those
    registered before they were written (``catalogs.open_in_background``)."""
    only: Sequence[str] = ()  # a batch run: all five (those it kept are checked unchanged)
    if plan.job.kind not in (FULL, INCREMENTAL):
        if not _new_months(settings, plan, result):
            return
        only = [t.table for t in result.tables]
    with stage(result.stages, "register in catalog", log=False):
        registered = catalog.register(spark, settings, only, ahead, sink.metadata_location)
    if registered is not None:
        result.catalog = asdict(registered)


def _new_months(settings: Settings, plan: Plan, result: RunResult) -> bool:
    """Whether a stream's run wrote what its catalog does not know yet: the stream's start, songs and
    artists when it wrote them; a micro-batch, a month its catalog does not hold (remembered)."""
    if plan.months is None:
        return bool(result.tables)
    months = set(plan.months) if settings.catalog_type != "none" else set()
    new = not months <= plan.job.registered
    plan.job.registered |= months
    return new


@contextmanager
def _catalog_opened(spark: SparkSession, settings: Settings, job: Job) -> Iterator[Optional[catalog.Opening]]:
    """The local catalog opening beside a batch run, once it holds the output (``open_in_background``; a
    full run's tables registered before they are written). A run that fails leaves in the catalog no
    table it registered ahead. (A stream opens it once, when it starts: ``runs.modes``.)"""
    if job.kind not in (FULL, INCREMENTAL):
        yield None
        return
    opening = catalog.open_in_background(spark, settings, register_ahead=job.kind == FULL)
    try:
        yield opening
    except BaseException:
        if opening:
            opening.undo()
        raise


@contextmanager
def _reported(
    spark: SparkSession, result: RunResult, sink: ParquetSink, settings: Settings, jobs_before: Set[int]
) -> Iterator[None]:
    """The report is written whatever happens, with what the command says of a failure (a JVM that
    died: its Java error and stage) and the Spark jobs the run started; what the run held is released."""
    try:
        yield
    except Exception as exc:
        secrets = settings.aws.secrets
        failure, died = (None, False) if isinstance(exc, UserError) else run_failure(exc, secrets)
        message = str(exc) if isinstance(exc, UserError) else failure or type(exc).__name__
        result.status, result.message = "failed", redact(message, secrets)
        result.exit_code = 2 if isinstance(exc, UserError) else EXIT_JVM_DIED if died else 3
        raise
    finally:
        try:
            sink.close()
        finally:
            result.seconds["total"] = sum(
                v for k, v in result.seconds.items() if k in ("extract", "transform", "load", "checks")
            )
            try:
                result.spark_jobs = len(jobs_started(spark) - jobs_before)
            except Exception:  # a JVM that died answers nothing: the report goes without the count
                pass
            result.exit_code = result.exit_code or (1 if result.checks_failed else 0)
            write_report(spark, result)


# --- verify and report ------------------------------------------------------------------------


def verify(
    spark: SparkSession,
    settings: Settings,
    checks: Sequence[Check],
    plan: Plan,
    plays: Optional[DataFrame],
    result: RunResult,
    as_written: Optional[Dict[str, DataFrame]] = None,
) -> None:
    """The checks over the tables as written (``as_written``: those the run held, ``held_for_checks``, as
    cached during the write; the others read back). A full run's songplays must hold every usable
    NextSong event read (an incremental run adds to months that hold other days too). Checks that need a
    run's counts are skipped when the run has none (checks only)."""
    context: Dict[str, object] = {}
    written = next((t for t in result.tables if t.table == SONGPLAYS.name), None)
    if written is not None and plays is not None:
        context["written_partitions"] = _written_condition(written, plays)
    if plan.job.kind == FULL:
        context["next_song_events"] = result.sources["log_data"].next_song
    with stage(result.seconds, "checks", log=plan.job.kind != CHECKS), stage(result.stages, "checks", log=False):
        read = partial(read_table, spark, settings.output_root)
        result.checks = run_checks(spark, read, checks, context, as_written)


def _written_condition(written: Written, plays: DataFrame) -> str:
    """SQL condition selecting the songplays partitions this run wrote."""
    if written.partitions_written:
        pairs = [dict(part.split("=", 1) for part in folder.split("/")) for folder in written.partitions_written]
        months = [(int(p["year"]), int(p["month"])) for p in pairs]
    else:  # written in place (S3): ask the data
        months = play_months(plays)
    return " OR ".join(f"(year = {y} AND month = {m})" for y, m in sorted(months)) or "FALSE"


def write_report(spark: SparkSession, result: RunResult) -> None:
    """The JSON report, then its page beside it and (a run, not a micro-batch: ``stream_index``) the index."""
    try:
        text = result.to_json()
        write_text(spark, report_uri(result.output_root, result.run_id), text)
        site.write_run_page(spark, result.output_root, json.loads(text))
        if result.mode != MICRO_BATCH:
            site.write_index(spark, result.output_root)
    except Exception as exc:  # a report that cannot be written must not hide the run's own error
        print(f"warning: could not write the run report ({type(exc).__name__})", file=sys.stderr)


def report_uri(output_root: str, run_id: str) -> str:
    return join_uri(output_root, "_reports", f"{run_id}.json")
