"""The job from settings to exit code, in each mode: full, incremental, stream, checks-only."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlparse

from sparkify import catalogs as catalog
from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.platform import s3
from sparkify.platform.conf import local_jars
from sparkify.platform.fs import is_local, local_path
from sparkify.platform.session import build_session, end_local_jvm
from sparkify.quality import site
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.quality.report import format_results, summary
from sparkify.runs.engine import report_uri, run
from sparkify.runs.plan import CHECKS, FULL, INCREMENTAL, Job
from sparkify.runs.stream import run_stream
from sparkify.runs.timing import stage
from sparkify.sinks import check_format
from sparkify.sources import source_named
from sparkify.sources.files import check_local_input


def report_line(settings: Settings, run_id: str, presign: bool) -> str:
    """The run's last line: its page (and, with ``presign`` on S3, a URL that opens it for 7 days); '' when
    pages cannot be drawn here (the JSON report's path is printed instead)."""
    if not site.can_draw():
        return ""
    page = site.page_uri(settings.output_root, run_id)
    if presign and s3.is_s3(page):
        return f"Report: {page} (presigned for 7 days: {s3.presigned_url(settings, page)})"
    return f"Report: {page} (JSON beside it; all runs: {site.page_uri(settings.output_root, 'index')})"


def _validate_paths(settings: Settings) -> None:
    for value, key, flag in (
        (settings.input_root, "INPUT_DATA", "--input"),
        (settings.output_root, "OUTPUT_DATA", "--output"),
    ):
        if not value:
            raise UserError(f"No {key}: set [ETL] {key} in dl.cfg, or pass {flag}.")
    source, target = (
        uri.rstrip("/") if "://" in uri else os.path.abspath(uri) for uri in (settings.input_root, settings.output_root)
    )
    if target == source or target.startswith(source + "/"):
        raise UserError(
            f"The output {settings.output_root} is inside the input {settings.input_root}: the tables would be "
            "written among the raw data. Choose an OUTPUT_DATA / --output outside the input root."
        )
    parsed = urlparse(settings.output_root)
    if s3.is_s3(settings.output_root) and parsed.path.strip("/") == "" and not settings.allow_bucket_root:
        raise UserError(
            f"The output {settings.output_root} is a bucket's root: overwriting tables there could replace "
            "other data in the bucket. Use a prefix (s3://bucket/lake), or pass --force if you mean it."
        )
    if is_local(settings.output_root):
        folder = local_path(settings.output_root)
        try:
            os.makedirs(folder, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise UserError(
                f"The output {settings.output_root} is not writable ({exc.strerror}). "
                "Choose a writable OUTPUT_DATA / --output."
            ) from None


def prepare(settings: Settings) -> Settings:
    """Map URIs to the platform's S3 scheme and check what can be checked without Spark."""
    emr = s3.on_emr()
    settings = settings.with_overrides(
        input_root=s3.normalize_uri(settings.input_root, emr), output_root=s3.normalize_uri(settings.output_root, emr)
    )
    check_format(settings)
    catalog.check_type(settings)
    if settings.catalog_type == "auto":  # a local output gets a local catalog; S3 none unless glue is asked for
        # (Parquet: a Hive metastore; Iceberg: Iceberg's JDBC catalog, both in OUTPUT/_catalog/)
        settings = settings.with_overrides(catalog_type="local" if is_local(settings.output_root) else "none")
    _validate_paths(settings)
    uses_s3a = any(s3.is_s3(uri) for uri in (settings.input_root, settings.output_root))
    if uses_s3a and not emr and not local_jars() and not settings.jars_packages:
        raise UserError(
            "The S3A connector is not installed: run `make jars` (it fetches hadoop-aws 3.3.4, the AWS SDK bundle "
            "and spark-hadoop-cloud from Maven Central into .jars/ with mvn), or set [SPARK] JARS_PACKAGES in "
            "dl.cfg to org.apache.hadoop:hadoop-aws:3.3.4."
        )
    check_local_input(settings.input_root)
    return settings


def execute(
    settings: Settings,
    mode: str = "full",
    skip_checks: bool = False,
    days: Optional[Tuple[dt.date, dt.date]] = None,
    rebuild_songs: bool = False,
    stream: Optional[Dict[str, Any]] = None,
    presign: bool = False,
) -> int:
    """The job from settings to exit code: 0 ok, 1 a check failed, 2 a problem the user can fix.
    ``mode``: full, incremental (``days``), stream (``stream``: its options) or checks."""
    settings = prepare(settings) if mode != "checks" else settings
    if mode == "stream" and settings.jit == "auto":  # a stream runs for long: worth C2's compiled code
        settings = settings.with_overrides(jit="tiered")
    source = source_named((stream or {}).get("source", "files")) if mode == "stream" else None
    if source is not None:
        source.precheck(settings)
    started: Dict[str, float] = {}
    with stage(started, "start Spark session", log=False):  # a batch run's classes are worth archiving
        jars = source.jars(settings) if source else ""
        spark = build_session(settings, extra_jars=jars, archive_classes=mode in ("full", "incremental"))
    if mode == "stream":  # the local catalog opens while the stream reads and writes (a batch run's: in run)
        catalog.open_in_background(spark, settings)
    checks = [] if skip_checks else DEFAULT_CHECKS
    if mode == "stream":
        batches = run_stream(spark, settings, **(stream or {}))
        print(f"Stream stopped after {len(batches)} micro-batches; output: {settings.output_root}")
        if not checks or not batches:
            return 0
        mode = "checks"  # the checks that apply to a stream: those that need no run's counts
    if mode == "checks":
        result = run(spark, settings, Job(CHECKS), DEFAULT_CHECKS)
        print(format_results(result.checks))
    else:
        job = Job(INCREMENTAL if days else FULL, days=days, rebuild_songs=rebuild_songs)
        result = run(spark, settings, job, checks, session_seconds=started)
        last = report_line(settings, result.run_id, presign)
        print(summary(result, report_uri(settings.output_root, result.run_id), last))
    end_local_jvm(spark)  # a first local run leaves its class archive for the next ones
    return 1 if result.checks_failed else 0
