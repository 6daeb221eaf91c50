"""Streaming mode: the file-source stream gives the batch job's tables, batch after batch.

Exactly once across a kill -9 and a restart is tested once per source and sink, not for every pair:
the file source with the Iceberg sink (tests/test_iceberg.py), Kafka with the Parquet sink's batch-named
files (tests/test_stream_kafka.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import pytest

from sparkify.core.errors import UserError
from sparkify.core.schemas import SONGPLAYS, TIME
from sparkify.runs.stream import run_stream
from sparkify.sinks import read_table
from sparkify.sources.files import CHECKPOINT
from sparkify.transform import LATE_EVENT
from tests.conftest import SAMPLE
from tests.test_reruns import contents

DAYS = ("2018/11/2018-11-29-events.json", "2018/11/2018-11-30-events.json", "2018/12/2018-12-01-events.json")


def add_day(src, day):
    target = os.path.join(src, "log_data", day)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(os.path.join(SAMPLE, "log_data", day), target + ".tmp")
    os.rename(target + ".tmp", target)  # appears whole, as an upload would


@pytest.mark.slow
def test_available_now_gives_the_batch_tables(spark, settings, sample_run, tmp_path):
    _, batch_root = sample_run
    out = str(tmp_path / "out")
    batches = run_stream(spark, settings.with_overrides(output_root=out), available_now=True, files_per_batch=2)
    assert batches == [0, 1, 2]  # three days: two, then one, then Spark's batch without data (the watermark moved)
    assert contents(spark, out) == contents(spark, batch_root)
    again = run_stream(spark, settings.with_overrides(output_root=out), available_now=True, files_per_batch=1)
    assert again == []  # nothing new: no batch, no change
    assert contents(spark, out) == contents(spark, batch_root)


def batch_reading(checkpoint, name):
    """The id of the micro-batch of a file-source stream that read the file ``name`` (None: none yet), from
    the source's log in the checkpoint (sources/0/<batch id>: a version line, then one JSON line per file)."""
    log = os.path.join(checkpoint, "sources", "0")
    for entry in sorted(n for n in os.listdir(log) if n.isdigit()) if os.path.isdir(log) else []:
        with open(os.path.join(log, entry), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("{") and json.loads(line)["path"].endswith(name):
                    return json.loads(line)["batchId"]
    return None


def wait_for(condition, job, what, seconds=600):
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, f"the stream ended while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- repeats and late events across micro-batches: the stream's state ------------------------------


def songplay_id(*identity):
    """As tools/reference.py: the first 60 bits of SHA-256 over "ts|userId|sessionId|itemInSession"."""
    return int(hashlib.sha256("|".join(str(v) for v in identity).encode("utf-8")).hexdigest()[:15], 16)


def _write_lines(path, lines, mtime):
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.utime(path + ".tmp", (mtime, mtime))  # the file source takes the oldest file first
    os.rename(path + ".tmp", path)


def _day(name):
    with open(os.path.join(SAMPLE, "log_data", name), encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    return lines, [json.loads(line) for line in lines]


def _plays(lines, events):
    return [(line, e) for line, e in zip(lines, events) if e["page"] == "NextSong" and e["userId"] and e["song"]]


@pytest.fixture(scope="module")
def three_batches(spark, settings, tmp_path_factory):
    """Batches 0 and 1: two days of the sample. Batch 2: the second day's last play again (a repeat), and a
    new play three hours older than the first day's latest event (the watermark is one hour; Spark drops as
    late what is older than the watermark of the batch before: the first day's latest event time - 1 hour)."""
    src = tmp_path_factory.mktemp("repeats-in")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    os.makedirs(src / "log_data")
    (day1, events1), (day2, events2) = _day(DAYS[0]), _day(DAYS[1])
    plays = _plays(day1, events1) + _plays(day2, events2)
    repeat_line, repeat = _plays(day2, events2)[-1]
    late = dict(plays[0][1], ts=max(e["ts"] for e in events1) - 3 * 3600 * 1000, itemInSession=9999)
    late_line = json.dumps(late)
    now = time.time()
    _write_lines(str(src / "log_data" / "a.json"), day1, now - 60)
    _write_lines(str(src / "log_data" / "b.json"), day2, now - 30)
    _write_lines(str(src / "log_data" / "c.json"), [repeat_line, late_line], now)
    stream = settings.with_overrides(input_root=str(src), output_root=str(tmp_path_factory.mktemp("repeats-out")))
    batches = run_stream(spark, stream, available_now=True, files_per_batch=1)
    return stream, batches, plays, repeat, late_line


def test_a_repeat_in_a_later_batch_adds_nothing_and_a_late_event_is_quarantined(spark, three_batches):
    stream, batches, plays, repeat, late_line = three_batches
    out = stream.output_root
    assert batches == [0, 1, 2]
    songplays = read_table(spark, out, SONGPLAYS).collect()
    assert len(songplays) == len(plays)  # every play of the day once: the repeat added nothing, the late one neither
    ids = {songplay_id(e["ts"], e["userId"], e["sessionId"], e["itemInSession"]) for _, e in plays}
    assert {r.songplay_id for r in songplays} == ids
    again = songplay_id(repeat["ts"], repeat["userId"], repeat["sessionId"], repeat["itemInSession"])
    assert [r.songplay_id for r in songplays].count(again) == 1
    times = read_table(spark, out, TIME).collect()
    assert len(times) == len({e["ts"] for _, e in plays})
    (late,) = spark.read.json(os.path.join(out, "_quarantine")).collect()
    assert late.reason == LATE_EVENT and late.raw == late_line and late.source_file.endswith("c.json")
    report = json.load(open(os.path.join(out, "_reports", "stream-batch-00000002.json"), encoding="utf-8"))
    counts = report["sources"]["log_data"]
    assert (counts["read"], counts["used"], counts["rejected"]) == (1, 0, 1)  # the repeat never reached the batch
    assert report["stream"]["batch_id"] == 2 and report["stream"]["watermark"] == "1 hour"
    first = json.load(open(os.path.join(out, "_reports", "stream-batch-00000000.json"), encoding="utf-8"))
    assert 1 <= first["spark_jobs"] <= 12, first["spark_jobs"]  # counted; a dozen was the old cost


def test_a_stream_whose_checkpoint_is_lost_refuses_to_start(spark, three_batches):
    stream, _, _, _, _ = three_batches
    before = contents(spark, stream.output_root)
    shutil.rmtree(os.path.join(stream.output_root, CHECKPOINT))
    lost = r"checkpoint .* is gone, but .* holds the micro-batches it wrote \(the last: batch 2\)"
    with pytest.raises(UserError, match=lost):
        run_stream(spark, stream, available_now=True, files_per_batch=1)
    assert contents(spark, stream.output_root) == before
