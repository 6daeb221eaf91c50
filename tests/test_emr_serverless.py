"""`python -m sparkify.emr submit --serverless` against moto's S3 and EMR Serverless: the application, the job
run's request, no secret in any request, the wait on get_job_run, errors.

No Spark, no network, no real sleeping (moto's job runs are SUCCESS at once; the wait loop's other endings are
tested with stubbed get_job_run answers).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile

import boto3
import pytest

from sparkify.cli import emr, emr_serverless
from sparkify.core.config import KAFKA_JARS_DIR
from tests.test_emr import (  # noqa: F401  (aws, aws_env: fixtures)
    BUCKET,
    CODE_URI,
    INPUT,
    OUTPUT,
    REGION,
    SECRETS,
    aws,
    aws_env,
    no_sleep,
    uploaded_objects,
    write_config,
)

ROLE = "arn:aws:iam::123456789012:role/sparkify-emr-serverless"
LOG_URI = f"s3://{BUCKET}/logs"
ARGUMENTS = ["--config", "dl.cfg", "--input", INPUT, "--output", OUTPUT]
CODE_PARAMETERS = f"--py-files {CODE_URI}/sparkify.zip --files {CODE_URI}/dl.cfg"
PACKAGES_PARAMETERS = (
    f" --conf spark.archives={CODE_URI}/python-packages.tar.gz#pydeps"
    " --conf spark.emr-serverless.driverEnv.PYTHONPATH=./pydeps --conf spark.executorEnv.PYTHONPATH=./pydeps"
)
SUBMIT_PARAMETERS = CODE_PARAMETERS + PACKAGES_PARAMETERS
ICEBERG_PARAMETERS = (
    f"{CODE_PARAMETERS} --conf spark.jars=/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    " --conf spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    " --conf spark.sql.catalog.sparkify=org.apache.iceberg.spark.SparkCatalog"
    " --conf spark.sql.catalog.sparkify.type=hadoop"
    f" --conf spark.sql.catalog.sparkify.warehouse={OUTPUT}"
    " --conf spark.sql.catalog.sparkify.cache-enabled=false" + PACKAGES_PARAMETERS
)
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  job run ")


@pytest.fixture(scope="module")
def packages_cache(tmp_path_factory):
    """One cache of [EMR] PYTHON_PACKAGES' archive for this module (pip's first build needs PyPI, ~4 s)."""
    return str(tmp_path_factory.mktemp("python-packages"))


@pytest.fixture(autouse=True)
def cached_packages(monkeypatch, packages_cache):
    monkeypatch.setattr(emr_serverless, "CACHE_DIR", packages_cache)


@pytest.fixture
def requests(monkeypatch):
    """Every request the command makes: (operation name, params, body bytes), from botocore's event hooks."""
    seen = []
    make_session = emr.make_session

    def params(model, params, **kwargs):
        seen.append((model.name, params))

    def body(request, **kwargs):
        data = request.body or b""
        seen.append(("body", data if isinstance(data, bytes) else str(data).encode()))

    def hooked(settings):
        session = make_session(settings)
        session.events.register("provide-client-params.*", params)
        session.events.register("before-send.*", body)
        return session

    monkeypatch.setattr(emr, "make_session", hooked)
    return seen


def serverless_client():
    return boto3.client("emr-serverless", region_name=REGION)


def only_job_run(app_id):
    (summary,) = serverless_client().list_job_runs(applicationId=app_id)["jobRuns"]
    return serverless_client().get_job_run(applicationId=app_id, jobRunId=summary["id"])["jobRun"]


def started(requests):
    (request,) = [params for name, params in requests if name == "StartJobRun"]
    return request


# ---------------------------------------------------------------- against moto


@pytest.mark.usefixtures("aws")
def test_creates_the_application_and_starts_the_job_run(tmp_path, capsys, requests):
    config = write_config(tmp_path, execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--config", config], sleep=no_sleep) == 0

    (created,) = [params for name, params in requests if name == "CreateApplication"]
    created.pop("clientToken", None)  # botocore's idempotency token
    assert created == {"name": "sparkify-etl", "type": "SPARK", "releaseLabel": "emr-7.5.0"}
    (app,) = serverless_client().list_applications()["applications"]
    assert (app["name"], app["type"].upper(), app["releaseLabel"]) == ("sparkify-etl", "SPARK", "emr-7.5.0")

    request = started(requests)
    assert request["applicationId"] == app["id"] and request["executionRoleArn"] == ROLE
    assert request["jobDriver"] == {
        "sparkSubmit": {
            "entryPoint": f"{CODE_URI}/etl.py",
            "entryPointArguments": ARGUMENTS,
            "sparkSubmitParameters": SUBMIT_PARAMETERS,
        }
    }
    assert request["configurationOverrides"] == {
        "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": LOG_URI}}
    }
    run = only_job_run(app["id"])
    assert run["jobDriver"]["sparkSubmit"]["entryPoint"] == f"{CODE_URI}/etl.py"

    out = capsys.readouterr().out
    assert f"Created the application {app['id']} (sparkify-etl, SPARK, emr-7.5.0)" in out
    lines = out.splitlines()
    assert STAMP.match(lines[-2]) and lines[-2].endswith(f"job run {run['jobRunId']} SUCCESS")
    driver = f"{LOG_URI}/applications/{app['id']}/jobs/{run['jobRunId']}/SPARK_DRIVER"
    assert lines[-1] == (
        f"The job run {run['jobRunId']} ended SUCCESS. Driver logs: {driver}/stdout.gz and {driver}/stderr.gz"
    )


@pytest.mark.usefixtures("aws")
def test_mode_serverless_in_the_config_and_no_secret_in_any_request(tmp_path, capsys, requests):
    config = write_config(tmp_path, mode="serverless", execution_role_arn=ROLE)
    assert emr.main(["submit", "--config", config, "--no-wait"], sleep=no_sleep) == 0
    assert started(requests)["executionRoleArn"] == ROLE
    # the bodies sent (the EMR Serverless JSON; S3's streamed bodies are checked as stored, below), the
    # parameters of every call, and the objects uploaded
    bodies = [data for name, data in requests if name == "body"]
    assert any(b"sparkSubmitParameters" in data for data in bodies)
    for data in [*bodies, *uploaded_objects().values()]:
        for secret in SECRETS:
            assert secret.encode() not in data
    for name, params in requests:
        if name != "body":
            for secret in SECRETS:
                assert secret not in repr(params)
    out = capsys.readouterr().out
    assert "Not waiting. Follow it with: aws emr-serverless get-job-run --application-id" in out


@pytest.mark.usefixtures("aws")
def test_an_existing_application_is_used_when_given(tmp_path, requests):
    app_id = serverless_client().create_application(name="mine", type="SPARK", releaseLabel="emr-7.2.0")[
        "applicationId"
    ]
    config = write_config(tmp_path, execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--application-id", app_id, "--config", config, "--no-wait"]) == 0
    assert not [name for name, _ in requests if name == "CreateApplication"]
    assert started(requests)["applicationId"] == app_id

    # from the config, too; and sparkify-etl, when it exists, is reused rather than made again
    config = write_config(tmp_path, execution_role_arn=ROLE, application_id=app_id)
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 0
    assert [params["applicationId"] for name, params in requests if name == "StartJobRun"] == [app_id, app_id]


@pytest.mark.usefixtures("aws")
def test_sparkify_etl_is_reused_when_it_exists(tmp_path, requests):
    app_id = serverless_client().create_application(name="sparkify-etl", type="SPARK", releaseLabel="emr-7.5.0")[
        "applicationId"
    ]
    config = write_config(tmp_path, execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 0
    assert not [name for name, _ in requests if name == "CreateApplication"]
    assert started(requests)["applicationId"] == app_id


@pytest.mark.usefixtures("aws")
def test_iceberg_output_uses_the_images_iceberg_jar(tmp_path, requests):
    config = write_config(tmp_path, table_format="iceberg", execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 0
    assert started(requests)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"] == ICEBERG_PARAMETERS


@pytest.mark.usefixtures("aws")
def test_the_python_packages_travel_built_for_python_3_9(tmp_path, capsys, requests):
    config = write_config(tmp_path, execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 0
    archive = uploaded_objects()["jobs/sparkify/python-packages.tar.gz"]
    line = f"Uploaded {CODE_URI}/python-packages.tar.gz (boto3==1.42.97 pygal==3.1.3 for Python 3.9,"
    assert line in capsys.readouterr().out
    unpacked = tmp_path / "pydeps"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        tar.extractall(unpacked)
    # boto3 1.42.97 and pygal, with what they need on Python 3.9 (urllib3, botocore's data); no console scripts
    for member in ("boto3/__init__.py", "botocore/data/s3", "s3transfer", "jmespath", "dateutil", "urllib3", "pygal"):
        assert any(n == member or n.startswith(member + "/") for n in names), member
    assert "boto3-1.42.97.dist-info/METADATA" in names and not any(n.startswith("bin") for n in names)
    metadata = (unpacked / "botocore-1.42.97.dist-info" / "METADATA").read_text()
    assert "Requires-Python: >= 3.9" in metadata or "Requires-Python: >=3.9" in metadata
    # on the PYTHONPATH, as spark.archives unpacks it beside the driver (-S: no site-packages of this machine)
    probe = "import sys; sys.path.append(sys.argv[1]); import boto3, pygal; print(boto3.__version__, boto3.__file__)"
    command = [sys.executable, "-S", "-c", probe, str(unpacked)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.stdout.split()[0] == "1.42.97" and done.stdout.split()[1].startswith(str(unpacked)), done.stderr


@pytest.mark.usefixtures("aws")
def test_no_python_packages_when_the_key_is_none(tmp_path, requests):
    config = write_config(tmp_path, execution_role_arn=ROLE, python_packages="none")
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 0
    assert started(requests)["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"] == CODE_PARAMETERS
    assert "jobs/sparkify/python-packages.tar.gz" not in uploaded_objects()


@pytest.mark.usefixtures("aws")
def test_packages_without_a_python_3_9_wheel_are_exit_2_before_the_job_run(tmp_path, capsys, requests):
    config = write_config(tmp_path, execution_role_arn=ROLE, python_packages="boto3==1.43.11")
    assert emr.main(["submit", "--serverless", "--config", config, "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert "[EMR] PYTHON_PACKAGES = boto3==1.43.11: pip found no wheels for the image's Python 3.9" in err
    assert "Pick versions that support Python 3.9, or set it to none" in err
    assert not [name for name, _ in requests if name == "StartJobRun"]


@pytest.mark.usefixtures("aws")
def test_the_kafka_stream_is_a_streaming_job_run_with_the_connector_uploaded(tmp_path, capsys, requests):
    jars = sorted(os.listdir(KAFKA_JARS_DIR))
    assert any(j.startswith("spark-sql-kafka-0-10") for j in jars), "make jars fetches the connector"
    config = write_config(tmp_path, execution_role_arn=ROLE, python_packages="none")
    assert emr.main(["submit", "--serverless", "--kafka", "--config", config, "--no-wait"]) == 0
    request = started(requests)
    assert request["mode"] == "STREAMING"
    assert request["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [*ARGUMENTS, "--stream", "--source", "kafka"]
    uris = [f"{CODE_URI}/jars/{j}" for j in jars]
    parameters = request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]
    assert parameters == f"{CODE_PARAMETERS} --conf spark.jars={','.join(uris)}"
    objects = uploaded_objects()
    for jar in jars:  # the connector's own bytes: EMR Serverless fetches nothing from Maven without a NAT
        with open(os.path.join(KAFKA_JARS_DIR, jar), "rb") as handle:
            assert objects[f"jobs/sparkify/jars/{jar}"] == handle.read()
    assert f"Uploaded Spark's Kafka connector ({len(jars)} jars) to {CODE_URI}/jars/" in capsys.readouterr().out


@pytest.mark.usefixtures("aws")
def test_a_kafka_password_is_never_uploaded(tmp_path, capsys, requests):
    config = write_config(tmp_path, execution_role_arn=ROLE)
    with open(config, "a", encoding="utf-8") as handle:
        handle.write('[KAFKA]\nkafka.sasl.jaas.config = PlainLoginModule required username="u" password="hunter2";\n')
    assert emr.main(["submit", "--serverless", "--kafka", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "[KAFKA] kafka.sasl.jaas.config in" in err and "holds a password" in err and "AWS_MSK_IAM" in err
    assert "hunter2" not in err
    assert not [name for name, _ in requests if name in ("PutObject", "StartJobRun")]
    assert emr.main(["submit", "--kafka", "--config", config]) == 2  # a cluster step: not offered
    assert "--kafka runs on EMR Serverless (a streaming job run): add --serverless." in capsys.readouterr().err


@pytest.mark.usefixtures("aws")
def test_missing_execution_role_is_exit_2_naming_the_key(tmp_path, capsys, requests):
    config = write_config(tmp_path)
    assert emr.main(["submit", "--serverless", "--config", config]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "EXECUTION_ROLE_ARN" in err and "[EMR]" in err
    assert not [name for name, _ in requests if name != "body"]  # nothing uploaded, nothing started


@pytest.mark.usefixtures("aws")
def test_unknown_application_is_exit_2(tmp_path, capsys):
    config = write_config(tmp_path, execution_role_arn=ROLE)
    assert emr.main(["submit", "--serverless", "--application-id", "00abcdef12345678", "--config", config]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: AWS refused GetApplication") and "Traceback" not in err


def test_serverless_and_cluster_id_do_not_go_together(capsys):
    with pytest.raises(SystemExit) as stop:
        emr.main(["submit", "--serverless", "--cluster-id", "j-1"])
    assert stop.value.code == 2


# ---------------------------------------------------------------- the wait loop, with stubbed answers


class StubRuns:
    def __init__(self, states, details=""):
        self.states = list(states)
        self.details = details

    def get_job_run(self, applicationId, jobRunId):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        run = {"applicationId": applicationId, "jobRunId": jobRunId, "state": state}
        if state in ("FAILED", "CANCELLED") and self.details:
            run["stateDetails"] = self.details
        return {"jobRun": run}


def wait(client, sleeps):
    out, err = io.StringIO(), io.StringIO()
    code = emr_serverless.wait_for_job_run(
        client, "app1", "run1", 5, "s3://b/logs/", lambda: "2025-01-10 09:00:00 UTC", sleeps.append, out, err
    )
    return code, out.getvalue(), err.getvalue()


def test_wait_prints_each_state_change_and_exits_0_on_success():
    sleeps = []
    code, out, err = wait(StubRuns(["SUBMITTED", "PENDING", "PENDING", "RUNNING", "SUCCESS"]), sleeps)
    assert code == 0 and err == "" and sleeps == [5, 5, 5, 5]
    states = [line.rsplit(" ", 1)[-1] for line in out.splitlines()[:-1]]
    assert states == ["SUBMITTED", "PENDING", "RUNNING", "SUCCESS"]
    assert out.splitlines()[-1].endswith(
        "Driver logs: s3://b/logs/applications/app1/jobs/run1/SPARK_DRIVER/stdout.gz and "
        "s3://b/logs/applications/app1/jobs/run1/SPARK_DRIVER/stderr.gz"
    )


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_wait_exits_1_with_the_state_details(state):
    reason = "Job failed, ExitCode: 1. Last few exceptions: ModuleNotFoundError: No module named 'boto3'"
    code, out, err = wait(StubRuns(["RUNNING", state], details=reason), [])
    assert code == 1
    assert out.splitlines()[-1].endswith(f"job run run1 {state}")
    assert f"The job run run1 of application app1 ended {state}." in err
    assert f"  Reason: {reason}" in err
    assert "s3://b/logs/applications/app1/jobs/run1/SPARK_DRIVER/stderr.gz" in err


@pytest.mark.usefixtures("aws")
def test_submit_exits_1_when_the_job_run_fails(tmp_path, capsys, monkeypatch):
    config = write_config(tmp_path, execution_role_arn=ROLE)
    stub = StubRuns(["RUNNING", "FAILED"], details="Job failed, ExitCode: 1")
    monkeypatch.setattr(emr_serverless, "wait_for_job_run", _wait_with(stub))
    assert emr.main(["submit", "--serverless", "--config", config], sleep=lambda _s: None) == 1
    captured = capsys.readouterr()
    assert "Reason: Job failed, ExitCode: 1" in captured.err


def _wait_with(stub):
    real = emr_serverless.wait_for_job_run

    def waiting(client, *args, **kwargs):
        return real(stub, *args, **kwargs)

    return waiting


@pytest.mark.usefixtures("aws_env")
def test_an_unknown_mode_is_exit_2_naming_the_key(tmp_path, capsys):
    config = write_config(tmp_path, mode="fargate", execution_role_arn=ROLE)
    assert emr.main(["submit", "--config", config]) == 2
    assert "[EMR] MODE = 'fargate'" in capsys.readouterr().err


def test_help_explains_the_serverless_options(capsys):
    with pytest.raises(SystemExit) as stop:
        emr.main(["submit", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--serverless" in out and "--application-id" in out and "APPLICATION_ID" in out
