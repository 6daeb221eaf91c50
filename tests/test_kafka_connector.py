"""Spark's Kafka connector from Maven Central (.jars/kafka/, `make jars`) against a real broker:
a session built with ``extra_jars=kafka_jars()`` reads a topic with ``spark.read.format("kafka")``.

The read runs in its own Python process: the test run's shared session (tests/conftest.py) was
started without the connector, and one process has one SparkContext."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import ROOT, run_etl

# The session's `kafka_broker` fixture. Not imported here as a module: pytest must import it first.
pytest_plugins = ("tests.kafka_broker",)

READ = """
import json, sys
from sparkify.core.config import Settings
from sparkify.platform.conf import kafka_jars
from sparkify.platform.session import build_session

servers, topic, out = sys.argv[1:4]
spark = build_session(
    Settings(input_root=out, output_root=out, master="local[1]", shuffle_partitions=1, driver_memory="1g"),
    with_s3=False,
    extra_jars=kafka_jars(),
)
rows = (
    spark.read.format("kafka")
    .option("kafka.bootstrap.servers", servers)
    .option("subscribe", topic)
    .option("startingOffsets", "earliest")
    .option("endingOffsets", "latest")
    .load()
    .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "topic", "partition", "offset")
    .orderBy("offset")
    .collect()
)
print(json.dumps([row.asDict() for row in rows]))
spark.stop()
"""


def test_kafka_jars_join_the_class_path_only_when_asked():
    from sparkify.core.config import Settings
    from sparkify.platform.conf import kafka_jars, spark_conf

    settings = Settings(input_root="/data/in", output_root="/data/out")
    assert "spark-sql-kafka" not in spark_conf(settings).get("spark.jars", "")
    jars = spark_conf(settings, extra_jars=kafka_jars())["spark.jars"].split(",")
    names = sorted(os.path.basename(j) for j in jars)
    assert names == [
        "commons-pool2-2.11.1.jar",
        "kafka-clients-3.4.1.jar",
        "spark-sql-kafka-0-10_2.12-3.5.7.jar",
        "spark-token-provider-kafka-0-10_2.12-3.5.7.jar",
    ]
    assert jars == kafka_jars().split(",")
    both = spark_conf(settings, with_s3=True, extra_jars=kafka_jars())["spark.jars"]
    assert "hadoop-aws-3.3.4.jar" in both and "spark-sql-kafka-0-10_2.12-3.5.7.jar" in both


@pytest.mark.slow
def test_spark_reads_a_topic_with_the_connector(kafka_broker, tmp_path):
    kafka_broker.create_topic("connector-check", partitions=1)
    kafka_broker.produce("connector-check", [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'], key=b"u1")
    done = run_etl(
        kafka_broker.servers, "connector-check", str(tmp_path), code=READ, env={"PYTHONPATH": ROOT}, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["value"] for r in rows] == ['{"n": 1}', '{"n": 2}', '{"n": 3}']
    assert {r["key"] for r in rows} == {"u1"}
    assert [(r["topic"], r["partition"], r["offset"]) for r in rows] == [("connector-check", 0, i) for i in range(3)]


def test_without_the_connector_a_local_run_is_told_to_fetch_it_and_spark_submit_brings_its_own(monkeypatch, tmp_path):
    """Absent jars: a local run stops with what to do; under spark-submit (--packages) nothing is added."""
    from sparkify.core.errors import UserError
    from sparkify.platform import conf

    monkeypatch.setattr(conf, "KAFKA_JARS_DIR", str(tmp_path))
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    with pytest.raises(UserError, match=r"Kafka connector is not in .*: run `make jars`.* --packages org\.apache"):
        conf.kafka_jars()
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")
    assert conf.kafka_jars() == ""
