"""Replay the app's events into a Kafka topic, so a stream from Kafka has something to read.

    python -m sparkify.replay --input data/sample --servers 127.0.0.1:9092 --topic sparkify-events --rate 1000

Publishes every line of ``<input>/log_data/`` (``*.json`` and ``*.json.gz``, one JSON object per line)
as one message, its value the line's bytes as they are (not parsed and written again), in event-time
order (by ``ts``), at ``--rate`` events per second (0: as fast as the broker takes them). The key is
the event's userId, so one user's events go to one partition, in order; an event without a userId
has no key. Lines that are not JSON objects or have no numeric ``ts`` are published too, after all
the others, for the stream to quarantine. Blank lines are skipped.

A progress line goes to stderr (events sent, rate, elapsed), and a summary to stdout at the end.
``--create-topic N`` creates the topic with N partitions first (an existing topic is used as it is).
An unreachable broker or a missing topic is reported in one line, with exit code 2.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from sparkify.core.errors import UserError
from sparkify.core.schemas import INPUT_SUFFIXES
from sparkify.sources.kafka import client_config, error_text, partitions_of

# How long to wait for the broker to answer (metadata, topic creation) before giving up.
DEFAULT_TIMEOUT = 10.0
# A message the broker has not acknowledged after this long is reported as failed.
DELIVERY_TIMEOUT_MS = 60_000
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# (not a valid event: sent last, event time, key, value) in file and line order.
Event = Tuple[bool, float, Optional[bytes], bytes]


@dataclass
class Summary:
    events: int  # lines read (not blank)
    unordered: int  # of which not JSON objects with a numeric ts (published last)
    files: int
    delivered: int
    failed: int
    first_error: str
    elapsed: float  # seconds from the first message produced to the last acknowledged
    partitions: int

    @property
    def rate(self) -> float:
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0


def input_files(input_root: str) -> List[str]:
    """The *.json and *.json.gz files under <input>/log_data/, in path order."""
    folder = os.path.join(input_root, "log_data")
    if not os.path.isdir(folder):
        raise UserError(f"No log_data/ folder in {input_root}: pass --input holding log_data/ (e.g. data/sample).")
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(parent, n) for n in sorted(names) if n.endswith(INPUT_SUFFIXES))
    if not found:
        raise UserError(f"No *.json or *.json.gz files under {folder}.")
    return found


def read_lines(path: str) -> List[bytes]:
    """The file's non-blank lines, each as its bytes without the line break."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"Cannot read {path}: {exc}") from None
    lines = []
    for raw in data.split(b"\n"):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line.strip():
            lines.append(line)
    return lines


def parse(line: bytes) -> Event:
    """The line's sort position and key: (late, ts, key, value)."""
    try:
        record = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return (True, 0.0, None, line)
    if not isinstance(record, dict):
        return (True, 0.0, None, line)
    user = record.get("userId")
    key = str(user).encode("utf-8") if user not in (None, "") else None
    ts = record.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return (True, 0.0, key, line)
    return (False, float(ts), key, line)


def load_events(input_root: str) -> Tuple[List[Event], int]:
    """All events of the input, in event-time order (ties and the unordered in file and line order)."""
    files = input_files(input_root)
    events = [parse(line) for path in files for line in read_lines(path)]
    events.sort(key=lambda e: (e[0], e[1]))  # stable
    return events, len(files)


def producer_config(servers: str, timeout: float) -> Dict[str, Any]:
    return {
        **client_config(servers, timeout),
        # Java's partitioner for keyed messages: a userId lands in the same partition as with a Java producer.
        "partitioner": "murmur2_random",
        # Acknowledged by all in-sync replicas, and no reordering or duplicates on retries.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "delivery.timeout.ms": DELIVERY_TIMEOUT_MS,
        "queue.buffering.max.messages": 100_000,
    }


def create_topic(servers: str, topic: str, partitions: int, timeout: float, out: TextIO) -> None:
    """Create ``topic`` with ``partitions`` partitions (the broker's default replication); keep an existing one."""

    admin = AdminClient(client_config(servers, timeout))
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        raise UserError(
            f"Cannot reach the Kafka broker at {servers} (topic {topic}) within {timeout:g} s. "
            "Check --servers (host:port of the bootstrap servers) and that the broker runs."
        ) from None
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions)], request_timeout=timeout, operation_timeout=timeout
    )[topic]
    try:
        future.result(timeout + 5)
        print(f"created topic {topic} with {partitions} partitions on {servers}", file=out)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if getattr(error, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
            print(f"topic {topic} exists on {servers}: publishing to it as it is", file=out)
            return
        raise UserError(f"Cannot create topic {topic} on the Kafka broker at {servers}: {error_text(exc)}.") from None


def _progress(out: TextIO, sent: int, total: int, elapsed: float, final: bool = False) -> None:
    rate = sent / elapsed if elapsed > 0 else 0.0
    line = f"sent {sent}/{total} events, {rate:,.0f} events/s, {elapsed:.1f} s elapsed"
    if out.isatty():
        out.write("\r" + line + ("\n" if final else ""))
    else:
        out.write(line + "\n")
    out.flush()


def replay(
    input_root: str,
    servers: str,
    topic: str,
    rate: float = 1000.0,
    create_partitions: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    progress: TextIO = sys.stderr,
    progress_every: Optional[float] = None,
) -> Summary:
    """Publish the events of ``input_root``/log_data/ to ``topic``; see the module's docstring."""
    if rate < 0:
        raise UserError(f"--rate must be 0 (as fast as possible) or more; got {rate:g}.")
    events, files = load_events(input_root)
    if create_partitions:
        create_topic(servers, topic, create_partitions, timeout, progress)
    producer = Producer(producer_config(servers, timeout))
    partitions = partitions_of(producer, servers, topic, timeout)
    if progress_every is None:
        progress_every = 1.0 if progress.isatty() else 5.0

    state = {"delivered": 0, "failed": 0, "first_error": ""}

    def delivered(err: Any, _msg: Any) -> None:
        if err is None:
            state["delivered"] += 1
        else:
            state["failed"] += 1
            if not state["first_error"]:
                state["first_error"] = err.str()

    total = len(events)
    start = time.monotonic()
    try:
        _send(
            producer,
            topic,
            events,
            rate,
            delivered,
            lambda now: _progress(progress, state["delivered"], total, now - start),
            progress_every,
        )
    finally:
        elapsed = time.monotonic() - start
        _progress(progress, state["delivered"], total, elapsed, final=True)
    return Summary(
        events=total,
        unordered=sum(1 for e in events if e[0]),
        files=files,
        delivered=state["delivered"],
        failed=state["failed"],
        first_error=state["first_error"],
        elapsed=elapsed,
        partitions=partitions,
    )


def _send(
    producer: Producer,
    topic: str,
    events: List[Event],
    rate: float,
    delivered: Callable[[Any, Any], None],
    report: Callable[[float], None],
    every: float,
) -> None:
    """Produce each event at ``rate`` per second (0: as fast as the broker takes them), then wait until every
    one is delivered; ``report`` the progress every ``every`` seconds."""
    start = time.monotonic()
    next_report = start + every
    for index, (_, _, key, value) in enumerate(events):
        if rate > 0:
            delay = start + index / rate - time.monotonic()
            if delay > 0.001:  # behind schedule: no sleep, catch up
                time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.05)
        producer.poll(0)
        now = time.monotonic()
        if now >= next_report:
            report(now)
            next_report = now + every
    while producer.flush(1.0) > 0:
        report(time.monotonic())


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.replay",
        description="Publish the events of <input>/log_data/ to a Kafka topic, in event-time order, at a chosen rate.",
    )
    parser.add_argument("--input", default="data/sample", help="folder holding log_data/ (default: data/sample)")
    parser.add_argument("--servers", default="127.0.0.1:9092", help="Kafka bootstrap servers, host:port[,host:port]")
    parser.add_argument("--topic", default="sparkify-events", help="topic to publish to (default: sparkify-events)")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second; 0: as fast as possible")
    parser.add_argument(
        "--create-topic", type=int, default=0, metavar="N", help="create the topic with N partitions first"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for the broker (default: 10)"
    )
    args = parser.parse_args(argv)
    if args.create_topic < 0:
        parser.error("--create-topic N needs N of 1 or more")
    if args.timeout <= 0:
        parser.error("--timeout must be more than 0")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        summary = replay(args.input, args.servers, args.topic, args.rate, args.create_topic, args.timeout)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: messages not yet acknowledged may be lost", file=sys.stderr)
        return 130
    unordered = f" ({summary.unordered} not JSON or without ts, sent last)" if summary.unordered else ""
    print(
        f"published {summary.delivered} of {summary.events} events{unordered} from {summary.files} files "
        f"to topic {args.topic} ({summary.partitions} partitions) on {args.servers} "
        f"in {summary.elapsed:.1f} s ({summary.rate:,.0f} events/s)"
    )
    if summary.failed:
        print(f"error: {summary.failed} events were not delivered, e.g.: {summary.first_error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
