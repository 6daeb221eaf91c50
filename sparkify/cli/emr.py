"""Run the ETL on Amazon EMR: upload the code, add a Spark step, follow it to the end.

python -m sparkify.emr submit                          # settings from the [EMR] section of dl.cfg
python -m sparkify.emr submit --cluster-id j-XXXXXXXX  # a step on a running cluster
python -m sparkify.emr submit --no-wait                # submit and return at once
python -m sparkify.emr submit --serverless             # a job run on EMR Serverless ([EMR] MODE = serverless)

EMR Serverless (sparkify.cli.emr_serverless says what the image has and what travels with the job): the same
upload, then a job run of etl.py on the application [EMR] APPLICATION_ID (or --application-id), else on
sparkify-etl, created when absent; [EMR] EXECUTION_ROLE_ARN is required. Exit codes as for a step (SUCCESS 0,
FAILED or CANCELLED 1).

Exit code: 0 the step completed (or was submitted, with --no-wait), 1 the step failed, was
cancelled or interrupted, 2 a problem to fix (config, credentials, AWS refused a request).
Runs on Python 3.9; imports neither pyspark nor sparkify.runs.engine.
"""

from __future__ import annotations

import argparse
import configparser
import glob
import io
import os
import re
import sys
import time
import zipfile
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple
from urllib.parse import urlparse

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from sparkify.cli import emr_serverless as serverless
from sparkify.core.config import (
    DEFAULT_CONFIG,
    KAFKA_JARS_DIR,
    PACKAGE_DIR,
    REPO_ROOT,
    EmrSettings,
    Settings,
    load_settings,
)
from sparkify.core.errors import UserError

ETL_NAME = "etl.py"
ANALYST_NAME = "analyst.py"
QUERIES_NAME = "queries"
ZIP_NAME = "sparkify.zip"
CONFIG_NAME = "dl.cfg"
ZIP_SUFFIXES = (".py", ".properties")
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Local-only settings that must not follow the job to EMR: YARN is the master there (set by
# spark-submit), and s3:// goes through EMRFS, not a local S3-compatible endpoint.
CLEARED_ON_EMR = (("SPARK", "MASTER"), ("S3", "ENDPOINT"))
STEP_NAME = "Sparkify ETL"
CLUSTER_NAME = "sparkify-etl"
FAILED_STATES = ("FAILED", "CANCELLED", "INTERRUPTED")
CREDENTIAL_ERRORS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
)
ACCESS_KEY_PATTERN = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


# ---------------------------------------------------------------- URIs


def to_emr_uri(uri: str) -> str:
    """s3a:// and s3n:// become s3:// (EMRFS serves s3:// on EMR); anything else stays as it is."""
    for scheme in ("s3a://", "s3n://"):
        if uri.lower().startswith(scheme):
            return "s3://" + uri[len(scheme) :]
    return uri


def require_s3(uri: str, what: str) -> str:
    """``uri`` as s3://bucket[/prefix] without a trailing slash, or a UserError naming ``what``."""
    uri = to_emr_uri(uri.strip()).rstrip("/")
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UserError(f"{what} must be an S3 URI (s3://bucket/prefix) for a run on EMR; got {uri!r}.")
    return uri


def split_s3_uri(uri: str) -> Tuple[str, str]:
    """s3://bucket/a/b -> ("bucket", "a/b")."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


def join_key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


# ---------------------------------------------------------------- what is uploaded


def package_zip(package_dir: str = PACKAGE_DIR) -> bytes:
    """The sparkify package as a zip for --py-files: .py and .properties files, no __pycache__.

    Entries are named sparkify/..., sorted and dated 1980-01-01, so the same code gives the same bytes.
    """
    top = os.path.basename(os.path.normpath(package_dir))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, dirs, names in os.walk(package_dir):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                if not name.endswith(ZIP_SUFFIXES):
                    continue
                path = os.path.join(folder, name)
                arcname = "/".join([top, *os.path.relpath(path, package_dir).split(os.sep)])
                info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with open(path, "rb") as handle:
                    archive.writestr(info, handle.read())
    return buffer.getvalue()


def config_for_emr(config_path: str) -> str:
    """The config file's text with every [AWS] value (and any AWS_* key anywhere) blanked.

    On EMR the instance role gives the job its credentials: keys never go to S3. The local-only
    [SPARK] MASTER and [S3] ENDPOINT are blanked too. Comments are not kept.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the keys' case
    try:
        with open(config_path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as exc:
        raise UserError(
            f"Cannot read the config file {config_path} ({exc}). Pass --config PATH to a valid dl.cfg."
        ) from None
    for key in list(parser.defaults()):
        if key.upper() in AWS_KEYS:
            parser.defaults()[key] = ""
    if not parser.has_section("AWS"):
        parser.add_section("AWS")
    for key in AWS_KEYS:
        parser.set("AWS", key, "")  # present and empty, whatever the file had
    for section in parser.sections():
        for key in list(parser[section]):
            upper = key.upper()
            if section == "AWS" or upper in AWS_KEYS or (section, upper) in CLEARED_ON_EMR:
                parser.set(section, key, "")
    out = io.StringIO()
    out.write(
        "# Uploaded by `python -m sparkify.emr submit`: [AWS] values blanked (the cluster's instance\n"
        "# role provides credentials); [SPARK] MASTER and [S3] ENDPOINT blanked (YARN and EMRFS on EMR).\n\n"
    )
    parser.write(out)
    return out.getvalue()


def code_files(config_path: str, repo_root: str = REPO_ROOT) -> Dict[str, bytes]:
    """What travels to ``CODE_URI``: the entry points (etl.py, analyst.py), sparkify.zip, the blanked config and
    the analysts' queries (queries/NAME.sql: the Airflow DAG's report step reads them there)."""
    bodies: Dict[str, bytes] = {}
    for name in (ETL_NAME, ANALYST_NAME):
        path = os.path.join(repo_root, name)
        try:
            with open(path, "rb") as handle:
                bodies[name] = handle.read()
        except OSError as exc:
            raise UserError(f"Cannot read {path} ({exc.strerror}): run from a checkout of the repository.") from None
    bodies[ZIP_NAME] = package_zip(os.path.join(repo_root, "sparkify"))
    bodies[CONFIG_NAME] = config_for_emr(config_path).encode("utf-8")
    queries = os.path.join(repo_root, QUERIES_NAME)
    for name in sorted(os.listdir(queries)) if os.path.isdir(queries) else []:
        if name.endswith(".sql"):
            with open(os.path.join(queries, name), "rb") as handle:
                bodies[f"{QUERIES_NAME}/{name}"] = handle.read()
    return bodies


def upload_code(s3: Any, config_path: str, code_uri: str, repo_root: str = REPO_ROOT) -> Dict[str, str]:
    """Put ``code_files`` under ``code_uri``; return name -> s3:// URI."""
    bucket, prefix = split_s3_uri(code_uri)
    uploaded = {}
    for name, body in code_files(config_path, repo_root).items():
        s3.put_object(Bucket=bucket, Key=join_key(prefix, name), Body=body)
        uploaded[name] = f"s3://{bucket}/{join_key(prefix, name)}"
    return uploaded


def uploaded_line(uploaded: Dict[str, str], code_uri: str) -> str:
    """What was uploaded, in one line: the files by name, the queries by number."""
    queries = [name for name in uploaded if name.startswith(QUERIES_NAME + "/")]
    files = [name for name in uploaded if name not in queries]
    return (
        f"Uploaded {', '.join(files)} (the [AWS] values blanked in {CONFIG_NAME}) and {len(queries)} analysts' "
        f"queries ({QUERIES_NAME}/) to {code_uri.rstrip('/')}/"
    )


# ---------------------------------------------------------------- Apache Iceberg ([ETL] TABLE_FORMAT = iceberg)

# EMR's own Iceberg (EMR 7 ships it) goes on the cluster's class path with this classification.
ICEBERG_CLASSIFICATION = {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}}


def iceberg_spark_conf(output_uri: str) -> Dict[str, str]:
    """The Spark settings of an Iceberg output, as sparkify.platform.conf.iceberg_conf makes them (kept equal by
    tests/test_emr.py; this module imports no pyspark): Iceberg's SQL extensions and the catalog
    ``sparkify`` whose tables are the output's folders (Hadoop catalog: s3://.../lake/<table>)."""
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.catalog.sparkify": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.sparkify.type": "hadoop",
        "spark.sql.catalog.sparkify.warehouse": to_emr_uri(output_uri).rstrip("/"),
        "spark.sql.catalog.sparkify.cache-enabled": "false",
    }


def cluster_has_iceberg(client: Any, cluster_id: str) -> bool:
    """Whether a running cluster was created with iceberg-defaults iceberg.enabled=true."""
    configurations = client.describe_cluster(ClusterId=cluster_id)["Cluster"].get("Configurations") or []
    return any(
        c.get("Classification") == "iceberg-defaults"
        and str((c.get("Properties") or {}).get("iceberg.enabled", "")).lower() == "true"
        for c in configurations
    )


# ---------------------------------------------------------------- the requests


def build_step_args(code_uri: str, input_uri: str, output_uri: str, table_format: str = "parquet") -> List[str]:
    """command-runner.jar's arguments: spark-submit in cluster mode of the uploaded code (an Iceberg
    output: with Iceberg's Spark settings)."""
    code = code_uri.rstrip("/")
    conf: List[str] = []
    if table_format == "iceberg":
        for key, value in iceberg_spark_conf(output_uri).items():
            conf += ["--conf", f"{key}={value}"]
    return [
        "spark-submit",
        "--deploy-mode",
        "cluster",
        *conf,
        "--py-files",
        f"{code}/{ZIP_NAME}",
        "--files",
        f"{code}/{CONFIG_NAME}",
        f"{code}/{ETL_NAME}",
        *etl_arguments(input_uri, output_uri),
    ]


def etl_arguments(input_uri: str, output_uri: str) -> List[str]:
    """etl.py's arguments on EMR (a step or an EMR Serverless job run): the config shipped beside it, input, output."""
    return ["--config", CONFIG_NAME, "--input", to_emr_uri(input_uri), "--output", to_emr_uri(output_uri)]


def build_step(
    code_uri: str, input_uri: str, output_uri: str, action_on_failure: str, table_format: str = "parquet"
) -> Dict[str, Any]:
    args = build_step_args(code_uri, input_uri, output_uri, table_format)
    return {
        "Name": STEP_NAME,
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args},
    }


def log_uri_for(emr: EmrSettings, code_uri: str) -> str:
    """LOG_URI, else <CODE_URI>/logs/ (without logs a failed step has no LogFile to show)."""
    return to_emr_uri(emr.log_uri) if emr.log_uri else f"{code_uri.rstrip('/')}/logs/"


def instance_group(role: str, instance_type: str, count: int) -> Dict[str, Any]:
    return {
        "Name": role.lower(),
        "InstanceRole": role,
        "Market": "ON_DEMAND",
        "InstanceType": instance_type,
        "InstanceCount": count,
    }


def build_job_flow_request(
    emr: EmrSettings, step: Dict[str, Any], log_uri: str, table_format: str = "parquet", output_uri: str = ""
) -> Dict[str, Any]:
    """run_job_flow's request: Spark on one master + CORE_INSTANCES core nodes, gone after the step. An
    Iceberg output: EMR's Iceberg enabled (iceberg-defaults) and its Spark settings in spark-defaults."""
    groups = [instance_group("MASTER", emr.instance_type, 1)]
    if emr.core_instances > 0:
        groups.append(instance_group("CORE", emr.instance_type, emr.core_instances))
    request: Dict[str, Any] = {
        "Name": CLUSTER_NAME,
        "ReleaseLabel": emr.release_label,
        "LogUri": log_uri,
        "Applications": [{"Name": "Spark"}],
        "Instances": {
            "InstanceGroups": groups,
            "KeepJobFlowAliveWhenNoSteps": False,
            "TerminationProtected": False,
        },
        "Steps": [step],
        "ServiceRole": emr.service_role,
        "JobFlowRole": emr.job_flow_role,
        "VisibleToAllUsers": True,
    }
    if table_format == "iceberg":
        request["Configurations"] = [
            ICEBERG_CLASSIFICATION,
            {"Classification": "spark-defaults", "Properties": iceberg_spark_conf(output_uri)},
        ]
    return request


def check_emr_settings(emr: EmrSettings, config_path: str) -> None:
    if not emr.code_uri:
        raise UserError(
            f"No place to upload the job code: set CODE_URI in the [EMR] section of {config_path} "
            "to an S3 prefix the cluster can read, e.g. CODE_URI = s3://my-bucket/sparkify/code."
        )
    if not emr.release_label.startswith("emr-"):
        raise UserError(f"{config_path}: [EMR] RELEASE_LABEL = {emr.release_label!r}: set one like emr-7.5.0.")
    if emr.core_instances < 0:
        raise UserError(f"{config_path}: [EMR] CORE_INSTANCES must be 0 or more (0: a single-node cluster).")
    if emr.poll_seconds <= 0:
        raise UserError(f"{config_path}: [EMR] POLL_SECONDS must be more than 0, e.g. 30.")


def resolve_io(
    emr: EmrSettings, config_path: str, input_uri: Optional[str], output_uri: Optional[str]
) -> Tuple[str, str]:
    """--input/--output, else [EMR] INPUT_DATA/OUTPUT_DATA, as s3:// URIs."""
    source = input_uri or emr.input_data
    target = output_uri or emr.output_data
    if not source:
        raise UserError(
            f"No input for the EMR run: pass --input s3://... or set INPUT_DATA in the [EMR] section of {config_path}."
        )
    if not target:
        raise UserError(
            f"No output for the EMR run: pass --output s3://... or set OUTPUT_DATA in the [EMR] section of "
            f"{config_path}, e.g. OUTPUT_DATA = s3://my-bucket/sparkify/lake."
        )
    what_in = "--input" if input_uri else "[EMR] INPUT_DATA"
    what_out = "--output" if output_uri else "[EMR] OUTPUT_DATA"
    return require_s3(source, what_in), require_s3(target, what_out)


# ---------------------------------------------------------------- following a step


def _stamp(clock: Callable[[], datetime]) -> str:
    return clock().astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def describe_failure(status: Dict[str, Any]) -> List[str]:
    """The lines that say why a step ended badly: FailureDetails, else the state change reason."""
    details = status.get("FailureDetails") or {}
    labels = (("Reason", "Reason"), ("Message", "Message"), ("LogFile", "Log file"))
    lines = [f"{label}: {details[key]}" for key, label in labels if details.get(key)]
    reason = (status.get("StateChangeReason") or {}).get("Message")
    if not lines and reason:
        lines.append(f"Reason: {reason}")
    return lines


def cluster_reason(client: Any, cluster_id: str) -> Optional[str]:
    """Why the cluster stopped, e.g. a missing role or instance type, when it says so."""
    try:
        status = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    except (ClientError, BotoCoreError, KeyError):
        return None
    reason = status.get("StateChangeReason") or {}
    if status.get("State") != "TERMINATED_WITH_ERRORS" or not reason.get("Message"):
        return None
    code = f" ({reason['Code']})" if reason.get("Code") else ""
    return f"Cluster {cluster_id} TERMINATED_WITH_ERRORS{code}: {reason['Message']}"


def wait_for_step(
    client: Any,
    cluster_id: str,
    step_id: str,
    poll_seconds: float,
    sleep: Callable[[float], Any] = time.sleep,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Poll describe_step every ``poll_seconds``, print each state change; 0 on COMPLETED, else 1."""
    out = out or sys.stdout
    err = err or sys.stderr
    last = None
    while True:
        status = client.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"].get("Status", {})
        state = status.get("State", "UNKNOWN")
        if state != last:
            print(f"{_stamp(clock)}  step {step_id} {state}", file=out, flush=True)
            last = state
        if state == "COMPLETED":
            return 0
        if state in FAILED_STATES:
            print(f"The step {step_id} on cluster {cluster_id} ended {state}.", file=err)
            for line in describe_failure(status):
                print(f"  {line}", file=err)
            extra = cluster_reason(client, cluster_id)
            if extra:
                print(f"  {extra}", file=err)
            return 1
        sleep(poll_seconds)


# ---------------------------------------------------------------- AWS session and errors


def make_session(settings: Settings) -> boto3.session.Session:
    """[AWS] keys of dl.cfg (or AWS_* variables) when given, else the default AWS chain."""
    aws = settings.aws
    if aws.given:
        return boto3.session.Session(
            aws_access_key_id=aws.access_key_id,
            aws_secret_access_key=aws.secret_access_key,
            aws_session_token=aws.session_token or None,
            region_name=settings.emr.region,
        )
    return boto3.session.Session(region_name=settings.emr.region)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the given secrets or anything shaped like an access key id."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return ACCESS_KEY_PATTERN.sub("***", text)


def aws_error_message(exc: Exception) -> str:
    """One paragraph for a botocore error, saying what to check; never the keys themselves."""
    if isinstance(exc, NoCredentialsError):
        return (
            "No AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
            "or fill the [AWS] section of the local dl.cfg (it is blanked in the copy uploaded to S3)."
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", "")
        operation = getattr(exc, "operation_name", "a request")
        hint = ""
        if code in CREDENTIAL_ERRORS:
            hint = " Check the AWS credentials (keys, session token, profile)."
        elif code in ("AccessDenied", "AccessDeniedException"):
            hint = " Check the IAM permissions of these credentials for S3 and EMR (see docs/emr.md)."
        elif code == "NoSuchBucket":
            hint = " Check the bucket of [EMR] CODE_URI: it must exist in the account."
        return f"AWS refused {operation} ({code}): {message.rstrip('.')}.{hint}"
    return f"AWS call failed: {exc}. Check the network, the region ([EMR] REGION) and the credentials."


# ---------------------------------------------------------------- the command


def submit(
    settings: Settings,
    config_path: str,
    cluster_id: Optional[str],
    input_uri: Optional[str],
    output_uri: Optional[str],
    session: Any,
    out: TextIO,
    repo_root: str = REPO_ROOT,
) -> Tuple[Any, str, str]:
    """Upload the code and add the step; return (emr client, cluster id, step id)."""
    emr = settings.emr
    check_emr_settings(emr, config_path)
    code_uri = require_s3(emr.code_uri, "[EMR] CODE_URI")
    source, target = resolve_io(emr, config_path, input_uri, output_uri)
    target_cluster = (cluster_id or emr.cluster_id).strip()

    uploaded = upload_code(session.client("s3"), config_path, code_uri, repo_root)
    print(uploaded_line(uploaded, code_uri), file=out)
    client = session.client("emr")
    table_format = settings.table_format
    if target_cluster and table_format == "iceberg" and not cluster_has_iceberg(client, target_cluster):
        raise UserError(
            f"[ETL] TABLE_FORMAT = iceberg, but the cluster {target_cluster} was not created with Iceberg enabled "
            "(the iceberg-defaults classification, iceberg.enabled = true): Spark there has no Iceberg. Submit "
            "without --cluster-id / [EMR] CLUSTER_ID (a new cluster gets it), or create the cluster with it."
        )
    if target_cluster:
        step = build_step(code_uri, source, target, "CONTINUE", table_format)
        step_id = client.add_job_flow_steps(JobFlowId=target_cluster, Steps=[step])["StepIds"][0]
        print(f"Added the step to the cluster {target_cluster}", file=out)
    else:
        step = build_step(code_uri, source, target, "TERMINATE_CLUSTER", table_format)
        log_uri = log_uri_for(emr, code_uri)
        request = build_job_flow_request(emr, step, log_uri, table_format, target)
        target_cluster = client.run_job_flow(**request)["JobFlowId"]
        step_id = client.list_steps(ClusterId=target_cluster)["Steps"][0]["Id"]
        print(
            f"Created the cluster {target_cluster} ({emr.release_label}, 1 master + {emr.core_instances} core "
            f"{emr.instance_type}); it terminates after the step. Logs: {log_uri}",
            file=out,
        )
    print(f"Step {step_id}: {source} -> {target}", file=out, flush=True)
    return client, target_cluster, step_id


def check_serverless_settings(emr: EmrSettings, config_path: str) -> None:
    if not emr.execution_role_arn.strip():
        raise UserError(
            f"No role for the EMR Serverless job run: set EXECUTION_ROLE_ARN in the [EMR] section of {config_path} "
            "to an IAM role EMR Serverless can assume, e.g. arn:aws:iam::123456789012:role/sparkify-emr-serverless."
        )


def submit_serverless(
    settings: Settings,
    config_path: str,
    application_id: Optional[str],
    input_uri: Optional[str],
    output_uri: Optional[str],
    session: Any,
    out: TextIO,
    repo_root: str = REPO_ROOT,
    kafka: bool = False,
) -> Tuple[Any, str, str, str]:
    """Upload the code and start an EMR Serverless job run; return (client, application id, job run id, log URI).
    ``kafka``: the Kafka stream (``etl.py --stream --source kafka``) as a streaming job run, with Spark's Kafka
    connector uploaded beside the code (EMR Serverless fetches nothing from Maven without a NAT)."""
    emr = settings.emr
    check_emr_settings(emr, config_path)
    check_serverless_settings(emr, config_path)
    code_uri = require_s3(emr.code_uri, "[EMR] CODE_URI")
    source, target = resolve_io(emr, config_path, input_uri, output_uri)
    log_uri = log_uri_for(emr, code_uri)

    if kafka:
        refuse_kafka_secrets(config_path)
    uploaded = upload_code(session.client("s3"), config_path, code_uri, repo_root)
    print(uploaded_line(uploaded, code_uri), file=out)
    client = session.client("emr-serverless")
    app_id = serverless.ensure_application(
        client, (application_id or emr.application_id).strip(), emr.release_label, out
    )
    conf = serverless.iceberg_conf(iceberg_spark_conf(target)) if settings.table_format == "iceberg" else {}
    if emr.python_packages.strip():
        conf.update(serverless.python_packages_conf(upload_packages(session.client("s3"), emr, code_uri, out)))
    arguments = etl_arguments(source, target)
    if kafka:
        jars = upload_kafka_jars(session.client("s3"), code_uri, out)
        conf["spark.jars"] = ",".join(filter(None, [conf.get("spark.jars", ""), *jars]))
        arguments += ["--stream", "--source", "kafka"]
    request = serverless.build_job_run_request(
        app_id,
        emr.execution_role_arn.strip(),
        uploaded[ETL_NAME],
        arguments,
        serverless.spark_submit_parameters(uploaded[ZIP_NAME], uploaded[CONFIG_NAME], conf),
        log_uri,
    )
    if kafka:
        request["mode"] = "STREAMING"  # EMR Serverless restarts a streaming job run that fails (retryPolicy)
    job_run_id = client.start_job_run(**request)["jobRunId"]
    print(f"Job run {job_run_id} on application {app_id}: {source} -> {target}. Logs: {log_uri}", file=out, flush=True)
    return client, app_id, job_run_id, log_uri


KAFKA_SECRET = re.compile(r"password|secret", re.IGNORECASE)


def refuse_kafka_secrets(config_path: str) -> None:
    """UserError when a [KAFKA] option holds a password: dl.cfg travels to S3 (on EMR, MSK's IAM authentication
    takes the job run's role, with no secret in the file)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_path, encoding="utf-8")
    if not parser.has_section("KAFKA"):
        return
    for key, value in parser["KAFKA"].items():
        if KAFKA_SECRET.search(key) or KAFKA_SECRET.search(value):
            raise UserError(
                f"[KAFKA] {key} in {config_path} holds a password, and dl.cfg is uploaded to S3 for the job run. On "
                "Amazon MSK use IAM authentication (kafka.security.protocol = SASL_SSL, kafka.sasl.mechanism = "
                "AWS_MSK_IAM, the execution role allowed kafka-cluster:Connect/ReadData), or remove the key."
            )


def upload_kafka_jars(s3: Any, code_uri: str, out: TextIO) -> List[str]:
    """Spark's Kafka connector (.jars/kafka/, `make kafka`) uploaded to CODE_URI/jars/; their s3:// URIs."""
    jars = sorted(glob.glob(os.path.join(KAFKA_JARS_DIR, "*.jar")))
    if not any(os.path.basename(j).startswith("spark-sql-kafka-0-10") for j in jars):
        raise UserError(
            f"Spark's Kafka connector is not in {KAFKA_JARS_DIR}: run `make kafka` (mvn fetches it from Maven "
            "Central); the job run gets it from CODE_URI, as EMR Serverless fetches nothing from Maven without a NAT."
        )
    bucket, prefix = split_s3_uri(code_uri)
    uris = []
    for jar in jars:
        key = join_key(prefix, f"jars/{os.path.basename(jar)}")
        s3.upload_file(jar, bucket, key)
        uris.append(f"s3://{bucket}/{key}")
    print(f"Uploaded Spark's Kafka connector ({len(uris)} jars) to {code_uri.rstrip('/')}/jars/", file=out)
    return uris


def upload_packages(s3: Any, emr: EmrSettings, code_uri: str, out: TextIO) -> str:
    """[EMR] PYTHON_PACKAGES installed for the image's Python, packed and uploaded beside the code; its URI."""
    archive = serverless.python_packages_archive(emr.python_packages)
    bucket, prefix = split_s3_uri(code_uri)
    key = join_key(prefix, serverless.PACKAGES_NAME)
    s3.upload_file(archive, bucket, key)
    size = os.path.getsize(archive) / 1e6
    print(f"Uploaded s3://{bucket}/{key} ({emr.python_packages} for Python 3.9, {size:.1f} MB)", file=out)
    return f"s3://{bucket}/{key}"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.emr",
        description="Run the Sparkify ETL on Amazon EMR (settings: the [EMR] section of dl.cfg).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    sub = commands.add_parser(
        "submit",
        help="upload the code and run etl.py as a Spark step",
        description="Upload etl.py, the sparkify package (zip) and dl.cfg (its [AWS] values blanked) to "
        "[EMR] CODE_URI, then run etl.py as a spark-submit step on a new cluster that terminates after it, "
        "or on a running cluster; with --serverless ([EMR] MODE = serverless), as an EMR Serverless job run. Waits "
        "for it unless --no-wait. Exit code: 0 completed (or submitted), 1 it failed, was cancelled or interrupted, "
        "2 a problem to fix.",
    )
    sub.add_argument(
        "--config", default=DEFAULT_CONFIG, help="settings file with an [EMR] section; default: %(default)s"
    )
    where = sub.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster-id",
        help="add the step to this running cluster (j-...) instead of creating one; overrides [EMR] CLUSTER_ID",
    )
    where.add_argument(
        "--serverless",
        action="store_true",
        help="run on EMR Serverless (a job run) instead of an EMR cluster; as [EMR] MODE = serverless",
    )
    sub.add_argument(
        "--application-id",
        help="EMR Serverless: run on this application instead of sparkify-etl (created when absent); "
        "overrides [EMR] APPLICATION_ID",
    )
    sub.add_argument(
        "--input", help="S3 root holding song_data/ and log_data/ (s3:// or s3a://); overrides [EMR] INPUT_DATA"
    )
    sub.add_argument("--output", help="S3 root for the five tables (s3:// or s3a://); overrides [EMR] OUTPUT_DATA")
    sub.add_argument(
        "--no-wait", action="store_true", help="return once the step is submitted instead of following it to the end"
    )
    sub.add_argument(
        "--kafka",
        action="store_true",
        help="EMR Serverless: run the Kafka stream ([KAFKA] of the config) as a streaming job run, with Spark's "
        "Kafka connector uploaded beside the code",
    )
    return parser.parse_args(argv)


def follow_step(args: argparse.Namespace, settings: Settings, sleep: Callable[[float], Any]) -> int:
    client, cluster_id, step_id = submit(
        settings, args.config, args.cluster_id, args.input, args.output, make_session(settings), sys.stdout
    )
    follow = f"aws emr describe-step --cluster-id {cluster_id} --step-id {step_id} --region {settings.emr.region}"
    if args.no_wait:
        print(f"Not waiting. Follow it with: {follow}")
        return 0
    try:
        return wait_for_step(client, cluster_id, step_id, settings.emr.poll_seconds, sleep=sleep)
    except KeyboardInterrupt:
        print(f"\nStopped following; the step goes on. Follow it with: {follow}", file=sys.stderr)
        return 130


def follow_job_run(args: argparse.Namespace, settings: Settings, sleep: Callable[[float], Any]) -> int:
    client, app_id, run_id, log_uri = submit_serverless(
        settings, args.config, args.application_id, args.input, args.output, make_session(settings), sys.stdout,
        kafka=args.kafka,
    )  # fmt: skip
    region = settings.emr.region
    follow = f"aws emr-serverless get-job-run --application-id {app_id} --job-run-id {run_id} --region {region}"
    if args.no_wait:
        print(f"Not waiting. Follow it with: {follow}")
        return 0
    try:
        return serverless.wait_for_job_run(
            client, app_id, run_id, settings.emr.poll_seconds, log_uri, lambda: _stamp(_utcnow), sleep=sleep
        )
    except KeyboardInterrupt:
        print(f"\nStopped following; the job run goes on. Follow it with: {follow}", file=sys.stderr)
        return 130


def main(argv: Optional[List[str]] = None, sleep: Callable[[float], Any] = time.sleep) -> int:
    args = parse_args(argv)
    secrets: List[str] = []
    try:
        settings = load_settings(args.config)
        secrets = [settings.aws.access_key_id, settings.aws.secret_access_key, settings.aws.session_token]
        if args.serverless or (settings.emr.mode == "serverless" and not args.cluster_id):
            return follow_job_run(args, settings, sleep)
        if args.kafka:
            raise UserError("--kafka runs on EMR Serverless (a streaming job run): add --serverless.")
        return follow_step(args, settings, sleep)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {redact(aws_error_message(exc), secrets)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
