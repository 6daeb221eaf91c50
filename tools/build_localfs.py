"""Compile tools/java/sparkify/FastLocalFileSystem.java into .jars/sparkify-localfs.jar.

Needs `javac` (a JDK); without one it says so and exits 0: the job then uses Hadoop's own
local file system, which is correct but forks a `chmod` per file and folder it writes.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tools", "java", "sparkify", "FastLocalFileSystem.java")
TARGET = os.path.join(ROOT, ".jars", "sparkify-localfs.jar")


def main() -> int:
    if os.path.exists(TARGET) and os.path.getmtime(TARGET) >= os.path.getmtime(SOURCE):
        return 0
    javac = shutil.which("javac")
    if javac is None:
        print("no javac: skipping the fast local file system (output is still correct, only slower)")
        return 0
    import pyspark

    hadoop = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar"))
    with tempfile.TemporaryDirectory() as classes:
        cmd = [javac, "--release", "8", "-nowarn", "-cp", os.pathsep.join(hadoop), "-d", classes, SOURCE]
        subprocess.run(cmd, check=True)
        os.makedirs(os.path.dirname(TARGET), exist_ok=True)
        with zipfile.ZipFile(TARGET, "w") as jar:
            for folder, _, names in os.walk(classes):
                for name in names:
                    path = os.path.join(folder, name)
                    jar.write(path, os.path.relpath(path, classes))
    print(f"built {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
