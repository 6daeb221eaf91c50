"""Bytes are kept, not guessed: a line that is not valid UTF-8 is quarantined with its exact
bytes; gzip-compressed inputs (*.json.gz) are read like plain ones."""

from __future__ import annotations

import base64
import gzip
import os

import pytest

from sparkify import transform
from sparkify.core.schemas import LOG_SCHEMA, VALID_UTF8
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from sparkify.sources.files import read_json_tree, walk_local_tree
from tests.conftest import read_table
from tests.test_bad_input import event, song

LATIN1_LINE = event(1, artist="BJORK").encode().replace(b"BJORK", b"Bj\xf6rk")  # Latin-1 bytes, not UTF-8


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


@pytest.fixture(scope="module")
def encoded_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("encodings"))
    songs = os.path.join(root, "song_data", "A", "A")
    write_bytes(f"{songs}/A/TRPLAIN.json", song("SO1", title="Jóga", artist_name="Björk").encode())
    write_bytes(f"{songs}/B/TRZIPPED.json.gz", gzip.compress(song("SO2", title="Hyper").encode()))
    logs = os.path.join(root, "log_data", "2018", "11")
    good = event(0, song="Jóga", artist="Björk").encode()
    write_bytes(f"{logs}/2018-11-01-events.json", good + b"\n" + LATIN1_LINE + b"\n")
    zipped = "\n".join(event(i, song="Hyper") for i in (5, 6)) + "\n"
    write_bytes(f"{logs}/2018-11-02-events.json.gz", gzip.compress(zipped.encode()))
    return root


@pytest.fixture(scope="module")
def encoded_run(spark, settings, encoded_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("encodings-out"))
    lenient = settings.with_overrides(input_root=encoded_root, output_root=out, max_rejected_share=1.0)
    return engine.run(spark, lenient, checks=DEFAULT_CHECKS), out


@pytest.mark.slow
def test_latin1_bytes_are_quarantined_with_their_exact_bytes(spark, encoded_run):
    result, out = encoded_run
    rejects = spark.read.json(os.path.join(out, "_quarantine")).collect()
    assert [(r["source"], r["reason"]) for r in rejects] == [("log_data", transform.NOT_UTF8)]
    assert rejects[0]["source_file"].endswith("2018-11-01-events.json")
    assert base64.b64decode(rejects[0]["raw_base64"]) == LATIN1_LINE
    assert "Bj\ufffdrk" in rejects[0]["raw"]
    assert result.sources["log_data"].rejected == 1


@pytest.mark.slow
def test_gzip_files_are_read_like_plain_ones(spark, encoded_run):
    result, out = encoded_run
    assert (result.sources["song_data"].files, result.sources["log_data"].files) == (2, 2)
    assert sorted(r[0] for r in read_table(spark, out, "songs")) == ["SO1", "SO2"]
    plays = sorted((r[4], r[2]) for r in read_table(spark, out, "songplays"))
    assert plays == [("SO1", "7"), ("SO2", "7"), ("SO2", "7")]
    assert [c.name for c in result.checks if c.failed] == []


def test_spark_reader_and_driver_reader_agree_on_bytes(spark, encoded_root):
    """Small local trees are read on the driver, others by Spark's text reader: both flag the same line."""
    folder = os.path.join(encoded_root, "log_data")
    day_folder = os.path.join(folder, "2018", "11")
    files = [os.path.join(day_folder, name) for name in sorted(os.listdir(day_folder))]
    by_driver = read_json_tree(spark, folder, LOG_SCHEMA)
    by_spark = read_json_tree(spark, files, LOG_SCHEMA)
    for frame in (by_driver, by_spark):
        rows = sorted((r["itemInSession"], r[VALID_UTF8]) for r in frame.collect())
        assert rows == [(0, True), (1, False), (5, True), (6, True)]
    valid = {r["itemInSession"]: r["artist"] for r in by_spark.collect() if r[VALID_UTF8]}
    assert valid[0] == "Björk"


@pytest.mark.slow
def test_one_walk_lists_song_data_for_the_plan_and_the_read(encoded_root, encoded_run):
    """A local song_data/ is walked once (sources.files.walk_local_tree): the plan's listing and the files the
    driver reads come from that walk, and match what is on disk."""
    folder = os.path.join(encoded_root, "song_data")
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(folder) for n in names)
    tree = walk_local_tree(folder)
    listing = tree.listing
    assert (listing.files, listing.bytes, listing.ignored) == (2, sum(os.path.getsize(f) for f in files), 0)
    assert listing.newest == max(os.path.getmtime(f) for f in files)
    assert tree.small is not None and tree.small.uris == ["file://" + f for f in files]
    counted = encoded_run[0].sources["song_data"]
    assert (counted.files, counted.bytes, counted.read) == (2, listing.bytes, 2)


def test_a_tree_of_large_files_is_listed_and_left_to_spark(tmp_path):
    """Files above 64 KiB on average are not read on the driver (Spark's reader takes them); the walk
    still counts them, and the files it does not read (other names, hidden ones) as the listing does."""
    big = (event(1) + "\n") * 400  # ~140 KB
    write_bytes(str(tmp_path / "2018" / "2018-11-01-events.json"), big.encode())
    write_bytes(str(tmp_path / "2018" / "notes.txt"), b"not an input")
    write_bytes(str(tmp_path / "2018" / ".hidden.json"), b"{}")
    tree = walk_local_tree(str(tmp_path))
    assert tree.small is None
    assert (tree.listing.files, tree.listing.bytes, tree.listing.ignored) == (1, len(big.encode()), 1)


def test_the_reference_reads_the_same_files(encoded_root):
    from tools.reference import Reference

    ref = Reference(encoded_root)
    assert sorted(s["song_id"] for s in ref.songs) == ["SO1", "SO2"]
    assert len(ref.plays) == 3


def test_a_local_listing_leaves_out_hidden_entries_and_linked_folders(tmp_path):
    """platform.fs.local_entries: (folder relative to the root, name, size, modification time) of every file,
    "." for the root's own; files and folders whose names start with "_" or "." left out, and a folder
    linked to is not entered (as os.walk does not); a missing folder holds nothing."""
    from sparkify.platform.fs import local_entries

    write_bytes(str(tmp_path / "top.json"), b"{}")
    write_bytes(str(tmp_path / "year=2018" / "month=11" / "part-0.parquet"), b"12345")
    write_bytes(str(tmp_path / "year=2018" / "month=11" / ".part-0.parquet.crc"), b"x")
    write_bytes(str(tmp_path / "year=2018" / "_SUCCESS"), b"")
    write_bytes(str(tmp_path / "_temporary" / "0" / "part-1.parquet"), b"123")
    write_bytes(str(tmp_path / ".hidden" / "a.json"), b"{}")
    os.symlink(tmp_path / "year=2018", tmp_path / "linked")
    found = sorted(local_entries(str(tmp_path)))
    assert [(rel, name, size) for rel, name, size, _ in found] == [
        (".", "top.json", 2),
        ("year=2018/month=11", "part-0.parquet", 5),
    ]
    assert found[1][3] == os.path.getmtime(tmp_path / "year=2018" / "month=11" / "part-0.parquet")
    assert local_entries(str(tmp_path / "missing")) == []  # as os.walk: nothing, not an error
