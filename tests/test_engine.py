"""The one engine: a new source is one module and one registry line (here a small in-memory source, through
the whole engine: read, quarantine, build, publish, report, register), and a stream's start reads song_data/
through the same steps as a batch run, bad songs quarantined and counted alike."""

from __future__ import annotations

import collections
import glob
import json
import os

import pytest
from pyspark.sql import functions as F

from sparkify import sources
from sparkify.core.errors import UserError
from sparkify.core.schemas import SOURCE_FILE
from sparkify.runs import engine, modes
from sparkify.runs.stream import run_stream
from tests.test_bad_input import event, song, write

MEMORY_EVENTS = [
    event(0, page="Home", user="5"),
    event(1, user="5", song="Song", artist="Band", length=200.0),
    event(2, user="6", level="paid", song="Other", artist="Nobody"),
    event(3, user="6", level="paid", song="Unknown"),  # matches no song: kept, with null ids
    '{"ts": "not a time", "page": "NextSong"}',  # rejected: a field of the wrong type
]


SONG_IDS = {("Song", "Band"): "SO1", ("Other", "Nobody"): "SO2"}  # songs_root's good songs (length 200 all)


def memory_stream(spark, settings, per_batch):
    """MEMORY_EVENTS as one micro-batch, each with a made-up origin (Spark's rate-micro-batch source gives
    the row numbers; each becomes an event's text)."""
    texts = F.array(*[F.lit(text) for text in MEMORY_EVENTS])
    numbers = (
        spark.readStream.format("rate-micro-batch")
        .option("rowsPerBatch", len(MEMORY_EVENTS))
        .option("numPartitions", 1)
        .load()
    )
    index = (F.col("value") % len(MEMORY_EVENTS)).cast("int")
    return numbers.select(
        F.format_string("memory://events/%d", index).alias(SOURCE_FILE),
        F.element_at(texts, index + 1).alias("value"),
    )


MEMORY = sources.Source(
    stream_frame=memory_stream,
    checkpoint=lambda settings: "_checkpoints/memory",
)


def songs_root(tmp_path):
    """A song_data/ with two good songs and two bad ones, and an empty log_data/."""
    root = str(tmp_path / "in")
    folder = os.path.join(root, "song_data", "A", "B")
    write(f"{folder}/C/TRGOOD.json", song("SO1", title="Song"))
    write(f"{folder}/D/TROTHER.json", song("SO2", title="Other", artist_id="AR2", artist_name="Nobody"))
    write(f"{folder}/E/TRTRUNCATED.json", song("SO3")[:40])
    write(f"{folder}/F/TRNOID.json", song(None))
    os.makedirs(os.path.join(root, "log_data"))
    return root


def quarantined(spark, out):
    rows = spark.read.json(os.path.join(out, "_quarantine")).collect()
    return sorted((r["source"], os.path.basename(r["source_file"]), r["reason"], r["raw"]) for r in rows)


@pytest.mark.slow  # the job on data of its own
def test_a_source_in_one_registry_line_goes_through_the_whole_engine(spark, settings, tmp_path, monkeypatch):
    monkeypatch.setitem(sources.SOURCES, "memory", MEMORY)
    out = str(tmp_path / "out")
    lenient = settings.with_overrides(input_root=songs_root(tmp_path), output_root=out, max_rejected_share=1.0)

    batches = run_stream(spark, lenient, available_now=True, source="memory")

    assert batches == [0, 1]  # its events, then Spark's batch without data (the watermark moved)
    plays = spark.read.parquet(os.path.join(out, "songplays")).orderBy("start_time").collect()
    expected = [json.loads(e) for e in MEMORY_EVENTS[:4] if json.loads(e)["page"] == "NextSong"]
    assert [(p.user_id, p.level, p.song_id) for p in plays] == [
        (e["userId"], e["level"], SONG_IDS.get((e["song"], e["artist"]))) for e in expected
    ]
    users = {r.user_id: r.level for r in spark.read.parquet(os.path.join(out, "users")).collect()}
    assert users == {"5": "free", "6": "paid"}
    rejected = [r for r in quarantined(spark, out) if r[0] == "log_data"]
    assert rejected == [("log_data", "4", "not valid JSON, or a field of the wrong type (see raw)", MEMORY_EVENTS[4])]
    with open(os.path.join(out, "_reports", "stream-batch-00000000.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["status"] == "ok"
    assert report["sources"]["log_data"]["read"] == len(MEMORY_EVENTS)
    assert report["sources"]["log_data"]["rejected"] == 1
    assert os.path.isdir(os.path.join(out, "_checkpoints", "memory", "commits"))


@pytest.mark.slow  # the job on data of its own
def test_a_stream_quarantines_and_counts_bad_songs_as_a_batch_run_does(spark, settings, tmp_path, monkeypatch):
    monkeypatch.setitem(sources.SOURCES, "memory", MEMORY)
    root = songs_root(tmp_path)
    write(os.path.join(root, "log_data", "2018", "11", "2018-11-01-events.json"), "\n".join(MEMORY_EVENTS[:4]))
    lenient = settings.with_overrides(input_root=root, max_rejected_share=1.0)
    batch_out, stream_out = str(tmp_path / "batch"), str(tmp_path / "stream")

    batch = engine.run(spark, lenient.with_overrides(output_root=batch_out))
    run_stream(spark, lenient.with_overrides(output_root=stream_out), available_now=True, source="memory")

    songs_in = {r for r in quarantined(spark, batch_out) if r[0] == "song_data"}
    assert songs_in == {r for r in quarantined(spark, stream_out) if r[0] == "song_data"}
    assert {(r[1], r[2]) for r in songs_in} == {
        ("TRTRUNCATED.json", "not valid JSON, or a field of the wrong type (see raw)"),
        ("TRNOID.json", "missing song_id"),
    }
    (start,) = glob.glob(os.path.join(stream_out, "_reports", "stream-*-songs.json"))
    with open(start, encoding="utf-8") as handle:
        counted = json.load(handle)["sources"]["song_data"]
    expected = batch.sources["song_data"]
    assert (counted["read"], counted["used"], counted["rejected"]) == (expected.read, expected.used, expected.rejected)
    assert (expected.read, expected.used, expected.rejected) == (4, 2, 2)
    songs = collections.Counter(r.song_id for r in spark.read.parquet(os.path.join(stream_out, "songs")).collect())
    assert songs == {"SO1": 1, "SO2": 1}


@pytest.mark.slow  # the job on data of its own
def test_too_many_bad_songs_stop_a_stream_before_it_writes_as_they_stop_a_run(spark, settings, tmp_path):
    strict = settings.with_overrides(input_root=songs_root(tmp_path), output_root=str(tmp_path / "out"))
    with pytest.raises(UserError, match=r"song_data: 50\.0% of records were rejected \(2 of 4\)"):
        run_stream(spark, strict, available_now=True)
    assert not os.path.exists(os.path.join(str(tmp_path / "out"), "songs"))


def test_a_table_format_or_catalog_no_registry_holds_is_refused_before_spark_starts(settings, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(
        UserError, match=r"TABLE_FORMAT = 'delta' is not a table format this job writes: .*parquet, iceberg"
    ):
        modes.prepare(settings.with_overrides(output_root=out, table_format="delta"))
    with pytest.raises(UserError, match=r"\[CATALOG\] TYPE = 'hive' is not a catalog: choose one of glue, local, none"):
        modes.prepare(settings.with_overrides(output_root=out, catalog_type="hive"))
