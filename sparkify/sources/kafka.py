"""A Kafka topic as the stream's source: each message's value one event's JSON text, read with Spark's
Kafka connector (its offsets live in the stream's checkpoint); the broker checked before Spark starts."""

from __future__ import annotations

import logging
from typing import Any, Dict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import ORIGIN, SOURCE_FILE
from sparkify.platform.conf import kafka_jars


def stream_frame(spark: SparkSession, settings: Settings, files_per_batch: int) -> DataFrame:
    """The messages of the [KAFKA] topic: each value one event's JSON text, and ORIGIN (topic,
    partition, offset, Kafka timestamp) for the quarantine. The offsets live in the checkpoint."""
    kafka = settings.kafka
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribe", kafka.topic)
        .option("startingOffsets", kafka.starting_offsets)
        .option("maxOffsetsPerTrigger", kafka.max_offsets_per_trigger)
    )
    for key, value in kafka.options.items():  # security for MSK and the like: passed as they are
        reader = reader.option(key, value)
    messages = reader.load()
    return messages.select(
        F.format_string("kafka://%s/%d/%d", "topic", "partition", "offset").alias(SOURCE_FILE),
        F.col("value").cast("string").alias("value"),
        F.struct("topic", "partition", "offset", "timestamp").alias(ORIGIN),
    )


def checkpoint(settings: Settings) -> str:
    """The stream's checkpoint under the output root: one per topic."""
    return f"_checkpoints/kafka/{settings.kafka.topic}"


def precheck(settings: Settings, timeout: float = 10.0) -> None:
    """Fail at once, naming the servers and topic, when the broker does not answer or has no
    such topic (Spark's connector would wait for the topic without a word). Skipped when the
    [KAFKA] section sets security options (kafka.*): those are the Java client's."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 (the Kafka client is not on EMR's Python)

    kafka = settings.kafka
    if not kafka.bootstrap_servers:
        raise UserError("No Kafka servers: set [KAFKA] BOOTSTRAP_SERVERS in dl.cfg, or pass --servers.")
    if kafka.options:
        return
    partitions_of(
        AdminClient(client_config(kafka.bootstrap_servers, timeout)), kafka.bootstrap_servers, kafka.topic, timeout
    )


def _quiet_logger() -> logging.Logger:
    """librdkafka's own log lines (connection refused, every retry) would bury the one-line error."""
    logger = logging.getLogger("sparkify.sources.kafka.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def client_config(servers: str, timeout: float) -> Dict[str, Any]:
    return {
        "bootstrap.servers": servers,
        "logger": _quiet_logger(),
        "socket.connection.setup.timeout.ms": int(max(1.0, timeout) * 1000),
    }


def error_text(exc: Exception) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if hasattr(error, "str") else str(exc)


def partitions_of(producer: Any, servers: str, topic: str, timeout: float) -> int:
    """The topic's partition count; UserError when the broker does not answer or has no such topic."""
    from confluent_kafka import KafkaError, KafkaException  # noqa: PLC0415 (not on EMR's Python)

    try:
        metadata = producer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise UserError(
            f"Cannot reach the Kafka broker at {servers} (topic {topic}) within {timeout:g} s ({error_text(exc)}). "
            "Check --servers (host:port of the bootstrap servers) and that the broker runs."
        ) from None
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        code = found.error.code() if found is not None and found.error is not None else None
        if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, None):
            raise UserError(
                f"Topic {topic} does not exist on the Kafka broker at {servers}: create it "
                "(--create-topic N makes it with N partitions) or check --topic."
            )
        raise UserError(f"Topic {topic} on the Kafka broker at {servers} is not usable: {found.error.str()}.")
    return len(found.partitions)


def jars(settings: Settings) -> str:
    """Spark's Kafka connector and what it needs, for the session's class path."""
    return kafka_jars()
