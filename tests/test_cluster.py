"""The job on a real Spark cluster: a standalone master and two 1-core workers from pyspark's own
distribution on 127.0.0.1, and `spark-submit --master spark://...` of etl.py. The executors run in
the workers' JVMs, not the driver's: what works only in the driver's JVM fails here.

Each daemon runs in its own process group and is stopped by its process id (SIGTERM, then
SIGKILL) whatever happens; the workers' executors are in their group too.
"""

from __future__ import annotations

import glob
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from typing import Dict, List

import pytest

from sparkify.core.schemas import TABLES
from tests.conftest import ROOT, SAMPLE, read_table, subprocess_env
from tests.s3server import free_port
from tools.reference import Reference

pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow  # the cluster's start and spark-submit of etl.py: about a minute
SPARK_HOME = os.path.dirname(os.path.abspath(pyspark.__file__))
WORKERS = 2


def daemon_env(tmp: str) -> Dict[str, str]:
    env = subprocess_env(SPARK_HOME=SPARK_HOME, SPARK_LOCAL_DIRS=os.path.join(tmp, "local"))
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def start(args: List[str], log: str, env: Dict[str, str]) -> subprocess.Popen:
    """bin/spark-class execs the JVM: the process id is the daemon's, and leads its own group."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [os.path.join(SPARK_HOME, "bin", "spark-class"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the group this test made for the daemon (its id is the daemon's pid), then
    SIGKILL to whatever is left in it (executors a worker left behind)."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass


def master_state(webui: str) -> dict:
    with urllib.request.urlopen(f"{webui}/json/", timeout=5) as response:
        return json.loads(response.read())


def wait_for(condition, what: str, processes: List[subprocess.Popen], logs: List[str], timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs):
            if process.poll() is not None:
                raise RuntimeError(f"{what}: {log} exited ({process.returncode}): {open(log).read()[-3000:]}")
        try:
            value = condition()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s; " + " | ".join(open(log).read()[-1500:] for log in logs))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """spark://127.0.0.1:<port> with two ALIVE 1-core, 1 GiB workers; yields (url, web UI, worker dirs)."""
    tmp = str(tmp_path_factory.mktemp("cluster"))
    env = daemon_env(tmp)
    port, webui_port = free_port(), free_port()
    url, webui = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{webui_port}"
    processes: List[subprocess.Popen] = []
    logs: List[str] = []
    try:
        logs.append(os.path.join(tmp, "master.log"))
        master = ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
        processes.append(start([*master, "--port", str(port), "--webui-port", str(webui_port)], logs[-1], env))
        wait_for(lambda: master_state(webui).get("status") == "ALIVE", "the master", processes, logs)
        work_dirs = []
        for n in range(WORKERS):
            work_dir = os.path.join(tmp, f"worker-{n}")
            os.makedirs(work_dir)
            work_dirs.append(work_dir)
            logs.append(os.path.join(tmp, f"worker-{n}.log"))
            worker = ["org.apache.spark.deploy.worker.Worker", "--cores", "1", "--memory", "1g", "--host", "127.0.0.1"]
            worker += ["--webui-port", str(free_port()), "--work-dir", work_dir, url]
            processes.append(start(worker, logs[-1], dict(env, SPARK_WORKER_DIR=work_dir)))

        def alive() -> bool:
            return sum(w["state"] == "ALIVE" for w in master_state(webui)["workers"]) == WORKERS

        wait_for(alive, "two workers", processes, logs)
        yield url, webui, work_dirs
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.fixture(scope="module")
def cluster_run(cluster, tmp_path_factory):
    url, webui, work_dirs = cluster
    output = str(tmp_path_factory.mktemp("cluster-output"))
    env = subprocess_env(SPARK_HOME=SPARK_HOME)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    config = tmp_path_factory.mktemp("cluster-config") / "dl.cfg"
    config.write_text("[CATALOG]\nTYPE = none\n")  # the defaults; the executors and the checks are the point here
    begun = time.monotonic()
    out = subprocess.run(
        [os.path.join(SPARK_HOME, "bin", "spark-submit"), "--master", url, "etl.py", "--config", str(config)]
        + ["--input", os.path.relpath(SAMPLE, ROOT), "--output", output],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.monotonic() - begun
    print(f"\nspark-submit on {url} (2 workers x 1 core): {seconds:.1f} s, exit {out.returncode}")
    return out, output, master_state(webui), work_dirs


def test_spark_submit_on_the_cluster_passes_every_check(cluster_run):
    out, output, _, _ = cluster_run
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    counts = re.search(r"Checks: (\d+) of (\d+) passed", out.stdout)
    assert counts and int(counts[1]) == int(counts[2]) > 0, out.stdout[-3000:]
    (report,) = glob.glob(os.path.join(output, "_reports", "*.json"))
    with open(report, encoding="utf-8") as handle:
        checks = json.load(handle)["checks"]
    assert len(checks) == int(counts[2])
    assert [c["name"] for c in checks if c["status"] != "passed"] == []


def test_the_executors_ran_in_both_workers_jvms(cluster_run):
    out, _, master, work_dirs = cluster_run
    assert out.returncode == 0, out.stderr[-3000:]
    (app,) = [a for a in master["completedapps"] if a["name"] == "sparkify-etl"]
    assert app["state"] == "FINISHED"
    for work_dir in work_dirs:  # <work dir>/<app id>/<executor id>/stderr: one executor per worker
        executors = glob.glob(os.path.join(work_dir, app["id"], "*", "stderr"))
        assert len(executors) == 1, work_dir
        log = open(executors[0], encoding="utf-8", errors="replace").read()
        assert "ClassNotFoundException" not in log
        assert "Finished task" in log or "Running task" in log, log[-2000:]


@pytest.fixture(scope="module")
def reference_tables():
    return Reference(SAMPLE).tables()


@pytest.mark.parametrize("name", [t.name for t in TABLES])
def test_the_cluster_builds_the_tables_of_the_independent_computation(spark, cluster_run, reference_tables, name):
    out, output, _, _ = cluster_run
    assert out.returncode == 0, out.stderr[-3000:]
    got = sorted(read_table(spark, output, name), key=repr)
    expected = sorted(reference_tables[name], key=repr)
    assert len(got) == len(expected) > 0
    assert got == expected
