"""EMR Serverless for `python -m sparkify.emr submit --serverless` ([EMR] MODE = serverless).

The requests (create_application, start_job_run) and the wait on get_job_run; sparkify.cli.emr uploads the
code (the same upload as a step on a cluster) and calls these. boto3 only, no pyspark.

What the job finds on an EMR 7 Serverless image (Spark 3.5 line, Python 3.9) and what travels with it:
- PySpark 3.5 and Python 3.9 are the image's; the job's own code travels: etl.py (the entry point) and
  sparkify.zip (``--py-files``), with the blanked dl.cfg (``--files``, read as ``--config dl.cfg``, as the step does);
- Iceberg ([ETL] TABLE_FORMAT = iceberg): the image's own runtime jar, ``spark.jars`` =
  ICEBERG_JAR (the EC2 path enables the same jar with the iceberg-defaults classification), and the same
  Spark settings as the cluster path (sparkify.cli.emr.iceberg_spark_conf);
- the Kafka connector: not needed (a batch run);
- Python packages: the job imports pyspark, the standard library and boto3/botocore (the output lock, the Glue
  catalog, the signed S3 listings) and pygal (the report pages). [EMR] PYTHON_PACKAGES (default boto3==1.42.97, the
  last boto3 for Python 3.9: 1.43 needs 3.10, and pygal==3.1.3) travel as an archive: pip installs them for CPython
  3.9 (manylinux x86_64 wheels only) into a folder wherever the submit runs, packed as a tar.gz
  (``python_packages_archive``, cached by the requirements' hash), uploaded beside the code, unpacked by
  ``spark.archives`` as ./pydeps, on PYTHONPATH. Not venv-pack: a packed venv's bin/python is a link to the Python
  that made it, so it runs only when made on the image's OS with the image's Python; the folder of pure-Python
  wheels runs on any CPython 3.9.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, TextIO

from sparkify.core.errors import UserError

APPLICATION_NAME = "sparkify-etl"
JOB_NAME = "Sparkify ETL"
ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
DONE_STATES = ("SUCCESS",)
FAILED_STATES = ("FAILED", "CANCELLED")
GONE_APPLICATION_STATES = ("TERMINATED",)
# The image's Python (EMR 7: CPython 3.9) and the wheels that run on it; where spark.archives unpacks them.
IMAGE_PYTHON = ("3.9", "cp", "manylinux2014_x86_64")
PACKAGES_ALIAS = "pydeps"
PACKAGES_NAME = "python-packages.tar.gz"
CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "sparkify")


def spark_submit_parameters(zip_uri: str, config_uri: str, spark_conf: Optional[Dict[str, str]] = None) -> str:
    """sparkSubmitParameters: the package zip on the Python path, the config beside the driver, and ``spark_conf``
    (an Iceberg output: the image's Iceberg jar and Iceberg's Spark settings)."""
    parts = ["--py-files", zip_uri, "--files", config_uri]
    for key, value in (spark_conf or {}).items():
        parts += ["--conf", f"{key}={value}"]
    return " ".join(parts)


def python_packages_archive(requirements: str, cache_dir: Optional[str] = None) -> str:
    """A tar.gz of ``requirements`` (pip's, space-separated) installed for the image's Python, the packages at its
    root; made once per set of requirements (cached under ``cache_dir`` by their hash)."""
    wanted = requirements.split()
    cache_dir = cache_dir or CACHE_DIR
    version, implementation, platform = IMAGE_PYTHON
    key = hashlib.sha256(" ".join(sorted(wanted) + list(IMAGE_PYTHON)).encode()).hexdigest()[:16]
    archive = os.path.join(cache_dir, f"python-packages-{key}.tar.gz")
    if os.path.exists(archive):
        return archive
    os.makedirs(cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "site")
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check"]
        pip += ["--target", target, "--python-version", version, "--implementation", implementation]
        pip += ["--platform", platform, "--only-binary=:all:", *wanted]
        done = subprocess.run(pip, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise UserError(
                f"[EMR] PYTHON_PACKAGES = {requirements}: pip found no wheels for the image's Python {version} "
                f"({why}). Pick versions that support Python 3.9, or set it to none when the image has them."
            )
        partial = os.path.join(tmp, PACKAGES_NAME)
        with tarfile.open(partial, "w:gz") as tar:
            for name in sorted(os.listdir(target)):
                if name != "bin":  # console scripts name this machine's Python
                    tar.add(os.path.join(target, name), arcname=name)
        os.replace(partial, archive)
    return archive


def python_packages_conf(archive_uri: str) -> Dict[str, str]:
    """The Spark settings that unpack the archive beside the driver and executors and put it on their PYTHONPATH."""
    where = f"./{PACKAGES_ALIAS}"
    return {
        "spark.archives": f"{archive_uri}#{PACKAGES_ALIAS}",
        "spark.emr-serverless.driverEnv.PYTHONPATH": where,
        "spark.executorEnv.PYTHONPATH": where,
    }


def iceberg_conf(iceberg_settings: Dict[str, str]) -> Dict[str, str]:
    """The image's Iceberg runtime jar, then the output's Iceberg Spark settings."""
    return {"spark.jars": ICEBERG_JAR, **iceberg_settings}


def build_job_run_request(
    application_id: str,
    execution_role_arn: str,
    etl_uri: str,
    arguments: List[str],
    submit_parameters: str,
    log_uri: str,
) -> Dict[str, Any]:
    """start_job_run's request: etl.py with ``arguments``, the driver's logs under ``log_uri``."""
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": JOB_NAME,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": etl_uri,
                "entryPointArguments": arguments,
                "sparkSubmitParameters": submit_parameters,
            }
        },
        "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": log_uri}}},
    }


def find_application(client: Any, name: str = APPLICATION_NAME) -> Optional[Dict[str, Any]]:
    """The first application called ``name`` that is not terminated, or None."""
    for page in client.get_paginator("list_applications").paginate():
        for app in page.get("applications", []):
            if app.get("name") == name and app.get("state") not in GONE_APPLICATION_STATES:
                return app
    return None


def ensure_application(client: Any, application_id: str, release_label: str, out: TextIO) -> str:
    """``application_id`` when given (it must exist), else sparkify-etl's id, created (SPARK, ``release_label``)
    when there is none."""
    app = client.get_application(applicationId=application_id)["application"] if application_id else None
    app = app or find_application(client)
    if app:
        found = str(app.get("applicationId") or app["id"])  # get_application says applicationId, the list id
        print(f"Application {found} ({app.get('name')}, {app.get('releaseLabel')}, {app.get('state')})", file=out)
        return found
    created = client.create_application(name=APPLICATION_NAME, type="SPARK", releaseLabel=release_label)
    print(f"Created the application {created['applicationId']} ({APPLICATION_NAME}, SPARK, {release_label})", file=out)
    return str(created["applicationId"])


def driver_logs(log_uri: str, application_id: str, job_run_id: str) -> List[str]:
    """Where EMR Serverless puts the driver's stdout and stderr under the S3 log URI."""
    base = f"{log_uri.rstrip('/')}/applications/{application_id}/jobs/{job_run_id}/SPARK_DRIVER"
    return [f"{base}/stdout.gz", f"{base}/stderr.gz"]


def wait_for_job_run(
    client: Any,
    application_id: str,
    job_run_id: str,
    poll_seconds: float,
    log_uri: str,
    stamp: Callable[[], str],
    sleep: Callable[[float], Any] = time.sleep,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
) -> int:
    """Poll get_job_run every ``poll_seconds``, print each state change; at the end the final state and the driver's
    logs. 0 on SUCCESS, 1 on FAILED or CANCELLED (with the run's stateDetails)."""
    out = out or sys.stdout
    err = err or sys.stderr
    last = None
    while True:
        run = client.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
        state = run.get("state", "UNKNOWN")
        if state != last:
            print(f"{stamp()}  job run {job_run_id} {state}", file=out, flush=True)
            last = state
        if state in DONE_STATES or state in FAILED_STATES:
            break
        sleep(poll_seconds)
    logs = " and ".join(driver_logs(log_uri, application_id, job_run_id))
    if state in DONE_STATES:
        print(f"The job run {job_run_id} ended {state}. Driver logs: {logs}", file=out)
        return 0
    print(f"The job run {job_run_id} of application {application_id} ended {state}.", file=err)
    print(f"  Reason: {run.get('stateDetails') or '(none given)'}", file=err)
    print(f"  Driver logs: {logs}", file=err)
    return 1
