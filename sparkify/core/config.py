"""Settings: one place that reads dl.cfg (configparser), the environment and the command line."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Tuple

from sparkify.core.errors import UserError

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # sparkify/
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
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


TABLE_FORMATS = ("parquet", "iceberg")
CATALOG_TYPES = ("auto", "glue", "local", "none")
JIT_MODES = ("auto", "c1", "tiered")
# [ETL] SONGS_PARTITION_BY: the default (by year, rows sorted by artist_id), then the classic layout of
# the exercise (a folder per year and artist: sparkify.schemas.songs_table_spec).
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
    # (c1 when a local run's log_data/ is small; see sparkify.session.quick_jit).
    jit: str = "auto"
    # A local run maps the classes its first successful run archived (sparkify.session, CDS_DIR).
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
    verbose: bool = False
    allow_bucket_root: bool = False  # --force: allow writing the tables at a bucket's root

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _resolve(path: str, base_dir: str) -> str:
    """A relative local path in dl.cfg is relative to the file; URIs stay as they are."""
    if not path or "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


def _get(parser: configparser.ConfigParser, section: str, key: str, default: str = "") -> str:
    return parser.get(section, key, fallback=default).strip()


def load_settings(config_path: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Settings:
    """Read settings from a dl.cfg file. A missing file is an error; missing keys take defaults."""
    path = config_path or DEFAULT_CONFIG
    env = os.environ if env is None else env
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

    base = os.path.dirname(os.path.abspath(path))

    def number(section: str, key: str, default: str, kind: type) -> object:
        raw = _get(parser, section, key, default) or default
        try:
            return kind(raw)
        except ValueError:
            raise UserError(
                f"{path}: [{section}] {key} = {raw!r} is not a {kind.__name__}. Set a number, e.g. {default}."
            ) from None

    if bool(_get(parser, "AWS", "AWS_ACCESS_KEY_ID")) != bool(_get(parser, "AWS", "AWS_SECRET_ACCESS_KEY")):
        given, missing = (
            ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            if _get(parser, "AWS", "AWS_ACCESS_KEY_ID")
            else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
        )
        raise UserError(
            f"{path}: [AWS] {given} is set but {missing} is empty. Set both, or leave both empty to use "
            "the AWS_* environment variables or the instance role."
        )
    aws = AwsCredentials(
        access_key_id=_get(parser, "AWS", "AWS_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID", ""),
        secret_access_key=_get(parser, "AWS", "AWS_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY", ""),
        session_token=_get(parser, "AWS", "AWS_SESSION_TOKEN") or env.get("AWS_SESSION_TOKEN", ""),
    )
    defaults = EmrSettings()
    emr = EmrSettings(
        region=_get(parser, "EMR", "REGION", defaults.region) or env.get("AWS_DEFAULT_REGION", defaults.region),
        cluster_id=_get(parser, "EMR", "CLUSTER_ID"),
        release_label=_get(parser, "EMR", "RELEASE_LABEL", defaults.release_label),
        instance_type=_get(parser, "EMR", "INSTANCE_TYPE", defaults.instance_type),
        core_instances=number("EMR", "CORE_INSTANCES", str(defaults.core_instances), int),  # type: ignore[arg-type]
        code_uri=_get(parser, "EMR", "CODE_URI"),
        log_uri=_get(parser, "EMR", "LOG_URI"),
        service_role=_get(parser, "EMR", "SERVICE_ROLE", defaults.service_role),
        job_flow_role=_get(parser, "EMR", "JOB_FLOW_ROLE", defaults.job_flow_role),
        input_data=_get(parser, "EMR", "INPUT_DATA"),
        output_data=_get(parser, "EMR", "OUTPUT_DATA"),
        poll_seconds=number("EMR", "POLL_SECONDS", "30", float),  # type: ignore[arg-type]
    )
    layout_text = _get(parser, "ETL", "SONGS_PARTITION_BY", "year") or "year"
    layout = tuple(c.strip() for c in layout_text.split(",") if c.strip())
    if layout not in SONGS_LAYOUTS:
        raise UserError(
            f"{path}: [ETL] SONGS_PARTITION_BY = {', '.join(layout)!r} is not a songs layout. "
            "Set `year` (the default) or `year, artist_id` (the classic layout)."
        )
    kafka = KafkaSettings(
        bootstrap_servers=_get(parser, "KAFKA", "BOOTSTRAP_SERVERS"),
        topic=_get(parser, "KAFKA", "TOPIC", "sparkify-events") or "sparkify-events",
        starting_offsets=_get(parser, "KAFKA", "STARTING_OFFSETS", "earliest") or "earliest",
        max_offsets_per_trigger=number("KAFKA", "MAX_OFFSETS_PER_TRIGGER", "100000", int),  # type: ignore[arg-type]
        options={
            key: value.strip()
            for key, value in (parser.items("KAFKA") if parser.has_section("KAFKA") else [])
            if key.startswith("kafka.") and value.strip()
        },
    )
    table_format = (_get(parser, "ETL", "TABLE_FORMAT", "parquet") or "parquet").lower()
    if table_format not in TABLE_FORMATS:
        raise UserError(f"{path}: [ETL] TABLE_FORMAT = {table_format!r} is not a format. Set parquet or iceberg.")
    catalog_type = (_get(parser, "CATALOG", "TYPE", "auto") or "auto").lower()
    if catalog_type not in CATALOG_TYPES:
        raise UserError(f"{path}: [CATALOG] TYPE = {catalog_type!r} is not a catalog. Set glue, local, none or auto.")
    jit = (_get(parser, "SPARK", "JIT", "auto") or "auto").lower()
    if jit not in JIT_MODES:
        raise UserError(f"{path}: [SPARK] JIT = {jit!r} is not a choice. Set auto, c1 or tiered.")
    return Settings(
        emr=emr,
        kafka=kafka,
        table_format=table_format,
        catalog_type=catalog_type,
        catalog_database=_get(parser, "CATALOG", "DATABASE", "sparkify") or "sparkify",
        songs_partition_by=layout,
        input_root=_resolve(_get(parser, "ETL", "INPUT_DATA"), base),
        output_root=_resolve(_get(parser, "ETL", "OUTPUT_DATA"), base),
        duration_tolerance=number("ETL", "DURATION_TOLERANCE_SECONDS", "2.0", float),  # type: ignore[arg-type]
        max_rejected_share=number("ETL", "MAX_REJECTED_SHARE", "0.05", float),  # type: ignore[arg-type]
        master=_get(parser, "SPARK", "MASTER"),
        shuffle_partitions=number("SPARK", "SHUFFLE_PARTITIONS", "64", int),  # type: ignore[arg-type]
        driver_memory=_get(parser, "SPARK", "DRIVER_MEMORY", "3g") or "3g",
        jit=jit,
        class_sharing=_get(parser, "SPARK", "CLASS_SHARING", "on").lower() not in ("off", "false", "0", "no"),
        jars_packages=_get(parser, "SPARK", "JARS_PACKAGES"),
        s3_endpoint=_get(parser, "S3", "ENDPOINT"),
        s3_path_style=_get(parser, "S3", "PATH_STYLE_ACCESS", "false").lower() in ("1", "true", "yes"),
        aws=aws,
    )
