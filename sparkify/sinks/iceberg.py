"""Apache Iceberg as the output's table format ([ETL] TABLE_FORMAT = iceberg): the sink, and the one
helper every reader uses to open a table of either format.

Each table is a path table of a Hadoop catalog over the output root: OUTPUT/<table>/ holds data/ and
metadata/ (vN.metadata.json, version-hint.text), so any Iceberg reader opens it by its path (Spark's
``spark.read.format("iceberg").load(path)``, DuckDB's ``iceberg_scan(path)``). Every write is one
Iceberg commit, atomic: the files written become visible together when the new metadata file is in
place, never before; a run killed before that leaves the table at its previous snapshot (its files
are referenced by no snapshot: ``python -m sparkify.maintain`` removes them). So this format needs
none of the Parquet sink's own mechanisms: no staging folder and swap, no publish step for the
stream, no carry-over of the partitions an incremental run does not write.

- ``replace``: the whole table in one commit (an overwrite of every row); users by ``MERGE INTO``
  (per user the row seen last wins, as the Parquet sink's merge_users);
- ``replace_partitions``: the (year, month) partitions written, replaced in one commit (dynamic
  overwrite), the others kept;
- ``append_batch``: a stream micro-batch appended once: its commit records the batch id (and the
  stream's query id) in the snapshot summary, and a replayed batch already committed is skipped.

songs is partitioned by year only, its rows written sorted by artist_id (the table's write order;
the files' column statistics then prune by artist_id) instead of one folder per artist. The
quarantine stays JSON files (ParquetSink.quarantine).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Dict, List, Optional, Tuple

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.results import Written
from sparkify.core.schemas import ICEBERG_SONGS_PARTITION_BY, SONGS, USERS, Table, songs_table_spec
from sparkify.platform import s3
from sparkify.platform.conf import (
    CATALOG_DIR,
    ICEBERG_CATALOG,
    ICEBERG_OUTPUT,
    ICEBERG_SQLITE,
    iceberg_catalog_conf,
    iceberg_root,
)
from sparkify.platform.fs import delete_file, is_local, join_uri, local_path, path_exists, read_text
from sparkify.sinks.parquet import ParquetSink, table_path

METADATA = "metadata"  # an Iceberg table's folder of metadata files: how a reader tells the formats apart
BATCH_KEY = "sparkify.stream-batch-id"  # snapshot summary: the stream micro-batch a commit appended
QUERY_KEY = "sparkify.stream-query-id"  # ... and the streaming query (its checkpoint's id)
RUN_KEY = "sparkify.run-id"
PROPERTIES = {
    "format-version": "2",
    # as the Parquet output (Iceberg's default is zstd): the same codec on both sides of a comparison
    "write.parquet.compression-codec": "snappy",
    # the stream commits several times a micro-batch: keep the folder of old metadata files bounded
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
}


# --- reading either format ---------------------------------------------------------------------


def is_iceberg_table(spark: SparkSession, path: str) -> bool:
    """True when ``path`` is an Iceberg table (it has a metadata/ folder); a Parquet table has none."""
    return path_exists(spark, join_uri(path, METADATA))


def read_iceberg(spark: SparkSession, path: str, table: Table) -> DataFrame:
    """The Iceberg table at ``path`` (its current snapshot), the declared columns in their declared order: by
    its name in the output's catalog when it has one (its metadata files are the catalog's), else by its path."""
    catalog = catalog_for(spark, path.rstrip("/").rsplit("/", 1)[0])
    if catalog_kind(spark, catalog) != "hadoop":
        return spark.table(table_ident(spark, catalog, table.name)).select(*table.column_names)
    return spark.read.format("iceberg").load(iceberg_root(path)).select(*table.column_names)


def iceberg_output(settings: Settings) -> bool:
    """Whether a command should open the output with Iceberg: [ETL] TABLE_FORMAT says so, or (a local
    output) its songplays table has a metadata/ folder. Decided before a Spark session exists."""
    if settings.table_format == "iceberg":
        return True
    if not settings.output_root or not is_local(settings.output_root):
        return False
    return os.path.isdir(os.path.join(local_path(settings.output_root), "songplays", METADATA))


# --- the catalog -------------------------------------------------------------------------------


def catalog_for(spark: SparkSession, output_root: str) -> str:
    """The name of an Iceberg catalog over ``output_root``: the session's ``sparkify`` when it is that
    root's (spark_conf), else one registered now (catalogs load on first use): the output's local JDBC
    catalog when it has one, else its path tables."""
    root = iceberg_root(output_root)
    in_catalog = is_local(root) and os.path.exists(os.path.join(root, CATALOG_DIR, ICEBERG_SQLITE))
    warehouse = spark.conf.get(f"spark.sql.catalog.{ICEBERG_CATALOG}.warehouse", None)
    ours = root in (warehouse, spark.conf.get(ICEBERG_OUTPUT, None))
    if ours and (catalog_kind(spark, ICEBERG_CATALOG) != "hadoop" or not in_catalog):
        return ICEBERG_CATALOG
    if in_catalog:  # Iceberg's JDBC catalog scopes its tables by the catalog's name: only `sparkify` sees them
        raise UserError(
            f"{root}'s Iceberg tables are in its local catalog ({CATALOG_DIR}/{ICEBERG_SQLITE}), which this session "
            "does not open: run with that output's settings ([CATALOG] TYPE = local or auto, OUTPUT_DATA = it)."
        )
    name = f"{ICEBERG_CATALOG}_{hashlib.sha1(root.encode()).hexdigest()[:12]}"
    for key, value in iceberg_catalog_conf(name, root).items():
        spark.conf.set(key, value)
    return name


def catalog_kind(spark: SparkSession, catalog: str) -> str:
    """hadoop (path tables) or the catalog that holds the tables (jdbc, glue, rest)."""
    return spark.conf.get(f"spark.sql.catalog.{catalog}.type", "hadoop") or "hadoop"


def table_ident(spark: SparkSession, catalog: str, name: str) -> str:
    """A table's full name: ``catalog.name``, or ``catalog.namespace.name`` where the catalog keeps its tables in
    a namespace (Glue's database: conf.iceberg_namespace). Also what a procedure's ``table`` argument takes."""
    namespace = spark.conf.get(f"spark.sql.catalog.{catalog}.default-namespace", "") or ""
    return ".".join(part for part in (catalog, namespace, name) if part)


def latest_metadata_file(spark: SparkSession, path: str) -> Optional[str]:
    """A path table's current metadata file (metadata/v<N>.metadata.json, N from version-hint.text)."""
    hint = read_text(spark, join_uri(path, METADATA, "version-hint.text"))
    return join_uri(path, METADATA, f"v{hint.strip()}.metadata.json") if hint and hint.strip() else None


def current_snapshot(spark: SparkSession, ident: str) -> Optional[Row]:
    """The table's current snapshot (``snapshot_id``, ``operation``, ``summary``; None: created, never written),
    from its public ``history`` and ``snapshots`` metadata tables."""
    query = (
        f"SELECT s.snapshot_id, s.operation, s.summary FROM {ident}.history h "
        f"JOIN {ident}.snapshots s ON h.snapshot_id = s.snapshot_id "
        "WHERE h.is_current_ancestor ORDER BY h.made_current_at DESC LIMIT 1"
    )
    return spark.sql(query).first()


def create_statement(ident: str, table: Table, partition_by: Tuple[str, ...], location: str = "") -> str:
    """CREATE TABLE of an Iceberg table; ``location``: its folder (a catalog's table stays at OUTPUT/<table>)."""
    columns = table.ddl
    partitioned = f" PARTITIONED BY ({', '.join(partition_by)})" if partition_by else ""
    where = f" LOCATION '{iceberg_root(location)}'" if location else ""
    properties = ", ".join(f"'{k}' = '{v}'" for k, v in PROPERTIES.items())
    return (
        f"CREATE TABLE IF NOT EXISTS {ident} ({columns}) USING iceberg{partitioned}{where} TBLPROPERTIES ({properties})"
    )


# --- the sink ----------------------------------------------------------------------------------


class IcebergSink(ParquetSink):
    """The output root as Iceberg tables: one atomic commit per table write (see the module's doc)."""

    merges_rows = True  # users by MERGE INTO: a micro-batch merges its own users only

    def __init__(self, spark: SparkSession, settings: Settings, run_id: str) -> None:
        super().__init__(spark, settings, run_id)
        self.catalog = catalog_for(spark, settings.output_root)
        self._ready: Dict[str, bool] = {}

    def ident(self, table: Table) -> str:
        return table_ident(self.spark, self.catalog, table.name)

    def metadata_location(self, table: Table) -> str:
        return metadata_location(self.spark, self.root, table)

    # nothing is staged, swapped or held: a snapshot read stays as it was while the table is replaced
    def recover(self) -> None:
        return None

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None

    def exists(self, table: Table) -> bool:
        if not self._ready.get(table.name):
            self._ready[table.name] = self._known(table)
        return self._ready[table.name]

    def _known(self, table: Table) -> bool:
        """Whether the table exists: its folder (path tables), or its name in the catalog, where a path table of an
        earlier run is registered as it is (``register_table``: its metadata file, nothing rewritten)."""
        path = table_path(self.root, table)
        kind = catalog_kind(self.spark, self.catalog)
        if kind == "hadoop":
            return is_iceberg_table(self.spark, path)
        hint = join_uri(path, METADATA, "version-hint.text")
        if self.spark.catalog.tableExists(self.ident(table)):
            if kind == "glue":  # the Glue entry an earlier version wrote by hand beside a path table: its hint goes
                delete_file(self.spark, hint)
            return True
        metadata = latest_metadata_file(self.spark, path) if is_iceberg_table(self.spark, path) else None
        if metadata is None:
            return False
        if kind != "jdbc":  # S3FileIO's tables: s3:// (Athena reads no other)
            metadata = s3.normalize_uri(metadata, emr=True)
        register = f"table => '{self.ident(table)}', metadata_file => '{metadata}'"
        self.spark.sql(f"CALL {self.catalog}.system.register_table({register})")
        # the catalog's commits name their metadata files themselves: a path reader led by the old hint would
        # read the registered snapshot for ever; without it, it fails and is given the report's metadata file
        delete_file(self.spark, hint)
        return True

    def read(self, table: Table, months: Optional[List[Tuple[int, int]]] = None) -> Optional[DataFrame]:
        """The table as of its current snapshot (pinned: the writes of this run do not change it), only
        the given (year, month) partitions; None when there is none. Nothing is cached: a snapshot's
        files stay in place when the table is replaced."""
        if not self.exists(table):
            return None
        snapshot = current_snapshot(self.spark, self.ident(table))
        if snapshot is None:  # created, never written
            return None
        columns = ", ".join(table.column_names)
        frame = self.spark.sql(f"SELECT {columns} FROM {self.ident(table)} VERSION AS OF {snapshot.snapshot_id}")
        if months is not None:
            wanted = F.lit(False)
            for year, month in months:
                wanted = wanted | ((F.col("year") == year) & (F.col("month") == month))
            frame = frame.where(wanted)
        return frame

    def _ensure(self, table: Table) -> Table:
        """Create the table when the output has none (one metadata commit, no snapshot): songs
        partitioned by year and written ordered by artist_id, whatever [ETL] SONGS_PARTITION_BY says."""
        spec = songs_table_spec(ICEBERG_SONGS_PARTITION_BY) if table.name == SONGS.name else table
        if self.exists(table):
            return spec
        path = table_path(self.root, table)
        if path_exists(self.spark, path):
            raise UserError(
                f"{path} holds a table that is not Iceberg (Parquet folders of an earlier run?). [ETL] TABLE_FORMAT "
                "= iceberg writes new tables: choose another OUTPUT_DATA / --output, or move that folder away."
            )
        kind = catalog_kind(self.spark, self.catalog)
        location = "" if kind == "hadoop" else s3.normalize_uri(path, emr=True) if kind != "jdbc" else path
        namespace = self.ident(table).rsplit(".", 1)[0]
        if namespace != self.catalog:  # Glue's database, a REST catalog's namespace
            self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        self.spark.sql(create_statement(self.ident(table), table, spec.partition_by, location))
        if spec.sort_within:
            self.spark.sql(f"ALTER TABLE {self.ident(table)} WRITE ORDERED BY {', '.join(spec.sort_within)}")
        self._ready[table.name] = True
        return spec

    def _writer(self, table: Table, df: DataFrame, **summary: str):
        writer = df.select(*table.column_names).writeTo(self.ident(table))
        for key, value in {RUN_KEY: self.run_id, **summary}.items():
            writer = writer.option(f"snapshot-property.{key}", value)
        return writer

    def replace(self, table: Table, df: DataFrame, hold: bool = False) -> Written:
        """The whole table in one commit; users merged into what is there (MERGE INTO). The checks
        read the tables back (their files are few: ``hold`` is not needed)."""
        begun = time.monotonic()
        spec = self._ensure(table)
        if table.name == USERS.name:
            self._merge_users(df)
        else:
            self._writer(table, df).overwrite(F.lit(True))
        return self._committed(spec, begun, total=True)

    def replace_partitions(self, table: Table, df: DataFrame, hold: bool = False, spread: bool = False) -> Written:
        """The partitions ``df`` has rows for, replaced in one commit (dynamic overwrite); the others kept.
        (Iceberg distributes the rows of its writes itself: ``spread`` is not needed.)"""
        begun = time.monotonic()
        spec = self._ensure(table)
        self._writer(table, df).overwritePartitions()
        return self._committed(spec, begun)

    def _merge_users(self, df: DataFrame) -> None:
        """MERGE INTO users: a new user is inserted; a known one takes the new row when it was seen
        later (or at the same time: this run's row wins, as merge_users) and differs."""
        view = f"sparkify_users_{self.run_id.replace('-', '_')}"
        # MERGE wants a deterministic source; the users come from input_file_name() (the quarantine's
        # source file) upstream: their rows (one per user) are computed once here
        # (a global view: a stream's micro-batch frame belongs to a session of its own)
        df.select(*USERS.column_names).localCheckpoint(eager=True).createOrReplaceGlobalTempView(view)
        differs = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in USERS.column_names if c != "user_id")
        later = "t.last_seen IS NULL OR s.last_seen >= t.last_seen"
        try:
            self.spark.sql(
                f"MERGE INTO {self.ident(USERS)} t USING global_temp.{view} s ON t.user_id = s.user_id "
                f"WHEN MATCHED AND ({later}) AND ({differs}) THEN UPDATE SET * "
                "WHEN NOT MATCHED THEN INSERT *"
            )
        finally:
            self.spark.catalog.dropGlobalTempView(view)

    def append_batch(self, table: Table, df: DataFrame, batch_id: int) -> Written:
        """A micro-batch's rows, appended in one commit that records the batch id; a batch already
        committed (replayed after a crash between this commit and the stream's checkpoint) is skipped."""
        begun = time.monotonic()
        spec = self._ensure(table)
        query = self.spark.sparkContext.getLocalProperty("sql.streaming.queryId") or ""
        if self.batch_committed(table, batch_id, query):
            return Written(table.name, table_path(self.root, table), 0, 0, 0, 0, time.monotonic() - begun)
        summary = {BATCH_KEY: str(batch_id)}
        if query:
            summary[QUERY_KEY] = query
        self._writer(table, df, **summary).append()
        return self._committed(spec, begun, added_only=True)

    def batch_committed(self, table: Table, batch_id: int, query: str = "") -> bool:
        """Whether the table's latest commit appended micro-batch ``batch_id`` (of the streaming query
        ``query``, when known): a batch replayed after a crash is the stream's latest, and nothing else
        commits to the table while the stream holds the output."""
        if not self.exists(table):
            return False
        latest = current_snapshot(self.spark, self.ident(table))
        summary = (latest.summary or {}) if latest is not None else {}
        same_query = not query or summary.get(QUERY_KEY) in (None, query)
        return same_query and summary.get(BATCH_KEY) == str(batch_id)

    def _committed(self, table: Table, begun: float, total: bool = False, added_only: bool = False) -> Written:
        """What the table's latest commit did, from its snapshot summary: rows written (``total``: the
        table's rows, as a whole-table write), the table's data files, bytes and partitions. ``added_only``
        (a micro-batch's append): the files, bytes and partitions that commit added, with no further query."""
        ident = self.ident(table)
        snapshot = current_snapshot(self.spark, ident)
        summary: Dict[str, str] = dict(snapshot.summary or {}) if snapshot is not None else {}
        rows = int(summary.get("total-records" if total else "added-records", 0))
        scope = "added" if added_only else "total"
        if added_only:
            partitions = int(summary.get("changed-partition-count", 0))
        elif table.partition_by and snapshot is not None:  # the public ``partitions`` metadata table
            partitions = self.spark.sql(f"SELECT COUNT(*) FROM {ident}.partitions").first()[0]
        else:
            partitions = 0
        return Written(
            table=table.name,
            path=table_path(self.root, table),
            rows=rows,
            files=int(summary.get(f"{scope}-data-files", 0)),
            bytes=int(summary.get(f"{scope}-files-size", 0)),
            partitions=partitions,
            seconds=time.monotonic() - begun,
        )


def metadata_location(spark: SparkSession, output_root: str, table: Table) -> str:
    """The table's current metadata file (what a Glue table's ``metadata_location`` names, so Athena and
    EMR read this snapshot), from the table's public ``metadata_log_entries`` view."""
    ident = table_ident(spark, catalog_for(spark, output_root), table.name)
    row = spark.sql(f"SELECT file FROM {ident}.metadata_log_entries ORDER BY timestamp DESC LIMIT 1").first()
    if row is None:
        raise UserError(f"The Iceberg table {table_path(output_root, table)} has no metadata file; run the job again.")
    return row["file"]


def snapshot_summaries(spark: SparkSession, output_root: str, table: Table) -> List[Dict[str, str]]:
    """Every snapshot of a table still in its metadata, oldest first: operation and summary."""
    ident = table_ident(spark, catalog_for(spark, output_root), table.name)
    rows = spark.sql(f"SELECT operation, summary FROM {ident}.snapshots ORDER BY committed_at").collect()
    return [{"operation": row.operation or "", **dict(row.summary or {})} for row in rows]
