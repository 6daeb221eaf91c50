"""Put the S3A connector jars in .jars/ without Maven.

The sdist of sagemaker-pyspark 1.4.5 (on PyPI) carries hadoop-aws 3.3.1 and
aws-java-sdk-bundle 1.11.901, which work with pyspark 3.5. This downloads that sdist with pip
(download only: installing it would pin an old pyspark), extracts just those two jars and
deletes the rest. The job puts .jars/*.jar on Spark's classpath when present.

    python tools/fetch_s3a_jars.py          # idempotent: does nothing when the jars are there
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, ".jars")
PACKAGE = "sagemaker-pyspark==1.4.5"
JARS = ("hadoop-aws-3.3.1.jar", "aws-java-sdk-bundle-1.11.901.jar")


def main() -> int:
    if all(os.path.exists(os.path.join(TARGET, jar)) for jar in JARS):
        return 0
    os.makedirs(TARGET, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, PACKAGE]
        subprocess.run(cmd, check=True)
        archives = glob.glob(os.path.join(tmp, "*.tar.gz"))
        if not archives:
            print(f"pip download of {PACKAGE} gave no sdist", file=sys.stderr)
            return 1
        with tarfile.open(archives[0]) as sdist:
            for member in sdist.getmembers():
                name = os.path.basename(member.name)
                if name in JARS and member.isfile():
                    source = sdist.extractfile(member)
                    assert source is not None
                    with open(os.path.join(TARGET, name), "wb") as out:
                        shutil.copyfileobj(source, out)
    missing = [jar for jar in JARS if not os.path.exists(os.path.join(TARGET, jar))]
    if missing:
        print(f"{PACKAGE} did not hold {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"S3A jars in {TARGET}: {', '.join(JARS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
