"""Streaming mode: the file-source stream gives the batch job's tables, batch after batch.

Exactly once across a kill -9 and a restart is tested once per source and sink, not for every pair:
the file source with the Iceberg sink (tests/test_iceberg.py), Kafka with the Parquet sink's batch-named
files (tests/test_stream_kafka.py)."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from sparkify.runs.stream import run_stream
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
    assert batches == [0, 1]  # three days: two, then one
    assert contents(spark, out) == contents(spark, batch_root)
    again = run_stream(spark, settings.with_overrides(output_root=out), available_now=True, files_per_batch=1)
    assert again == []  # nothing new: no batch, no change
    assert contents(spark, out) == contents(spark, batch_root)


def wait_for(condition, job, what, seconds=600):
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, f"the stream ended while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
