"""Settings: one place that reads dl.cfg (configparser), the environment and the command line."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from sparkify.core.errors import UserError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # sparkify/
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
JARS_DIR = os.path.join(REPO_ROOT, ".jars")  # `make jars` (tools/fetch_jars.py)
KAFKA_JARS_DIR = os.path.join(JARS_DIR, "kafka")  # Spark's Kafka connector
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "dl.cfg")


@dataclass(frozen=True)
class AwsCredentials:
    """Keys from dl.cfg. Empty means: use the default AWS chain (env vars, instance profile)."""

    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    @property
    def given(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    @property
    def secrets(self) -> Tuple[str, str]:
        """What no message, log or report may show (``errors.redact``)."""
        return self.secret_access_key, self.session_token

    def __repr__(self) -> str:  # never show the secret
        shown = self.access_key_id[:4] + "…" if self.access_key_id else ""
        return f"AwsCredentials(access_key_id={shown!r}, secret=***)"


@dataclass(frozen=True)
class EmrSettings:
    """[EMR] section: where and how `python -m sparkify.emr submit` runs the job."""

    region: str = "us-west-2"
    cluster_id: str = ""  # empty: create a cluster that terminates after the step
    release_label: str = "emr-7.5.0"
    instance_type: str = "m5.xlarge"
    core_instances: int = 2
    code_uri: str = ""  # s3://bucket/prefix where etl.py, the package zip and dl.cfg are uploaded
    log_uri: str = ""
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    input_data: str = ""  # s3:// input root for the EMR run
    output_data: str = ""  # s3:// output root for the EMR run
    poll_seconds: float = 30.0
    mode: str = "cluster"  # cluster: EMR on EC2 (a step); serverless: an EMR Serverless job run
    application_id: str = ""  # EMR Serverless: empty, the application sparkify-etl (created when absent)
    execution_role_arn: str = ""  # EMR Serverless: the job run's IAM role (required in serverless mode)
    # EMR Serverless: pip requirements the image's Python 3.9 lacks, shipped as an archive (spark.archives);
    # "none" in dl.cfg: ship none. boto3 1.43+ needs Python 3.10: 1.42.97 is the last one for EMR 7's Python 3.9;
    # pygal draws the report pages.
    python_packages: str = "boto3==1.42.97 pygal==3.1.3"


@dataclass(frozen=True)
class KafkaSettings:
    """[KAFKA] section: the topic a stream reads (``python etl.py --stream --source kafka``).

    ``options``: every ``kafka.*`` key of the section, passed to Spark's Kafka connector as it is
    (security for Amazon MSK: kafka.security.protocol, kafka.sasl.mechanism,
    kafka.sasl.jaas.config, ...). Never printed."""

    bootstrap_servers: str = ""
    topic: str = "sparkify-events"
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int = 100_000
    options: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # the options may hold secrets
        return (
            f"KafkaSettings(bootstrap_servers={self.bootstrap_servers!r}, topic={self.topic!r}, "
            f"starting_offsets={self.starting_offsets!r}, options={sorted(self.options)})"
        )


JIT_MODES = ("auto", "c1", "tiered")
EMR_MODES = ("cluster", "serverless")  # [EMR] MODE: EMR on EC2 (a step on a cluster) or EMR Serverless
# [ETL] SONGS_PARTITION_BY: the default (by year, rows sorted by artist_id), then the classic layout of
# the exercise (a folder per year and artist: sparkify.core.schemas.songs_table_spec).
SONGS_LAYOUTS: Tuple[Tuple[str, ...], ...] = (("year",), ("year", "artist_id"))


@dataclass(frozen=True)
class Settings:
    input_root: str
    output_root: str
    master: str = ""
    shuffle_partitions: int = 64
    driver_memory: str = "3g"
    # The local JVM's compilers: c1 (the quick one only: a short run on small data spends half its
    # CPU in the optimising C2 compiler), tiered (the JVM's default: long stages run faster), auto
    # (c1 when a local run's log_data/ is small; see sparkify.platform.conf.quick_jit).
    jit: str = "auto"
    # A local run maps the classes its first successful run archived (sparkify.platform.conf, CDS_DIR).
    class_sharing: bool = True
    duration_tolerance: float = 2.0
    max_rejected_share: float = 0.05
    # Folders of the songs table: year (one folder per year, rows sorted by artist_id: the default) or
    # the classic year/artist_id (one folder and file per artist and year; see bench/README.md).
    songs_partition_by: Tuple[str, ...] = SONGS_LAYOUTS[0]
    jars_packages: str = ""
    s3_endpoint: str = ""
    s3_path_style: bool = False
    aws: AwsCredentials = AwsCredentials()
    emr: EmrSettings = EmrSettings()
    kafka: KafkaSettings = KafkaSettings()
    # parquet: Hive-style folders of Parquet files; iceberg: Apache Iceberg tables (one atomic
    # commit per write), each at OUTPUT/<table> (a path, Hadoop-catalog table).
    table_format: str = "parquet"
    # [CATALOG]: where the tables are registered by name (glue, local, none; auto: local for a
    # local output, else none) and in which database.
    catalog_type: str = "none"
    catalog_database: str = "sparkify"
    # [CATALOG] GLUE_ENDPOINT: the Glue API's endpoint (a VPC endpoint, or a test double); empty: the region's
    catalog_glue_endpoint: str = ""
    # [CATALOG] URI: an Iceberg REST catalog for an Iceberg output with TYPE local (instead of SQLite in _catalog/);
    # WAREHOUSE: the warehouse it is asked for (empty: the output root); SIGNING_NAME: sign its requests with AWS
    # SigV4 for this service (s3tables: S3 Tables, glue: Glue's Iceberg REST endpoint; empty: no signing)
    catalog_uri: str = ""
    catalog_warehouse: str = ""
    catalog_signing_name: str = ""
    # [STREAM] WATERMARK: how far behind the latest event time seen an event may arrive and still be told
    # apart from a repeat (Structured Streaming's watermark; sparkify.transform.deduplicated)
    stream_watermark: str = "1 hour"
    verbose: bool = False
    allow_bucket_root: bool = False  # --force: allow writing the tables at a bucket's root

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# --- dl.cfg: one row per key ---------------------------------------------------------------------


def _flag(raw: str) -> bool:
    return raw.lower() in ("1", "true", "yes", "on")


def _none_is_empty(raw: str) -> str:
    return "" if raw.lower() == "none" else raw


def _layout(raw: str) -> Tuple[str, ...]:
    return tuple(c.strip() for c in raw.split(",") if c.strip())


_UNITS = ("second", "minute", "hour", "day")


def duration(text: str) -> str:
    """A duration as Spark reads one ("1 hour", "10 minutes", "90 seconds"); ValueError otherwise."""
    parts = text.strip().lower().split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1].rstrip("s") not in _UNITS:
        raise ValueError(text)
    return f"{int(parts[0])} {parts[1]}"


@dataclass(frozen=True)
class Setting:
    """One key of dl.cfg: where it goes (``target``: a Settings field, or ``emr.``/``kafka.``/``aws.`` and the
    field of that section's settings), how its text is read, its default, the environment variable that
    fills it when the file leaves it empty, and what it may be (``choices``)."""

    section: str
    key: str
    target: str
    parse: Callable[[str], Any] = str
    default: str = ""
    env: str = ""
    choices: Tuple[Any, ...] = ()
    hint: str = ""  # what to set, when the value is not one of ``choices`` (default: the choices)
    noun: str = "a choice"  # what a value of ``choices`` is, for the message


SETTINGS: Tuple[Setting, ...] = (
    Setting("ETL", "INPUT_DATA", "input_root"),
    Setting("ETL", "OUTPUT_DATA", "output_root"),
    Setting("ETL", "TABLE_FORMAT", "table_format", str.lower, "parquet"),  # a name in sinks.SINKS
    Setting(
        "ETL",
        "SONGS_PARTITION_BY",
        "songs_partition_by",
        _layout,
        "year",
        choices=SONGS_LAYOUTS,
        hint="`year` (the default) or `year, artist_id` (the classic layout)",
        noun="a songs layout",
    ),
    Setting("ETL", "DURATION_TOLERANCE_SECONDS", "duration_tolerance", float, "2.0"),
    Setting("ETL", "MAX_REJECTED_SHARE", "max_rejected_share", float, "0.05"),
    Setting("CATALOG", "TYPE", "catalog_type", str.lower, "auto"),  # auto, none or a name in catalogs.CATALOGS
    Setting("CATALOG", "DATABASE", "catalog_database", str, "sparkify"),
    Setting("CATALOG", "GLUE_ENDPOINT", "catalog_glue_endpoint"),
    Setting("CATALOG", "URI", "catalog_uri"),
    Setting("CATALOG", "WAREHOUSE", "catalog_warehouse"),
    Setting("CATALOG", "SIGNING_NAME", "catalog_signing_name"),
    Setting("SPARK", "MASTER", "master"),
    Setting("SPARK", "SHUFFLE_PARTITIONS", "shuffle_partitions", int, "64"),
    Setting("SPARK", "DRIVER_MEMORY", "driver_memory", str, "3g"),
    Setting("SPARK", "JIT", "jit", str.lower, "auto", choices=JIT_MODES),
    Setting(
        "SPARK", "CLASS_SHARING", "class_sharing", lambda raw: raw.lower() not in ("off", "false", "0", "no"), "on"
    ),
    Setting("SPARK", "JARS_PACKAGES", "jars_packages"),
    Setting("S3", "ENDPOINT", "s3_endpoint"),
    Setting("S3", "PATH_STYLE_ACCESS", "s3_path_style", _flag, "false"),
    Setting("AWS", "AWS_ACCESS_KEY_ID", "aws.access_key_id", env="AWS_ACCESS_KEY_ID"),
    Setting("AWS", "AWS_SECRET_ACCESS_KEY", "aws.secret_access_key", env="AWS_SECRET_ACCESS_KEY"),
    Setting("AWS", "AWS_SESSION_TOKEN", "aws.session_token", env="AWS_SESSION_TOKEN"),
    Setting("EMR", "REGION", "emr.region", str, "us-west-2", env="AWS_DEFAULT_REGION"),
    Setting("EMR", "CLUSTER_ID", "emr.cluster_id"),
    Setting("EMR", "RELEASE_LABEL", "emr.release_label", str, "emr-7.5.0"),
    Setting("EMR", "INSTANCE_TYPE", "emr.instance_type", str, "m5.xlarge"),
    Setting("EMR", "CORE_INSTANCES", "emr.core_instances", int, "2"),
    Setting("EMR", "CODE_URI", "emr.code_uri"),
    Setting("EMR", "LOG_URI", "emr.log_uri"),
    Setting("EMR", "SERVICE_ROLE", "emr.service_role", str, "EMR_DefaultRole"),
    Setting("EMR", "JOB_FLOW_ROLE", "emr.job_flow_role", str, "EMR_EC2_DefaultRole"),
    Setting("EMR", "INPUT_DATA", "emr.input_data"),
    Setting("EMR", "OUTPUT_DATA", "emr.output_data"),
    Setting("EMR", "POLL_SECONDS", "emr.poll_seconds", float, "30"),
    Setting("EMR", "MODE", "emr.mode", str.lower, "cluster", choices=EMR_MODES, noun="an EMR mode"),
    Setting("EMR", "APPLICATION_ID", "emr.application_id"),
    Setting("EMR", "EXECUTION_ROLE_ARN", "emr.execution_role_arn"),
    Setting("EMR", "PYTHON_PACKAGES", "emr.python_packages", _none_is_empty, "boto3==1.42.97 pygal==3.1.3"),
    Setting("KAFKA", "BOOTSTRAP_SERVERS", "kafka.bootstrap_servers"),
    Setting("KAFKA", "TOPIC", "kafka.topic", str, "sparkify-events"),
    Setting("KAFKA", "STARTING_OFFSETS", "kafka.starting_offsets", str, "earliest"),
    Setting("KAFKA", "MAX_OFFSETS_PER_TRIGGER", "kafka.max_offsets_per_trigger", int, "100000"),
    Setting("STREAM", "WATERMARK", "stream_watermark", duration, "1 hour"),
)
PATHS = ("input_root", "output_root")  # a relative local path in dl.cfg is relative to the file


def _value(setting: Setting, raw: str, path: str) -> Any:
    """A key's text as its setting's type; UserError naming the file, section and key otherwise."""
    where = f"{path}: [{setting.section}] {setting.key}"
    try:
        value = setting.parse(raw)
    except ValueError:
        kind = {int: "an integer", float: "a number", duration: "a duration"}.get(setting.parse, "valid")
        example = "a number" if setting.parse in (int, float) else "a number and a unit (seconds, minutes, hours, days)"
        raise UserError(f"{where} = {raw!r} is not {kind}. Set {example}, e.g. {setting.default}.") from None
    if setting.choices and value not in setting.choices:
        shown = ", ".join(value) if isinstance(value, tuple) else value
        names = [str(c) for c in setting.choices]
        hint = setting.hint or (", ".join(names[:-1]) + " or " + names[-1])
        raise UserError(f"{where} = {shown!r} is not {setting.noun}. Set {hint}.")
    return value


def _read_file(path: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise UserError(
            f"Cannot read the config file {path} ({exc.strerror}). "
            "Pass --config PATH to a readable dl.cfg, or run from the repository root, which ships one."
        ) from None
    except configparser.Error as exc:
        raise UserError(f"The config file {path} is not valid INI: {exc.message}. Fix the line it names.") from None
    return parser


def _check_key_pair(parser: configparser.ConfigParser, path: str) -> None:
    """Both AWS keys or neither: one alone is a mistake, never the default chain."""
    access = parser.get("AWS", "AWS_ACCESS_KEY_ID", fallback="").strip()
    secret = parser.get("AWS", "AWS_SECRET_ACCESS_KEY", fallback="").strip()
    if bool(access) != bool(secret):
        given, missing = (
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if access else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        )
        raise UserError(
            f"{path}: [AWS] {given} is set but {missing} is empty. Set both, or leave both empty to use "
            "the AWS_* environment variables or the instance role."
        )


def load_settings(config_path: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read settings from a dl.cfg file (``SETTINGS``: a row per key). A missing file is an error; an empty or
    missing key takes its environment variable, else its default."""
    path = config_path or DEFAULT_CONFIG
    env = os.environ if env is None else env
    parser = _read_file(path)
    _check_key_pair(parser, path)
    fields: Dict[str, Dict[str, Any]] = {"": {}, "aws": {}, "emr": {}, "kafka": {}}
    for setting in SETTINGS:
        raw = parser.get(setting.section, setting.key, fallback="").strip()
        raw = raw or (env.get(setting.env, "") if setting.env else "") or setting.default
        group, _, name = setting.target.rpartition(".")
        fields[group][name] = _value(setting, raw, path)
    base = os.path.dirname(os.path.abspath(path))
    for name in PATHS:
        fields[""][name] = _resolve(fields[""][name], base)
    fields["kafka"]["options"] = {  # passed to Spark's Kafka connector as they are (security for MSK)
        key: value.strip()
        for key, value in (parser.items("KAFKA") if parser.has_section("KAFKA") else [])
        if key.startswith("kafka.") and value.strip()
    }
    return Settings(
        aws=AwsCredentials(**fields["aws"]),
        emr=EmrSettings(**fields["emr"]),
        kafka=KafkaSettings(**fields["kafka"]),
        **fields[""],
    )


def _resolve(path: str, base_dir: str) -> str:
    """A relative local path in dl.cfg is relative to the file; URIs stay as they are."""
    if not path or "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))
