"""Schemas declared once, as plain data (no pyspark): the raw inputs, and the star schema written by the job.

The readers, the transforms' ``select`` contracts, the tests and the diagrams all use these.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, Tuple

from sparkify.core.config import SONGS_LAYOUTS

# A table's or an input's columns: (name, Spark SQL type: string, bigint, int, double, timestamp), in order.
Columns = Tuple[Tuple[str, str], ...]

CORRUPT_RECORD = "_corrupt_record"  # Spark's column for a line it could not parse
SOURCE_FILE = "_source_file"  # the file a raw row came from
RAW_TEXT = "_raw_text"  # the raw JSON text of a row, kept for the quarantine
VALID_UTF8 = "_valid_utf8"  # false when the line's bytes are not valid UTF-8
ORIGIN = "_origin"  # a Kafka message's topic, partition, offset and timestamp (Kafka sources only)
# Input files: JSON (lines), plain or gzip-compressed (as Kinesis Firehose and most exporters write them).
INPUT_SUFFIXES = (".json", ".json.gz")
INPUT_GLOB = "*.{json,json.gz}"

# One object per file under song_data/ (Million Song Dataset subset).
SONG_COLUMNS: Columns = (
    ("num_songs", "bigint"),
    ("artist_id", "string"),
    ("artist_latitude", "double"),
    ("artist_longitude", "double"),
    ("artist_location", "string"),
    ("artist_name", "string"),
    ("song_id", "string"),
    ("title", "string"),
    ("duration", "double"),
    ("year", "bigint"),
)

# One JSON object per line under log_data/ (app events).
LOG_COLUMNS: Columns = (
    ("artist", "string"),
    ("auth", "string"),
    ("firstName", "string"),
    ("gender", "string"),
    ("itemInSession", "bigint"),
    ("lastName", "string"),
    ("length", "double"),
    ("level", "string"),
    ("location", "string"),
    ("method", "string"),
    ("page", "string"),
    ("registration", "double"),
    ("sessionId", "bigint"),
    ("song", "string"),
    ("status", "bigint"),
    ("ts", "bigint"),
    ("userAgent", "string"),
    ("userId", "string"),
)


def ddl(columns: Columns) -> str:
    """Columns as Spark SQL's DDL (``spark.read.schema``, ``from_json`` and ``createDataFrame`` take it)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)


SONG_SCHEMA = ddl(SONG_COLUMNS)
LOG_SCHEMA = ddl(LOG_COLUMNS)


def with_corrupt_record(schema: str) -> str:
    """The reader's schema (DDL): the raw schema plus Spark's column for unparseable lines."""
    return f"{schema}, `{CORRUPT_RECORD}` string"


@dataclass(frozen=True)
class Table:
    """One output table: its columns (in order), key, partition columns and references."""

    name: str
    kind: str  # "fact" or "dimension"
    columns: Columns  # (name, Spark SQL type) in order
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
        return tuple(name for name, _ in self.columns)

    @property
    def ddl(self) -> str:
        return ddl(self.columns)

    def type_of(self, column: str) -> str:
        return dict(self.columns)[column]


SONGPLAYS = Table(
    name="songplays",
    kind="fact",
    columns=(
        ("songplay_id", "bigint"),
        ("start_time", "timestamp"),
        ("user_id", "string"),
        ("level", "string"),
        ("song_id", "string"),
        ("artist_id", "string"),
        ("session_id", "bigint"),
        ("location", "string"),
        ("user_agent", "string"),
        ("year", "int"),
        ("month", "int"),
    ),
    primary_key=("songplay_id",),
    partition_by=("year", "month"),
    references={"user_id": "users", "song_id": "songs", "artist_id": "artists", "start_time": "time"},
    sources=("log_data", "song_data"),
)

USERS = Table(
    name="users",
    kind="dimension",
    columns=(
        ("user_id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("gender", "string"),
        ("level", "string"),
        ("last_seen", "timestamp"),
    ),
    primary_key=("user_id",),
    sources=("log_data",),
)

SONGS = Table(
    name="songs",
    kind="dimension",
    columns=(
        ("song_id", "string"),
        ("title", "string"),
        ("artist_id", "string"),
        ("year", "int"),
        ("duration", "double"),
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
    columns=(
        ("artist_id", "string"),
        ("name", "string"),
        ("location", "string"),
        ("latitude", "double"),
        ("longitude", "double"),
    ),
    primary_key=("artist_id",),
    sources=("song_data",),
)

TIME = Table(
    name="time",
    kind="dimension",
    columns=(
        ("start_time", "timestamp"),
        ("hour", "int"),
        ("day", "int"),
        ("week", "int"),
        ("month", "int"),
        ("year", "int"),
        ("weekday", "int"),
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
