"""Reruns: idempotent, safe against a kill -9 mid-write, and partial (one month) reruns."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time

import pytest

from sparkify.core.schemas import TABLES
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from tests.conftest import SAMPLE, read_table, start_etl
from tools.make_sample import generate
from tools.reference import Reference

JOB_ID = re.compile(r"part-\d+-([0-9a-f-]{36})")


def contents(spark, root):
    return {t.name: sorted(read_table(spark, root, t.name), key=repr) for t in TABLES}


def data_files(root, table):
    found = set()
    for folder, _, names in os.walk(os.path.join(root, table)):
        found |= {os.path.relpath(os.path.join(folder, n), root) for n in names if n.endswith(".parquet")}
    return found


@pytest.fixture(scope="module")
def other_input(tmp_path_factory):
    """A different, larger input (its songs table takes a while to write)."""
    root = str(tmp_path_factory.mktemp("other-input"))
    generate(
        root,
        songs=2500,
        events=2400,
        days=3,
        users=50,
        start=__import__("datetime").date(2018, 11, 29),
        seed=7,
        match_share=0.35,
    )
    return root


@pytest.mark.slow
def test_a_rerun_gives_the_same_tables(spark, settings, sample_run):
    _, root = sample_run
    before = contents(spark, root)
    engine.run(spark, settings)
    assert contents(spark, root) == before


def after_a_run(known_users, reference):
    """The tables a run over ``reference``'s input gives in an output that held the users ``known_users``
    (and months of plays that input covers too), computed independently (tools/reference.py): songs,
    artists, time and songplays of that input alone; users merged (docs/architecture.md): each user's latest event of
    the input, for a user who played a song in it or was known, then per user the row seen last wins
    (the run's on a tie)."""
    tables = reference.tables()
    listeners = {p["user_id"] for p in reference.plays if p["user_id"] is not None}
    latest = {}
    for e in sorted(
        (e for e in reference.events if e["user_id"] is not None),
        key=lambda e: (-e["ts"], -e["item"], e["level"] is None, e["level"] or ""),
    ):
        latest.setdefault(e["user_id"], e)
    users = {row[0]: row for row in known_users}
    for user, e in latest.items():
        if user in listeners or user in users:
            row = (user, e["first_name"], e["last_name"], e["gender"], e["level"], e["ts"])
            if user not in users or users[user][5] is None or row[5] >= users[user][5]:
                users[user] = row
    tables["users"] = list(users.values())
    return {name: sorted(rows, key=repr) for name, rows in tables.items()}


@pytest.mark.slow
def test_a_killed_run_leaves_the_previous_output_and_the_next_run_completes(
    spark, settings, sample_run, other_input, tmp_path
):
    """The next run over the killed one's output gives what an uninterrupted run gives: the independent
    computation of that input's tables, its users merged with those the output held."""
    _, sample_root = sample_run
    killed = str(tmp_path / "killed")
    shutil.copytree(sample_root, killed)
    before_files = {t.name: data_files(killed, t.name) for t in TABLES}
    before = contents(spark, killed)

    job = start_etl("--input", other_input, "--output", killed, "--skip-checks", master="local[1]")
    staging = os.path.join(killed, "_staging")
    deadline = time.monotonic() + 240
    try:
        while not any(os.path.isdir(os.path.join(staging, run, "songs")) for run in _listdir(staging)):
            assert job.poll() is None, "the job ended before it started writing"
            assert time.monotonic() < deadline, "the job never started writing"
            time.sleep(0.05)
    finally:  # inside the songs write or soon after it (by year, songs take about a second on the sample)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)

    for table in TABLES:
        files = data_files(killed, table.name)
        # never a mix: the old table's files, or only files of one new write
        assert files == before_files[table.name] or (
            not files & before_files[table.name] and len({JOB_ID.search(f).group(1) for f in files}) == 1
        ), table.name
    expected = after_a_run(before["users"], Reference(other_input))
    seen = contents(spark, killed)
    kept = [t.name for t in TABLES if seen[t.name] == before[t.name]]
    assert kept, "the kill came after every table was written"
    for table in TABLES:  # each table whole: the previous one, or the killed run's finished one
        assert seen[table.name] in (before[table.name], expected[table.name]), table.name
    print(f"\nkilled: kept the previous {', '.join(kept)}")

    engine.run(spark, settings.with_overrides(input_root=other_input, output_root=killed))
    assert not _listdir(staging)
    # every month the output held is one the input has plays in: no old play is kept beside the new ones
    assert {p[-2:] for p in before["songplays"]} <= {p[-2:] for p in expected["songplays"]}
    got = contents(spark, killed)
    for table in TABLES:
        assert len(got[table.name]) == len(expected[table.name]) > 0, table.name
        assert got[table.name] == expected[table.name], table.name


def _listdir(path):
    return os.listdir(path) if os.path.isdir(path) else []


@pytest.mark.slow
def test_rerunning_one_month_rewrites_only_that_month(spark, settings, sample_run, tmp_path):
    _, sample_root = sample_run
    out = str(tmp_path / "out")
    shutil.copytree(sample_root, out)
    december = tmp_path / "december"
    shutil.copytree(os.path.join(SAMPLE, "song_data"), december / "song_data")
    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "12"), december / "log_data" / "2018" / "12")
    full = contents(spark, out)
    nov_files = {f for f in data_files(out, "songplays") if "month=11" in f}
    dec_files = {f for f in data_files(out, "songplays") if "month=12" in f}

    result = engine.run(
        spark, settings.with_overrides(input_root=str(december), output_root=out), checks=DEFAULT_CHECKS
    )

    assert [c.name for c in result.checks if c.failed] == []
    after = data_files(out, "songplays")
    assert {f for f in after if "month=11" in f} == nov_files  # November untouched
    assert not ({f for f in after if "month=12" in f} & dec_files)  # December rewritten
    rerun = contents(spark, out)
    dec_only = sorted(Reference(str(december)).songplays_table(), key=repr)
    expected_plays = sorted([r for r in full["songplays"] if r[-1] == 11] + dec_only, key=repr)
    assert rerun["songplays"] == expected_plays
    assert rerun["users"] == full["users"]  # users keep their latest level across runs
    assert rerun["songs"] == full["songs"]
