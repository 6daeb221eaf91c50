"""Incremental runs (--since): only the new day's partitions change; nothing new, nothing written."""

from __future__ import annotations

import datetime as dt
import os
import shutil

from sparkify import pipeline
from tests.conftest import SAMPLE
from tests.test_reruns import contents, data_files

DEC_1 = (dt.date(2018, 12, 1), dt.date(2018, 12, 1))


def test_a_new_day_changes_only_its_partitions_and_ends_equal_to_a_full_run(spark, settings, sample_run, tmp_path):
    _, full_root = sample_run
    src, out = tmp_path / "in", str(tmp_path / "out")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "11"), src / "log_data" / "2018" / "11")
    pipeline.run(spark, settings.with_overrides(input_root=str(src), output_root=out))
    before = {name: data_files(out, name) for name in ("songs", "artists", "songplays", "time")}

    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "12"), src / "log_data" / "2018" / "12")
    result = pipeline.run(
        spark, settings.with_overrides(input_root=str(src), output_root=out), checks=pipeline.DEFAULT_CHECKS, days=DEC_1
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


def test_nothing_new_writes_nothing_and_says_so(spark, settings, tmp_path):
    out = str(tmp_path / "out")
    first = pipeline.run(spark, settings.with_overrides(output_root=out), days=DEC_1)
    assert first.status == "ok"
    files = {name: data_files(out, name) for name in ("songplays", "time", "users")}
    again = pipeline.run(spark, settings.with_overrides(output_root=out), days=DEC_1)
    assert again.status == "nothing new"
    assert "Nothing new: the 1 log files of 2018-12-01..2018-12-01 and song_data/ are unchanged" in again.message
    assert again.tables == []
    assert {name: data_files(out, name) for name in files} == files
    none = pipeline.run(
        spark, settings.with_overrides(output_root=out), days=(dt.date(2019, 1, 1), dt.date(2019, 1, 2))
    )
    assert (none.status, none.message) == ("nothing new", "Nothing to do: no log files for 2019-01-01..2019-01-02.")
