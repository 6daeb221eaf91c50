"""The whole job on sample data, compared with an independent plain-Python computation."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from sparkify.core.schemas import TABLES, TABLES_BY_NAME
from sparkify.runs import engine
from tests.conftest import SAMPLE, SHARED_SAMPLE, read_table
from tools.reference import Reference


@pytest.fixture(scope="module")
def reference():
    return Reference(SAMPLE)


@pytest.mark.parametrize("name", [t.name for t in TABLES])
def test_every_table_equals_the_independent_computation(spark, sample_run, reference, name):
    _, root = sample_run
    got = sorted(read_table(spark, root, name), key=repr)
    expected = sorted(reference.tables()[name], key=repr)
    assert len(got) == len(expected)
    assert got == expected


def test_sample_has_the_quirks_it_promises(reference):
    plays = reference.songplays_table()
    matched = [p for p in plays if p[4] is not None]
    assert 0 < len(matched) < len(plays)
    assert any(e["user_id"] is None for e in reference.events)
    assert any(s["year"] is None for s in reference.songs)
    levels = {}
    for e in reference.events:
        levels.setdefault(e["user_id"], set()).add(e["level"])
    assert any(v == {"free", "paid"} for k, v in levels.items() if k)


def test_mojibake_plays_find_their_song(reference, sample_run, spark):
    """Plays whose raw artist text was double-encoded and that the job matched to a song."""
    import glob
    import json

    garbled = set()
    for path in glob.glob(os.path.join(SAMPLE, "log_data", "**", "*.json"), recursive=True):
        for line in open(path, encoding="utf-8"):
            e = json.loads(line)
            if e["page"] == "NextSong" and e["artist"] and "Ã" in e["artist"]:
                garbled.add(Reference.songplay_id(Reference._event(e)))
    _, root = sample_run
    matched = {r[0] for r in read_table(spark, root, "songplays") if r[4] is not None}
    assert len(garbled & matched) >= 3


def test_summary_counts_match_the_files(sample_run, reference):
    result, root = sample_run
    written = {t.table: t for t in result.tables}
    assert written["songplays"].rows == len(reference.plays)
    assert written["users"].rows == len(reference.users_table())
    for name, t in written.items():
        table = TABLES_BY_NAME[name]
        if table.partition_by:
            assert t.files <= 2 * t.partitions, name
        else:
            assert t.files == 1, name
    assert written["songplays"].partitions == 2  # 2018-11 and 2018-12
    assert sorted(os.listdir(os.path.join(root, "songplays", "year=2018"))) == ["month=11", "month=12"]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_SAMPLE), reason="../shared/data/udacity-sample is absent")
def test_public_udacity_sample(spark, settings, tmp_path):
    result = engine.run(spark, settings.with_overrides(input_root=SHARED_SAMPLE, output_root=str(tmp_path)))
    rows = {t.table: t.rows for t in result.tables}
    assert rows["songplays"] == 6820
    assert rows["users"] == 96
    matched = [r for r in read_table(spark, str(tmp_path), "songplays") if r[4] is not None]
    assert len(matched) == 1
    songplay = dict(zip(TABLES_BY_NAME["songplays"].column_names, matched[0]))
    assert songplay["user_id"] == "15"
    assert songplay["start_time"] == 1542837407796  # 2018-11-21 21:56:47.796 UTC
    songs = {r[0]: r[1] for r in read_table(spark, str(tmp_path), "songs")}
    assert songs[songplay["song_id"]] == "Setanta matins"


def test_songs_are_by_year_one_file_each_rows_sorted_by_artist(sample_run, spark, reference):
    """The default layout: one folder per year, one file each, rows sorted by artist_id, Snappy."""
    result, output = sample_run
    songs = next(t for t in result.tables if t.table == "songs")
    years = {str(r[3]) for r in reference.tables()["songs"]}  # None -> Hive's default partition
    assert songs.partitions == len(years) == songs.files
    folders = sorted(f for f in os.listdir(os.path.join(output, "songs")) if not f.startswith("_"))
    assert len(folders) == len(years) and all(f.startswith("year=") for f in folders)
    for folder in folders:
        (name,) = [n for n in os.listdir(os.path.join(output, "songs", folder)) if n.endswith(".parquet")]
        ids = [r["artist_id"] for r in spark.read.parquet(os.path.join(output, "songs", folder, name)).collect()]
        assert ids == sorted(ids)
    assert codecs(os.path.join(output, "songs")) == {"SNAPPY"}


@pytest.mark.slow
def test_the_classic_songs_layout_holds_the_same_rows_a_folder_per_artist(spark, settings, reference, tmp_path):
    """[ETL] SONGS_PARTITION_BY = year, artist_id: a folder per (year, artist_id), its one-row files uncompressed."""
    classic = settings.with_overrides(output_root=str(tmp_path), songs_partition_by=("year", "artist_id"))
    result = engine.run(spark, classic)
    songs = next(t for t in result.tables if t.table == "songs")
    pairs = {(str(r[3]), r[2]) for r in reference.tables()["songs"]}
    assert songs.partitions == len(pairs) == songs.files
    some_year = next(f for f in sorted(os.listdir(tmp_path / "songs")) if f.startswith("year="))
    assert all(f.startswith("artist_id=") for f in os.listdir(tmp_path / "songs" / some_year))
    got = sorted(read_table(spark, str(tmp_path), "songs"), key=repr)
    assert got == sorted(reference.tables()["songs"], key=repr)
    assert codecs(str(tmp_path / "songs")) == {"UNCOMPRESSED"}


def codecs(folder: str) -> set:
    """The codecs of every column chunk of the Parquet files below ``folder``, from their footers (DuckDB)."""
    import duckdb

    pattern = os.path.join(folder, "**", "*.parquet")
    return {row[0] for row in duckdb.sql(f"SELECT DISTINCT compression FROM parquet_metadata('{pattern}')").fetchall()}


def test_every_table_is_snappy_compressed(sample_run):
    _, output = sample_run
    for name in ("songs", "artists", "users", "time", "songplays"):
        assert codecs(os.path.join(output, name)) == {"SNAPPY"}, name


def test_the_cached_logs_get_a_partition_per_core_or_per_128_mib(spark):
    """Not the 64 of the repeat-finding window's shuffle, which a cached plan would keep for every later stage.
    Their identity hashes are counted in twice as many tasks, at most the shuffle's partitions."""
    from sparkify.runs.read import cached_partitions, repeat_count_partitions

    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "64")
    try:
        assert spark.sparkContext.defaultParallelism == 2
        assert cached_partitions(spark, 3_600_000) == 2  # public's 3.6 MB of logs: one per core
        assert cached_partitions(spark, 452 * 2**20) == 4  # events-1m
        assert cached_partitions(spark, 4_400 * 2**20) == 35  # many-events
        assert cached_partitions(spark, 100 * 2**30) == 64  # never more than the shuffle's partitions
        assert [repeat_count_partitions(spark, n) for n in (2, 4, 35, 64)] == [4, 8, 64, 64]
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def test_a_local_session_writes_without_yarns_settings(spark, sample_run):
    """YARN's defaults stay out of a local session's Hadoop configuration after the run's writes
    (parquet-mr scans all of it per file; Hadoop reloads the defaults when a class adds one), and
    only they are gone."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    songs = next(t for t in sample_run[0].tables if t.table == "songs")
    assert songs.files > 40  # a file per year: many files written
    assert conf.getValByRegex(r"^yarn\.").size() == 0
    assert conf.get("mapreduce.fileoutputcommitter.algorithm.version") is not None
    assert conf.get("fs.s3a.impl") == "org.apache.hadoop.fs.s3a.S3AFileSystem"


@pytest.mark.slow
def test_big_logs_write_each_month_from_every_core(spark, settings, reference, tmp_path, monkeypatch):
    """Above SPREAD_MIN_RECORDS songplays and time are not shuffled into one task per month: each
    core writes a file into the months its rows fall in. Same rows, and the checks pass."""
    from sparkify.quality.checks import DEFAULT_CHECKS
    from sparkify.runs import write

    monkeypatch.setattr(write, "SPREAD_MIN_RECORDS", 1_000)
    # Big logs' shuffles keep several partitions after adaptive execution (10M events: time and songplays 2 files
    # a month); the sample's few rows would be coalesced into one, and each core needs rows to write a file.
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    try:
        result = engine.run(spark, settings.with_overrides(output_root=str(tmp_path)), checks=DEFAULT_CHECKS)
    finally:
        spark.conf.unset("spark.sql.adaptive.coalescePartitions.enabled")
    assert result.checks and all(c.status == "passed" for c in result.checks), result.checks
    for name in ("songplays", "time"):
        files = {
            month: len([n for n in os.listdir(tmp_path / name / "year=2018" / month) if n.endswith(".parquet")])
            for month in ("month=11", "month=12")
        }
        assert files["month=11"] == spark.sparkContext.defaultParallelism == 2, (name, files)
        assert 1 <= files["month=12"] <= 2, (name, files)
        assert sorted(read_table(spark, str(tmp_path), name), key=repr) == sorted(reference.tables()[name], key=repr)


def test_the_report_counts_each_tables_files_bytes_and_folders_as_on_disk(sample_run):
    """Each table's files, bytes and partition folders in the run's result, against a count of its output
    folder by os.walk (hidden files such as _SUCCESS left out); the partitions written are those folders."""
    result, output = sample_run
    for written in (t for t in result.tables if t.table in TABLES_BY_NAME):
        table = TABLES_BY_NAME[written.table]
        base = os.path.join(output, table.name)
        files = [
            (os.path.relpath(folder, base), os.path.getsize(os.path.join(folder, name)))
            for folder, _, names in os.walk(base)
            for name in names
            if not name.startswith(("_", "."))
        ]
        folders = {rel for rel, _ in files} if table.partition_by else set()
        assert (written.files, written.bytes, written.partitions) == (
            len(files),
            sum(size for _, size in files),
            len(folders),
        ), table.name
        assert written.files > 0
        assert set(written.partitions_written) == folders, table.name


TIMES = (("songplays", "start_time", 1), ("time", "start_time", 0), ("users", "last_seen", 5))


def parquet_files(folder):
    return sorted(os.path.join(d, f) for d, _, names in os.walk(folder) for f in names if f.endswith(".parquet"))


@pytest.mark.parametrize(("name", "column", "index"), TIMES)
def test_times_are_parquet_timestamp_micros_in_utc_with_min_max(sample_run, reference, name, column, index):
    """Not Spark's legacy INT96 (no statistics, naive times in pandas): readers can skip row groups by time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, output = sample_run
    lows, highs = [], []
    for path in parquet_files(os.path.join(output, name)):
        handle = pq.ParquetFile(path)
        at = handle.schema_arrow.get_field_index(column)
        assert handle.schema_arrow.field(column).type == pa.timestamp("us", tz="UTC")
        described = handle.schema.column(at)
        logical = json.loads(described.logical_type.to_json())
        assert described.physical_type == "INT64"
        assert (logical["Type"], logical["isAdjustedToUTC"], logical["timeUnit"]) == ("Timestamp", True, "microseconds")
        for group in range(handle.metadata.num_row_groups):
            stats = handle.metadata.row_group(group).column(at).statistics
            assert stats.has_min_max
            lows.append(stats.min)
            highs.append(stats.max)
    expected = [row[index] for row in reference.tables()[name]]
    to_ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    assert (to_ms(min(lows)), to_ms(max(highs))) == (min(expected), max(expected))


def test_a_table_with_int96_partitions_of_earlier_runs_reads_whole(spark, sample_run, reference, tmp_path):
    """Outputs of earlier versions hold INT96 times: new TIMESTAMP_MICROS partitions beside them read as one."""
    import duckdb
    import pyarrow.parquet as pq

    _, output = sample_run
    root = tmp_path / "mixed"
    shutil.copytree(os.path.join(output, "songplays"), root / "songplays")
    december = root / "songplays" / "year=2018" / "month=12"
    old = spark.read.parquet(str(december)).cache()
    old.count()
    shutil.rmtree(december)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        old.write.parquet(str(december))
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        old.unpersist()
    kinds = {pq.ParquetFile(f).schema.column(1).physical_type for f in parquet_files(root / "songplays")}
    assert kinds == {"INT96", "INT64"}
    got = sorted(read_table(spark, str(root), "songplays"), key=repr)
    assert got == sorted(reference.tables()["songplays"], key=repr)
    pattern = os.path.join(root, "songplays", "**", "*.parquet")
    con = duckdb.connect()
    # INT96 carries no zone: DuckDB reads it as a naive time, which it joins to the UTC-adjusted ones in its
    # session's zone (the tests' process is in America/Los_Angeles: 8 h off). In UTC, the same instants.
    con.execute("SET TimeZone = 'UTC'")
    counted = con.execute(
        f"SELECT count(*), epoch_ms(min(start_time)), epoch_ms(max(start_time)) FROM read_parquet('{pattern}')"
    ).fetchone()
    times = [row[1] for row in reference.tables()["songplays"]]
    assert counted == (len(times), min(times), max(times))
