"""Sinks: where the tables are written, one module per table format ([ETL] TABLE_FORMAT), and one line each in SINKS."""

from __future__ import annotations

from typing import Callable, Dict

from pyspark.sql import DataFrame, SparkSession

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import Table
from sparkify.sinks.iceberg import IcebergSink, is_iceberg_table, read_iceberg
from sparkify.sinks.parquet import ParquetSink, quarantine_path, table_path

__all__ = ["SINKS", "ParquetSink", "check_format", "quarantine_path", "read_table", "sink_for"]

# [ETL] TABLE_FORMAT -> the sink that writes it; a sink is built with (spark, settings, run_id)
SINKS: Dict[str, Callable[[SparkSession, Settings, str], ParquetSink]] = {
    "parquet": ParquetSink,
    "iceberg": IcebergSink,
}


def check_format(settings: Settings) -> None:
    """UserError unless a sink writes [ETL] TABLE_FORMAT."""
    if settings.table_format not in SINKS:
        raise UserError(
            f"[ETL] TABLE_FORMAT = {settings.table_format!r} is not a table format this job writes: "
            f"choose one of {', '.join(SINKS)} in dl.cfg."
        )


def sink_for(spark: SparkSession, settings: Settings, run_id: str) -> ParquetSink:
    """The sink of the output's table format ([ETL] TABLE_FORMAT)."""
    check_format(settings)
    return SINKS[settings.table_format](spark, settings, run_id)


def read_table(spark: SparkSession, output_root: str, table: Table) -> DataFrame:
    """One output table, Parquet or Iceberg (told apart by its metadata/ folder), with the declared
    columns in their declared order. The checks, the analysts' queries and the tests read through it."""
    path = table_path(output_root, table)
    if is_iceberg_table(spark, path):
        return read_iceberg(spark, path, table)
    return spark.read.schema(table.ddl).parquet(path)
