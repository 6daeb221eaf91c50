"""The whole job through Spark's S3A against a real S3 server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import collections
import json
import os
import re
import time
import urllib.request

import pytest

from sparkify.core.config import AwsCredentials, Settings
from sparkify.core.errors import UserError
from sparkify.core.schemas import TABLES
from sparkify.platform import s3
from sparkify.platform.conf import local_jars
from sparkify.runs import modes
from tests import s3server
from tests.conftest import SAMPLE, read_table, run_etl, start_etl

needs_jars = pytest.mark.skipif(not local_jars(), reason="S3A jars absent: `make jars` (make test does it)")
BUCKET = "sparkify"


def s3_config(path, endpoint, secret, output):
    path.write_text(
        f"[ETL]\nINPUT_DATA = s3://{BUCKET}/raw\nOUTPUT_DATA = s3://{BUCKET}/{output}\n"
        f"[SPARK]\nMASTER = local[2]\nSHUFFLE_PARTITIONS = 2\n"
        f"[AWS]\nAWS_ACCESS_KEY_ID = {s3server.ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY = {secret}\n"
        f"[S3]\nENDPOINT = {endpoint}\nPATH_STYLE_ACCESS = true\n"
    )
    return str(path)


@pytest.fixture(scope="module")
def s3_run(spark, settings, endpoint, tmp_path_factory):
    """`python etl.py --verbose --presign` (INFO logs) from s3:// to s3://; its output and run report."""
    client = s3server.client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    uploaded = s3server.upload_tree(client, BUCKET, SAMPLE, "raw")
    cfg = s3_config(tmp_path_factory.mktemp("s3-config") / "dl.cfg", endpoint, s3server.SECRET_KEY, "lake")
    begun = time.monotonic()
    out = run_etl("--config", cfg, "--verbose", "--presign", timeout=600)
    seconds = time.monotonic() - begun
    assert out.returncode == 0, out.stderr[-3000:]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="lake/_reports/")["Contents"]]
    (key,) = [k for k in keys if k.endswith(".json")]
    report = client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    print(f"\nS3 run: {uploaded} input objects, {seconds:.1f} s including Spark start-up")
    # this session reads the output back with the same credentials
    s3.configure(
        spark,
        settings.with_overrides(
            s3_endpoint=endpoint, s3_path_style=True, aws=AwsCredentials(s3server.ACCESS_KEY, s3server.SECRET_KEY)
        ),
    )
    return json.loads(report), out.stderr + out.stdout, report, client  # stdout last: its last line ends the log


@pytest.mark.slow
@needs_jars
def test_s3_output_equals_the_local_output(spark, s3_run, sample_run):
    report, _, _, _ = s3_run
    _, local_root = sample_run
    assert report["status"] == "ok"
    assert report["output_root"] == f"s3a://{BUCKET}/lake"
    for table in TABLES:
        remote = sorted(read_table(spark, f"s3a://{BUCKET}/lake", table.name), key=repr)
        local = sorted(read_table(spark, local_root, table.name), key=repr)
        assert len(remote) > 0
        assert remote == local, table.name


@pytest.mark.slow
@needs_jars
def test_the_run_page_is_beside_its_report_and_the_last_line_presigns_it(s3_run):
    report, log, _, client = s3_run
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="lake/_reports/")["Contents"]}
    run_id = report["run_id"]
    assert {f"lake/_reports/{run_id}.json", f"lake/_reports/{run_id}.html", "lake/_reports/index.html"} <= keys
    last = [line for line in log.splitlines() if line.strip()][-1]
    page = f"s3a://{BUCKET}/lake/_reports/{run_id}.html"
    match = re.fullmatch(re.escape(f"Report: {page} (presigned for 7 days: ") + r"(http\S+)\)", last)
    assert match, last
    with urllib.request.urlopen(match.group(1), timeout=30) as answer:  # no credentials: the URL's signature
        body = answer.read().decode("utf-8")
    assert f"<h1>Run {run_id}</h1>" in body and "<svg" in body
    assert body == client.get_object(Bucket=BUCKET, Key=f"lake/_reports/{run_id}.html")["Body"].read().decode()


@pytest.mark.slow
@needs_jars
def test_s3_objects_per_table_are_bounded(s3_run):
    report, _, _, client = s3_run
    objects = collections.Counter()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix="lake/"):
        for item in page.get("Contents", []):
            table = item["Key"].split("/")[1]
            if item["Key"].endswith(".parquet"):
                objects[table] += 1
    print("\nparquet objects per table:", dict(objects))
    written = {t["table"]: t for t in report["tables"]}
    for table in TABLES:
        assert objects[table.name] == written[table.name]["files"]
        assert objects[table.name] <= 2 * max(1, written[table.name]["partitions"]), table.name
    assert report["sources"]["song_data"]["files"] == 301
    assert [c["name"] for c in report["checks"] if c["status"] != "passed"] == []


@pytest.mark.slow
@needs_jars
def test_the_secret_is_in_no_log_report_or_spark_setting(spark, s3_run):
    _, log, report, _ = s3_run
    assert " INFO " in log and "Run " in log  # Spark's INFO logs and the summary were captured
    for text in (log, report, *(v for _, v in spark.sparkContext.getConf().getAll())):
        assert s3server.SECRET_KEY not in text


@pytest.mark.slow
@needs_jars
def test_a_wrong_secret_fails_clearly_without_showing_it(endpoint, tmp_path, s3_run):
    wrong = "wrong-secret-do-not-print-7c1e"
    out = run_etl("--config", s3_config(tmp_path / "dl.cfg", endpoint, wrong, "lake-wrong"), timeout=600)
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"S3 refused access to s3a://{BUCKET}/" in out.stderr
    assert "AWS_SECRET_ACCESS_KEY" in out.stderr
    assert wrong not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_uris_are_mapped_to_the_platforms_s3_scheme():
    assert s3.normalize_uri("s3://b/p", emr=False) == "s3a://b/p"
    assert s3.normalize_uri("s3n://b/p", emr=False) == "s3a://b/p"
    assert s3.normalize_uri("s3a://b/p", emr=True) == "s3://b/p"
    assert s3.normalize_uri("/local/p", emr=True) == "/local/p"


def test_s3_without_the_connector_says_how_to_get_it(settings, monkeypatch):
    monkeypatch.setattr(modes, "local_jars", lambda: "")
    monkeypatch.setattr(s3, "on_emr", lambda: False)
    with pytest.raises(UserError, match="make jars"):
        modes.prepare(settings.with_overrides(input_root="s3://bucket/raw"))


def _keys(client, prefix):
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def _pending(client, prefix):
    return client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def kill_when(job, condition, what, poll=0.1, limit=300.0):
    """kill -9 the run (its process group) as soon as ``condition()`` holds; it must not end before."""
    import signal

    deadline = time.monotonic() + limit
    try:
        while not condition():
            assert job.poll() is None, f"the run ended before it {what}"
            assert time.monotonic() < deadline, f"the run never {what}"
            time.sleep(poll)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)


@pytest.mark.slow
@needs_jars
def test_runs_killed_while_writing_songs_and_in_job_commit_are_repaired_by_the_next_run(
    spark, endpoint, s3_run, sample_run, tmp_path
):
    """Two kills, then one run that repairs both (one repairing run: each is an etl.py run on S3).

    1. Killed while writing songs: S3A's committer keeps files as pending multipart uploads until job commit, so
       the previous tables stay whole (the module's run, s3_run: the local run's rows); nothing of the killed run
       is visible (its committer only removed the _SUCCESS marker at job setup).
    2. Killed in job commit, once songs' objects start to change (through a proxy that adds 40 ms per request, so
       that the window is wide enough to land in): the S3A committer's job commit deletes the old table, then
       completes the new uploads: not atomic for a path reader (docs/s3-and-emr.md: Iceberg is the atomic choice
       there), a reader may see part of the table.
    The next run (taking over the killed runs' hold) aborts their uploads and completes: no pending upload, no
    temporary object, the tables whole."""
    from bench.s3proxy import S3Proxy

    _, _, _, client = s3_run
    root = f"s3a://{BUCKET}/lake"
    cfg = s3_config(tmp_path / "dl.cfg", endpoint, s3server.SECRET_KEY, "lake")
    before = {t.name: sorted(read_table(spark, sample_run[1], t.name), key=repr) for t in TABLES}
    before_keys = {k for k in _keys(client, "lake/songs/") if k.endswith(".parquet")}
    assert before_keys and _pending(client, "lake/") == []

    job = start_etl("--config", cfg, "--skip-checks", master="local[2]")
    kill_when(job, lambda: _pending(client, "lake/songs/"), "uploaded a songs file")
    left = len(_pending(client, "lake/"))
    print(f"\nkilled while writing songs: {left} pending uploads left, songs objects unchanged")
    assert left
    assert {k for k in _keys(client, "lake/songs/") if k.endswith(".parquet")} == before_keys
    for table in TABLES:
        assert sorted(read_table(spark, root, table.name), key=repr) == before[table.name], table.name

    host, port = endpoint.replace("http://", "").split(":")
    with S3Proxy(host, int(port), delay=0.04) as proxy:
        slow = s3_config(tmp_path / "slow.cfg", f"http://127.0.0.1:{proxy.port}", s3server.SECRET_KEY, "lake")
        job = start_etl("--config", slow, "--skip-checks", master="local[2]")
        changed = lambda: {k for k in _keys(client, "lake/songs/") if k.endswith(".parquet")} != before_keys  # noqa: E731
        kill_when(job, changed, "began its songs commit", poll=0.01)
    seen = len(read_table(spark, root, "songs"))
    left = len(_pending(client, "lake/"))
    print(f"killed in songs' job commit: a reader saw {seen} of {len(before['songs'])} songs; {left} uploads pending")

    again = run_etl("--config", cfg, "--skip-checks", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _pending(client, "lake/") == []
    assert [k for k in _keys(client, "lake/") if "_temporary" in k or "__magic" in k] == []
    for table in TABLES:
        assert sorted(read_table(spark, root, table.name), key=repr) == before[table.name], table.name


@pytest.mark.slow
@needs_jars
def test_small_objects_are_read_with_one_get_each_and_a_refusal_names_the_object(endpoint, s3_run):
    """song_data's objects are fetched by signed GETs (s3.SignedS3): the bytes as stored; a refused GET is
    an error naming the object and S3's answer, never the secret."""
    from sparkify.sources.files import walk_s3_tree

    _, _, _, client = s3_run
    settings = Settings(
        input_root="", output_root="", s3_endpoint=endpoint, s3_path_style=True,
        aws=AwsCredentials(s3server.ACCESS_KEY, s3server.SECRET_KEY),
    )  # fmt: skip
    tree = walk_s3_tree(settings, f"s3a://{BUCKET}/raw/song_data")
    files = tree.small
    assert files is not None and len(files.uris) == tree.listing.files == 301
    first = files.uris[0]
    key = first[len(f"s3a://{BUCKET}/") :]
    assert files.fetch(first) == client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    wrong = settings.with_overrides(aws=AwsCredentials(s3server.ACCESS_KEY, "not-the-secret-9d1e"))
    with pytest.raises(UserError, match=rf"Cannot read s3://{BUCKET}/{key}: S3 answered HTTP 403 \w+") as refused:
        s3.SignedS3(wrong, BUCKET).get(key)
    assert "not-the-secret-9d1e" not in str(refused.value)
