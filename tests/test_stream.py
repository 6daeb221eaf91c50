"""Streaming mode: the file-source stream gives the batch job's tables, exactly once across a
kill -9 and a restart."""

from __future__ import annotations

import os
import shutil
import signal
import time

from sparkify.stream import CHECKPOINT, run_stream
from tests.conftest import SAMPLE, start_etl
from tests.test_reruns import contents

DAYS = ("2018/11/2018-11-29-events.json", "2018/11/2018-11-30-events.json", "2018/12/2018-12-01-events.json")


def add_day(src, day):
    target = os.path.join(src, "log_data", day)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(os.path.join(SAMPLE, "log_data", day), target + ".tmp")
    os.rename(target + ".tmp", target)  # appears whole, as an upload would


def test_available_now_gives_the_batch_tables(spark, settings, sample_run, tmp_path):
    _, batch_root = sample_run
    out = str(tmp_path / "out")
    batches = run_stream(spark, settings.with_overrides(output_root=out), available_now=True, files_per_batch=2)
    assert batches == [0, 1]  # three days: two, then one
    assert contents(spark, out) == contents(spark, batch_root)
    again = run_stream(spark, settings.with_overrides(output_root=out), available_now=True, files_per_batch=1)
    assert again == []  # nothing new: no batch, no change
    assert contents(spark, out) == contents(spark, batch_root)


def test_a_killed_stream_restarts_without_losing_or_repeating_a_play(spark, settings, sample_run, tmp_path):
    _, batch_root = sample_run
    src, out = tmp_path / "in", str(tmp_path / "out")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    add_day(str(src), DAYS[0])
    commits = os.path.join(out, CHECKPOINT, "commits")
    offsets = os.path.join(out, CHECKPOINT, "offsets")
    cfg = tmp_path / "dl.cfg"  # the defaults, but no catalog: this test is about the stream's exactly-once
    cfg.write_text("[CATALOG]\nTYPE = none\n")
    job = start_etl(
        "--config",
        str(cfg),
        "--stream",
        "--interval",
        "1",
        "--files-per-batch",
        "1",
        "--input",
        str(src),
        "--output",
        out,
        master="local[2]",
    )
    try:
        wait_for(lambda: os.path.exists(os.path.join(commits, "0")), job, "batch 0 to commit")
        add_day(str(src), DAYS[1])
        wait_for(lambda: os.path.exists(os.path.join(offsets, "1")), job, "batch 1 to start")
        time.sleep(1.5)  # inside batch 1
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    add_day(str(src), DAYS[2])

    restarted = run_stream(
        spark, settings.with_overrides(input_root=str(src), output_root=out), available_now=True, files_per_batch=1
    )
    assert restarted[-1] == 2 and restarted[0] in (1, 2)  # batch 1 replayed unless it had committed
    got = contents(spark, out)
    expected = contents(spark, batch_root)
    for table in ("songplays", "time", "users", "songs", "artists"):
        assert got[table] == expected[table], table


def wait_for(condition, job, what, seconds=600):
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, f"the stream ended while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
