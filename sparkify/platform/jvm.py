"""The one module that reaches into pyspark's private py4j handles (``_jvm``, ``_jsc``, ``_jsparkSession``,
``_gateway``): Hadoop's configuration and file systems, the JVM process this Python started, and Java
objects that no public PySpark API returns. Every other module goes through these functions."""

from __future__ import annotations

from subprocess import Popen
from typing import Any, Optional

from pyspark import SparkContext
from pyspark.sql import SparkSession


def jvm(spark: SparkSession) -> Any:
    """The py4j view of the driver JVM's classes (``jvm(spark).java.io...``)."""
    return spark.sparkContext._jvm


def hadoop_conf(spark: SparkSession) -> Any:
    """The session's Hadoop configuration (org.apache.hadoop.conf.Configuration), shared by its file systems."""
    return spark.sparkContext._jsc.hadoopConfiguration()


def hadoop_path(spark: SparkSession, uri: str) -> Any:
    """(org.apache.hadoop.fs.Path, its FileSystem) for ``uri``."""
    path = jvm(spark).org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(hadoop_conf(spark))


def java_session(spark: SparkSession) -> Any:
    """The session's Java SparkSession, for Java APIs that take one (Iceberg's Spark3Util)."""
    return spark._jsparkSession


def jvm_process() -> Optional[Popen]:
    """The Spark JVM this Python process started (None under spark-submit, or before any session)."""
    return getattr(SparkContext._gateway, "proc", None)
