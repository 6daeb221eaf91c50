"""[ETL] TABLE_FORMAT = iceberg: the same rows as the Parquet run, one commit per write, a second
engine (DuckDB) reading the tables by path, the stream exactly once, a kill on S3, maintenance.

etl.py runs in its own process (its JVM gets Iceberg's jars; the tests' shared session has none), and so does
every Spark read of an Iceberg table (tests/test_iceberg_catalog.py's view); DuckDB reads them by path, on disk or
on the S3 server (httpfs). Snapshots are read from the tables' metadata files (plain JSON).
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import shutil
import signal
import time

import pytest

from sparkify.cli.maintain import main as maintain_main
from sparkify.core.schemas import TABLES
from sparkify.platform.conf import ICEBERG_JARS_DIR, local_jars
from tests import s3server
from tests.conftest import SAMPLE, read_table, run_etl, start_etl
from tests.test_stream import DAYS, add_day, batch_reading, wait_for

needs_iceberg = pytest.mark.skipif(
    not glob.glob(os.path.join(ICEBERG_JARS_DIR, "iceberg-spark-runtime-*.jar")),
    reason="Iceberg jars absent: `make jars` (make test does it)",
)
pytestmark = [needs_iceberg, pytest.mark.slow]  # every test runs etl.py (its own JVM), most of them more than once
BUCKET = "sparkify-iceberg"


def config(path, input_root, output_root, extra=""):
    path.write_text(
        f"[ETL]\nINPUT_DATA = {input_root}\nOUTPUT_DATA = {output_root}\nTABLE_FORMAT = iceberg\n"
        "[SPARK]\nMASTER = local[2]\nSHUFFLE_PARTITIONS = 2\n[CATALOG]\nTYPE = none\n" + extra
    )
    return str(path)


def etl(cfg, *args):
    done = run_etl("--config", cfg, *args)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def report_of(done):
    """The run report etl.py names (a local output): the JSON beside the page of its last line."""
    page = next(line.split("Report: ", 1)[1].split(" (")[0] for line in done.stdout.splitlines() if "Report: " in line)
    with open(page[: -len(".html")] + ".json", encoding="utf-8") as handle:
        return json.load(handle)


def normal(rows):
    return sorted((tuple(r) for r in json.loads(json.dumps(rows))), key=repr)


def parquet_rows(spark, root):
    return {t.name: normal(read_table(spark, root, t.name)) for t in TABLES}


def duckdb_connection(endpoint=None):
    """DuckDB with the avro and iceberg extensions of the duckdb-ext-* wheels (no download); with ``endpoint``
    (the tests' S3 server) also httpfs and the server's keys (bench/duckdb_etl.py's use_s3)."""
    import duckdb

    con = duckdb.connect()
    for package in ("duckdb-ext-avro", "duckdb-ext-iceberg"):
        (path,) = [f for f in importlib.metadata.files(package) or [] if f.name.endswith(".duckdb_extension")]
        con.execute(f"LOAD '{path.locate()}'")
    if endpoint:
        from bench.duckdb_etl import use_s3

        use_s3(con, endpoint.split("://", 1)[1], s3server.ACCESS_KEY, s3server.SECRET_KEY)
    return con


def duckdb_rows(con, root, files=None):
    """Each table opened by its path with iceberg_scan (or, ``files``, by the metadata file named for it: a catalog's
    table has no version hint); timestamps as epoch milliseconds."""
    found = {}
    for table in TABLES:
        cols = ", ".join(f"epoch_ms({name})" if kind == "timestamp" else name for name, kind in table.columns)
        source = files[table.name] if files else f"{root}/{table.name}"
        found[table.name] = normal(con.execute(f"SELECT {cols} FROM iceberg_scan('{source}')").fetchall())
    return found


def metadata(root, table):
    """The table's current metadata (vN.metadata.json named by version-hint.text)."""
    folder = os.path.join(root, table, "metadata")
    with open(os.path.join(folder, "version-hint.text"), encoding="utf-8") as handle:
        version = handle.read().strip()
    with open(os.path.join(folder, f"v{version}.metadata.json"), encoding="utf-8") as handle:
        return json.load(handle)


def snapshots(meta):
    """The current snapshot's ancestry, oldest first."""
    by_id = {s["snapshot-id"]: s for s in meta.get("snapshots", [])}
    chain, current = [], meta.get("current-snapshot-id")
    while current in by_id:
        chain.append(by_id[current])
        current = by_id[current].get("parent-snapshot-id")
    return chain[::-1]


# --- the bundled sample ------------------------------------------------------------------------


def test_the_sample_gives_the_parquet_runs_rows_and_passes_the_checks(spark, sample_run, iceberg_sample):
    """The run's checks passed; DuckDB (a second engine, no catalog) reading each table by its path gets the Parquet
    run's rows. Spark reading them back, the analysts' queries and the checks over the tables by name:
    tests/test_iceberg_catalog.py (on this output, registered into the local catalog)."""
    result, parquet_root = sample_run
    out, report = iceberg_sample
    assert report["status"] == "ok"
    assert [c["name"] for c in report["checks"] if c["status"] != "passed"] == []
    assert {t["table"]: t["rows"] for t in report["tables"]} == {t.table: t.rows for t in result.tables}
    got = duckdb_rows(duckdb_connection(), out)
    assert all(got.values()) and got == parquet_rows(spark, parquet_root)


def test_each_table_is_an_iceberg_path_table_written_in_one_commit(iceberg_sample):
    out, report = iceberg_sample
    assert not os.path.exists(os.path.join(out, "_staging"))  # no staging folder, no swap
    for table in TABLES:
        meta = metadata(out, table.name)
        assert meta["location"] == os.path.join(out, table.name)
        (snapshot,) = snapshots(meta)  # one commit per table write
        if table.name != "users":  # a MERGE statement takes no write options
            assert snapshot["summary"]["sparkify.run-id"] == report["run_id"]
    songs = metadata(out, "songs")
    (spec,) = [s for s in songs["partition-specs"] if s["spec-id"] == songs["default-spec-id"]]
    assert [f["name"] for f in spec["fields"]] == ["year"]
    (order,) = [o for o in songs["sort-orders"] if o["order-id"] == songs["default-sort-order-id"]]
    (field,) = order["fields"]
    songs_schema = next(s for s in songs["schemas"] if s["schema-id"] == songs["current-schema-id"])
    assert next(f["name"] for f in songs_schema["fields"] if f["id"] == field["source-id"]) == "artist_id"
    data = os.path.join(out, "songs", "data")
    folders = os.listdir(data)
    assert folders and all(f.startswith("year=") for f in folders)  # no folder per artist
    assert all(
        os.path.isfile(os.path.join(data, f, name)) for f in folders for name in os.listdir(os.path.join(data, f))
    )


# --- incremental runs ----------------------------------------------------------------------------


def test_an_incremental_run_replaces_only_the_months_it_touches_in_one_commit(spark, sample_run, tmp_path):
    _, parquet_root = sample_run
    src, out = tmp_path / "in", str(tmp_path / "out")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "11"), src / "log_data" / "2018" / "11")
    cfg = config(tmp_path / "dl.cfg", str(src), out)
    etl(cfg, "--skip-checks")
    before = {t.name: snapshots(metadata(out, t.name)) for t in TABLES}

    shutil.copytree(os.path.join(SAMPLE, "log_data", "2018", "12"), src / "log_data" / "2018" / "12")
    report = report_of(etl(cfg, "--since", "2018-12-01", "--until", "2018-12-01", "--skip-checks"))  # rows below

    assert report["status"] == "ok", report
    after = {t.name: snapshots(metadata(out, t.name)) for t in TABLES}
    for name in ("songs", "artists"):  # song_data/ unchanged: not written
        assert after[name] == before[name], name
    for name in ("songplays", "time"):
        assert after[name][:-1] == before[name], name  # one new commit on top of the old ones
        summary = after[name][-1]["summary"]
        assert summary["sparkify.run-id"] == report["run_id"]
        assert (summary["operation"], summary.get("replace-partitions")) == ("overwrite", "true"), summary
        assert summary["changed-partition-count"] == "1", summary  # 2018-12 only; 2018-11 kept as it was
        assert summary.get("deleted-data-files", "0") == "0", summary  # nothing of November rewritten
    assert len(after["users"]) == len(before["users"]) + 1  # MERGE INTO: one commit
    assert after["users"][-1]["summary"]["operation"] == "overwrite"
    assert duckdb_rows(duckdb_connection(), out) == parquet_rows(spark, parquet_root)


# --- the stream -----------------------------------------------------------------------------------

TWO = ("songplays", "time")


def test_a_killed_stream_restarts_exactly_once_and_maintenance_compacts_it(spark, sample_run, tmp_path, capsys):
    from sparkify.sources.files import CHECKPOINT

    _, parquet_root = sample_run
    src, out = tmp_path / "in", str(tmp_path / "out")
    shutil.copytree(os.path.join(SAMPLE, "song_data"), src / "song_data")
    add_day(str(src), DAYS[0])
    cfg = config(tmp_path / "dl.cfg", str(src), out)
    commits = os.path.join(out, CHECKPOINT, "commits")
    offsets = os.path.join(out, CHECKPOINT, "offsets")
    job = start_etl("--config", cfg, "--stream", "--interval", "1", "--files-per-batch", "1")
    try:
        wait_for(lambda: os.path.exists(os.path.join(commits, "0")), job, "batch 0 to commit", seconds=600)
        add_day(str(src), DAYS[1])
        reading = os.path.join(out, CHECKPOINT)
        wait_for(lambda: batch_reading(reading, DAYS[1]) is not None, job, "the second day's batch", seconds=300)
        second = batch_reading(reading, DAYS[1])
        wait_for(lambda: os.path.exists(os.path.join(offsets, str(second))), job, "its batch to start", seconds=300)
        time.sleep(1.5)  # inside that batch
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    add_day(str(src), DAYS[2])
    killed_in = {t: [s["summary"].get("sparkify.stream-batch-id") for s in snapshots(metadata(out, t))] for t in TWO}
    print(f"\nkilled with these batches committed: {killed_in}")

    etl(cfg, "--stream", "--available-now", "--files-per-batch", "1", "--skip-checks")  # rows compared below

    for name in ("songplays", "time"):
        appended = [s["summary"].get("sparkify.stream-batch-id") for s in snapshots(metadata(out, name))]
        batches = [b for b in appended if b is not None]
        assert len(batches) == len(set(batches)) == 3, (name, appended)  # each day's batch once
    expected = parquet_rows(spark, parquet_root)
    assert duckdb_rows(duckdb_connection(), out) == expected

    def data_files(name):
        return int(snapshots(metadata(out, name))[-1]["summary"]["total-data-files"])

    files_before = {name: data_files(name) for name in ("songplays", "time")}
    # an orphan two days old (what a run killed before its commit leaves); remove_orphan_files takes a day or more
    data = os.path.join(out, "songplays", "data")
    planted = os.path.join(data, "planted-orphan.parquet")
    shutil.copy(next(os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs if f.endswith(".parquet")), planted)
    os.utime(planted, (time.time() - 2 * 86400,) * 2)
    assert maintain_main(["--config", cfg, "--orphans-older-than", "23h"]) == 2  # refused before any session
    assert "--orphans-older-than 82800s is under a day" in capsys.readouterr().err
    done = run_etl(
        "--config", cfg, "--tables", "songplays,time", "--compact", "--expire-older-than", "0s", "--retain-last", "1",
        "--orphans-older-than", "1d", module="sparkify.maintain",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    removed = [line.split("removed orphan ", 1)[1] for line in done.stdout.splitlines() if "removed orphan" in line]
    assert [r.replace("file:", "", 1) for r in removed] == [planted] and not os.path.exists(planted)
    for name in ("songplays", "time"):
        assert data_files(name) < files_before[name], (name, files_before)  # November's two batch files: one
        assert len(metadata(out, name)["snapshots"]) == 1  # expired to the last one
    assert duckdb_rows(duckdb_connection(), out) == expected  # the same rows


# --- a kill during the songs write, on S3 ----------------------------------------------------------


def s3_config(path, endpoint):
    return config(
        path,
        f"s3://{BUCKET}/raw",
        f"s3://{BUCKET}/lake",
        f"[AWS]\nAWS_ACCESS_KEY_ID = {s3server.ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY = {s3server.SECRET_KEY}\n"
        f"[S3]\nENDPOINT = {endpoint}\nPATH_STYLE_ACCESS = true\n",
    )


def kill_once_songs_are_written(cfg, keys):
    """Start etl.py with ``cfg`` and kill -9 it (its process group) as soon as a new object is under lake/songs/data/
    (``keys(prefix)``: the objects under a prefix); the objects under lake/ before it started."""
    before = keys("lake/")
    job = start_etl("--config", cfg, "--skip-checks")
    deadline = time.monotonic() + 600
    try:
        while not keys("lake/songs/data/") - before:
            assert job.poll() is None, "the run ended before it wrote a songs file"
            assert time.monotonic() < deadline, "the run never started writing songs"
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    return before


def _keys(client, prefix):
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return set(keys)


def _version(client, table):
    body = client.get_object(Bucket=BUCKET, Key=f"lake/{table}/metadata/version-hint.text")["Body"]
    return int(body.read().decode().strip())


@pytest.mark.skipif(not local_jars(), reason="S3A jars absent: `make jars` (make test does it)")
def test_a_run_killed_while_writing_songs_to_s3_leaves_every_table_at_its_previous_snapshot(
    spark, sample_run, endpoint, tmp_path
):
    _, parquet_root = sample_run
    client = s3server.client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    s3server.upload_tree(client, BUCKET, SAMPLE, "raw")
    cfg = s3_config(tmp_path / "dl.cfg", endpoint)
    root = f"s3a://{BUCKET}/lake"
    etl(cfg, "--skip-checks")

    for attempt in range(3):  # the kill must land before the songs commit: tried again if it came after it
        versions = {t.name: _version(client, t.name) for t in TABLES}
        before = kill_once_songs_are_written(cfg, lambda prefix: _keys(client, prefix))
        if _version(client, "songs") == versions["songs"]:
            break
        print(f"\nattempt {attempt}: the songs commit came before the kill; again")
    left = {k for k in _keys(client, "lake/") - before if k.startswith("lake/songs/")}
    print(f"\nkilled while writing songs: {len(left)} songs objects left: {sorted(left)}")
    assert left
    # songs: no commit, its previous snapshot; a dimension written beside it may have committed (whole)
    after = {t.name: _version(client, t.name) for t in TABLES}
    assert after["songs"] == versions["songs"] and after["songplays"] == versions["songplays"]
    print(f"metadata versions before the killed run {versions}, after it {after}")

    # the killed run's files are orphans: no snapshot has them (remove_orphan_files takes them once a day old: the
    # stream test's maintenance); every table whole at its snapshot (every file read, by DuckDB over S3: no JVM of
    # its own to start). The next run after a kill on S3 (taking over the killed run's hold) is tests/test_s3.py's;
    # runs over existing Iceberg tables are the incremental and stream tests'.
    con = duckdb_connection(endpoint)
    referenced = {
        row[0].split(f"{BUCKET}/", 1)[1]
        for row in con.execute(f"SELECT file_path FROM iceberg_metadata('{root}/songs')").fetchall()
    }
    assert referenced and not left & referenced
    assert duckdb_rows(con, root) == parquet_rows(spark, parquet_root)
