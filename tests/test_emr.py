"""`python -m sparkify.emr submit` against moto's S3 and EMR: requests, step, uploads, waiting, errors.

No Spark, no network, no real sleeping: moto answers every AWS call, and the poll sleep is a stub.
"""

from __future__ import annotations

import configparser
import io
import os
import re
import zipfile
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from sparkify.cli import emr
from sparkify.core.config import EmrSettings, load_settings
from sparkify.core.errors import UserError
from tests.conftest import ROOT, run_etl

REGION = "us-west-2"
BUCKET = "sparkify-code"
CODE_URI = f"s3://{BUCKET}/jobs/sparkify"
INPUT = "s3://udacity-dend"
OUTPUT = "s3://sparkify-lake/star"
FAKE_KEY_ID = "AKIAFAKEKEYID0000042"
FAKE_SECRET = "fAkE/SeCrEt+do-not-upload+0123456789abcdef"
FAKE_TOKEN = "FaKeSeSsIoNtOkEn-never-on-s3"
SECRETS = (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN)
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  step ")


def write_config(folder, aws_keys=True, table_format="", **emr_keys) -> str:
    """A dl.cfg in ``folder`` with fake secrets in [AWS] and the given [EMR] keys (and [ETL] TABLE_FORMAT)."""
    keys = {
        "REGION": REGION,
        "CODE_URI": CODE_URI,
        "LOG_URI": f"s3://{BUCKET}/logs",
        "INPUT_DATA": INPUT,
        "OUTPUT_DATA": OUTPUT,
        "RELEASE_LABEL": "emr-7.5.0",
        "INSTANCE_TYPE": "m5.xlarge",
        "CORE_INSTANCES": "3",
        "POLL_SECONDS": "7",
    }
    keys.update({k.upper(): v for k, v in emr_keys.items()})
    aws = (
        f"AWS_ACCESS_KEY_ID = {FAKE_KEY_ID}\nAWS_SECRET_ACCESS_KEY = {FAKE_SECRET}\nAWS_SESSION_TOKEN = {FAKE_TOKEN}\n"
        if aws_keys
        else "AWS_ACCESS_KEY_ID =\nAWS_SECRET_ACCESS_KEY =\nAWS_SESSION_TOKEN =\n"
    )
    text = (
        "[ETL]\nINPUT_DATA = data/sample\nOUTPUT_DATA = output\n"
        + (f"TABLE_FORMAT = {table_format}\n" if table_format else "")
        + "\n"
        "[SPARK]\nMASTER = local[4]\nSHUFFLE_PARTITIONS = 4\n\n"
        f"[AWS]\n{aws}\n"
        "[S3]\nENDPOINT = http://127.0.0.1:8333\nPATH_STYLE_ACCESS = true\n\n"
        "[EMR]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
    )
    path = os.path.join(str(folder), "dl.cfg")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Fake credentials in the environment, no profile or config file of the machine's."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws(aws_env):
    """moto's S3 and EMR with the code bucket made."""
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


def no_sleep(_seconds):
    raise AssertionError("the test should not reach a sleep")


def run(argv, sleep=no_sleep):
    return emr.main(argv, sleep=sleep)


def emr_client():
    return boto3.client("emr", region_name=REGION)


def only_cluster():
    clusters = emr_client().list_clusters()["Clusters"]
    assert len(clusters) == 1
    return clusters[0]["Id"]


def moto_step(cluster_id):
    (step,) = emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id].steps
    return step


def expected_args(input_uri=INPUT, output_uri=OUTPUT):
    return [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        "--py-files",
        f"{CODE_URI}/sparkify.zip",
        "--files",
        f"{CODE_URI}/dl.cfg",
        f"{CODE_URI}/etl.py",
        "--config",
        "dl.cfg",
        "--input",
        input_uri,
        "--output",
        output_uri,
    ]


def uploaded_objects():
    s3 = boto3.client("s3", region_name=REGION)
    listing = s3.list_objects_v2(Bucket=BUCKET)
    return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listing["Contents"]}


# ---------------------------------------------------------------- pure request builders


def test_step_args_are_spark_submit_of_the_uploaded_code():
    assert emr.build_step_args(CODE_URI + "/", INPUT, OUTPUT) == expected_args()
    step = emr.build_step(CODE_URI, INPUT, OUTPUT, "CONTINUE")
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["HadoopJarStep"] == {"Jar": "command-runner.jar", "Args": expected_args()}


def test_job_flow_request_is_spark_on_one_master_and_core_nodes_that_terminates():
    settings = EmrSettings(
        release_label="emr-7.5.0", instance_type="m5.2xlarge", core_instances=4, service_role="svc", job_flow_role="ec2"
    )
    step = emr.build_step(CODE_URI, INPUT, OUTPUT, "TERMINATE_CLUSTER")
    request = emr.build_job_flow_request(settings, step, "s3://logs/emr/")
    assert request["ReleaseLabel"] == "emr-7.5.0"
    assert request["Applications"] == [{"Name": "Spark"}]
    assert request["LogUri"] == "s3://logs/emr/"
    assert (request["ServiceRole"], request["JobFlowRole"], request["VisibleToAllUsers"]) == ("svc", "ec2", True)
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    groups = {
        g["InstanceRole"]: (g["InstanceType"], g["InstanceCount"]) for g in request["Instances"]["InstanceGroups"]
    }
    assert groups == {"MASTER": ("m5.2xlarge", 1), "CORE": ("m5.2xlarge", 4)}
    assert request["Steps"] == [step]

    single = emr.build_job_flow_request(EmrSettings(core_instances=0), step, "s3://logs/")
    assert [g["InstanceRole"] for g in single["Instances"]["InstanceGroups"]] == ["MASTER"]


def test_log_uri_defaults_to_a_logs_prefix_beside_the_code():
    assert emr.log_uri_for(EmrSettings(), CODE_URI) == f"{CODE_URI}/logs/"
    assert emr.log_uri_for(EmrSettings(log_uri="s3a://b/l"), CODE_URI) == "s3://b/l"


def test_s3a_and_s3n_become_s3_for_emrfs():
    assert emr.to_emr_uri("s3a://bucket/raw/data") == "s3://bucket/raw/data"
    assert emr.to_emr_uri("S3N://bucket/x") == "s3://bucket/x"
    assert emr.to_emr_uri("s3://bucket/x") == "s3://bucket/x"
    assert emr.build_step_args(CODE_URI, "s3a://in/raw", "s3a://out/lake")[-3:] == [
        "s3://in/raw",
        "--output",
        "s3://out/lake",
    ]
    with pytest.raises(UserError, match=r"--input must be an S3 URI.*'data/sample'"):
        emr.require_s3("data/sample", "--input")


def test_package_zip_holds_only_code_and_properties(tmp_path):
    package = tmp_path / "sparkify"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text("STAGES = 1\n")
    (package / "log4j2.properties").write_text("rootLogger.level = error\n")
    (package / "notes.txt").write_text("not code")
    (package / "__pycache__" / "pipeline.cpython-39.pyc").write_bytes(b"\0")
    (package / "__pycache__" / "stale.py").write_text("")  # the folder is skipped, whatever it holds
    (package / "sub").mkdir()
    (package / "sub" / "part.py").write_text("")
    blob = emr.package_zip(str(package))
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert sorted(archive.namelist()) == [
            "sparkify/__init__.py",
            "sparkify/log4j2.properties",
            "sparkify/pipeline.py",
            "sparkify/sub/part.py",
        ]
        assert archive.read("sparkify/pipeline.py") == b"STAGES = 1\n"
    assert emr.package_zip(str(package)) == blob  # same code, same bytes


def test_config_for_emr_blanks_secrets_and_local_only_settings(tmp_path):
    path = write_config(tmp_path)
    with open(path, "a", encoding="utf-8") as handle:  # a key smuggled into another section
        handle.write(f"aws_secret_access_key = {FAKE_SECRET}\n")
    text = emr.config_for_emr(path)
    for secret in SECRETS:
        assert secret not in text
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    assert {k.upper(): v for k, v in parser["AWS"].items()} == dict.fromkeys(emr.AWS_KEYS, "")
    assert parser["SPARK"]["MASTER"] == "" and parser["S3"]["ENDPOINT"] == ""
    assert parser["SPARK"]["SHUFFLE_PARTITIONS"] == "4" and parser["EMR"]["CODE_URI"] == CODE_URI
    # what the job on the cluster reads back: no keys, so the instance role's credentials apply
    copy = tmp_path / "copy.cfg"
    copy.write_text(text)
    settings = load_settings(str(copy), env={})
    assert not settings.aws.given and settings.master == "" and settings.s3_endpoint == ""


# ---------------------------------------------------------------- submit on moto


def test_new_cluster_request_and_step_in_moto(aws, tmp_path, capsys):
    config = write_config(tmp_path)
    assert run(["submit", "--config", config, "--no-wait"]) == 0

    client = emr_client()
    cluster_id = only_cluster()
    cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert [app["Name"] for app in cluster["Applications"]] == ["Spark"]
    assert cluster["AutoTerminate"] is True
    assert cluster["LogUri"] == f"s3://{BUCKET}/logs"
    assert cluster["ServiceRole"] == "EMR_DefaultRole"
    assert cluster["Ec2InstanceAttributes"]["IamInstanceProfile"] == "EMR_EC2_DefaultRole"
    assert cluster["VisibleToAllUsers"] is True
    groups = client.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    by_role = {g["InstanceGroupType"]: (g["InstanceType"], g["RequestedInstanceCount"]) for g in groups}
    assert by_role == {"MASTER": ("m5.xlarge", 1), "CORE": ("m5.xlarge", 3)}

    (step,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == expected_args()

    out = capsys.readouterr().out
    assert f"Created the cluster {cluster_id}" in out
    assert f"aws emr describe-step --cluster-id {cluster_id} --step-id {step['Id']} --region {REGION}" in out


def test_uploads_code_zip_and_config_without_secrets(aws, tmp_path, capsys):
    config = write_config(tmp_path)
    assert run(["submit", "--config", config, "--no-wait"]) == 0
    assert (
        "Uploaded etl.py, analyst.py, sparkify.zip, dl.cfg (the [AWS] values blanked in dl.cfg) and 6 analysts' "
        f"queries (queries/) to {CODE_URI}/"
    ) in capsys.readouterr().out

    objects = uploaded_objects()
    sql = [n for n in os.listdir(os.path.join(ROOT, "queries")) if n.endswith(".sql")]
    queries = sorted(f"jobs/sparkify/queries/{n}" for n in sql)
    assert len(queries) == 6
    code = ["jobs/sparkify/analyst.py", "jobs/sparkify/dl.cfg", "jobs/sparkify/etl.py", "jobs/sparkify/sparkify.zip"]
    assert sorted(objects) == sorted(code + queries)
    for name in ("etl.py", "analyst.py", "queries/04_top_users.sql"):
        with open(os.path.join(ROOT, name), "rb") as handle:
            assert objects[f"jobs/sparkify/{name}"] == handle.read()

    with zipfile.ZipFile(io.BytesIO(objects["jobs/sparkify/sparkify.zip"])) as archive:
        names = archive.namelist()
        members = [archive.read(name) for name in names]
    assert "sparkify/runs/engine.py" in names and "sparkify/core/config.py" in names and "sparkify/cli/emr.py" in names
    assert "sparkify/platform/log4j2.properties" in names and "sparkify/platform/__init__.py" in names
    assert all(name.startswith("sparkify/") and name.endswith((".py", ".properties")) for name in names)
    assert not any("__pycache__" in name for name in names)

    uploaded_cfg = objects["jobs/sparkify/dl.cfg"].decode("utf-8")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(uploaded_cfg)
    assert all(value == "" for value in parser["AWS"].values())
    assert parser["EMR"]["OUTPUT_DATA"] == OUTPUT

    # the fake secrets are in the local file, and in no uploaded byte (zip members decompressed)
    with open(config, encoding="utf-8") as handle:
        assert FAKE_SECRET in handle.read()
    for blob in [*objects.values(), *members]:
        for secret in SECRETS:
            assert secret.encode() not in blob


def test_existing_cluster_gets_a_step_that_continues_on_failure(aws, tmp_path, capsys):
    client = emr_client()
    cluster_id = client.run_job_flow(
        Name="long-lived",
        ReleaseLabel="emr-7.5.0",
        Applications=[{"Name": "Spark"}],
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    config = write_config(tmp_path)

    code = run(["submit", "--config", config, "--cluster-id", cluster_id, "--input", "s3a://raw/in", "--no-wait"])

    assert code == 0
    assert only_cluster() == cluster_id  # no new cluster
    (step,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Args"] == expected_args(input_uri="s3://raw/in")
    assert f"Added the step to the cluster {cluster_id}" in capsys.readouterr().out


def test_cluster_id_from_config(aws, tmp_path):
    client = emr_client()
    cluster_id = client.run_job_flow(
        Name="from-config",
        ReleaseLabel="emr-7.5.0",
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    config = write_config(tmp_path, cluster_id=cluster_id, output_data="s3a://lake/out/")

    assert run(["submit", "--config", config, "--no-wait"]) == 0

    (step,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["Config"]["Args"][-2:] == ["--output", "s3://lake/out"]


def test_missing_code_uri_names_the_key(aws, tmp_path, capsys):
    config = write_config(tmp_path, code_uri="")
    assert run(["submit", "--config", config, "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert "set CODE_URI in the [EMR] section of" in err and config in err
    assert "Traceback" not in err
    assert "Contents" not in boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)  # nothing uploaded
    assert emr_client().list_clusters()["Clusters"] == []

    settings = load_settings(config)
    with pytest.raises(UserError, match=r"CODE_URI"):
        emr.submit(settings, config, None, None, None, boto3.session.Session(), io.StringIO())


def test_missing_output_names_the_key(aws, tmp_path, capsys):
    config = write_config(tmp_path, output_data="")
    assert run(["submit", "--config", config, "--no-wait"]) == 2
    assert "set OUTPUT_DATA in the [EMR] section" in capsys.readouterr().err


def test_local_output_is_refused(aws, tmp_path, capsys):
    config = write_config(tmp_path)
    assert run(["submit", "--config", config, "--output", "output", "--no-wait"]) == 2
    assert "--output must be an S3 URI" in capsys.readouterr().err


# ---------------------------------------------------------------- following the step


class ScriptedEmr:
    """describe_step answers from a script of states; records the sleeps between polls."""

    def __init__(self, states, failure=None, cluster_status=None):
        self.states = list(states)
        self.failure = failure
        self.cluster_status = cluster_status or {"State": "TERMINATED"}
        self.polls = 0

    def describe_step(self, ClusterId, StepId):
        assert self.polls < len(self.states), "polled past the end state: the wait loop did not stop"
        state = self.states[self.polls]
        self.polls += 1
        status = {"State": state}
        if state == "FAILED" and self.failure:
            status["FailureDetails"] = self.failure
        return {"Step": {"Id": StepId, "Status": status}}

    def describe_cluster(self, ClusterId):
        return {"Cluster": {"Id": ClusterId, "Status": self.cluster_status}}


def ticking_clock():
    moments = iter(datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=30 * i) for i in range(99))
    return lambda: next(moments)


def test_wait_prints_each_state_change_and_exits_0_on_completed():
    client = ScriptedEmr(["PENDING", "PENDING", "RUNNING", "RUNNING", "RUNNING", "COMPLETED"])
    sleeps, out, err = [], io.StringIO(), io.StringIO()

    code = emr.wait_for_step(client, "j-1", "s-1", 7.0, sleep=sleeps.append, out=out, err=err, clock=ticking_clock())

    assert code == 0
    assert sleeps == [7.0] * 5  # between the 6 polls, never after the last
    assert out.getvalue().splitlines() == [
        "2024-03-01 12:00:00 UTC  step s-1 PENDING",
        "2024-03-01 12:00:30 UTC  step s-1 RUNNING",
        "2024-03-01 12:01:00 UTC  step s-1 COMPLETED",
    ]
    assert err.getvalue() == ""


def test_wait_exits_1_on_failed_with_the_failure_details():
    failure = {
        "Reason": "Unknown Error.",
        "Message": "Exception in thread main: Input folder s3://in/song_data does not exist",
        "LogFile": "s3://logs/j-1/steps/s-1/stderr.gz",
    }
    client = ScriptedEmr(["PENDING", "RUNNING", "FAILED"], failure=failure)
    out, err = io.StringIO(), io.StringIO()

    code = emr.wait_for_step(client, "j-1", "s-1", 30, sleep=lambda s: None, out=out, err=err)

    assert code == 1
    assert [line.split("  step ")[1] for line in out.getvalue().splitlines()] == [
        "s-1 PENDING",
        "s-1 RUNNING",
        "s-1 FAILED",
    ]
    assert all(STAMP.match(line) for line in out.getvalue().splitlines())
    text = err.getvalue()
    assert "ended FAILED" in text
    assert "Reason: Unknown Error." in text
    assert "Message: Exception in thread main: Input folder s3://in/song_data does not exist" in text
    assert "Log file: s3://logs/j-1/steps/s-1/stderr.gz" in text


@pytest.mark.parametrize("state", ["CANCELLED", "INTERRUPTED"])
def test_wait_exits_1_on_cancelled_or_interrupted_with_the_cluster_reason(state):
    cluster_status = {
        "State": "TERMINATED_WITH_ERRORS",
        "StateChangeReason": {"Code": "VALIDATION_ERROR", "Message": "The instance profile does not exist."},
    }
    client = ScriptedEmr(["PENDING", state], cluster_status=cluster_status)
    err = io.StringIO()
    assert emr.wait_for_step(client, "j-1", "s-1", 30, sleep=lambda s: None, out=io.StringIO(), err=err) == 1
    assert f"ended {state}" in err.getvalue()
    assert "TERMINATED_WITH_ERRORS (VALIDATION_ERROR): The instance profile does not exist." in err.getvalue()


def test_submit_follows_the_moto_step_to_completed(aws, tmp_path, capsys):
    config = write_config(tmp_path)
    sleeps = []

    def finish_step(seconds):  # moto's steps stay RUNNING: the second poll sees them done
        assert not sleeps, "the wait loop went on after COMPLETED"
        sleeps.append(seconds)
        moto_step(only_cluster()).state = "COMPLETED"

    assert run(["submit", "--config", config], sleep=finish_step) == 0
    assert sleeps == [7.0]  # [EMR] POLL_SECONDS
    lines = [line for line in capsys.readouterr().out.splitlines() if STAMP.match(line)]
    assert [line.split()[-1] for line in lines] == ["RUNNING", "COMPLETED"]


def test_submit_exits_1_when_the_moto_step_fails(aws, tmp_path, capsys):
    config = write_config(tmp_path)

    sleeps = []

    def fail_step(seconds):
        assert not sleeps, "the wait loop went on after FAILED"
        sleeps.append(seconds)
        moto_step(only_cluster()).state = "FAILED"

    assert run(["submit", "--config", config], sleep=fail_step) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith("FAILED")
    assert "ended FAILED" in captured.err


# ---------------------------------------------------------------- AWS errors


def test_aws_refusal_is_one_paragraph_exit_2_without_secrets(aws, tmp_path, capsys):
    config = write_config(tmp_path, code_uri="s3://no-such-bucket/code")
    assert run(["submit", "--config", config, "--no-wait"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: AWS refused PutObject (NoSuchBucket)")
    assert "CODE_URI" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    for secret in SECRETS:
        assert secret not in captured.err + captured.out


def test_client_error_text_is_redacted(monkeypatch, aws, tmp_path, capsys):
    """Whatever AWS's message says, the keys of dl.cfg and key-id-shaped strings are not printed."""
    config = write_config(tmp_path)

    def refuse(*args, **kwargs):
        error = {"Code": "InvalidClientTokenId", "Message": f"token {FAKE_TOKEN} for {FAKE_KEY_ID} / {FAKE_SECRET}"}
        raise ClientError({"Error": error}, "RunJobFlow")

    monkeypatch.setattr(emr, "build_job_flow_request", refuse)
    assert run(["submit", "--config", config, "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert "AWS refused RunJobFlow (InvalidClientTokenId)" in err and "Check the AWS credentials" in err
    for secret in SECRETS:
        assert secret not in err
    assert emr.redact("key AKIAABCDEFGHIJKLMNOP here", []) == "key *** here"


def test_no_credentials_is_exit_2(aws_env, monkeypatch, tmp_path, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # should anything be sent, it goes nowhere
    config = write_config(tmp_path, aws_keys=False)

    assert run(["submit", "--config", config, "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No AWS credentials found.")
    assert "Traceback" not in err


# ---------------------------------------------------------------- the command line


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as stop:
        emr.main(["submit", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for option in ("--config", "--cluster-id", "--input", "--output", "--no-wait"):
        assert option in out


@pytest.mark.slow
def test_module_runs_without_spark_or_the_pipeline():
    code = (
        "import sys, sparkify.emr; "
        "assert 'sparkify.runs.engine' not in sys.modules and 'pyspark' not in sys.modules, sorted(sys.modules)"
    )
    done = run_etl(code=code)
    assert done.returncode == 0, done.stderr
    usage = run_etl("--help", module="sparkify.emr")
    assert usage.returncode == 0 and "submit" in usage.stdout


# ---------------------------------------------------------------- Apache Iceberg ([ETL] TABLE_FORMAT = iceberg)

ICEBERG_CONF = {
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.sparkify": "org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.sparkify.type": "hadoop",
    "spark.sql.catalog.sparkify.warehouse": OUTPUT,
    "spark.sql.catalog.sparkify.cache-enabled": "false",
}


def iceberg_args(input_uri=INPUT, output_uri=OUTPUT):
    args = expected_args(input_uri, output_uri)
    conf = [part for key, value in ICEBERG_CONF.items() for part in ("--conf", f"{key}={value}")]
    return args[:3] + conf + args[3:]


def test_iceberg_spark_settings_are_the_sessions():
    from sparkify.core.config import Settings
    from sparkify.platform.conf import iceberg_conf

    on_s3 = Settings(input_root="s3://raw", output_root=OUTPUT, table_format="iceberg", catalog_type="none")
    assert emr.iceberg_spark_conf(OUTPUT) == iceberg_conf(on_s3) == ICEBERG_CONF
    assert emr.iceberg_spark_conf("s3a://sparkify-lake/star/") == ICEBERG_CONF  # EMRFS's scheme, no slash


def test_iceberg_new_cluster_enables_iceberg_and_sets_the_spark_settings(aws, tmp_path):
    config = write_config(tmp_path, table_format="iceberg")
    assert run(["submit", "--config", config, "--no-wait"]) == 0

    client = emr_client()
    cluster_id = only_cluster()
    configurations = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Configurations"]
    by_name = {c["Classification"]: c.get("Properties", {}) for c in configurations}
    assert by_name["iceberg-defaults"] == {"iceberg.enabled": "true"}
    assert by_name["spark-defaults"] == ICEBERG_CONF
    (step,) = client.list_steps(ClusterId=cluster_id)["Steps"]
    assert step["Config"]["Args"] == iceberg_args()
    uploaded = configparser.ConfigParser(interpolation=None)
    uploaded.read_string(uploaded_objects()["jobs/sparkify/dl.cfg"].decode("utf-8"))
    assert uploaded["ETL"]["TABLE_FORMAT"] == "iceberg"  # the job on EMR writes Iceberg too


def test_parquet_requests_carry_no_iceberg_settings(aws, tmp_path):
    assert run(["submit", "--config", write_config(tmp_path), "--no-wait"]) == 0
    cluster = emr_client().describe_cluster(ClusterId=only_cluster())["Cluster"]
    assert not any(c["Classification"] == "iceberg-defaults" for c in cluster.get("Configurations", []))
    step = emr.build_step(CODE_URI, INPUT, OUTPUT, "CONTINUE")
    assert "--conf" not in step["HadoopJarStep"]["Args"]


def _running_cluster(configurations):
    return emr_client().run_job_flow(
        Name="long-lived",
        ReleaseLabel="emr-7.5.0",
        Applications=[{"Name": "Spark"}],
        Instances={"MasterInstanceType": "m5.xlarge", "InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        Configurations=configurations,
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]


def test_iceberg_on_a_running_cluster_needs_iceberg_enabled_there(aws, tmp_path, capsys):
    config = write_config(tmp_path, table_format="iceberg")
    without = _running_cluster([])
    assert run(["submit", "--config", config, "--cluster-id", without, "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert f"the cluster {without} was not created with Iceberg enabled" in err and "iceberg-defaults" in err
    assert emr_client().list_steps(ClusterId=without)["Steps"] == []

    with_iceberg = _running_cluster([emr.ICEBERG_CLASSIFICATION])
    assert run(["submit", "--config", config, "--cluster-id", with_iceberg, "--no-wait"]) == 0
    (step,) = emr_client().list_steps(ClusterId=with_iceberg)["Steps"]
    assert step["ActionOnFailure"] == "CONTINUE"
    assert step["Config"]["Args"] == iceberg_args()
