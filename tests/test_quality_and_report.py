"""Data-quality checks, the analysts' queries and the run report."""

from __future__ import annotations

import json
import os
import shutil
from functools import partial

import pytest

import etl
from sparkify.cli import analyst
from sparkify.cli.analyst import run_queries
from sparkify.quality.checks import run_checks
from sparkify.sinks import read_table
from tests.conftest import ROOT
from tools import expected_results

QUERIES = os.path.join(ROOT, "queries")


def test_every_default_check_passes_on_the_sample(sample_run):
    result, _ = sample_run
    assert len(result.checks) >= 20
    assert [c.name for c in result.checks if c.status != "passed"] == []
    counted = next(c for c in result.checks if c.name.startswith("songplays written ="))
    assert counted.actual == counted.expected == result.sources["log_data"].next_song == 1503


def test_checks_are_data_and_may_compare_other_than_equality(spark, sample_run):
    _, root = sample_run
    checks = [
        {"name": "many plays", "test_sql": "SELECT COUNT(*) FROM songplays", ">": 10_000},
        {"name": "some plays", "test_sql": "SELECT COUNT(*) FROM songplays", ">=": 1},
        {"name": "users", "test_sql": "SELECT COUNT(*) FROM users", "expected_result": 39},
        {"name": "broken", "test_sql": "SELECT COUNT(*) FROM no_such_table", "expected_result": 0},
        {"name": "needs a run", "test_sql": "SELECT 1", "expected_result": "{next_song_events}"},
    ]
    results = {r.name: r for r in run_checks(spark, partial(read_table, spark, root), checks)}
    assert (results["many plays"].status, results["many plays"].actual) == ("failed", 1503)
    assert results["some plays"].status == "passed"
    assert (results["users"].status, results["users"].actual) == ("failed", 40)
    assert results["broken"].status == "error" and "no_such_table" in results["broken"].detail
    assert results["needs a run"].status == "skipped"


def test_a_failing_check_fails_the_command_and_names_the_check(sample_run, tmp_path, spark, capsys):
    _, root = sample_run
    copy = tmp_path / "out"
    shutil.copytree(root, copy)
    users = copy / "users"
    # a second copy of the users file: every user_id now appears twice
    part = next(p for p in os.listdir(users) if p.endswith(".parquet"))
    shutil.copy(users / part, users / ("dup-" + part))
    code = etl.main(["--checks-only", "--output", str(copy), "--master", "local[2]"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL users: primary key (user_id) unique: got 40, expected == 0" in out
    assert "Checks: 19 of 21 passed, 1 skipped, 1 FAILED" in out


def test_expected_query_results_are_computed_without_spark_and_committed():
    for path, text in expected_results.compute().items():
        with open(path, encoding="utf-8") as handle:
            assert handle.read() == text, f"{path} is out of date: run python tools/expected_results.py"


def test_queries_agree_with_the_spark_output(spark, sample_run):
    _, root = sample_run
    differing, report = run_queries(spark, root, QUERIES)
    assert differing == 0, report
    assert report.count("  ok   ") == 6


def test_a_differing_query_is_shown_side_by_side(spark, sample_run, tmp_path):
    _, root = sample_run
    folder = tmp_path / "queries"
    shutil.copytree(QUERIES, folder)
    expected = folder / "03_paid_vs_free.expected.csv"
    lines = expected.read_text().splitlines()
    level, plays, listeners = lines[1].split(",")
    lines[1] = f"{level},{int(plays) + 1},{listeners}"
    expected.write_text("\n".join(lines) + "\n")
    differing, report = run_queries(spark, root, str(folder))
    assert differing == 1
    assert "03_paid_vs_free: differs" in report
    assert f"! {level},{int(plays) + 1},{listeners}" in report
    assert f"| {level},{plays},{listeners}" in report


def test_results_are_saved_for_the_lake_report_and_equal_the_expected_on_the_sample(sample_run, tmp_path, capsys):
    _, root = sample_run
    results = tmp_path / "results" / "2018-11-30"
    code = analyst.main(["--output", root, "--master", "local[2]", "--results", str(results)])
    out = capsys.readouterr().out
    assert code == 0, out
    saved = sorted(p.name for p in results.iterdir())
    expected = sorted(n.replace(".expected", "") for n in os.listdir(QUERIES) if n.endswith(".expected.csv"))
    assert saved == expected and len(saved) == 6
    for name in saved:  # on the bundled sample the saved results are the expected ones
        with open(os.path.join(QUERIES, name.replace(".csv", ".expected.csv")), encoding="utf-8") as handle:
            assert (results / name).read_text() == handle.read(), name
    assert f"saved 03_paid_vs_free (2 rows) to {results}/03_paid_vs_free.csv" in out
    assert f"Queries: 6 saved under {results}" in out


def test_a_query_that_does_not_run_is_named_and_exits_2(sample_run, tmp_path, capsys):
    _, root = sample_run
    folder = tmp_path / "queries"
    folder.mkdir()
    (folder / "01_fine.sql").write_text("SELECT COUNT(*) AS n FROM users")
    (folder / "02_typo.sql").write_text("SELECT COUNT(*) FROM songplay")
    args = ["--output", root, "--master", "local[2]", "--queries", str(folder), "--results", str(tmp_path / "r")]
    code = analyst.main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{folder}/02_typo.sql does not run on this output" in err
    assert "songplay" in err


def test_the_run_report_holds_counts_tables_checks_and_stage_times(sample_run):
    result, root = sample_run
    with open(os.path.join(root, "_reports", f"{result.run_id}.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["status"] == "ok"
    assert report["sources"]["log_data"]["read"] == 1800
    assert report["sources"]["log_data"]["files"] == 3
    assert report["sources"]["song_data"]["files"] == 301
    assert report["sources"]["song_data"]["bytes"] > 0
    assert report["sources"]["log_data"]["rejected"] == 0
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["songplays"]["rows"] == 1503
    assert tables["songs"]["files"] == tables["songs"]["partitions"] > 40  # a file per year
    assert len(report["checks"]) == 21
    assert set(report["seconds"]) >= {"extract", "transform", "load", "checks", "total"}
    assert "secret" not in json.dumps(report).lower()


@pytest.mark.slow
@pytest.mark.parametrize(("layout", "held"), [(("year",), []), (("year", "artist_id"), ["songs"])])
def test_only_classic_songs_are_checked_as_written(spark, settings, tmp_path, monkeypatch, layout, held):
    """The songs table in the classic layout (one-row files) is checked as the run wrote it; every other
    table, songs by year included, from its files; the checks pass either way."""
    from sparkify.quality.checks import DEFAULT_CHECKS
    from sparkify.runs import engine

    seen = {}

    def spy(spark, read, checks, context=None, written=None):
        seen["as written"] = sorted(written or {})
        return run_checks(spark, read, checks, context, written)

    monkeypatch.setattr(engine, "run_checks", spy)
    laid = settings.with_overrides(output_root=str(tmp_path / "out"), songs_partition_by=layout)
    result = engine.run(spark, laid, checks=DEFAULT_CHECKS)
    assert seen["as written"] == held
    assert len(result.checks) >= 20 and [c.name for c in result.checks if c.status != "passed"] == []


def test_only_the_songs_table_of_one_row_files_is_held_for_the_checks():
    from sparkify.core.schemas import ARTISTS, SONGPLAYS, SONGS, TIME, USERS, songs_table_spec
    from sparkify.runs.write import HOLD_MAX_RECORDS, held_for_checks

    classic = songs_table_spec(("year", "artist_id"))
    assert held_for_checks(classic, HOLD_MAX_RECORDS)
    assert not held_for_checks(classic, HOLD_MAX_RECORDS + 1)
    assert not held_for_checks(SONGS, 300)  # by year: files of many rows, read back
    assert not any(held_for_checks(table, 300) for table in (ARTISTS, USERS, TIME, SONGPLAYS))
    # on S3 every table written whole is held: a read back there is requests one after another
    assert [t.name for t in (SONGS, ARTISTS, USERS, TIME, SONGPLAYS) if held_for_checks(t, 300, on_s3=True)] == [
        "songs",
        "artists",
        "users",
    ]


def test_tables_read_back_for_the_checks_are_cached_except_songplays_and_time(spark, sample_run):
    """The many-file tables (songs: one file per folder) are read once and cached; songplays and time, a
    few files per month, are scanned by each query for the columns it reads."""
    from sparkify.quality.checks import register_tables
    from tests.conftest import SAMPLE
    from tools.reference import Reference

    frames = register_tables(partial(read_table, spark, sample_run[1]), cache=True)
    try:
        names = ("songs", "artists", "users", "time", "songplays")
        assert {n for n in names if spark.catalog.isCached(n)} == {"songs", "artists", "users"}
        assert len(frames) == 3
        count = spark.sql("SELECT COUNT(*) FROM songplays WHERE songplay_id IS NOT NULL").first()[0]
        assert count == len(Reference(SAMPLE).plays)
    finally:
        for frame in frames:
            frame.unpersist()
