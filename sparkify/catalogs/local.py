"""The local catalog: a Hive metastore (Derby) in OUTPUT/_catalog, through Spark SQL, opened beside
the run (``open_in_background``) because Hive's client and Derby take seconds to start."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from sparkify.catalogs.base import Registered, Shape, relaid, shapes
from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.platform.fs import is_local, join_uri, local_path, path_exists


class LocalCatalog:
    """A Hive metastore (Derby) in OUTPUT/_catalog, through Spark SQL."""

    def __init__(self, spark: Any, database: str) -> None:
        self.spark, self.database = spark, database

    def register(self, tables: Sequence[Shape]) -> Registered:
        if not tables:  # nothing to open the metastore for
            return Registered("local", self.database)
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
    if settings.catalog_type != "local" or settings.table_format == "iceberg":  # Iceberg's own catalog (JDBC)
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
