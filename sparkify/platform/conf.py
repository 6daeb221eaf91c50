"""Spark settings as pure functions of the job's settings: the session's conf, the driver JVM's options,
the jars of each optional part (S3A, Kafka, Iceberg), Iceberg's catalog and the local metastore's."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import tempfile
from typing import Dict, Optional

import pyspark

from sparkify.core.config import JARS_DIR, KAFKA_JARS_DIR, PACKAGE_DIR, Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import INPUT_SUFFIXES
from sparkify.platform import s3
from sparkify.platform.fs import is_local, join_uri, listing_of, local_entries, local_path

# Where `make jars` puts the JVM dependencies from Maven Central (tools/fetch_jars.py); git ignores it.
LOG4J_CONFIG = os.path.join(PACKAGE_DIR, "platform", "log4j2.properties")
# The JVM's errors are also written here (log4j2.properties), so that a JVM that dies can be
# explained by the error it logged (StackOverflowError, OutOfMemoryError, ...). Local runs only.
JVM_ERROR_LOG = os.path.join(tempfile.gettempdir(), f"sparkify-jvm-errors-{os.getpid()}.log")


# Built by `make jars` where a JDK is present (tools/build_localfs.py): Hadoop's local file
# system without a `chmod` fork per file and folder written (about 3x faster local writes).
FAST_LOCAL_FS_JAR = os.path.join(JARS_DIR, "sparkify-localfs.jar")


def local_jars() -> str:
    """The jars `make jars` fetched from Maven Central (S3A connector, AWS SDK, spark-hadoop-cloud)
    and any other jar put in .jars/, but the local file system's (local runs only, see below)."""
    return ",".join(j for j in sorted(glob.glob(os.path.join(JARS_DIR, "*.jar"))) if j != FAST_LOCAL_FS_JAR)


# Spark's Kafka connector and what it needs beyond pyspark's jars/ (`make jars`, tools/fetch_jars.py).


KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7"


def kafka_jars() -> str:
    """The Kafka connector's jars (spark-sql-kafka-0-10, its token provider, kafka-clients, commons-pool2),
    comma-separated. Absent: '' under spark-submit (its --packages or --jars bring the connector, as a cluster
    does), else UserError (`make jars` fetches them)."""
    jars = sorted(glob.glob(os.path.join(KAFKA_JARS_DIR, "*.jar")))
    if not any(os.path.basename(j).startswith("spark-sql-kafka-0-10") for j in jars):
        if under_spark_submit():
            return ""
        raise UserError(
            f"Spark's Kafka connector is not in {KAFKA_JARS_DIR}: run `make jars` (or `make kafka`), which "
            f"fetches it from Maven Central with mvn; with spark-submit, pass it with --packages {KAFKA_PACKAGE}."
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
    """The Iceberg runtime (and, for S3 or Glue, Iceberg's AWS bundle), comma-separated; '' when absent under
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


# The output root of the session's catalog when its warehouse is another ([CATALOG] WAREHOUSE of a REST catalog).
ICEBERG_OUTPUT = "spark.sparkify.iceberg.output"
ICEBERG_SQLITE = "iceberg.sqlite"  # the local Iceberg catalog: OUTPUT/_catalog/iceberg.sqlite (JDBC, SQLite)


def iceberg_catalog_kind(settings: Settings) -> str:
    """Which Iceberg catalog holds an Iceberg output's tables and commits to them: ``glue`` ([CATALOG] TYPE glue:
    Iceberg's GlueCatalog, each commit Glue's conditional update), ``rest`` (TYPE local or auto with [CATALOG] URI:
    an Iceberg REST catalog), ``jdbc`` (TYPE local or auto, a local output: SQLite in OUTPUT/_catalog/), else
    ``hadoop`` (path tables: TYPE none, or an S3 output without a catalog)."""
    local_kind = settings.catalog_type in ("local", "auto")
    if settings.catalog_type == "glue":
        return "glue"
    if local_kind and settings.catalog_uri:
        return "rest"
    if local_kind and is_local(settings.output_root):
        return "jdbc"
    return "hadoop"


def iceberg_namespace(settings: Settings, kind: str) -> str:
    """The namespace the tables are in: Glue's database ([CATALOG] DATABASE) and a REST catalog's; none for the
    output's own catalogs (path tables, SQLite), where they are `sparkify.<table>`."""
    return settings.catalog_database if kind in ("glue", "rest") else ""


def iceberg_catalog_conf(
    name: str, output_root: str, kind: str = "hadoop", settings: Optional[Settings] = None
) -> Dict[str, str]:
    """Spark settings of an Iceberg catalog ``name`` whose tables are the folders of ``output_root`` (each table
    at OUTPUT/<table>). ``kind`` (iceberg_catalog_kind): hadoop (path tables: the folder is the table), jdbc (the
    commit is a compare-and-swap of the metadata file's name in OUTPUT/_catalog/iceberg.sqlite), glue (Glue's
    conditional update of the table's ``metadata_location``), rest (the REST catalog's commit); glue and rest
    need the ``settings``. The namespace of the tables is the catalog's ``default-namespace``. Not cached: a table
    read is its latest commit, whoever made it."""
    prefix = f"spark.sql.catalog.{name}"
    root = iceberg_root(output_root)
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": kind,
        f"{prefix}.warehouse": root,
        f"{prefix}.cache-enabled": "false",
    }
    if kind == "jdbc":
        conf[f"{prefix}.uri"] = f"jdbc:sqlite:{os.path.join(root, CATALOG_DIR, ICEBERG_SQLITE)}"
        conf[f"{prefix}.jdbc.schema-version"] = "V1"  # with views: Spark asks a catalog for them
    if settings is not None and kind in ("glue", "rest"):
        conf[f"{prefix}.default-namespace"] = iceberg_namespace(settings, kind)
        conf.update(_glue_conf(prefix, settings) if kind == "glue" else _rest_conf(prefix, settings))
        conf.update(_file_io_conf(prefix, root, settings))
    return conf


def _glue_conf(prefix: str, settings: Settings) -> Dict[str, str]:
    """Iceberg's GlueCatalog in the [EMR] region, at [CATALOG] GLUE_ENDPOINT when given. Credentials:
    s3.give_sdk_credentials."""
    conf = {f"{prefix}.client.region": settings.emr.region}
    if settings.catalog_glue_endpoint:
        conf[f"{prefix}.glue.endpoint"] = settings.catalog_glue_endpoint
    return conf


def _rest_conf(prefix: str, settings: Settings) -> Dict[str, str]:
    """An Iceberg REST catalog at [CATALOG] URI, asked for [CATALOG] WAREHOUSE (when given), its requests signed
    with AWS SigV4 for [CATALOG] SIGNING_NAME in the [EMR] region (when given)."""
    conf = {f"{prefix}.uri": settings.catalog_uri, f"{prefix}.client.region": settings.emr.region}
    if settings.catalog_warehouse:  # the output root is then told apart by ICEBERG_OUTPUT (sinks.iceberg.catalog_for)
        conf[f"{prefix}.warehouse"] = settings.catalog_warehouse
        conf[ICEBERG_OUTPUT] = iceberg_root(settings.output_root)
    if settings.catalog_signing_name:
        conf[f"{prefix}.rest.sigv4-enabled"] = "true"
        conf[f"{prefix}.rest.signing-name"] = settings.catalog_signing_name
        conf[f"{prefix}.rest.signing-region"] = settings.emr.region
    return conf


def _file_io_conf(prefix: str, root: str, settings: Settings) -> Dict[str, str]:
    """The files of a Glue or REST catalog's tables: through Iceberg's S3FileIO at [S3] ENDPOINT (AWS's set-up for
    Iceberg on S3), a local output's through Hadoop's file system."""
    if is_local(root):
        return {f"{prefix}.io-impl": "org.apache.iceberg.hadoop.HadoopFileIO"}
    conf = {f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO"}
    if settings.s3_endpoint:
        conf[f"{prefix}.s3.endpoint"] = settings.s3_endpoint
    if settings.s3_path_style:
        conf[f"{prefix}.s3.path-style-access"] = "true"
    return conf


def iceberg_conf(settings: Settings) -> Dict[str, str]:
    """Iceberg's SQL extensions (MERGE INTO, WRITE ORDERED BY, the maintenance procedures) and the
    catalog ``sparkify`` over the output root."""
    kind = iceberg_catalog_kind(settings)
    catalog = iceberg_catalog_conf(ICEBERG_CATALOG, settings.output_root, kind, settings)
    return {"spark.sql.extensions": ICEBERG_EXTENSIONS, **catalog}


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
    counts them (``platform.fs.count_input``: *.json(.gz), hidden ones left out; a file a day, one stat each);
    None on S3 or without a log_data/ folder (a Kafka stream)."""
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
    extra_jars: str = "",
    with_iceberg: Optional[bool] = None,
    archive_classes: bool = False,
) -> Dict[str, str]:
    """Session settings. Credentials are not set here (see sparkify.platform.s3). ``with_s3``: put the
    S3A jars on the class path (None: only when the input or output root is on S3). ``local``:
    apply the settings meant for a local run (None: ``runs_locally(settings)``); under spark-submit
    or with a cluster's master, the cluster's own settings (live UI, driver memory, the local file
    system of every executor) stay as they are. ``extra_jars``: more jars for the class path (a
    stream source's: Spark's Kafka connector). ``with_iceberg``: Apache Iceberg's jars, SQL extensions and the
    output's catalog (None: when [ETL] TABLE_FORMAT is iceberg). ``archive_classes``: a local JVM
    writes the class archive at exit when there is none yet (``class_sharing_options``)."""
    if local is None:
        local = runs_locally(settings)
    log_bytes = local_log_bytes(settings) if local else None  # for the JIT and cache rules
    conf = _common_conf(settings)
    if not under_spark_submit():
        # Only takes effect where this process starts the driver's JVM (python etl.py, any master).
        conf["spark.driver.extraJavaOptions"] = driver_java_options(settings, local, archive_classes, log_bytes)
    if settings.master:
        conf["spark.master"] = settings.master
    if local:
        conf.update(_local_conf(settings, log_bytes))
    if with_s3 is None:
        with_s3 = any(s3.is_s3(uri) for uri in (settings.input_root, settings.output_root))
    if with_iceberg is None:
        with_iceberg = settings.table_format == "iceberg"
    if with_iceberg:
        conf.update(iceberg_conf(settings))
    conf.update(_jars_conf(settings, with_s3, with_iceberg, extra_jars))
    if settings.catalog_type == "local" and not with_iceberg:  # the metastore beside the output (catalogs/local.py)
        conf.update(catalog_conf(settings.output_root))
    return conf


def _common_conf(settings: Settings) -> Dict[str, str]:
    """What every session of the job sets, local or on a cluster."""
    return {
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
        # A stream's state (the keys of the events it has seen: sparkify.transform.deduplicated) in RocksDB
        # rather than in the JVM's heap, each micro-batch committing only its changes (a changelog) to the
        # checkpoint instead of a snapshot of the whole store
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_STATE_STORE,
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    }


ROCKSDB_STATE_STORE = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def _local_conf(settings: Settings, log_bytes: Optional[int]) -> Dict[str, str]:
    """A local run is one short-lived JVM: no web UI to serve, and the driver's memory is all the executors
    have."""
    conf = {"spark.ui.enabled": "false", "spark.driver.memory": settings.driver_memory}
    if uncompressed_cache(settings, log_bytes):
        conf["spark.sql.inMemoryColumnarStorage.compressed"] = "false"
    if os.path.exists(FAST_LOCAL_FS_JAR):
        # On the JVM's own class path (spark.jars comes too late for the file:// scheme), so
        # in that one JVM only: executors elsewhere do not have the class.
        conf["spark.driver.extraClassPath"] = FAST_LOCAL_FS_JAR
        conf["spark.hadoop.fs.file.impl"] = "sparkify.FastLocalFileSystem"
    return conf


def _jars_conf(settings: Settings, with_s3: bool, with_iceberg: bool, extra_jars: str) -> Dict[str, str]:
    """The class path's extra jars: S3A's (about 280 MB, copied to every executor: only when a root is on
    S3), Iceberg's, a source's; [SPARK] JARS_PACKAGES."""
    conf = {}
    aws_bundle = with_s3 or iceberg_catalog_kind(settings) in ("glue", "rest")  # Glue's client, SigV4: AWS bundle
    parts = (local_jars() if with_s3 else "", extra_jars, iceberg_jars(aws_bundle) if with_iceberg else "")
    jars = ",".join(j for j in parts if j)
    if jars:
        conf["spark.jars"] = jars
    if settings.jars_packages:
        conf["spark.jars.packages"] = settings.jars_packages
    return conf


# Class data sharing (JDK 13+, [SPARK] CLASS_SHARING): the first local run that succeeds archives the
# classes its JVM loaded (Spark's, Hadoop's, Derby's: 130-190 MB) into .jars/cds/; later runs map that archive
# instead of loading and verifying each class again. The bundled sample, alternating off/on: 65 / 58 / 56 vs
# 49 / 51 / 60 CPU-seconds (bench/README.md). The JVM checks the archive against its own build, class path and flags and
# runs without it on any mismatch; the file's name holds what would change the class path.
CDS_DIR = os.path.join(JARS_DIR, "cds")
ARCHIVE_AT_EXIT = re.compile(r"-XX:ArchiveClassesAtExit=(\S+)")


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
        options += f" -Dderby.system.home={derby_home(settings.output_root)}"
    if local and quick_jit(settings, log_bytes):
        options += " -XX:TieredStopAtLevel=1"
    else:  # C2 on: the runs whose cleaning gained (a small input's short queries would pay the compile)
        options += f" {COMPILE_HUGE_METHODS}"
    if local:
        options += class_sharing_options(settings, archive_classes)
    return options


# --- the local catalog (a Hive metastore in Derby beside a local output) ---

CATALOG_DIR = "_catalog"


def catalog_conf(output_root: str) -> Dict[str, str]:
    """Spark settings of a session that opens the local catalog of ``output_root`` (static:
    they must be set before the session starts)."""
    home = os.path.abspath(local_path(join_uri(output_root, CATALOG_DIR)))
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": os.path.join(home, "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        # Hive's direct-SQL layer speeds up partition queries; this metastore holds no partitions (they are
        # found in the folders). Not starting it skips the queries it runs to warm every model class up:
        # opening the metastore, 4 alternating pairs, 1.62-1.88 -> 1.22-1.51 CPU-s (bench/README.md).
        "spark.hadoop.hive.metastore.try.direct.sql": "false",
    }


def derby_home(output_root: str) -> str:
    """Where Derby keeps its log (derby.log) for the local catalog of ``output_root``."""
    return os.path.abspath(local_path(join_uri(output_root, CATALOG_DIR)))
