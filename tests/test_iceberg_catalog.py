"""[ETL] TABLE_FORMAT = iceberg with [CATALOG] TYPE = local: the tables in Iceberg's JDBC catalog (SQLite in
OUTPUT/_catalog/iceberg.sqlite), still at OUTPUT/<table>/; a path-table output registered into it, not rewritten;
two writers committing to one table at once lose no commit."""

from __future__ import annotations

import glob
import json
import os
import sqlite3

import pytest

from sparkify.core.schemas import TABLES
from tests.conftest import SAMPLE, run_etl
from tests.test_iceberg import (
    config,
    etl,
    metadata,
    needs_iceberg,
    normal,
    parquet_rows,
    snapshots,
)

pytestmark = [needs_iceberg, pytest.mark.slow]

# Two writers committing to one table at once (``TIME``: its full name), in a script with ``spark`` (a session the
# job builds): 4 appends each, from the session and a second one (a catalog client of its own); ``before``, ``after``
# (rows), ``errors``, ``commits`` (snapshots) for the script to print.
TWO_WRITERS = """
before = spark.sql("SELECT COUNT(*) FROM TIME").first()[0]
second = spark.newSession()
errors = []
def append(session, shift):
    try:
        for i in range(4):
            session.sql(f"INSERT INTO TIME SELECT start_time + INTERVAL {shift * 10 + i} DAYS, hour, day, week, month, "
                        "year, weekday FROM TIME LIMIT 1")
    except Exception as exc:
        errors.append(str(exc).splitlines()[0])
writers = [threading.Thread(target=append, args=(s, n)) for s, n in ((spark, 1), (second, 2))]
[w.start() for w in writers]
[w.join() for w in writers]
after = spark.sql("SELECT COUNT(*) FROM TIME").first()[0]
commits = spark.sql("SELECT COUNT(*) FROM TIME.snapshots").first()[0]
"""

VIEW = (
    """
import json, sys, threading
from functools import partial
from sparkify.cli.analyst import run_queries
from sparkify.core.config import Settings
from sparkify.core.schemas import TABLES
from sparkify.platform.session import build_session
from sparkify.quality.checks import DEFAULT_CHECKS, run_checks
from sparkify.sinks import read_table as read_output
from tests.conftest import read_table
root = sys.argv[1]
settings = Settings(input_root="", output_root=root, master="local[2]", table_format="iceberg", catalog_type="local")
spark = build_session(settings)
rows = {t.name: read_table(spark, root, t.name) for t in TABLES}
differing, queries = run_queries(spark, root)
checked = run_checks(spark, partial(read_output, spark, root), DEFAULT_CHECKS)
failed = [c.name for c in checked if c.status not in ("passed", "skipped")]
"""
    + TWO_WRITERS.replace("TIME", "sparkify.time")
    + """
print("VIEW" + json.dumps({"rows": rows, "queries_differing": differing, "queries": queries, "failed": failed,
                           "before": before, "after": after, "errors": errors, "commits": commits}))
"""
)


def catalog_rows(out):
    with sqlite3.connect(os.path.join(out, "_catalog", "iceberg.sqlite")) as db:
        return {
            name: location for name, location in db.execute("SELECT table_name, metadata_location FROM iceberg_tables")
        }


@pytest.fixture(scope="module")
def migrated(iceberg_sample, tmp_path_factory):
    """The sample's path-table output ([CATALOG] TYPE none: tests/test_iceberg.py's, once its tests are done) run
    again with TYPE = local."""
    out = iceberg_sample[0]
    before = {t.name: [s["snapshot-id"] for s in snapshots(metadata(out, t.name))] for t in TABLES}
    cfg = config(tmp_path_factory.mktemp("iceberg-catalog") / "local.cfg", SAMPLE, out)
    with open(cfg, encoding="utf-8") as handle:
        text = handle.read().replace("TYPE = none", "TYPE = local")
    with open(cfg, "w", encoding="utf-8") as handle:
        handle.write(text)
    etl(cfg, "--skip-checks")  # the rows are compared below; the checks read a catalog's tables in the Glue test
    return out, before


def test_a_path_table_output_is_registered_in_the_jdbc_catalog_not_rewritten(migrated):
    out, before = migrated
    reports = sorted(glob.glob(os.path.join(out, "_reports", "*.json")))
    with open(reports[-1], encoding="utf-8") as handle:
        files = json.load(handle)["catalog"]["metadata_files"]
    registered = catalog_rows(out)
    assert sorted(registered) == sorted(t.name for t in TABLES)
    for table in TABLES:
        location = registered[table.name].removeprefix("file:")
        assert location.startswith(f"{out}/{table.name}/metadata/"), location
        assert files[table.name].removeprefix("file:") == location  # the run report names the current one
        with open(location, encoding="utf-8") as handle:
            after = [s["snapshot-id"] for s in snapshots(json.load(handle))]
        assert after[: len(before[table.name])] == before[table.name], table.name  # the history kept as it was
        # no stale hint left for path readers: the catalog names the metadata files now
        assert not os.path.exists(os.path.join(out, table.name, "metadata", "version-hint.text"))


def test_the_catalog_tables_give_the_sample_rows_and_two_writers_lose_no_commit(spark, sample_run, migrated):
    out, _ = migrated
    done = run_etl(out, code=VIEW)
    assert done.returncode == 0, done.stderr[-3000:]
    view = json.loads(done.stdout.split("VIEW", 1)[1])
    expected = parquet_rows(spark, sample_run[1])
    for table in TABLES:
        assert normal(view["rows"][table.name]) == expected[table.name], table.name
    assert view["failed"] == []  # the checks, reading the Iceberg tables back by name
    assert view["queries_differing"] == 0, view["queries"]  # the analysts' queries
    assert view["errors"] == []
    assert view["after"] == view["before"] + 8  # 2 writers x 4 commits, each retried on the other's
    assert view["commits"] >= 9


def test_path_table_settings_are_refused_on_an_output_in_the_catalog(migrated, tmp_path):
    """A writer through path tables would commit on top of the last registered snapshot: refused, named."""
    out, _ = migrated
    done = run_etl("--config", config(tmp_path / "paths.cfg", SAMPLE, out), "--skip-checks")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Iceberg tables are in its local catalog (_catalog/iceberg.sqlite)" in done.stderr
    assert "[CATALOG] TYPE = local or auto" in done.stderr
