"""Tables by name: the Glue Data Catalog (moto's Glue) gets the five tables with their columns,
types, partition keys and partitions; a rerun changes nothing, an incremental run adds only its
new partitions; a table of the same name with another schema is a clear error. The local
catalog (a metastore beside the output) answers a query by name in a plain spark-sql session."""

from __future__ import annotations

import calendar
import collections
import os
import shutil
import subprocess
import time

import boto3
import pytest
from moto import mock_aws

from sparkify import catalogs as catalog
from sparkify.core.errors import UserError
from sparkify.core.schemas import TABLES
from sparkify.platform.conf import catalog_conf
from tests.conftest import read_table, subprocess_env
from tests.test_reruns import data_files

WRITES = ("create_database", "create_table", "update_table", "batch_create_partition", "batch_delete_partition")


class Recorder:
    """A Glue client that notes the name of each request."""

    def __init__(self, client):
        self.client, self.calls = client, []

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if callable(attribute) and not name.startswith(("get_paginator", "exceptions")):

            def call(*args, **kwargs):
                self.calls.append(name)
                return attribute(*args, **kwargs)

            return call
        return attribute

    def writes(self):
        return [c for c in self.calls if c in WRITES]


def partitions_of(root):
    found = {}
    for table in TABLES:
        depth = len(table.partition_by)
        folders = {os.path.dirname(f)[len(table.name) + 1 :] for f in data_files(root, table.name)}
        found[table.name] = sorted(tuple(p.split("=", 1)[1] for p in folder.split("/")) for folder in folders if depth)
    return found


@pytest.fixture
def glue():
    with mock_aws():
        yield Recorder(boto3.client("glue", region_name="us-west-2"))


def register(glue, settings, root):
    on_s3 = settings.with_overrides(output_root="s3a://lake-bucket/lake", catalog_type="glue")
    return catalog.GlueCatalog(glue, "sparkify").register(catalog.shapes(on_s3, partitions_of(root)))


def test_glue_gets_tables_columns_partition_keys_and_partitions(glue, settings, sample_run):
    _, root = sample_run
    done = register(glue, settings, root)
    assert done.created == [t.name for t in TABLES]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="sparkify")["TableList"]}
    plays = tables["songplays"]
    assert plays["StorageDescriptor"]["Location"] == "s3://lake-bucket/lake/songplays"
    assert [(c["Name"], c["Type"]) for c in plays["StorageDescriptor"]["Columns"]] == [
        ("songplay_id", "bigint"),
        ("start_time", "timestamp"),
        ("user_id", "string"),
        ("level", "string"),
        ("song_id", "string"),
        ("artist_id", "string"),
        ("session_id", "bigint"),
        ("location", "string"),
        ("user_agent", "string"),
    ]
    assert [(k["Name"], k["Type"]) for k in plays["PartitionKeys"]] == [("year", "int"), ("month", "int")]
    assert plays["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    months = glue.get_partitions(DatabaseName="sparkify", TableName="songplays")["Partitions"]
    assert sorted((p["Values"], p["StorageDescriptor"]["Location"]) for p in months) == [
        (["2018", "11"], "s3://lake-bucket/lake/songplays/year=2018/month=11"),
        (["2018", "12"], "s3://lake-bucket/lake/songplays/year=2018/month=12"),
    ]
    songs = sum(
        len(page["Partitions"])
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName="sparkify", TableName="songs")
    )
    assert songs == len(partitions_of(root)["songs"]) > 40  # by year
    assert tables["users"].get("PartitionKeys", []) == []
    print(
        "\nGlue requests, first run:",
        glue.calls.count("batch_create_partition"),
        "batch_create_partition;",
        sorted(set(glue.writes())),
    )


def test_a_rerun_changes_nothing_and_an_incremental_run_adds_only_its_partitions(glue, settings, sample_run, tmp_path):
    _, root = sample_run
    register(glue, settings, root)
    glue.calls.clear()
    again = register(glue, settings, root)
    assert glue.writes() == [] and again.unchanged == [t.name for t in TABLES]
    grown = tmp_path / "grown"
    shutil.copytree(root, grown)
    for table in ("songplays", "time"):
        shutil.copytree(grown / table / "year=2018" / "month=12", grown / table / "year=2019" / "month=1")
    glue.calls.clear()
    later = register(glue, settings, str(grown))
    assert glue.writes() == ["batch_create_partition", "batch_create_partition"]
    assert later.partitions_added == {"time": 1, "songplays": 1}
    print("\nGlue requests, incremental run:", glue.calls)


def test_a_table_with_another_schema_is_a_clear_error(glue, settings, sample_run):
    _, root = sample_run
    glue.create_database(DatabaseInput={"Name": "sparkify"})
    glue.create_table(
        DatabaseName="sparkify",
        TableInput={"Name": "users", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]}},
    )
    with pytest.raises(UserError, match=r"The Glue table sparkify\.users exists with another schema") as failure:
        register(glue, settings, root)
    assert "set [CATALOG] DATABASE to another database" in str(failure.value)


@pytest.mark.slow
def test_the_local_catalog_answers_a_query_by_name_in_spark_sql(spark, public_run):
    """The default command's run on the public shape (tests/conftest.py) registered its tables; a plain spark-sql
    session with the metastore's settings gives the plays per month the table's files hold. The songs table was
    registered before its files were written (while the run read its input: no listing of its folders)."""
    run, out = public_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Catalog (local): sparkify: 5 tables created" in run.stdout  # beside the checks' temporary views
    months = collections.Counter(row[-2:] for row in read_table(spark, out, "songplays"))  # (year, month)
    import pyspark

    spark_sql = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-sql")
    confs = [arg for key, value in catalog_conf(out).items() for arg in ("--conf", f"{key}={value}")]
    query = subprocess.run(
        [
            spark_sql,
            "--master",
            "local[1]",
            "--driver-java-options",
            "-Duser.timezone=UTC",
            *confs,
            "-e",
            "SELECT year, month, COUNT(*) FROM sparkify.songplays GROUP BY year, month ORDER BY year, month;"
            " DESCRIBE TABLE EXTENDED sparkify.songs",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=600,
        check=False,
    )
    assert query.returncode == 0, query.stderr[-3000:]
    rows = [line.split("\t") for line in query.stdout.splitlines()]
    assert rows[: len(months)] == [[str(y), str(m), str(n)] for (y, m), n in sorted(months.items())]
    assert sum(months.values()) > 5_000
    created = next(r[1].strip() for r in rows if r[0].strip() == "Created Time")  # e.g. Wed Dec 02 21:05:04 UTC 2026
    registered = calendar.timegm(time.strptime(created, "%a %b %d %H:%M:%S UTC %Y"))
    songs = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(out, "songs")) for f in files]
    assert len(songs) > 40  # a file per year
    assert registered < min(os.path.getmtime(f) for f in songs)


def test_a_songs_table_in_the_other_layout_gets_a_new_entry_with_its_own_partitions(glue, settings, sample_run):
    """Glue: a songs entry of the classic (year, artist_id) layout is made anew by year, its old partitions gone."""
    _, root = sample_run
    on_s3 = settings.with_overrides(output_root="s3a://lake-bucket/lake", catalog_type="glue")
    classic = on_s3.with_overrides(songs_partition_by=("year", "artist_id"))
    years = partitions_of(root)["songs"]
    pairs = [(y, f"AR{i}") for i, (y,) in enumerate(years)]
    catalog.GlueCatalog(glue, "sparkify").register(catalog.shapes(classic, {"songs": pairs}))
    done = catalog.GlueCatalog(glue, "sparkify").register(catalog.shapes(on_s3, {"songs": years}))
    assert done.updated == ["songs"]
    songs = glue.get_table(DatabaseName="sparkify", Name="songs")["Table"]
    assert [k["Name"] for k in songs["PartitionKeys"]] == ["year"]
    assert "artist_id" in [c["Name"] for c in songs["StorageDescriptor"]["Columns"]]
    found = [
        tuple(p["Values"])
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName="sparkify", TableName="songs")
        for p in page["Partitions"]
    ]
    assert sorted(found) == sorted(years)
