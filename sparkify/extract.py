"""Extract: read song and log JSON under an input root with the declared schemas (no inference)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from sparkify.errors import UserError
from sparkify.schemas import CORRUPT_RECORD, LOG_SCHEMA, SONG_SCHEMA, SOURCE_FILE, with_corrupt_record
from sparkify.storage import is_local, join_uri, local_path, path_exists


@dataclass(frozen=True)
class Raw:
    """Parsed input, each row with the file it came from; unparseable lines keep their text
    in ``_corrupt_record``."""

    songs: DataFrame
    logs: DataFrame


def read_json_tree(spark: SparkSession, root: str, schema: StructType) -> DataFrame:
    """Every *.json below ``root``, at any depth, as JSON lines with an explicit schema."""
    return (
        spark.read.schema(with_corrupt_record(schema))
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.json")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .json(root)
        .withColumn(SOURCE_FILE, F.input_file_name())
    )


def missing_input_message(folder: str, input_root: str) -> str:
    return (
        f"Input folder {folder} does not exist. The input root ({input_root}) must hold "
        "song_data/ and log_data/: check INPUT_DATA in dl.cfg or --input."
    )


def check_local_input(input_root: str) -> None:
    """Fail fast, before Spark starts, when a local input root lacks song_data/ or log_data/."""
    if not is_local(input_root):
        return
    for name in ("song_data", "log_data"):
        folder = join_uri(input_root, name)
        if not os.path.isdir(local_path(folder)):
            raise UserError(missing_input_message(folder, input_root))


def extract(spark: SparkSession, input_root: str) -> Raw:
    frames = {}
    for name, schema in (("song_data", SONG_SCHEMA), ("log_data", LOG_SCHEMA)):
        folder = join_uri(input_root, name)
        if not path_exists(spark, folder):
            raise UserError(missing_input_message(folder, input_root))
        frames[name] = read_json_tree(spark, folder, schema)
    return Raw(songs=frames["song_data"], logs=frames["log_data"])
