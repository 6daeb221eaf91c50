"""The real data's size: the public shape (14,896 song files, 8,056 events over 30 days) through
the default command, checks on, compared table by table with the independent computation.

Not timed (the benchmark times it); it fails where the job crashes, loses or changes rows at
the size users run. The data set is the benchmark's `public` set, made by the same generator."""

from __future__ import annotations

import json
import os

import pytest

from sparkify.core.schemas import TABLES
from tests.conftest import read_table
from tools.reference import Reference, json_lines, repair

pytestmark = pytest.mark.slow  # the default run on the public shape: one to two minutes


@pytest.fixture(scope="module")
def reference(public):
    return Reference(public)


@pytest.fixture(scope="module")
def expected_tables(reference):
    """The independent computation's five tables, computed once for the module's tests."""
    return {name: sorted(rows, key=repr) for name, rows in reference.tables().items()}


def test_the_default_run_finishes_with_every_check_passing(public, public_run):
    done, out = public_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Checks: 21 of 21 passed" in done.stdout
    assert sum(1 for _ in json_lines(os.path.join(public, "song_data"))) == 14_897  # one song in two files
    (report,) = [n for n in os.listdir(os.path.join(out, "_reports")) if n.endswith(".json")]
    with open(os.path.join(out, "_reports", report), encoding="utf-8") as handle:
        stages = json.load(handle)["stages"]
    assert stages["checks"] > 0 and stages["write songs"] > 0


@pytest.mark.parametrize("name", [t.name for t in TABLES])
def test_each_table_equals_the_independent_computation(spark, public_run, expected_tables, name):
    _, out = public_run
    got = sorted(read_table(spark, out, name), key=repr)
    expected = expected_tables[name]
    assert len(got) == len(expected)
    assert got[:: max(1, len(got) // 500)] == expected[:: max(1, len(expected) // 500)]  # every row at most 500 apart
    assert set(got) == set(expected)


def test_plays_garbled_two_layers_deep_are_matched_to_their_song(spark, public, public_run, reference):
    _, out = public_run
    two_layer = set()
    for event in json_lines(os.path.join(public, "log_data")):
        artist = event.get("artist")
        if (
            event["page"] == "NextSong"
            and artist
            and repair(artist, 1) != artist
            and repair(repair(artist, 1), 1) != repair(artist, 1)
        ):
            two_layer.add(Reference.songplay_id(Reference._event(event)))
    matched = {row[0] for row in read_table(spark, out, "songplays") if row[4] is not None}
    assert len(two_layer) > 20
    assert len(two_layer & matched) > 10, (len(two_layer), len(two_layer & matched))
