"""Schemas declared once: the raw inputs, and the star schema written by the job.

The readers, the transforms' ``select`` contracts, the tests and the diagrams all use these.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

from pyspark.sql.types import (
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from sparkify.config import SONGS_LAYOUTS

CORRUPT_RECORD = "_corrupt_record"  # Spark's column for a line it could not parse
SOURCE_FILE = "_source_file"  # the file a raw row came from
RAW_TEXT = "_raw_text"  # the raw JSON text of a row, kept for the quarantine
VALID_UTF8 = "_valid_utf8"  # false when the line's bytes are not valid UTF-8
ORIGIN = "_origin"  # a Kafka message's topic, partition, offset and timestamp (Kafka sources only)
# Input files: JSON (lines), plain or gzip-compressed (as Kinesis Firehose and most exporters write them).
INPUT_SUFFIXES = (".json", ".json.gz")
INPUT_GLOB = "*.{json,json.gz}"

# One object per file under song_data/ (Million Song Dataset subset).
SONG_SCHEMA = StructType(
    [
        StructField("num_songs", LongType()),
        StructField("artist_id", StringType()),
        StructField("artist_latitude", DoubleType()),
        StructField("artist_longitude", DoubleType()),
        StructField("artist_location", StringType()),
        StructField("artist_name", StringType()),
        StructField("song_id", StringType()),
        StructField("title", StringType()),
        StructField("duration", DoubleType()),
        StructField("year", LongType()),
    ]
)

# One JSON object per line under log_data/ (app events).
LOG_SCHEMA = StructType(
    [
        StructField("artist", StringType()),
        StructField("auth", StringType()),
        StructField("firstName", StringType()),
        StructField("gender", StringType()),
        StructField("itemInSession", LongType()),
        StructField("lastName", StringType()),
        StructField("length", DoubleType()),
        StructField("level", StringType()),
        StructField("location", StringType()),
        StructField("method", StringType()),
        StructField("page", StringType()),
        StructField("registration", DoubleType()),
        StructField("sessionId", LongType()),
        StructField("song", StringType()),
        StructField("status", LongType()),
        StructField("ts", LongType()),
        StructField("userAgent", StringType()),
        StructField("userId", StringType()),
    ]
)


def with_corrupt_record(schema: StructType) -> StructType:
    """The reader's schema: the raw schema plus Spark's column for unparseable lines."""
    return StructType(list(schema.fields) + [StructField(CORRUPT_RECORD, StringType())])


@dataclass(frozen=True)
class Table:
    """One output table: its columns (in order), key, partition columns and references."""

    name: str
    kind: str  # "fact" or "dimension"
    columns: StructType
    primary_key: Tuple[str, ...]
    partition_by: Tuple[str, ...] = ()
    # rows are written sorted by these within each partition (Parquet min/max then skip row groups)
    sort_within: Tuple[str, ...] = ()
    # column -> referenced table (its primary key)
    references: Dict[str, str] = field(default_factory=dict)
    # input folders the table is built from (drives the pipeline diagram)
    sources: Tuple[str, ...] = ()
    # Parquet codec ("none": uncompressed), see SONGS
    compression: str = "snappy"

    @property
    def column_names(self) -> Tuple[str, ...]:
        return tuple(self.columns.fieldNames())


def _struct(*cols: Tuple[str, DataType]) -> StructType:
    return StructType([StructField(name, dtype) for name, dtype in cols])


SONGPLAYS = Table(
    name="songplays",
    kind="fact",
    columns=_struct(
        ("songplay_id", LongType()),
        ("start_time", TimestampType()),
        ("user_id", StringType()),
        ("level", StringType()),
        ("song_id", StringType()),
        ("artist_id", StringType()),
        ("session_id", LongType()),
        ("location", StringType()),
        ("user_agent", StringType()),
        ("year", IntegerType()),
        ("month", IntegerType()),
    ),
    primary_key=("songplay_id",),
    partition_by=("year", "month"),
    references={"user_id": "users", "song_id": "songs", "artist_id": "artists", "start_time": "time"},
    sources=("log_data", "song_data"),
)

USERS = Table(
    name="users",
    kind="dimension",
    columns=_struct(
        ("user_id", StringType()),
        ("first_name", StringType()),
        ("last_name", StringType()),
        ("gender", StringType()),
        ("level", StringType()),
        ("last_seen", TimestampType()),
    ),
    primary_key=("user_id",),
    sources=("log_data",),
)

SONGS = Table(
    name="songs",
    kind="dimension",
    columns=_struct(
        ("song_id", StringType()),
        ("title", StringType()),
        ("artist_id", StringType()),
        ("year", IntegerType()),
        ("duration", DoubleType()),
    ),
    primary_key=("song_id",),
    # One folder per year, rows sorted by artist_id: Parquet's min/max statistics of artist_id then
    # let a reader skip the row groups of other artists (the default layout, [ETL] SONGS_PARTITION_BY).
    partition_by=SONGS_LAYOUTS[0],
    sort_within=("artist_id",),
    references={"artist_id": "artists"},
    sources=("song_data",),
)

ARTISTS = Table(
    name="artists",
    kind="dimension",
    columns=_struct(
        ("artist_id", StringType()),
        ("name", StringType()),
        ("location", StringType()),
        ("latitude", DoubleType()),
        ("longitude", DoubleType()),
    ),
    primary_key=("artist_id",),
    sources=("song_data",),
)

TIME = Table(
    name="time",
    kind="dimension",
    columns=_struct(
        ("start_time", TimestampType()),
        ("hour", IntegerType()),
        ("day", IntegerType()),
        ("week", IntegerType()),
        ("month", IntegerType()),
        ("year", IntegerType()),
        ("weekday", IntegerType()),
    ),
    primary_key=("start_time",),
    partition_by=("year", "month"),
    sources=("log_data",),
)

# Write order: dimensions first, the fact last.
TABLES: Tuple[Table, ...] = (SONGS, ARTISTS, USERS, TIME, SONGPLAYS)
TABLES_BY_NAME: Dict[str, Table] = {t.name: t for t in TABLES}


# The classic layout of the exercise: one folder per (year, artist_id), ~12,600 one-row files on the
# full public data, each one object (and its requests) on S3 (bench/README.md measures its cost).
CLASSIC_SONGS_PARTITION_BY: Tuple[str, ...] = SONGS_LAYOUTS[1]

# An Iceberg songs table is always in the default layout, whatever [ETL] SONGS_PARTITION_BY says.
ICEBERG_SONGS_PARTITION_BY: Tuple[str, ...] = SONGS.partition_by


def songs_table_spec(partition_by: Tuple[str, ...]) -> Table:
    """SONGS in the layout asked for: by year, rows sorted by artist_id (the default), or the classic
    (year, artist_id), whose files hold one or two rows each: written uncompressed there (a one-row file
    is 7 bytes smaller without Snappy, and parquet-mr gives each file's compressor a 1 MiB buffer)."""
    if partition_by == SONGS.partition_by:
        return SONGS
    if partition_by != CLASSIC_SONGS_PARTITION_BY:
        raise ValueError(f"not a songs layout: {partition_by}")
    return replace(SONGS, partition_by=partition_by, sort_within=(), compression="none")
