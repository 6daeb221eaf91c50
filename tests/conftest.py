"""One Spark session per test run: local[2], 2 shuffle partitions, UTC session time zone.

The test process itself runs in a non-UTC zone on purpose, to prove the job's times do not
depend on the machine's zone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TZ"] = "America/Los_Angeles"
time.tzset()
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYSPARK_PYTHON"] = sys.executable
# Every JVM the tests start (this run's Spark session, etl.py's, spark-submit's, the cluster's daemons, the Kafka
# broker's) compiles with C1 only: the short runs on small data here spent about half their CPU time in the C2
# compiler's threads (an etl.py run of the sample: 54 s of CPU, 29 s with C1 only). It changes no result; each
# JVM notes it on stderr ("Picked up JAVA_TOOL_OPTIONS"). Set JAVA_TOOL_OPTIONS yourself to run otherwise.
os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")

SAMPLE = os.path.join(ROOT, "data", "sample")
SHARED_SAMPLE = os.path.join(os.path.dirname(ROOT), "shared", "data", "udacity-sample")


# The service a fixture starts or mocks (or the data it makes), as the marker of every test that uses the fixture,
# directly or through another fixture: `pytest -m "not s3"` leaves out the tests that need the S3 server, `make
# test-fast` all of them (pyproject.toml registers the markers). A test that needs one without such a fixture is marked
# where it is written (tests/test_iceberg.py's Glue test: @pytest.mark.moto); so are the slow ones (@pytest.mark.slow).
MARKER_OF_FIXTURE = {
    "endpoint": "s3",
    "kafka_broker": "kafka",
    "cluster": "cluster",  # tests/test_cluster.py
    "aws": "moto",  # tests/test_emr.py
    "glue": "moto",  # tests/test_catalog.py
    "glue_endpoint": "moto",  # tests/test_iceberg_glue.py: moto's server
    "public": "public",
    "public_run": "public",
}


def pytest_collection_modifyitems(items):
    for item in items:
        for name in sorted({MARKER_OF_FIXTURE[f] for f in item.fixturenames if f in MARKER_OF_FIXTURE}):
            item.add_marker(name)


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    from sparkify.core.config import Settings

    return Settings(
        input_root=SAMPLE,
        output_root=str(tmp_path_factory.mktemp("output")),
        master="local[2]",
        shuffle_partitions=2,
    )


@pytest.fixture(scope="session")
def spark(settings):
    from sparkify.platform.session import build_session

    session = build_session(settings, with_s3=True)  # tests/test_s3.py reads s3a:// with it
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_run(spark, settings):
    """The job on the bundled sample, once per test run, with the default checks."""
    from sparkify.quality.checks import DEFAULT_CHECKS
    from sparkify.runs import engine

    result = engine.run(spark, settings, checks=DEFAULT_CHECKS)
    return result, settings.output_root


@pytest.fixture(scope="session")
def iceberg_sample(tmp_path_factory):
    """The sample as Iceberg path tables ([CATALOG] TYPE none), with the checks (etl.py, its own JVM): its output
    folder and run report. Read by tests/test_iceberg.py; then registered into the local catalog, in place, by
    tests/test_iceberg_catalog.py, which runs after it (an Iceberg table does not move: its metadata holds its
    absolute location). Here so that both modules share one run."""
    from tests.test_iceberg import config, etl, report_of

    folder = tmp_path_factory.mktemp("iceberg-sample")
    out = str(folder / "out")
    done = etl(config(folder / "dl.cfg", SAMPLE, out))
    return out, report_of(done)


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory):
    """One real S3 server (SeaweedFS, tests/s3server.py) on 127.0.0.1 for the whole test run, stopped by its
    process id at the end; each module keeps to a bucket of its own."""
    from tests import s3server

    yield from s3server.run_seaweedfs(str(tmp_path_factory.mktemp("seaweedfs")))


def _make_public(root):
    """The benchmark's `public` set (the public data's shape: 14,896 song files, 8,056 events), by the generator."""
    from bench.datasets import SETS

    subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "make_sample.py"), "--out", root, *SETS["public"]], check=True
    )
    return root


def _start_public_run(public, folder):
    """The default command (checks on, the local catalog) on it, in the background: (process, output root, logs)."""
    out = os.path.join(folder, "out")
    logs = tuple(open(os.path.join(folder, name), "w+", encoding="utf-8") for name in ("stdout", "stderr"))
    job = start_etl("--input", public, "--output", out, stdout=logs[0], stderr=logs[1], text=True)
    return job, out, logs


def _stop(job):
    import signal

    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)


@pytest.fixture(scope="session", autouse=True)
def _public_run_started(request, tmp_path_factory):
    """When a selected test needs ``public_run``, the set is made and its run started before the first test: the
    run's one to two minutes overlap the tests before the first that needs it (the suite, one test at a time, leaves
    about a third of the two cores idle). A run still going at the end is stopped by its process id."""
    if not any("public_run" in item.fixturenames for item in request.session.items):
        yield None
        return
    try:
        public = _make_public(str(tmp_path_factory.mktemp("public")))
        job, out, logs = _start_public_run(public, str(tmp_path_factory.mktemp("public-run")))
    except Exception as exc:  # an error of the tests that need it (``public_run``), not of every test
        yield exc
        return
    yield public, job, out, logs
    _stop(job)
    for log in logs:
        log.close()


def _started(started):
    """What ``_public_run_started`` gave; its error raised in the test that needs it."""
    if isinstance(started, Exception):
        raise started
    return started


@pytest.fixture(scope="session")
def public(_public_run_started, tmp_path_factory):
    """The benchmark's `public` set, by the generator (``_make_public``)."""
    started = _started(_public_run_started)
    return started[0] if started else _make_public(str(tmp_path_factory.mktemp("public")))


@pytest.fixture(scope="session")
def public_run(_public_run_started):
    """The default command (checks on, the local catalog) on it, once per test run: (process, output root)."""
    _, job, out, logs = _started(_public_run_started)
    try:
        job.wait(timeout=1200)
    except subprocess.TimeoutExpired:
        _stop(job)
    for log in logs:
        log.seek(0)
    return subprocess.CompletedProcess(job.args, job.returncode, logs[0].read(), logs[1].read()), out


def read_table(spark, root, name):
    """Read an output table back with its declared schema, Parquet or Iceberg (its metadata/ folder; the
    session then needs Iceberg's jars); timestamps as epoch milliseconds."""
    from pyspark.sql import functions as F

    from sparkify.core.schemas import TABLES_BY_NAME
    from sparkify.sinks import read_table as read_output_table

    table = TABLES_BY_NAME[name]
    df = read_output_table(spark, root.rstrip("/"), table)
    cols = [F.unix_millis(name).alias(name) if kind == "timestamp" else F.col(name) for name, kind in table.columns]
    return [tuple(r) for r in df.select(cols).collect()]


# ---------------------------------------------------------------- etl.py and python -m sparkify.* in a subprocess

ETL = os.path.join(ROOT, "etl.py")


def subprocess_env(env: Optional[Mapping[str, str]] = None, **extra: str) -> Dict[str, str]:
    """The environment of every process the tests start: this process's (TZ, PYSPARK_PYTHON and JAVA_TOOL_OPTIONS as
    set above), Spark bound to 127.0.0.1, then ``env`` and ``extra`` over it."""
    return {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        **(env or {}),
        **extra,
    }


def etl_command(
    *args: str, module: Optional[str] = None, code: Optional[str] = None, master: Optional[str] = None
) -> List[str]:
    """``python etl.py ARGS``; with ``module``, ``python -m MODULE ARGS``; with ``code``, ``python -c CODE ARGS``
    (sys.argv[1:] == ARGS); ``--master MASTER`` after them when ``master`` is given."""
    assert module is None or code is None, "a module or code, not both"
    if module is not None:
        command = [sys.executable, "-m", module, *args]
    elif code is not None:
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, ETL, *args]
    return command + (["--master", master] if master else [])


def run_etl(
    *args: str,
    module: Optional[str] = None,
    code: Optional[str] = None,
    master: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: Optional[float] = 900,
    cwd: str = ROOT,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """etl.py (or ``python -m <module>``, ``python -c <code>``: ``etl_command``) run to its end in ROOT, in the
    tests' environment (``subprocess_env``) with ``env`` over it; stdout and stderr captured as text."""
    return subprocess.run(
        etl_command(*args, module=module, code=code, master=master),
        cwd=cwd,
        env=subprocess_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def start_etl(
    *args: str,
    module: Optional[str] = None,
    code: Optional[str] = None,
    master: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
    cwd: str = ROOT,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    start_new_session: bool = True,
    **popen: Any,
) -> subprocess.Popen:
    """etl.py (or ``python -m <module>``, ``python -c <code>``: ``etl_command``) in the background, in ROOT and the
    tests' environment; by default in its own process group (a test kills the driver and its JVM together with
    ``os.killpg(job.pid, signal.SIGKILL)``) with its output discarded. ``popen`` goes to subprocess.Popen (``text``)."""
    return subprocess.Popen(
        etl_command(*args, module=module, code=code, master=master),
        cwd=cwd,
        env=subprocess_env(env),
        stdout=stdout,
        stderr=stderr,
        start_new_session=start_new_session,
        **popen,
    )
