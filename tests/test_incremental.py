"""Incremental runs (--since): only the new day's partitions change; nothing new, nothing written."""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest

from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from sparkify.runs.plan import INCREMENTAL, Job
from tests.conftest import SAMPLE, read_table
from tests.test_reruns import contents, data_files
from tools.reference import Reference

DEC_1 = (dt.date(2018, 12, 1), dt.date(2018, 12, 1))


@pytest.fixture(scope="module")
def reference():
    return Reference(SAMPLE)


@pytest.mark.slow
def test_a_new_day_changes_only_its_partitions_and_ends_equal_to_a_full_run(spark, settings, sample_run, tmp_path):
    _, full_root = sample_run
    src, out = tmp_path / "in", str(tmp_path / "out")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "11"), src / "log_data" / "2018" / "11")
    engine.run(spark, settings.with_overrides(input_root=str(src), output_root=out))
    before = {name: data_files(out, name) for name in ("songs", "artists", "songplays", "time")}

    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "12"), src / "log_data" / "2018" / "12")
    result = engine.run(
        spark,
        settings.with_overrides(input_root=str(src), output_root=out),
        checks=DEFAULT_CHECKS,
        job=Job(INCREMENTAL, days=DEC_1),
    )

    assert result.status == "ok", [c for c in result.checks if c.failed]
    assert result.sources["log_data"].files == 1
    assert {t.table for t in result.tables} == {"users", "time", "songplays"}  # song_data/ unchanged
    for name in ("songs", "artists"):
        assert data_files(out, name) == before[name]
    for name in ("songplays", "time"):
        after = data_files(out, name)
        assert {f for f in after if "month=11" in f} == {f for f in before[name] if "month=11" in f}, name
        assert not {f for f in after if "month=12" in f} & before[name], name
    assert contents(spark, out) == contents(spark, full_root)


@pytest.mark.slow
def test_nothing_new_writes_nothing_and_says_so(spark, settings, tmp_path):
    out = str(tmp_path / "out")
    first = engine.run(spark, settings.with_overrides(output_root=out), job=Job(INCREMENTAL, days=DEC_1))
    assert first.status == "ok"
    files = {name: data_files(out, name) for name in ("songplays", "time", "users")}
    again = engine.run(spark, settings.with_overrides(output_root=out), job=Job(INCREMENTAL, days=DEC_1))
    assert again.status == "nothing new"
    assert "Nothing new: the 1 log files of 2018-12-01..2018-12-01 and song_data/ are unchanged" in again.message
    assert again.tables == []
    assert {name: data_files(out, name) for name in files} == files
    none = engine.run(
        spark,
        settings.with_overrides(output_root=out),
        job=Job(INCREMENTAL, days=(dt.date(2019, 1, 1), dt.date(2019, 1, 2))),
    )
    assert (none.status, none.message) == ("nothing new", "Nothing to do: no log files for 2019-01-01..2019-01-02.")


def songs_folders(out):
    """The songs table's partition folders, as paths relative to it (year=Y or year=Y/artist_id=A)."""
    root = os.path.join(out, "songs")
    return {os.path.relpath(d, root) for d, _, files in os.walk(root) if any(f.endswith(".parquet") for f in files)}


@pytest.mark.slow
def test_a_songs_table_in_the_other_layout_is_rebuilt_whole_by_a_full_and_an_incremental_run(
    spark, settings, reference, tmp_path, capsys
):
    """Never a mix of the two layouts: each run that finds the other one rebuilds songs whole and says so."""
    out = str(tmp_path / "out")
    classic = settings.with_overrides(output_root=out, songs_partition_by=("year", "artist_id"))
    by_year = settings.with_overrides(output_root=out, songs_partition_by=("year",))
    engine.run(spark, classic)
    assert all(f.count("/") == 1 for f in songs_folders(out))
    capsys.readouterr()

    incremental = engine.run(
        spark, by_year, job=Job(INCREMENTAL, days=DEC_1)
    )  # song_data/ unchanged: songs would be kept
    line = "songs: the output holds it by (year, artist_id), [ETL] SONGS_PARTITION_BY says (year)"
    assert line in capsys.readouterr().err and line in incremental.message
    assert "songs" in {t.table for t in incremental.tables}
    assert all(f.startswith("year=") and "/" not in f for f in songs_folders(out))
    assert sorted(read_table(spark, out, "songs"), key=repr) == sorted(reference.tables()["songs"], key=repr)

    full = engine.run(spark, classic)
    assert "by (year), [ETL] SONGS_PARTITION_BY says (year, artist_id)" in full.message
    assert all(f.count("/") == 1 for f in songs_folders(out))
    assert sorted(read_table(spark, out, "songs"), key=repr) == sorted(reference.tables()["songs"], key=repr)
    again = engine.run(spark, classic)
    assert again.message == ""  # the same layout: nothing to say
