"""Tables analysts query by name: after a successful run the five tables are registered in a
database (``[CATALOG] DATABASE``, default ``sparkify``) with their columns, types, partition
keys and every partition, so ``SELECT ... FROM sparkify.songplays`` works.

``[CATALOG] TYPE``:
- ``glue``: the AWS Glue Data Catalog, through the Glue API (boto3). It works the same from a
  laptop, a standalone cluster or EMR, and needs no Hive on the cluster; Athena, EMR (with Glue
  as its metastore), Redshift Spectrum and Glue jobs then see the tables. Only what differs is
  written: a rerun makes no change, an incremental run adds only its new partitions.
- ``local`` (the default for a local output): a Hive metastore (Derby) beside the output in
  OUTPUT/_catalog/, which any Spark session with ``catalog_conf(OUTPUT)`` — spark-sql, pyspark,
  ``python -m sparkify.catalog sql`` — opens. Its tables find their partitions in their folders
  when read (Spark's file-source tables without catalog-managed partitions), so every partition
  a run writes is seen without registering it. A full run into a fresh output registers the
  tables while it reads, before their folders hold files (``open_in_background``), and drops them
  again if it fails.
- ``none``: nothing is registered.

A failure (no permission, a table of the same name with another schema) comes after the data is
written, as a clear error naming the table and what to do; the run report records what was
registered.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlparse

from sparkify.config import DEFAULT_CONFIG, Settings, load_settings
from sparkify.errors import UserError
from sparkify.schemas import ICEBERG_SONGS_PARTITION_BY, TABLES, Table, songs_table_spec
from sparkify.storage import is_local, join_uri, local_path, path_exists

CATALOG_DIR = "_catalog"
HIVE_TYPES = {"StringType": "string", "LongType": "bigint", "IntegerType": "int", "DoubleType": "double"}
HIVE_TYPES["TimestampType"] = "timestamp"
PARQUET_FORMAT = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
}


@dataclass(frozen=True)
class Shape:
    """What the catalog must say of one table: where it is, its columns, partition keys and
    partitions (each a tuple of values in partition-key order)."""

    name: str
    location: str
    columns: Tuple[Tuple[str, str], ...]
    partition_keys: Tuple[Tuple[str, str], ...]
    partitions: Tuple[Tuple[str, ...], ...] = ()
    table_format: str = "parquet"
    metadata_location: str = ""  # iceberg: the table's current metadata file


@dataclass
class Registered:
    """What registration did, for the run report."""

    catalog: str
    database: str
    created: List[str] = field(default_factory=list)
    updated: List[str] = field(default_factory=list)
    unchanged: List[str] = field(default_factory=list)
    partitions_added: Dict[str, int] = field(default_factory=dict)
    partitions_removed: Dict[str, int] = field(default_factory=dict)


def relaid(have: Sequence[Any], want: Sequence[Any], have_keys: Sequence[Any], want_keys: Sequence[Any]) -> bool:
    """Whether a registered table holds the same columns as the one written, partitioned otherwise (the
    songs table in the other [ETL] SONGS_PARTITION_BY layout): its entry is then made anew."""
    return sorted(have) == sorted(want) and list(have_keys) != list(want_keys)


def hive_type(data_type: Any) -> str:
    return HIVE_TYPES[type(data_type).__name__]


def shapes(
    settings: Settings, partitions: Dict[str, List[Tuple[str, ...]]], metadata: Optional[Dict[str, str]] = None
) -> List[Shape]:
    """The five tables of the output as the catalog must describe them. ``partitions``: per
    partitioned table, its partitions' values (from listing the written folders); ``metadata``:
    per Iceberg table, its current metadata file."""
    found = []
    for table in _tables(settings):
        keys = tuple((c, hive_type(table.columns[c].dataType)) for c in table.partition_by)
        columns = tuple(
            (f.name, hive_type(f.dataType)) for f in table.columns.fields if f.name not in table.partition_by
        )
        found.append(
            Shape(
                name=table.name,
                location=join_uri(settings.output_root, table.name),
                columns=columns,
                partition_keys=keys,
                partitions=tuple(sorted(partitions.get(table.name, ()))),
                table_format=settings.table_format,
                metadata_location=(metadata or {}).get(table.name, ""),
            )
        )
    return found


def list_partitions(spark: Any, output_root: str, table: Table) -> List[Tuple[str, ...]]:
    """The partitions of a written table, as value tuples in partition-key order, from the
    paths of its files (one listing, as Spark's own file index makes it)."""
    depth = len(table.partition_by)
    root = join_uri(output_root, table.name).rstrip("/")
    if depth == 0:
        return []
    found = set()
    for path in spark.read.schema(table.columns).parquet(root).inputFiles():
        folders = urlparse(path).path.split("/")[-1 - depth : -1]
        if all("=" in f for f in folders):
            found.add(tuple(unquote(f.split("=", 1)[1]) for f in folders))
    return sorted(found)


class GlueCatalog:
    """The AWS Glue Data Catalog through the Glue API."""

    def __init__(self, client: Any, database: str) -> None:
        self.client, self.database = client, database

    def _s3(self, location: str) -> str:
        parsed = urlparse(location)
        return f"s3://{parsed.netloc}{parsed.path}" if parsed.scheme in ("s3a", "s3n") else location

    def _table_input(self, shape: Shape) -> Dict[str, Any]:
        storage: Dict[str, Any] = {
            "Columns": [{"Name": n, "Type": t} for n, t in shape.columns],
            "Location": self._s3(shape.location),
        }
        if shape.table_format == "iceberg":
            storage["Columns"] = [{"Name": n, "Type": t} for n, t in shape.columns + shape.partition_keys]
            return {
                "Name": shape.name,
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"table_type": "ICEBERG", "metadata_location": self._s3(shape.metadata_location)},
                "StorageDescriptor": storage,
            }
        storage.update(PARQUET_FORMAT)
        return {
            "Name": shape.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in shape.partition_keys],
            "StorageDescriptor": storage,
        }

    def _fail(self, what: str, exc: Exception) -> UserError:
        return UserError(
            f"Could not register {what} in the Glue Data Catalog ({exc}). The tables are written; check the "
            "role's glue:GetDatabase/CreateDatabase/GetTable/CreateTable/UpdateTable/GetPartitions/"
            "BatchCreatePartition/BatchDeletePartition permissions, then run again (or set [CATALOG] TYPE = none)."
        )

    def register(self, tables: Sequence[Shape]) -> Registered:
        from botocore.exceptions import BotoCoreError, ClientError

        done = Registered("glue", self.database)
        try:
            try:
                self.client.get_database(Name=self.database)
            except self.client.exceptions.EntityNotFoundException:
                self.client.create_database(
                    DatabaseInput={"Name": self.database, "Description": "Sparkify star schema (sparkify-etl)"}
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"the database {self.database}", exc) from None
        for shape in tables:
            try:
                self._register_table(shape, done)
            except (BotoCoreError, ClientError) as exc:
                raise self._fail(f"{self.database}.{shape.name}", exc) from None
        return done

    def _register_table(self, shape: Shape, done: Registered) -> None:
        wanted = self._table_input(shape)
        try:
            current = self.client.get_table(DatabaseName=self.database, Name=shape.name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            current = None
        if current is None:
            self.client.create_table(DatabaseName=self.database, TableInput=wanted)
            done.created.append(shape.name)
        elif self._relaid(current, wanted):  # the other songs layout: a new entry (its old partitions go with it)
            self.client.delete_table(DatabaseName=self.database, Name=shape.name)
            self.client.create_table(DatabaseName=self.database, TableInput=wanted)
            done.updated.append(shape.name)
        else:
            self._check_schema(shape.name, current, wanted)
            same_place = current.get("StorageDescriptor", {}).get("Location") == wanted["StorageDescriptor"]["Location"]
            same_params = all(current.get("Parameters", {}).get(k) == v for k, v in wanted["Parameters"].items())
            if same_place and same_params:
                done.unchanged.append(shape.name)
            else:
                self.client.update_table(DatabaseName=self.database, TableInput=wanted)
                done.updated.append(shape.name)
        if shape.partition_keys and shape.table_format != "iceberg":
            self._sync_partitions(shape, wanted, done)

    @staticmethod
    def _columns(table: Dict[str, Any]) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """A table input's (or a Glue table's) columns and partition keys, as (name, type) pairs."""
        columns = [(c["Name"], c["Type"]) for c in table.get("StorageDescriptor", {}).get("Columns", [])]
        return columns, [(k["Name"], k["Type"]) for k in table.get("PartitionKeys", [])]

    def _relaid(self, current: Dict[str, Any], wanted: Dict[str, Any]) -> bool:
        (have_cols, have_keys), (want_cols, want_keys) = self._columns(current), self._columns(wanted)
        return relaid(have_cols + have_keys, want_cols + want_keys, have_keys, want_keys)

    def _check_schema(self, name: str, current: Dict[str, Any], wanted: Dict[str, Any]) -> None:
        (have_cols, have_keys), (want_cols, want_keys) = self._columns(current), self._columns(wanted)
        if (have_cols, have_keys) != (want_cols, want_keys):
            raise UserError(
                f"The Glue table {self.database}.{name} exists with another schema (columns {have_cols}, "
                f"partition keys {have_keys}; this job writes {want_cols}, {want_keys}). The tables are written. "
                f"Drop that table if it is an old one of this job, or set [CATALOG] DATABASE to another database."
            )

    def _sync_partitions(self, shape: Shape, wanted: Dict[str, Any], done: Registered) -> None:
        have = set()
        for page in self.client.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=shape.name
        ):
            have |= {tuple(p["Values"]) for p in page["Partitions"]}
        want = set(shape.partitions)
        keys = [n for n, _ in shape.partition_keys]
        new = sorted(want - have)
        for start in range(0, len(new), 100):
            inputs = []
            for values in new[start : start + 100]:
                storage = dict(wanted["StorageDescriptor"])
                folder = "/".join(f"{k}={v}" for k, v in zip(keys, values))
                storage["Location"] = f"{storage['Location'].rstrip('/')}/{folder}"
                inputs.append({"Values": list(values), "StorageDescriptor": storage})
            answer = self.client.batch_create_partition(
                DatabaseName=self.database, TableName=shape.name, PartitionInputList=inputs
            )
            if answer.get("Errors"):
                raise UserError(
                    f"Glue refused partitions of {self.database}.{shape.name}: {answer['Errors'][0]}. "
                    "The tables are written; run again."
                )
        gone = sorted(have - want)
        for start in range(0, len(gone), 25):
            self.client.batch_delete_partition(
                DatabaseName=self.database,
                TableName=shape.name,
                PartitionsToDelete=[{"Values": list(v)} for v in gone[start : start + 25]],
            )
        if new:
            done.partitions_added[shape.name] = len(new)
        if gone:
            done.partitions_removed[shape.name] = len(gone)


def catalog_conf(output_root: str) -> Dict[str, str]:
    """Spark settings of a session that opens the local catalog of ``output_root`` (static:
    they must be set before the session starts)."""
    home = os.path.abspath(local_path(join_uri(output_root, CATALOG_DIR)))
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": os.path.join(home, "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        # Hive's direct-SQL layer speeds up partition queries; this metastore holds no partitions (they are
        # found in the folders). Not starting it skips the queries it runs to warm every model class up:
        # opening the metastore, 4 alternating pairs, 1.62-1.88 -> 1.22-1.51 CPU-s (bench/README.md).
        "spark.hadoop.hive.metastore.try.direct.sql": "false",
    }


def derby_home(output_root: str) -> str:
    """Where Derby keeps its log (derby.log) for the local catalog of ``output_root``."""
    return os.path.abspath(local_path(join_uri(output_root, CATALOG_DIR)))


class LocalCatalog:
    """A Hive metastore (Derby) in OUTPUT/_catalog, through Spark SQL."""

    def __init__(self, spark: Any, database: str) -> None:
        self.spark, self.database = spark, database

    def register(self, tables: Sequence[Shape]) -> Registered:
        if self.spark.conf.get("spark.sql.catalogImplementation", "in-memory") != "hive":
            raise UserError(
                "The local catalog needs a session with Hive support ([CATALOG] TYPE = local is set when the "
                "session starts): run through etl.py, or set [CATALOG] TYPE = none."
            )
        done = Registered("local", self.database)
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        # (the session's temporary views, e.g. the checks', are listed too: not tables of the catalog)
        existing = {t.name for t in self.spark.catalog.listTables(self.database) if not t.isTemporary}
        for shape in tables:
            name = f"`{self.database}`.`{shape.name}`"
            if shape.name in existing:
                described = self.spark.catalog.listColumns(shape.name, self.database)
                have = [(c.name, c.dataType) for c in described]
                want = list(shape.columns + shape.partition_keys)
                have_keys = [(c.name, c.dataType) for c in described if c.isPartition]
                if relaid(have, want, have_keys, list(shape.partition_keys)):  # an external table: its files stay
                    self.spark.sql(f"DROP TABLE {name}")
                    self._create(shape)
                    done.updated.append(shape.name)
                elif sorted(have) != sorted(want):
                    raise UserError(
                        f"The table {self.database}.{shape.name} of the local catalog has another schema ({have}). "
                        f"The tables are written. Drop it (DROP TABLE {self.database}.{shape.name}) and run again."
                    )
                else:
                    done.unchanged.append(shape.name)
            else:
                self._create(shape)
                done.created.append(shape.name)
        return done

    def _create(self, shape: Shape) -> None:
        # Partitions are found in the table's folders when it is read (always current, nothing to add
        # per run): the classic songs layout's ~14k folders made MSCK take minutes in Derby.
        self.spark.conf.set("spark.sql.hive.manageFilesourcePartitions", "false")
        columns = ", ".join(f"`{n}` {t}" for n, t in shape.columns + shape.partition_keys)
        keys = ", ".join(n for n, _ in shape.partition_keys)
        partitioned = f" PARTITIONED BY ({keys})" if keys else ""
        using = "iceberg" if shape.table_format == "iceberg" else "parquet"
        name = f"`{self.database}`.`{shape.name}`"
        self.spark.sql(f"CREATE TABLE {name} ({columns}) USING {using}{partitioned} LOCATION '{shape.location}'")


@dataclass
class Opening:
    """The local catalog being opened beside the run (``open_in_background``), and what it
    registered ahead: the tables whose folders did not exist yet."""

    thread: threading.Thread
    spark: Any
    settings: Settings
    registers_ahead: bool
    ahead: Optional[Registered] = None

    def wait(self) -> None:
        """When it registers tables ahead, wait until it is done: the metastore makes the folder of
        each table it registers, so no table may be written before."""
        if self.registers_ahead:
            self.thread.join()

    def undo(self) -> None:
        """A run that failed: drop the tables it registered ahead, and their folders if still empty
        (a table swapped in before the failure keeps its files)."""
        self.wait()
        for name in self.ahead.created if self.ahead else ():
            try:
                self.spark.sql(f"DROP TABLE IF EXISTS `{self.settings.catalog_database}`.`{name}`")
                os.rmdir(local_path(join_uri(self.settings.output_root, name)))
            except Exception:  # the run's own error is the one to report
                pass


def open_in_background(spark: Any, settings: Settings, register_ahead: bool = False) -> Optional[Opening]:
    """Start opening the local catalog's metastore now, beside the run's reads and writes: Hive's
    client and Derby take seconds to start (about 10 s on a 2-core machine, a fresh metastore's
    schema included), which registration would otherwise wait for at the end. A failure here is
    left to registration, which reports it.

    ``register_ahead`` (a full run of Parquet tables into a local output): the tables whose folders
    do not exist yet are registered now. A table created over its written folders is listed first
    (the songs table's ~14k folders: 1.3-1.8 s of the public run's registration); created now, its
    folder is empty. ``Opening.wait`` before writing, ``Opening.undo`` when the run fails."""
    if settings.catalog_type != "local":
        return None
    ahead = register_ahead and settings.table_format == "parquet" and is_local(settings.output_root)

    def open_and_register() -> None:
        try:
            spark.catalog.databaseExists(settings.catalog_database)
            if ahead:
                tables = [s for s in shapes(settings, {}) if not path_exists(spark, s.location)]
                if tables:
                    opening.ahead = LocalCatalog(spark, settings.catalog_database).register(tables)
        except Exception:  # registration at the end registers what is left, and names what failed
            pass

    thread = threading.Thread(target=open_and_register, name="open-local-catalog", daemon=True)
    opening = Opening(thread, spark, settings, registers_ahead=ahead)
    opening.thread.start()
    return opening


def register(
    spark: Any, settings: Settings, only: Sequence[str] = (), ahead: Optional[Registered] = None
) -> Optional[Registered]:
    """Register the output's tables (``only`` these, when given) in the catalog of
    ``[CATALOG] TYPE`` (None: type none). ``ahead``: what ``open_in_background`` registered
    before the tables were written (those are not registered again)."""
    if settings.catalog_type == "none":
        return None
    done_ahead = set(ahead.created + ahead.unchanged) if ahead else set()
    chosen = [
        t
        for t in _tables(settings)
        if (not only or t.name in only)
        and t.name not in done_ahead
        and path_exists(spark, join_uri(settings.output_root, t.name))
    ]
    metadata: Dict[str, str] = {}
    if settings.table_format == "iceberg":  # Iceberg keeps its partitions in its own metadata
        from sparkify.iceberg import metadata_location

        partitions: Dict[str, List[Tuple[str, ...]]] = {t.name: [] for t in chosen}
        metadata = {t.name: metadata_location(spark, settings.output_root, t) for t in chosen}
    elif settings.catalog_type == "glue":
        partitions = {t.name: list_partitions(spark, settings.output_root, t) for t in chosen}
    else:  # the local catalog's tables find their partitions in their folders
        partitions = {t.name: [] for t in chosen}
    tables = [s for s in shapes(settings, partitions, metadata) if s.name in partitions]
    if settings.catalog_type == "glue":
        from sparkify import s3

        return GlueCatalog(s3.glue_client(settings), settings.catalog_database).register(tables)
    done = (
        LocalCatalog(spark, settings.catalog_database).register(tables)
        if tables
        else Registered("local", settings.catalog_database)
    )
    if ahead:
        done.created[:0] = [n for n in ahead.created if not only or n in only]
        done.unchanged[:0] = [n for n in ahead.unchanged if not only or n in only]
    return done


def _tables(settings: Settings) -> List[Table]:
    """The five tables in the output's layout (an Iceberg songs table is by year only)."""
    songs_by = ICEBERG_SONGS_PARTITION_BY if settings.table_format == "iceberg" else settings.songs_partition_by
    return [songs_table_spec(songs_by) if t.name == "songs" else t for t in TABLES]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Query the output's tables by name in its local catalog.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    parser.add_argument("--output", help="output root; default: OUTPUT_DATA of the config")
    sub = parser.add_subparsers(dest="command", required=True)
    query = sub.add_parser("sql", help="run one SQL statement, e.g. SELECT COUNT(*) FROM sparkify.songplays")
    query.add_argument("statement")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config).with_overrides(output_root=args.output, catalog_type="local")
        if not is_local(settings.output_root):
            raise UserError("The local catalog is for a local output; on S3 use [CATALOG] TYPE = glue and Athena.")
        from sparkify.session import build_session

        spark = build_session(settings)
        frame = spark.sql(args.statement)
        frame.show(50, truncate=False)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
