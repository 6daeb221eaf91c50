"""A stream from Kafka (`etl.py --stream --source kafka`) against a real broker: the batch job's
tables from the same events, exactly once across a kill -9 and a restart; bad messages
quarantined with topic, partition, offset and timestamp; clear errors for a missing topic or an
unreachable broker.

The stream runs as etl.py in its own process: the Kafka connector must be on the class path of
the JVM it starts (the test run's shared session has no connector)."""

from __future__ import annotations

import collections
import glob
import json
import os
import signal

import pytest

from sparkify.transform import EMPTY_MESSAGE, TOO_LARGE, WRONG_JSON
from tests.conftest import SAMPLE, run_etl, start_etl
from tests.test_reruns import contents
from tests.test_stream import wait_for

pytest_plugins = ("tests.kafka_broker",)
pytestmark = pytest.mark.slow  # each test runs etl.py (a JVM of its own)

BAD = [
    b"not json at all",
    b'{"ts": "yesterday", "page": "NextSong", "userId": "7", "sessionId": 1, "itemInSession": 1}',
    b'{"page": "Home", "userId": "7", "sessionId": 1, "itemInSession": 2}',  # no ts
    None,  # a message without a value
    b'{"artist": "' + b"x" * (3 * 1024 * 1024) + b'", "ts": 1543449600000}',  # several MB
]
EXPECTED_REASONS = {
    WRONG_JSON: 2,
    "missing ts (epoch milliseconds)": 1,
    EMPTY_MESSAGE: 1,
    TOO_LARGE: 1,
}


def config(tmp_path, servers, topic, out, max_offsets=100_000, catalog="auto"):
    path = tmp_path / f"kafka-{max_offsets}-{catalog}.cfg"
    path.write_text(
        f"[ETL]\nINPUT_DATA = {SAMPLE}\nOUTPUT_DATA = {out}\n[SPARK]\nSHUFFLE_PARTITIONS = 2\nDRIVER_MEMORY = 1g\n"
        f"[KAFKA]\nBOOTSTRAP_SERVERS = {servers}\nTOPIC = {topic}\nMAX_OFFSETS_PER_TRIGGER = {max_offsets}\n"
        f"[CATALOG]\nTYPE = {catalog}\n"
    )
    return str(path)


def etl(*args, wait=True):
    return run_etl("--master", "local[2]", *args) if wait else start_etl("--master", "local[2]", *args)


@pytest.fixture(scope="module")
def events_topic(kafka_broker):
    """The bundled sample's events, replayed in event-time order by the replay command, then the bad messages."""
    topic = "sample-events"
    replayed = run_etl(
        "--input", SAMPLE, "--servers", kafka_broker.servers, "--topic", topic, "--rate", "0", "--create-topic", "3",
        module="sparkify.replay",
        timeout=300,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    for value in BAD:
        kafka_broker.produce(topic, [value])
    return topic


def test_the_kafka_stream_gives_the_batch_tables_and_quarantines_bad_messages(
    spark, sample_run, kafka_broker, events_topic, tmp_path
):
    _, batch_root = sample_run
    out = str(tmp_path / "out")
    done = etl(
        "--config",
        config(tmp_path, kafka_broker.servers, events_topic, out),
        "--stream",
        "--source",
        "kafka",
        "--available-now",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got, expected = contents(spark, out), contents(spark, batch_root)
    for table in ("songplays", "time", "users", "songs", "artists"):
        assert got[table] == expected[table], table
    rejects = spark.read.json(os.path.join(out, "_quarantine")).collect()
    assert collections.Counter(r["reason"] for r in rejects) == EXPECTED_REASONS
    for r in rejects:
        assert r["kafka_topic"] == events_topic and r["kafka_offset"] is not None and r["kafka_timestamp"]
        assert r["source_file"] == f"kafka://{events_topic}/{r['kafka_partition']}/{r['kafka_offset']}"
    reports = [json.load(open(p)) for p in glob.glob(os.path.join(out, "_reports", "stream-batch-*.json"))]
    assert sum(r["sources"]["log_data"]["rejected"] for r in reports) == len(BAD)
    assert sum(r["sources"]["log_data"]["read"] for r in reports) == 1800 + len(BAD)
    assert "Checks: " in done.stdout and "FAIL" not in done.stdout


def test_a_killed_kafka_stream_restarts_without_losing_or_repeating_a_play(
    spark, sample_run, kafka_broker, events_topic, tmp_path
):
    """Killed once batch 1 has its offsets logged (before it commits); the restart replays batch 1 with
    exactly those offsets, then takes the rest of the topic in larger batches. Not about the catalog: none."""
    _, batch_root = sample_run
    out = str(tmp_path / "out")
    small_batches = config(tmp_path, kafka_broker.servers, events_topic, out, max_offsets=300, catalog="none")
    job = etl("--config", small_batches, "--stream", "--source", "kafka", "--interval", "1", wait=False)
    checkpoint = os.path.join(out, "_checkpoints", "kafka", events_topic)
    try:
        wait_for(lambda: os.path.exists(os.path.join(checkpoint, "commits", "0")), job, "batch 0 to commit", 600)
        wait_for(lambda: os.path.exists(os.path.join(checkpoint, "offsets", "1")), job, "batch 1 to start", 300)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    assert not os.path.exists(os.path.join(checkpoint, "commits", "1"))  # killed inside batch 1
    large_batches = config(tmp_path, kafka_broker.servers, events_topic, out, catalog="none")
    again = etl("--config", large_batches, "--stream", "--source", "kafka", "--available-now", "--skip-checks")
    assert again.returncode == 0, again.stderr[-3000:]
    got, expected = contents(spark, out), contents(spark, batch_root)
    for table in ("songplays", "time", "users"):
        assert got[table] == expected[table], table


def test_a_missing_topic_or_an_unreachable_broker_is_one_clear_error(kafka_broker, tmp_path):
    out = str(tmp_path / "out")
    missing = etl(
        "--config",
        config(tmp_path, kafka_broker.servers, "no-such-topic", out),
        "--stream",
        "--source",
        "kafka",
        "--available-now",
    )
    assert missing.returncode == 2
    assert f"Topic no-such-topic does not exist on the Kafka broker at {kafka_broker.servers}" in missing.stderr
    gone = etl(
        "--config",
        config(tmp_path, "127.0.0.1:1", "t", out),
        "--stream",
        "--source",
        "kafka",
        "--servers",
        "127.0.0.1:1",
        "--topic",
        "events",
        "--available-now",
    )
    assert gone.returncode == 2
    assert "Cannot reach the Kafka broker at 127.0.0.1:1 (topic events)" in gone.stderr
    assert "Traceback" not in missing.stderr + gone.stderr
