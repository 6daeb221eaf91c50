"""python -m sparkify.replay against a real Kafka broker (tests/kafka_broker.py): every event of the
bundled sample arrives once, byte for byte, one user's events in one partition in event-time order;
bad lines go last; the rate is honoured; an unreachable broker or a missing topic is one line, exit 2."""

from __future__ import annotations

import collections
import gzip
import io
import json
import os
import socket
import time

import pytest

from tests.conftest import ROOT, SAMPLE, run_etl

# The session's `kafka_broker` fixture. Not imported here as a module: pytest must import it first.
pytest_plugins = ("tests.kafka_broker",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_replay(*args, timeout=120):
    started = time.monotonic()
    done = run_etl(*args, module="sparkify.replay", env={"PYTHONPATH": ROOT}, timeout=timeout)
    return done, time.monotonic() - started


def sample_lines():
    """The sample's non-blank log lines, read here independently of the replay's own reader."""
    lines = []
    for parent, _, names in os.walk(os.path.join(SAMPLE, "log_data")):
        for name in names:
            if name.endswith((".json", ".json.gz")):
                path = os.path.join(parent, name)
                opener = gzip.open if name.endswith(".gz") else open
                with opener(path, "rb") as handle:
                    lines.extend(line for line in handle.read().splitlines() if line.strip())
    return lines


@pytest.fixture(scope="module")
def sample_replay(kafka_broker):
    done, _ = run_replay(
        "--input", SAMPLE, "--servers", kafka_broker.servers, "--topic", "replay-sample", "--rate", "0",
        "--create-topic", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = len(sample_lines())
    messages = kafka_broker.consume("replay-sample", expected)
    return done, messages


@pytest.mark.slow
def test_every_sample_event_arrives_once_byte_for_byte(sample_replay, kafka_broker):
    done, messages = sample_replay
    lines = sample_lines()
    assert len(lines) == 1800  # 3 files of 600 lines (no line break after the last)
    assert sum(kafka_broker.end_offsets("replay-sample")) == len(lines)  # nothing more on the topic
    assert collections.Counter(m.value() for m in messages) == collections.Counter(lines)
    assert f"published {len(lines)} of {len(lines)} events from 3 files to topic replay-sample (3 partitions)" in (
        done.stdout
    )
    assert "created topic replay-sample with 3 partitions" in done.stderr
    assert "sent 1800/1800 events" in done.stderr  # the progress line


@pytest.mark.slow
def test_one_users_events_keep_to_one_partition_in_event_time_order(sample_replay):
    _, messages = sample_replay
    by_key = collections.defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        event = json.loads(message.value())
        user = event.get("userId")
        assert message.key() == (str(user).encode() if user not in (None, "") else None)
        by_key[message.key()].append((message.partition(), event["ts"]))
    keyed = {key: seen for key, seen in by_key.items() if key is not None}
    assert len(keyed) > 10 and None in by_key  # the sample has logged-out events (empty userId) too
    assert len({p for seen in keyed.values() for p, _ in seen}) == 3  # users spread over the partitions
    for key, seen in keyed.items():
        assert len({p for p, _ in seen}) == 1, key
        times = [ts for _, ts in seen]
        assert times == sorted(times), key


def test_bad_lines_are_published_last_as_they_are(kafka_broker, tmp_path):
    from sparkify.cli import replay

    folder = tmp_path / "log_data" / "2018"
    folder.mkdir(parents=True)
    with gzip.open(folder / "a.json.gz", "wb") as handle:
        handle.write(b'{"ts": 3, "userId": "1"}\nnot json\n{"ts": 1, "userId": ""}\n')
    (folder / "b.json").write_bytes(
        b'{"userId": "7", "page": "NextSong"}\n\n  \n[1, 2]\r\n{"ts": 0, "userId": 2}\r\n'
        b'{"ts": 2, "artist": "Bj\xc3\xb6rk"}\n{"ts": 5, "x": "\xff\xfe"}\n{"ts": "4"}'
    )
    kafka_broker.create_topic("replay-bad", partitions=1)
    summary = replay.replay(str(tmp_path), kafka_broker.servers, "replay-bad", rate=0, progress=io.StringIO())
    assert (summary.events, summary.unordered, summary.delivered, summary.failed) == (9, 5, 9, 0)
    messages = kafka_broker.consume("replay-bad", 9)
    assert [m.value() for m in messages] == [
        b'{"ts": 0, "userId": 2}',  # its CRLF line break is not part of the value
        b'{"ts": 1, "userId": ""}',
        b'{"ts": 2, "artist": "Bj\xc3\xb6rk"}',
        b'{"ts": 3, "userId": "1"}',
        # not in event-time order: in file and line order, after the others
        b"not json",
        b'{"userId": "7", "page": "NextSong"}',
        b"[1, 2]",
        b'{"ts": 5, "x": "\xff\xfe"}',  # not UTF-8, so not JSON
        b'{"ts": "4"}',  # ts not a number
    ]
    assert [m.key() for m in messages] == [b"2", None, None, b"1", None, b"7", None, None, None]
    assert sum(kafka_broker.end_offsets("replay-bad")) == 9


def test_the_rate_paces_the_events(kafka_broker, tmp_path):
    from sparkify.cli import replay

    folder = tmp_path / "log_data"
    folder.mkdir()
    (folder / "events.json").write_text(
        "".join(json.dumps({"ts": 1541000000000 + i, "userId": str(i % 7)}) + "\n" for i in range(600))
    )
    kafka_broker.create_topic("replay-rate", partitions=2)
    progress = io.StringIO()
    summary = replay.replay(
        str(tmp_path), kafka_broker.servers, "replay-rate", rate=2000, progress=progress, progress_every=0.1
    )
    assert summary.delivered == 600 and summary.failed == 0
    assert summary.elapsed >= 0.25  # 600 events at 2000/s: about 0.3 s; not a timing target
    assert "sent 600/600 events" in progress.getvalue().splitlines()[-1]
    assert len(progress.getvalue().splitlines()) >= 2  # progress during the run, not only at the end


@pytest.mark.slow
def test_an_unreachable_broker_is_one_line_naming_servers_and_topic():
    servers = f"127.0.0.1:{free_port()}"
    done, took = run_replay("--input", SAMPLE, "--servers", servers, "--topic", "nowhere", "--timeout", "2")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: Cannot reach the Kafka broker at {servers} (topic nowhere) within 2 s")
    assert took < 30  # a short timeout, not a hang


@pytest.mark.slow
def test_a_missing_topic_is_one_line(kafka_broker):
    done, _ = run_replay("--input", SAMPLE, "--servers", kafka_broker.servers, "--topic", "no-such-topic")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: Topic no-such-topic does not exist on the Kafka broker at {kafka_broker.servers}: create it "
        "(--create-topic N makes it with N partitions) or check --topic."
    )


@pytest.mark.slow
def test_a_missing_input_is_one_line(tmp_path):
    done, _ = run_replay("--input", str(tmp_path), "--servers", "127.0.0.1:1", "--topic", "t")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: No log_data/ folder in {tmp_path}: pass --input holding log_data/ (e.g. data/sample)."
    )
