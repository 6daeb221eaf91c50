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

An Iceberg output ([ETL] TABLE_FORMAT = iceberg) is registered by Iceberg itself: its tables are its catalog's
(Glue through Iceberg's GlueCatalog, local through its JDBC catalog or a REST catalog; see
sparkify.platform.conf.iceberg_catalog_conf), each commit the catalog's; ``register`` then only reports each
table's current metadata file.

A failure (no permission, a table of the same name with another schema) comes after the data is
written, as a clear error naming the table and what to do; the run report records what was
registered.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from pyspark.sql import SparkSession

from sparkify.catalogs.base import Registered, Shape, list_partitions, relaid, shapes, tables_of
from sparkify.catalogs.glue import GlueCatalog
from sparkify.catalogs.local import LocalCatalog, Opening, open_in_background
from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import Table
from sparkify.platform import s3
from sparkify.platform.conf import ICEBERG_CATALOG, iceberg_catalog_kind
from sparkify.platform.fs import join_uri, path_exists

__all__ = [
    "CATALOGS",
    "Opening",
    "Registered",
    "Shape",
    "check_type",
    "open_in_background",
    "register",
    "relaid",
    "shapes",
]

# [CATALOG] TYPE -> how to open it (with the session and the settings); "none": nothing is registered
CATALOGS: Dict[str, Callable[[SparkSession, Settings], object]] = {
    "glue": lambda spark, settings: GlueCatalog(s3.glue_client(settings), settings.catalog_database),
    "local": lambda spark, settings: LocalCatalog(spark, settings.catalog_database),
}


def check_type(settings: Settings) -> None:
    """UserError unless [CATALOG] TYPE is auto, none or a catalog of CATALOGS."""
    if settings.catalog_type not in ("auto", "none", *CATALOGS):
        raise UserError(
            f"[CATALOG] TYPE = {settings.catalog_type!r} is not a catalog: choose one of "
            f"{', '.join(CATALOGS)}, none or auto in dl.cfg."
        )


def register(
    spark: SparkSession,
    settings: Settings,
    only: Sequence[str] = (),
    ahead: Optional[Registered] = None,
    metadata_location: Callable[[Table], str] = lambda table: "",
) -> Optional[Registered]:
    """Register the output's tables (``only`` these, when given) in the catalog of ``[CATALOG] TYPE``
    (None: type none). ``ahead``: what ``open_in_background`` registered before the tables were written
    (those are not registered again). ``metadata_location``: an Iceberg table's current metadata file
    (the sink's), which the report names for path readers."""
    if settings.catalog_type == "none":
        return None
    if settings.table_format == "iceberg" and iceberg_catalog_kind(settings) != "hadoop":
        # the tables are Iceberg's catalog's own (each commit is the catalog's): nothing to register, their
        # metadata files named for path readers
        files = {t.name: metadata_location(t) for t in tables_of(settings) if not only or t.name in only}
        where = f"Iceberg's {iceberg_catalog_kind(settings)} catalog"
        return Registered(where, ICEBERG_CATALOG, unchanged=list(files), metadata_files=files)
    done_ahead = set(ahead.created + ahead.unchanged) if ahead else set()
    chosen = [
        t
        for t in tables_of(settings)
        if (not only or t.name in only)
        and t.name not in done_ahead
        and path_exists(spark, join_uri(settings.output_root, t.name))
    ]
    partitions = _partitions(spark, settings, chosen)
    tables = [s for s in shapes(settings, partitions) if s.name in partitions]
    done = CATALOGS[settings.catalog_type](spark, settings).register(tables)
    if ahead:
        done.created[:0] = [n for n in ahead.created if not only or n in only]
        done.unchanged[:0] = [n for n in ahead.unchanged if not only or n in only]
    return done


def _partitions(spark: SparkSession, settings: Settings, chosen: List[Table]) -> Dict[str, List[Tuple[str, ...]]]:
    """Each chosen table's partitions, where the catalog keeps them: Glue's Parquet tables. Iceberg keeps its
    own in its metadata; the local catalog's tables find theirs in their folders."""
    listed = settings.catalog_type == "glue" and settings.table_format != "iceberg"
    return {t.name: list_partitions(spark, settings.output_root, t) if listed else [] for t in chosen}
