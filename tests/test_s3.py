"""The whole job through Spark's S3A against a real S3 server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time

import pytest

from sparkify import pipeline, s3
from sparkify.config import AwsCredentials
from sparkify.errors import UserError
from sparkify.quality import DEFAULT_CHECKS
from sparkify.schemas import TABLES
from sparkify.session import local_jars
from tests import s3server
from tests.conftest import ROOT, SAMPLE, read_table

needs_jars = pytest.mark.skipif(not local_jars(), reason="S3A jars absent: `make jars` (make test does it)")
BUCKET = "sparkify"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    yield from s3server.run_seaweedfs(str(tmp_path_factory.mktemp("seaweedfs")))


@pytest.fixture(scope="module")
def s3_run(spark, settings, endpoint):
    client = s3server.client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    uploaded = s3server.upload_tree(client, BUCKET, SAMPLE, "raw")
    s3_settings = settings.with_overrides(
        input_root=f"s3a://{BUCKET}/raw",
        output_root=f"s3a://{BUCKET}/lake",
        s3_endpoint=endpoint,
        s3_path_style=True,
        aws=AwsCredentials(s3server.ACCESS_KEY, s3server.SECRET_KEY),
    )
    s3.configure(spark, s3_settings)
    begun = time.monotonic()
    result = pipeline.run(spark, s3_settings, checks=DEFAULT_CHECKS)
    seconds = time.monotonic() - begun
    print(f"\nS3 run: {uploaded} input objects, {seconds:.1f} s")
    return result, s3_settings, client


@needs_jars
def test_s3_output_equals_the_local_output(spark, s3_run, sample_run):
    result, s3_settings, _ = s3_run
    _, local_root = sample_run
    assert result.status == "ok"
    for table in TABLES:
        remote = sorted(read_table(spark, s3_settings.output_root, table.name), key=repr)
        local = sorted(read_table(spark, local_root, table.name), key=repr)
        assert len(remote) > 0
        assert remote == local, table.name


@needs_jars
def test_s3_objects_per_table_are_bounded(s3_run):
    result, _, client = s3_run
    objects = collections.Counter()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix="lake/"):
        for item in page.get("Contents", []):
            table = item["Key"].split("/")[1]
            if item["Key"].endswith(".parquet"):
                objects[table] += 1
    print("\nparquet objects per table:", dict(objects))
    written = {t.table: t for t in result.tables}
    for table in TABLES:
        assert objects[table.name] == written[table.name].files
        assert objects[table.name] <= 2 * max(1, written[table.name].partitions), table.name
    assert result.sources["song_data"].files == 301
    assert [c.name for c in result.checks if c.failed] == []


@needs_jars
def test_a_wrong_secret_fails_clearly_without_showing_it(endpoint, tmp_path, s3_run):
    wrong = "wrong-secret-do-not-print-7c1e"
    cfg = tmp_path / "dl.cfg"
    cfg.write_text(
        f"[ETL]\nINPUT_DATA = s3://{BUCKET}/raw\nOUTPUT_DATA = s3://{BUCKET}/lake-wrong\n"
        f"[SPARK]\nMASTER = local[1]\nSHUFFLE_PARTITIONS = 1\n"
        f"[AWS]\nAWS_ACCESS_KEY_ID = {s3server.ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY = {wrong}\n"
        f"[S3]\nENDPOINT = {endpoint}\nPATH_STYLE_ACCESS = true\n"
    )
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "etl.py"), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"S3 refused access to s3a://{BUCKET}/raw" in out.stderr
    assert "AWS_SECRET_ACCESS_KEY" in out.stderr
    assert wrong not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_uris_are_mapped_to_the_platforms_s3_scheme():
    assert s3.normalize_uri("s3://b/p", emr=False) == "s3a://b/p"
    assert s3.normalize_uri("s3n://b/p", emr=False) == "s3a://b/p"
    assert s3.normalize_uri("s3a://b/p", emr=True) == "s3://b/p"
    assert s3.normalize_uri("/local/p", emr=True) == "/local/p"


def test_s3_without_the_connector_says_how_to_get_it(settings, monkeypatch):
    monkeypatch.setattr(pipeline, "local_jars", lambda: "")
    monkeypatch.setattr(s3, "on_emr", lambda: False)
    with pytest.raises(UserError, match="make jars"):
        pipeline.prepare(settings.with_overrides(input_root="s3://bucket/raw"))
