"""What one run of the engine does (``Job``: the mode's choices) and reads (``Plan``), and what the last
successful run read (OUTPUT/_state/inputs.json, for incremental runs)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from pyspark.sql import DataFrame, SparkSession

from sparkify.core.config import Settings
from sparkify.core.results import SourceCounts
from sparkify.core.schemas import SONGS
from sparkify.platform.fs import (
    FileListing,
    count_input,
    file_status,
    join_uri,
    partition_keys_found,
    read_text,
    write_text,
)
from sparkify.runs.timing import stage
from sparkify.sinks import ParquetSink
from sparkify.sources.files import InputTree, day_files, list_tree

STATE = "_state/inputs.json"  # what the last successful run read (for incremental runs)

FULL, INCREMENTAL, STREAM_SONGS, MICRO_BATCH, CHECKS = "full", "incremental", "stream songs", "micro-batch", "checks"


@dataclass
class Job:
    """One run of the engine, as the mode asks for it:
    - ``full``: every table from all the input;
    - ``incremental``: the log files of ``days``, merged into the months they touch;
    - ``stream songs``: a stream's start: song_data/ read once, songs and artists written when absent,
      the usable songs kept (``songs``) for the micro-batches;
    - ``micro-batch``: one batch of a stream's events (``lines``) against those songs, appended;
    - ``checks``: the checks alone over the output as it is."""

    kind: str = FULL
    run_id: str = ""
    days: Optional[Tuple[dt.date, dt.date]] = None
    rebuild_songs: bool = False
    lines: Optional[DataFrame] = None  # micro-batch: its events as text (SOURCE_FILE, value)
    batch_id: int = 0
    songs: Optional[DataFrame] = None  # a stream's usable songs: set by ``stream songs``, read by micro-batches
    totals: SourceCounts = field(default_factory=SourceCounts)  # a stream's records read and rejected so far
    registered: Set[Tuple[int, int]] = field(default_factory=set)  # a stream's months the catalog knows
    stream: Dict[str, Any] = field(default_factory=dict)  # what a stream's reports say of it (checkpoint, ...)

    @property
    def in_stream(self) -> bool:
        """A stream's start and micro-batches run inside the stream, which holds the output for its life."""
        return self.kind in (STREAM_SONGS, MICRO_BATCH)

    @property
    def announced(self) -> bool:
        """A batch run says on stderr when each step starts and ends; a stream says when each batch is done."""
        return self.kind in (FULL, INCREMENTAL)

    @property
    def writes(self) -> bool:
        return self.kind != CHECKS


@dataclass
class Plan:
    """What a run reads and writes. ``log_files`` None: all of log_data/ (a full run)."""

    job: Job
    song_listing: FileListing = field(default_factory=lambda: FileListing(0, 0, 0))
    state: Dict[str, Any] = field(default_factory=dict)
    log_files: Optional[List[str]] = None
    log_statuses: Dict[str, List[Any]] = field(default_factory=dict)
    songs_kept: bool = False  # song_data/ unchanged (or a stream's songs already written): songs, artists stay
    nothing_new: str = ""  # why there is nothing to do ("" when there is)
    song_tree: Optional[InputTree] = None  # song_data/ as listed for the plan, read from that listing
    relaid: str = ""  # the songs table found in the other layout: rebuilt whole (the line that says so)
    months: Optional[List[Tuple[int, int]]] = None  # a micro-batch's: the (year, month) of its plays, once counted

    @property
    def incremental(self) -> bool:
        return self.log_files is not None

    @property
    def reads_songs(self) -> bool:
        return self.job.kind in (FULL, INCREMENTAL, STREAM_SONGS)

    @property
    def reads_logs(self) -> bool:
        return self.job.kind in (FULL, INCREMENTAL, MICRO_BATCH)


def make_plan(spark: SparkSession, settings: Settings, sink: ParquetSink, job: Job, stages: Dict[str, float]) -> Plan:
    """What to read: everything, the log files of ``days``, a stream's songs or its micro-batch; nothing when
    the days and song_data/ are unchanged since the last run that read them. song_data/ is listed once, for
    the plan and for the read (``sources.files.list_tree``)."""
    if job.kind in (MICRO_BATCH, CHECKS):
        return Plan(job)
    text = read_text(spark, join_uri(settings.output_root, STATE))
    with stage(stages, "list input", log=False):
        song_data = join_uri(settings.input_root, "song_data")
        tree = list_tree(song_data, settings)
        listing = tree.listing if tree is not None else count_input(spark, song_data)
        plan = Plan(job, listing, json.loads(text) if text else {}, song_tree=tree)
        plan.relaid = songs_relaid(spark, settings)
    if plan.relaid:
        print(plan.relaid, file=sys.stderr, flush=True)
    if job.kind == STREAM_SONGS:
        plan.songs_kept = sink.exists(SONGS) and not plan.relaid
    elif job.kind == INCREMENTAL:
        _plan_days(spark, settings, sink, plan)
    return plan


def _plan_days(spark: SparkSession, settings: Settings, sink: ParquetSink, plan: Plan) -> None:
    """An incremental run's log files, and whether anything changed since the run that last read them."""
    days = plan.job.days or ()
    span = f"{days[0]:%Y-%m-%d}..{days[1]:%Y-%m-%d}"
    plan.log_files = day_files(spark, settings.input_root, *days)
    plan.log_statuses = {uri: list(file_status(spark, uri) or ()) for uri in plan.log_files}
    songs_unchanged = plan.state.get("song_data") == _fingerprint(plan.song_listing)
    seen = plan.state.get("log_files", {})
    if not plan.log_files:
        plan.nothing_new = f"Nothing to do: no log files for {span}."
    elif songs_unchanged and not plan.relaid and all(seen.get(u) == status for u, status in plan.log_statuses.items()):
        plan.nothing_new = (
            f"Nothing new: the {len(plan.log_files)} log files of {span} and song_data/ are unchanged since "
            f"run {plan.state.get('run_id')}; nothing was written."
        )
    plan.songs_kept = songs_unchanged and not plan.job.rebuild_songs and not plan.relaid and sink.exists(SONGS)


def _fingerprint(listing: FileListing) -> str:
    return f"{listing.files}:{listing.bytes}:{listing.newest:.3f}"


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
    """What a full or incremental run read, for the next incremental run's plan."""
    if plan.job.kind not in (FULL, INCREMENTAL):
        return
    processed = {**plan.state.get("log_files", {}), **plan.log_statuses} if plan.incremental else {}
    state = {"run_id": run_id, "song_data": _fingerprint(plan.song_listing), "log_files": processed}
    write_text(spark, join_uri(settings.output_root, STATE), json.dumps(state, indent=1))
