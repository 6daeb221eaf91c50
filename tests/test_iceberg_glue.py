"""[ETL] TABLE_FORMAT = iceberg with [CATALOG] TYPE = glue, on S3 (SeaweedFS): the tables are Iceberg's GlueCatalog's
(moto's Glue behind tests/glue_server.py's conditional UpdateTable), their files through Iceberg's S3FileIO, still at
OUTPUT/<table>/. Each Glue entry is Iceberg's own (table_type ICEBERG, the current metadata_location after every
commit); two writers committing at once lose no commit; a run killed while writing songs leaves every table at its
previous snapshot."""

from __future__ import annotations

import json

import boto3
import pytest

from sparkify.core.schemas import TABLES
from sparkify.platform.conf import local_jars
from tests import glue_server, s3server
from tests.conftest import SAMPLE, run_etl
from tests.test_iceberg import (
    config,
    duckdb_connection,
    duckdb_rows,
    etl,
    kill_once_songs_are_written,
    needs_iceberg,
    parquet_rows,
)
from tests.test_iceberg_catalog import TWO_WRITERS

pytestmark = [
    needs_iceberg,
    pytest.mark.slow,
    pytest.mark.skipif(not local_jars(), reason="S3A jars absent: `make jars` (make test does it)"),
]
BUCKET = "sparkify-glue"
LAKE = f"s3://{BUCKET}/lake"


@pytest.fixture(scope="module")
def glue_endpoint(tmp_path_factory):
    """moto's Glue with Glue's conditional UpdateTable (tests/glue_server.py): its endpoint and the proxy."""
    yield from glue_server.run_glue(str(tmp_path_factory.mktemp("moto") / "moto.log"))


def glue_client(glue_endpoint):
    return boto3.client(
        "glue",
        endpoint_url=glue_endpoint[0],
        region_name=glue_server.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def glue_config(path, endpoint, glue_endpoint):
    cfg = config(
        path,
        f"s3://{BUCKET}/raw",
        LAKE,
        f"[AWS]\nAWS_ACCESS_KEY_ID = {s3server.ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY = {s3server.SECRET_KEY}\n"
        f"[S3]\nENDPOINT = {endpoint}\nPATH_STYLE_ACCESS = true\n[EMR]\nREGION = {glue_server.REGION}\n",
    )
    with open(cfg, encoding="utf-8") as handle:
        text = handle.read().replace("TYPE = none", f"TYPE = glue\nGLUE_ENDPOINT = {glue_endpoint[0]}")
    with open(cfg, "w", encoding="utf-8") as handle:
        handle.write(text)
    return cfg


def s3_report(client, run_id=None):
    """The newest run report under lake/_reports/ (or run ``run_id``'s)."""
    keys = sorted(
        o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="lake/_reports/").get("Contents", [])
        if o["Key"].endswith(".json") and (run_id is None or run_id in o["Key"])
    )  # fmt: skip
    return json.loads(client.get_object(Bucket=BUCKET, Key=keys[-1])["Body"].read())


def glue_tables(glue):
    return {t["Name"]: t for t in glue.get_tables(DatabaseName="sparkify")["TableList"]}


@pytest.fixture(scope="module")
def glue_sample(endpoint, glue_endpoint, tmp_path_factory):
    """The sample from S3 to S3 with the checks, the tables in Iceberg's GlueCatalog."""
    client = s3server.client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    s3server.upload_tree(client, BUCKET, SAMPLE, "raw")
    cfg = glue_config(tmp_path_factory.mktemp("glue") / "dl.cfg", endpoint, glue_endpoint)
    done = etl(cfg)
    assert "Catalog (Iceberg's glue catalog): 5 tables, each commit the catalog's" in done.stdout, done.stdout[-1500:]
    return cfg, client, s3_report(client)


def test_the_tables_are_iceberg_glue_entries_naming_the_current_metadata_file(
    spark, sample_run, endpoint, glue_endpoint, glue_sample
):
    _, client, report = glue_sample
    assert report["status"] == "ok" and [c for c in report["checks"] if c["status"] != "passed"] == []
    assert report["catalog"]["catalog"] == "Iceberg's glue catalog"
    files = report["catalog"]["metadata_files"]
    found = glue_tables(glue_client(glue_endpoint))
    assert sorted(found) == sorted(t.name for t in TABLES)
    for table in TABLES:
        entry = found[table.name]
        assert entry["Parameters"]["table_type"].upper() == "ICEBERG"
        assert entry["Parameters"]["metadata_location"] == files[table.name]
        assert files[table.name].startswith(f"{LAKE}/{table.name}/metadata/"), files[table.name]  # s3://: Athena's
        assert entry["StorageDescriptor"]["Location"] == f"{LAKE}/{table.name}"
        client.head_object(Bucket=BUCKET, Key=files[table.name].split(f"{BUCKET}/", 1)[1])
        assert not _keys(client, f"lake/{table.name}/metadata/version-hint.text")  # no path table beside it
    _, parquet_root = sample_run
    got = duckdb_rows(duckdb_connection(endpoint), LAKE, files)
    assert got == parquet_rows(spark, parquet_root)


def _keys(client, prefix):
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return set(keys)


def test_a_run_killed_while_writing_songs_leaves_every_glue_table_at_its_previous_snapshot(
    spark, sample_run, endpoint, glue_endpoint, glue_sample
):
    cfg, client, _ = glue_sample
    glue = glue_client(glue_endpoint)
    for attempt in range(3):  # the kill must land before the songs commit: tried again if it came after it
        located = {name: t["Parameters"]["metadata_location"] for name, t in glue_tables(glue).items()}
        before = kill_once_songs_are_written(cfg, lambda prefix: _keys(client, prefix))
        after = {name: t["Parameters"]["metadata_location"] for name, t in glue_tables(glue).items()}
        if after["songs"] == located["songs"]:
            break
        print(f"\nattempt {attempt}: the songs commit came before the kill; again")
    left = {k for k in _keys(client, "lake/songs/") - before}
    print(f"\nkilled while writing songs: {len(left)} songs objects left; Glue entries changed: "
          f"{sorted(n for n in after if after[n] != located[n])}")  # fmt: skip
    assert left
    assert after["songs"] == located["songs"] and after["songplays"] == located["songplays"]
    con = duckdb_connection(endpoint)
    referenced = {
        row[0].split(f"{BUCKET}/", 1)[1]
        for row in con.execute(f"SELECT file_path FROM iceberg_metadata('{after['songs']}')").fetchall()
    }
    assert referenced and not left & referenced  # the killed run's files: orphans, no snapshot has them
    _, parquet_root = sample_run
    assert duckdb_rows(con, LAKE, after) == parquet_rows(spark, parquet_root)  # every table whole, as Glue names it


WRITERS = (
    """
import json, sys, threading
from sparkify.core.config import load_settings
from sparkify.platform.session import build_session
spark = build_session(load_settings(sys.argv[1]))
"""
    + TWO_WRITERS.replace("TIME", "sparkify.sparkify.time")
    + """
newest = spark.sql("SELECT file FROM sparkify.sparkify.time.metadata_log_entries ORDER BY timestamp DESC").collect()
print("VIEW" + json.dumps({"before": before, "after": after, "errors": errors, "commits": commits,
                           "files": [r.file for r in newest[:2]]}))
"""
)


def test_two_writers_committing_through_glue_at_once_lose_no_commit(glue_endpoint, glue_sample):
    """8 appends from two sessions at once: Glue refuses the stale ones (VersionId), Iceberg retries them."""
    cfg, _, _ = glue_sample
    refused = glue_endpoint[1].refused
    done = run_etl(cfg, code=WRITERS)
    assert done.returncode == 0, done.stderr[-3000:]
    view = json.loads(done.stdout.split("VIEW", 1)[1])
    print(f"\n{view}; Glue refused {glue_endpoint[1].refused - refused} stale updates")
    assert view["errors"] == []
    assert view["after"] == view["before"] + 8
    assert view["commits"] >= 9  # the run's and the 8 appends
    assert glue_endpoint[1].refused > refused  # they did collide, and were retried
    entry = glue_tables(glue_client(glue_endpoint))["time"]["Parameters"]
    assert [entry["metadata_location"], entry["previous_metadata_location"]] == view["files"]
