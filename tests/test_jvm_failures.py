"""A JVM that dies or runs out of memory is named as such: the Java error, the stage, what to
try, exit code 4, and no secret. "Cannot reach S3" is said only about S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from sparkify.core.errors import EXIT_JVM_DIED, explain, jvm_failure, note_stage
from tests.conftest import SAMPLE, start_etl

SECRET = "wJalrXUtnFEMI-jvm-test-secret"


def etl(tmp_path, *args, env=None):
    """etl.py on the bundled sample in its own process group; stderr to a file the test reads."""
    err = open(tmp_path / "stderr.txt", "w+", encoding="utf-8")
    process = start_etl(
        "--input", SAMPLE, "--output", str(tmp_path / "out"), *args,
        env={"AWS_ACCESS_KEY_ID": "AKIATEST", "AWS_SECRET_ACCESS_KEY": SECRET, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )  # fmt: skip
    return process, err


def report(tmp_path):
    """(status, message, exit code) of the run report the job wrote."""
    (name,) = [n for n in os.listdir(tmp_path / "out" / "_reports") if n.endswith(".json")]
    body = json.loads((tmp_path / "out" / "_reports" / name).read_text())
    return body["status"], body["message"], body["exit_code"]


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def finish(process, err, timeout=300):
    try:
        out, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    err.seek(0)
    return process.returncode, out, err.read()


@pytest.mark.slow
def test_a_killed_jvm_is_named_with_its_signal_and_stage(tmp_path):
    config = tmp_path / "no-catalog.cfg"
    config.write_text("[CATALOG]\nTYPE = none\n")  # the defaults; no metastore to start before the kill
    process, err = etl(tmp_path, "--config", str(config), "--master", "local[1]", "--skip-checks")
    deadline = time.monotonic() + 240
    while "transform done" not in (tmp_path / "stderr.txt").read_text() and time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
        time.sleep(0.2)
    jvms = children(process.pid)
    assert jvms, "no JVM under etl.py"
    for pid in jvms:
        os.kill(pid, signal.SIGKILL)
    code, out, stderr = finish(process, err)
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == EXIT_JVM_DIED, stderr[-3000:]
    assert len(error) == 1 and error[0].startswith("error: The Spark JVM was killed (SIGKILL) during '"), error
    assert "out-of-memory killer" in error[0] and "S3" not in error[0]
    assert SECRET not in stderr + out
    assert report(tmp_path) == ("failed", error[0][len("error: ") :], code)  # the run report says the same


@pytest.mark.slow
def test_an_out_of_memory_run_names_the_java_error_and_the_setting(tmp_path):
    config = tmp_path / "tiny-heap.cfg"
    config.write_text("[SPARK]\nDRIVER_MEMORY = 40m\n")
    # Spark refuses a heap under 450 MiB unless told its reserve is 0: then the run itself runs out.
    env = {"PYSPARK_SUBMIT_ARGS": "--conf spark.testing.reservedMemory=0 pyspark-shell"}
    process, err = etl(tmp_path, "--config", str(config), "--master", "local[1]", env=env)
    # Before -XX:+ExitOnOutOfMemoryError, a heap that ran out in Spark's own threads hung the run (CI: 300 s).
    code, out, stderr = finish(process, err, timeout=150)
    error = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == EXIT_JVM_DIED, stderr[-3000:]
    assert len(error) == 1 and " during '" in error[0] and "(exit code 3): java.lang.OutOfMemoryError" in error[0]
    assert "Raise [SPARK] DRIVER_MEMORY" in error[0] and "S3" not in error[0]
    assert SECRET not in stderr + out
    assert report(tmp_path) == ("failed", error[0][len("error: ") :], code)  # the run report says the same


def test_a_stack_overflow_that_killed_the_jvm_is_explained():
    exc = ConnectionRefusedError(111, "Connection refused")
    note_stage(exc, "checks")
    log = "12:00:01 ERROR SparkUncaughtExceptionHandler: Uncaught exception in thread Thread[Executor task]\n"
    log += "java.lang.StackOverflowError\n\tat org.apache.spark.sql.execution.datasources.FileScanRDD$$anon$1.hasNext\n"
    message = jvm_failure(exc, 50, log)
    assert message.startswith("The Spark JVM died during 'checks' (exit code 50): java.lang.StackOverflowError.")
    assert explain(exc) is None  # a lost connection to the JVM is not "Cannot reach S3"


def test_the_exit_status_of_a_jvm_out_of_heap_is_named():
    exc = ConnectionRefusedError(111, "Connection refused")
    note_stage(exc, "write songs")
    message = jvm_failure(exc, 3, "")
    assert message.startswith("The Spark JVM died during 'write songs' (exit code 3): java.lang.OutOfMemoryError")
    assert "Raise [SPARK] DRIVER_MEMORY" in message
    assert "no Java error was logged" in jvm_failure(exc, 1, "")


def test_cannot_reach_s3_only_for_an_s3_uri():
    s3 = OSError("org.apache.hadoop.fs.s3a.AWSClientIOException: getFileStatus on s3a://lake/raw: Connection refused")
    assert explain(s3).startswith("Cannot reach S3 for s3a://lake/raw.")
    local = OSError("java.net.ConnectException: Connection refused (Connection refused) at py4j")
    assert explain(local) is None
    assert jvm_failure(local, None) is None  # no exit, no Java error: not a JVM failure
