"""Files under an input root: song_data/ and log_data/ JSON read with the declared schemas (no inference),
for a batch run, and log_data/'s new files as a stream's source."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple, Union
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import (
    CORRUPT_RECORD,
    INPUT_GLOB,
    INPUT_SUFFIXES,
    LOG_SCHEMA,
    RAW_TEXT,
    SONG_SCHEMA,
    SOURCE_FILE,
    VALID_UTF8,
    with_corrupt_record,
)
from sparkify.platform import s3
from sparkify.platform.fs import FileListing, is_local, join_uri, listing_of, local_entries, local_path, path_exists
from sparkify.platform.s3 import is_s3

# Between two JSON objects written on one line ("}{" or "} {"): split there, so a file that
# holds several objects loses none of them (Spark's JSON reader would keep only the first).
OBJECT_BOUNDARY = r"(?<=\})\s*(?=\{)"
PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}


# A tree of many small files (song_data/: one ~250-byte object per file) is read by the driver
# in one pass: Spark pays about a millisecond and a half per local file it opens, Python a few
# microseconds; on S3, Spark's S3A opens each object in turn in its task (a HEAD and a GET),
# while the driver fetches 64 at once after one listing, a GET each (s3.SignedS3). Public's
# 14,897 objects on SeaweedFS, medians of 3 (bench/small_reads.py, results/small-reads/public.json): boto3
# from 32 threads 39.4 s at +0 ms per request, 39.6 s at +20 ms; pyarrow's S3 file system (C++, a HEAD and
# a GET each) 21.1 / 34.3 s; signed GETs from 64 threads 18.4 / 20.0 s. Trees of larger files go to Spark.
# Local files are read in a plain loop: through a one-thread pool, a future per file, `public`'s
# 14,897 took 1.3-1.7 s instead of 0.3 s, and many-songs' 150,001 14-15 s instead of 2.8-3.0 s.
SMALL_FILE_BYTES = 64 * 1024
DRIVER_READ_LIMIT = 256 * 1024 * 1024
CHECKPOINT = "_checkpoints/log_data"  # a stream of new log files: its checkpoint under the output root
S3_FETCHES = 64
TEXT_SCHEMA = "_source_file string, value binary"


@dataclass(frozen=True)
class SmallFiles:
    """The files of a small-file tree (URIs as Spark names them) and how to fetch one's bytes."""

    uris: List[str]
    fetch: Callable[[str], bytes]
    threads: int = 1


@dataclass(frozen=True)
class InputTree:
    """An input folder listed once (``walk_local_tree``, ``walk_s3_tree``): its listing, as the plan counts it,
    and, when it is a tree of small files, those files, for the driver to read (None: Spark's reader reads it)."""

    listing: FileListing
    small: Optional[SmallFiles]


def _small_enough(sizes: List[int]) -> bool:
    return bool(sizes) and sum(sizes) <= DRIVER_READ_LIMIT and sum(sizes) / len(sizes) <= SMALL_FILE_BYTES


def _read_local(uri: str) -> bytes:
    with open(uri[len("file://") :], "rb") as handle:
        return handle.read()


def walk_local_tree(root: str) -> InputTree:
    """The *.json (and *.json.gz) files below a local ``root``: counted as ``count_input`` counts them
    and, when they are small ones and few enough bytes in all, listed for the driver to read. One walk
    serves the plan and the read (many-songs: 150,001 files, each walked and stat-ed once, not twice)."""
    base = os.path.abspath(local_path(root))
    entries = local_entries(base)
    inputs = [
        (os.path.normpath(os.path.join(base, rel, name)), size)
        for rel, name, size, _ in entries
        if name.endswith(INPUT_SUFFIXES)  # hidden files and folders: left out by the walk
    ]
    listing = listing_of(entries, suffix=INPUT_SUFFIXES)
    if not _small_enough([size for _, size in inputs]):
        return InputTree(listing, None)
    return InputTree(listing, SmallFiles(sorted("file://" + path for path, _ in inputs), _read_local))


def walk_s3_tree(settings: Settings, root: str, threads: int = S3_FETCHES) -> InputTree:
    """The *.json(.gz) objects below an s3a:// or s3:// ``root``, listed with one LIST per 1,000 keys (in
    Python: S3A's listing through py4j cost 15.6 s for public's 14,897 objects, about five JVM calls each) and
    counted as ``count_input`` counts them; when they are small ones and few enough bytes in all, each is
    fetched by the driver with one GET (``s3.SignedS3``), ``threads`` at once."""
    parsed = urlparse(root)
    prefix = parsed.path.strip("/") + "/"
    bucket = s3.SignedS3(settings, parsed.netloc, threads)
    entries = []
    for key, size, modified in bucket.list(prefix):
        relative = key[len(prefix) :]
        folder, _, name = relative.rpartition("/")
        if name and not any(part.startswith(("_", ".")) for part in relative.split("/")):  # as local_entries
            entries.append((folder or ".", name, size, modified))
    listing = listing_of(entries, suffix=INPUT_SUFFIXES)
    inputs = [
        (prefix + (f"{f}/{n}" if f != "." else n), size) for f, n, size, _ in entries if n.endswith(INPUT_SUFFIXES)
    ]
    if not _small_enough([size for _, size in inputs]):
        return InputTree(listing, None)
    base = f"{parsed.scheme}://{parsed.netloc}/"

    def fetch(uri: str) -> bytes:
        return bucket.get(uri[len(base) :])

    return InputTree(listing, SmallFiles(sorted(base + key for key, _ in inputs), fetch, threads))


def list_tree(root: str, settings: Optional[Settings] = None) -> Optional[InputTree]:
    """``root`` listed once, locally or (with ``settings``) on S3; None for any other file system."""
    if is_local(root):
        return walk_local_tree(root)
    if settings is not None and is_s3(root):
        return walk_s3_tree(settings, root)
    return None


def _driver_text(spark: SparkSession, files: SmallFiles) -> DataFrame:
    """The lines of the files, with the file's URI, as Spark's text reader gives them: bytes as
    they are (not decoded here, so that invalid UTF-8 is found and kept, not replaced)."""

    def lines(uri: str) -> List[Tuple[str, bytes]]:
        data = files.fetch(uri)
        if uri.endswith(".gz"):
            data = gzip.decompress(data)
        return [(uri, line[:-1] if line.endswith(b"\r") else line) for line in data.split(b"\n")]

    if files.threads > 1:  # objects fetched over the network: their waits overlap
        with ThreadPoolExecutor(max_workers=files.threads) as pool:
            rows = [row for found in pool.map(lines, files.uris) for row in found]
    else:  # local files, one after the other: a pool's future per file cost more than the reads
        rows = [row for uri in files.uris for row in lines(uri)]
    slices = max(1, min(spark.sparkContext.defaultParallelism, len(rows) // 20_000 + 1))
    frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), TEXT_SCHEMA)
    return frame.select(SOURCE_FILE, F.col("value").cast("string").alias("value"))


def read_json_tree(
    spark: SparkSession,
    root: Union[str, List[str]],
    schema: str,
    settings: Optional[Settings] = None,
    tree: Optional[InputTree] = None,
) -> DataFrame:
    """Every *.json and *.json.gz below ``root`` (or the files listed), at any depth, as JSON
    lines parsed with an explicit schema (no inference pass). Blank lines are not records.
    ``settings``: where given, a tree of small objects on S3 is fetched by the driver (``walk_s3_tree``).
    ``tree``: ``root`` as the plan listed it (``walk_local_tree``, ``walk_s3_tree``)."""
    if tree is None and isinstance(root, str):
        tree = list_tree(root, settings)
    small = tree.small if tree is not None else None
    if small is not None:
        return parse_json_lines(_driver_text(spark, small), schema)
    reader = spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", INPUT_GLOB)
    text = reader.text(root)
    return parse_json_lines(text.select(F.input_file_name().alias(SOURCE_FILE), "value"), schema)


def parse_json_lines(text: DataFrame, schema: str) -> DataFrame:
    """Text lines (columns SOURCE_FILE, ``value`` and any others, kept: e.g. a Kafka message's
    ORIGIN) -> one row per JSON object, parsed with ``schema``. A null value (a Kafka message
    without one) stays a row, for the quarantine; blank lines are not records."""
    value = F.col("value")
    kept = [c for c in text.columns if c not in (SOURCE_FILE, "value")]
    # Spark keeps a line's bytes as they are; turned into Java text, bytes that are not UTF-8
    # become U+FFFD. A line whose bytes differ from its text's bytes is not valid UTF-8. (No
    # cheaper pre-test by lengths: Spark counts a stray byte such as Latin-1's 0xF6 as a character.)
    valid = value.cast("binary") == F.encode(value, "UTF-8")
    text = text.select(SOURCE_FILE, "value", valid.alias(VALID_UTF8), *kept)
    # Only a line with more than blanks after its first "}" can hold several objects: only those
    # few lines are split (a split over every line cost 3.5 s per million lines here); this test
    # uses byte lengths, no regular expression. Every other line is its own one piece, in the same
    # scan of the text (two scans, one per kind of line, were 0.5 s slower per million lines).
    several = F.coalesce(
        F.octet_length(F.substring_index(value, "}", 1)) + 1 < F.octet_length(F.rtrim(value)), F.lit(False)
    )
    pieces = F.when(several, F.split(value, OBJECT_BOUNDARY)).otherwise(F.array(value))
    raw = F.col(RAW_TEXT)
    lines = text.select(SOURCE_FILE, VALID_UTF8, *kept, F.explode_outer(pieces).alias(RAW_TEXT))
    lines = lines.where(raw.isNull() | (F.trim(raw) != ""))
    parsed = F.from_json(raw, with_corrupt_record(schema), PARSE_OPTIONS).alias("r")
    columns = [SOURCE_FILE, RAW_TEXT, VALID_UTF8, *kept]
    return lines.select(*columns, parsed).select(*columns, "r.*")


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


def day_files(spark: SparkSession, input_root: str, since: dt.date, until: dt.date) -> List[str]:
    """The log files of the days since..until (inclusive) that exist:
    log_data/YYYY/MM/YYYY-MM-DD-events.json (or .json.gz)."""
    found = []
    day = since
    while day <= until:
        for suffix in INPUT_SUFFIXES:
            uri = join_uri(input_root, "log_data", f"{day:%Y}", f"{day:%m}", f"{day:%Y-%m-%d}-events{suffix}")
            if path_exists(spark, uri):
                found.append(uri)
        day += dt.timedelta(days=1)
    return found


def read_songs(spark: SparkSession, settings: Settings, tree: Optional[InputTree] = None) -> DataFrame:
    """song_data/'s objects, parsed (``tree``: as the plan listed it)."""
    folder = join_uri(settings.input_root, "song_data")
    if not path_exists(spark, folder):
        raise UserError(missing_input_message(folder, settings.input_root))
    return read_json_tree(spark, folder, SONG_SCHEMA, settings, tree)


def read_logs(spark: SparkSession, settings: Settings, log_files: Optional[List[str]] = None) -> DataFrame:
    """log_data/'s events (or only ``log_files`` of it), parsed."""
    folder = join_uri(settings.input_root, "log_data")
    if not path_exists(spark, folder):
        raise UserError(missing_input_message(folder, settings.input_root))
    return read_json_tree(spark, log_files if log_files is not None else folder, LOG_SCHEMA, settings)


# --- as a stream's source ---------------------------------------------------------------------


def stream_frame(spark: SparkSession, settings: Settings, files_per_batch: int) -> DataFrame:
    """New *.json(.gz) files under log_data/, as text lines (columns SOURCE_FILE, ``value``)."""
    lines = (
        spark.readStream.format("text")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", INPUT_GLOB)
        .option("maxFilesPerTrigger", files_per_batch)
        .load(join_uri(settings.input_root, "log_data"))
    )
    return lines.select(F.input_file_name().alias(SOURCE_FILE), "value")


def checkpoint(settings: Settings) -> str:
    """The stream's checkpoint under the output root."""
    return CHECKPOINT
