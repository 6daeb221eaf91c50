"""Load: the Parquet sink, the one seam through which every mode writes and reads the output.

Three ways to publish a table, one per need:
- ``replace``: the whole table (songs, artists, users);
- ``replace_partitions``: only the (year, month) partitions this run has rows for, the others
  kept (songplays, time: a run over one month leaves the other months as they were);
- ``append_batch``: a stream micro-batch's rows, in files named after the batch, so that a
  batch replayed after a crash replaces its own files instead of adding copies.

Local output is written to a staging folder and swapped in whole (a run killed at any moment
leaves the previous table readable). On s3a:// S3A's committers upload every file as a multipart
upload completed at job commit, where they also remove what the table (or the partitions
written) held: no renames, and the previous table readable until then. On EMR's s3:// EMRFS's
S3-optimized committer does the same for a plain overwrite.
Row counts come from an ``Observation`` on the frame written (a public API: no extra pass).
"""

from __future__ import annotations

import shutil
import time
from typing import Dict, List, Optional, Tuple

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from sparkify.core.config import Settings
from sparkify.core.results import Written
from sparkify.core.schemas import Table
from sparkify.platform import s3
from sparkify.platform.fs import (
    FileListing,
    carry_over_partitions,
    hadoop_path,
    is_local,
    join_uri,
    list_data_files,
    listing_of,
    local_entries,
    local_path,
    partition_folders,
    path_exists,
    recover,
    swap_in,
)

QUARANTINE = "_quarantine"
STAGING = "_staging"  # local output: tables are written here, then swapped in whole


def table_path(output_root: str, table: Table) -> str:
    return join_uri(output_root, table.name)


def quarantine_path(output_root: str, run_id: str) -> str:
    """Where one run (or one micro-batch) keeps its rejects: OUTPUT/_quarantine/run=<run id>/."""
    return join_uri(output_root, QUARANTINE, f"run={run_id}")


def _counted(df: DataFrame, name: str) -> Tuple[DataFrame, Observation]:
    observation = Observation(name)
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def laid_out(df: DataFrame, table: Table, spread: bool = False) -> DataFrame:
    """``df`` in the layout it is written in. Partitioned tables are shuffled by their partition
    columns, so each partition folder gets one file instead of one per task; the number of write
    tasks is the number of cores: left to AQE, a small table (songs: ~15k rows but ~14k folders)
    is coalesced into one task that writes every folder alone (on cached songs here: 9.0-11.1 s
    with one task, 5.5-6.4 s with two). Other tables: one file.

    ``spread`` (a table too big for one task per partition): not shuffled; each of the write tasks
    (one per core) writes the partitions its rows fall in, so a big month is written by every core,
    a file each. 10M events in one month: songplays write 37.3 -> 27.2 s, the checks that read it
    back 36.4 -> 29.4 s (bench/README.md)."""
    if not table.partition_by:
        return df.coalesce(1)
    tasks = df.sparkSession.sparkContext.defaultParallelism
    laid = df.coalesce(tasks) if spread else df.repartition(tasks, *table.partition_by)
    if table.sort_within:  # the write's own sort by partition columns is then already done
        laid = laid.sortWithinPartitions(*table.partition_by, *table.sort_within)
    return laid


def write_frame(df: DataFrame, table: Table, path: str, dynamic: bool = False) -> int:
    """Write ``df`` (``laid_out``) as ``table`` at ``path``, replacing the table (``dynamic``: only
    the partitions written); returns the rows written."""
    df, observation = _counted(df, f"write {table.name}")
    writer = df.write.partitionBy(*table.partition_by) if table.partition_by else df.write
    writer = writer.option("compression", table.compression)
    committer = s3.committer_options(path, replace_partitions=dynamic)
    if committer:  # s3a://: the committer replaces the table, or the partitions written, at job commit
        writer.options(**committer).mode("append").parquet(path)
    else:
        writer.option("partitionOverwriteMode", "dynamic" if dynamic else "static").mode("overwrite").parquet(path)
    return int(observation.get.get("rows", 0))


class ParquetSink:
    """The output root of one run: its tables, its quarantine and what it holds in memory.

    ``close()`` releases what the run held and drops its staging folder; call it in ``finally``."""

    merges_rows = False  # no row-level merge: a table that changes is written again (users)

    def __init__(self, spark: SparkSession, settings: Settings, run_id: str) -> None:
        self.spark, self.root, self.run_id = spark, settings.output_root, run_id
        self.staging = join_uri(self.root, STAGING, run_id)
        self._held: List[DataFrame] = []
        self._as_written: Dict[str, DataFrame] = {}

    def recover(self) -> None:
        """Finish what a killed run left behind (local output: a table half swapped in)."""
        if is_local(self.root):
            staging = join_uri(self.root, STAGING)
            recover(local_path(self.root), local_path(staging), local_path(join_uri(staging, "_trash")))

    def metadata_location(self, table: Table) -> str:
        """What a catalog entry points at beside the table's folder: nothing, for Parquet."""
        return ""

    def exists(self, table: Table) -> bool:
        return path_exists(self.spark, table_path(self.root, table))

    def read(self, table: Table, months: Optional[List[Tuple[int, int]]] = None) -> Optional[DataFrame]:
        """A table already in the output (only the given (year, month) partitions), read into
        memory because this run is about to replace it; None when there is none."""
        if not self.exists(table):
            return None
        frame = self.spark.read.schema(table.ddl).parquet(table_path(self.root, table))
        if months is not None:
            wanted = F.lit(False)
            for year, month in months:
                wanted = wanted | ((F.col("year") == year) & (F.col("month") == month))
            frame = frame.where(wanted)
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        frame.count()  # materialise before the table is overwritten
        self._held.append(frame)
        return frame

    def read_lazily(self, table: Table) -> Optional[DataFrame]:
        """A table already in the output as a plan to read it (None when there is none): for a write that
        replaces it without an in-place overwrite (``_publish``: staging locally, the committer's commit on S3),
        so its old files are all read before any is replaced. (A stream's micro-batch: its users.)"""
        return self.spark.read.schema(table.ddl).parquet(table_path(self.root, table)) if self.exists(table) else None

    def release(self) -> None:
        """Drop the old tables held in memory: once replaced, a cached copy would be served for
        the same path (the checks would read the old users)."""
        for frame in self._held:
            frame.unpersist()
        self._held.clear()

    def as_written(self) -> Dict[str, DataFrame]:
        """The tables this run wrote whole with ``hold``, as the frames it wrote: each was cached as
        it was written, so the checks query exactly the rows in the files without opening them again
        (the songs table is ~12,600 one-row files on the public data). A table that also holds
        partitions this run did not write (carried over locally; kept in place on S3) is not among them."""
        return dict(self._as_written)

    def replace(self, table: Table, df: DataFrame, hold: bool = False) -> Written:
        return self._publish(table, df, keep_partitions=False, hold=hold)

    def replace_partitions(self, table: Table, df: DataFrame, hold: bool = False, spread: bool = False) -> Written:
        return self._publish(table, df, keep_partitions=True, hold=hold, spread=spread)

    def _publish(self, table: Table, df: DataFrame, keep_partitions: bool, hold: bool, spread: bool = False) -> Written:
        begun = time.monotonic()
        live = table_path(self.root, table)
        depth = len(table.partition_by)
        written: List[str] = []
        listing = None
        frame = laid_out(df, table, spread)
        if hold:  # cached as the write computes it (see as_written), in its written layout: a few partitions
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        whole = not keep_partitions  # on S3 the partitions this run did not write stay in place
        if is_local(self.root):
            staged = join_uri(self.staging, table.name)
            rows = write_frame(frame, table, staged)
            carried: List[str] = []
            if keep_partitions and depth:
                carried = carry_over_partitions(local_path(live), local_path(staged), depth)
                whole = not carried
            entries = local_entries(local_path(staged))  # one walk: the partitions written and the report's counts
            written = sorted(partition_folders(entries, depth) - set(carried)) if depth else []
            listing = listing_of(entries, depth)
            swap_in(local_path(staged), local_path(live), local_path(join_uri(self.staging, "_trash", table.name)))
        else:
            rows = write_frame(frame, table, live, dynamic=keep_partitions)
        if hold and whole:  # from the cache, with a short lineage: each check's query plans and ships that
            self._as_written[table.name] = frame.localCheckpoint(eager=True)
        if hold:
            frame.unpersist()
        return self._written(table.name, live, rows, depth, begun, written, listing)

    def append_batch(self, table: Table, df: DataFrame, batch_id: int) -> Written:
        """Add a micro-batch's rows: written to staging, then each partition's file moved into
        the live partition folder as ``batch-<id>.parquet`` (replacing a file of that name)."""
        begun = time.monotonic()
        staged = join_uri(self.staging, f"batch-{batch_id:08d}", table.name)
        live = table_path(self.root, table)
        rows = write_frame(laid_out(df, table), table, staged)
        root, fs = hadoop_path(self.spark, staged)
        name = batch_file(batch_id)
        base = root.toUri().getPath().rstrip("/")
        files = fs.listFiles(root, True)
        folders, moved, sizes = set(), 0, 0
        while files.hasNext():
            status = files.next()
            source = status.getPath()
            if not source.getName().endswith(".parquet"):
                continue
            folder = source.getParent().toUri().getPath()[len(base) :].strip("/")
            target, _ = hadoop_path(self.spark, join_uri(live, folder, name))
            fs.mkdirs(target.getParent())
            if fs.exists(target):
                fs.delete(target, False)
            if not fs.rename(source, target):
                raise RuntimeError(f"could not move {source} to {target}")
            folders.add(folder)
            moved, sizes = moved + 1, sizes + status.getLen()
        fs.delete(root, True)
        listing = FileListing(moved, sizes, len(folders))  # what this batch added
        return self._written(table.name, live, rows, len(table.partition_by), begun, sorted(folders), listing)

    def quarantine(self, rejects: DataFrame, run_id: Optional[str] = None) -> Written:
        """Rejected records as JSON lines under OUTPUT/_quarantine/run=<run id>/source=<song_data|
        log_data>/, each with its source file, raw text and reason. Each run writes only its own
        folder: no run deletes the rejects of another (spark.read.json(OUTPUT/_quarantine) reads
        them all; the columns run and source come from the folders)."""
        begun = time.monotonic()
        path = quarantine_path(self.root, run_id or self.run_id)
        rejects, observation = _counted(rejects, "quarantine")
        writer = rejects.coalesce(1).write.partitionBy("source")
        committer = s3.committer_options(path, replace_partitions=False)
        writer.options(**committer).mode("append" if committer else "overwrite").json(path)
        return self._written(QUARANTINE, path, int(observation.get.get("rows", 0)), 1, begun)

    def _written(
        self,
        name: str,
        path: str,
        rows: int,
        depth: int,
        begun: float,
        written: Optional[List[str]] = None,
        listing: Optional[FileListing] = None,
    ) -> Written:
        """What a write left at ``path`` (``listing``: already known, else listed now)."""
        listing = listing if listing is not None else list_data_files(self.spark, path, depth)
        return Written(
            table=name,
            path=path,
            rows=rows,
            files=listing.files,
            bytes=listing.bytes,
            partitions=listing.partitions,
            seconds=time.monotonic() - begun,
            partitions_written=tuple(written or ()),
        )

    def close(self) -> None:
        self.release()
        self._as_written.clear()  # (local checkpoints: their blocks go with the frames)
        if is_local(self.root):  # nothing staged outlives the run
            shutil.rmtree(local_path(self.staging), ignore_errors=True)
        else:
            path, fs = hadoop_path(self.spark, self.staging)
            if fs.exists(path):
                fs.delete(path, True)


def batch_file(batch_id: int) -> str:
    return f"batch-{batch_id:08d}.parquet"
