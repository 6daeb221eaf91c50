"""Compare the tables of two output roots (e.g. the job's and DuckDB's) row by row, with DuckDB.

    python bench/compare.py JOB_OUTPUT DUCKDB_OUTPUT

For each table: rows in each, rows only in the first, rows only in the second (all columns,
partition columns included; Spark's `__HIVE_DEFAULT_PARTITION__` and DuckDB's `NULL` folder
names are both read as null). Exit code 1 when any table differs.

An output of Iceberg tables ([ETL] TABLE_FORMAT = iceberg) is read with DuckDB's iceberg reader (the extension's
wheel, duckdb-ext-iceberg) from each table's committed metadata file: the one the output's newest run report
names (catalog.metadata_files: a catalog's tables have no version hint), else the path table's version hint.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import sys
from typing import Optional

import duckdb

COLUMNS = {
    "songs": "song_id, title, artist_id, TRY_CAST(year AS INTEGER) AS year, duration",
    "artists": "artist_id, name, location, latitude, longitude",
    "users": "user_id, first_name, last_name, gender, level",
    "time": "start_time::TIMESTAMP AS start_time, hour, day, week, TRY_CAST(month AS INTEGER) AS month, "
    "TRY_CAST(year AS INTEGER) AS year, weekday",
    "songplays": "songplay_id, start_time::TIMESTAMP AS start_time, user_id, level, song_id, artist_id, session_id, "
    "location, user_agent, TRY_CAST(year AS INTEGER) AS year, TRY_CAST(month AS INTEGER) AS month",
}


def metadata_file(root: str, table: str) -> Optional[str]:
    """An Iceberg table's committed metadata file (see the module's doc); None: not an Iceberg table."""
    folder = os.path.join(root, table, "metadata")
    if not os.path.isdir(folder):
        return None
    reports = sorted(glob.glob(os.path.join(root, "_reports", "*.json")), key=os.path.getmtime)
    for path in reversed(reports):
        with open(path, encoding="utf-8") as handle:
            named = ((json.load(handle).get("catalog") or {}).get("metadata_files") or {}).get(table)
        if named:
            return named[len("file:") :] if named.startswith("file:") else named
    return folder[: -len("/metadata")]  # a path table: iceberg_scan follows its version hint


def source(root: str, table: str) -> str:
    iceberg = metadata_file(root, table)
    if iceberg is not None:
        escaped = iceberg.replace("'", "''")
        reader = f"iceberg_scan('{escaped}')"
    else:
        pattern = os.path.join(root, table, "**", "*.parquet").replace("'", "''")
        reader = f"read_parquet('{pattern}', hive_partitioning = true, hive_types_autocast = false)"
    return f"(SELECT {COLUMNS[table]} FROM {reader})"


def load_extension(con: duckdb.DuckDBPyConnection, package: str) -> None:
    """LOAD a DuckDB extension from its duckdb-ext-* wheel (no download)."""
    try:
        files = [f for f in importlib.metadata.files(package) or [] if f.name.endswith(".duckdb_extension")]
    except importlib.metadata.PackageNotFoundError:
        files = []
    if not files:
        raise SystemExit(f"{package} is not installed: pip install -r requirements-dev.txt")
    con.execute(f"LOAD '{files[0].locate()}'")


def main(first: str, second: str) -> int:
    con = duckdb.connect()
    if any(metadata_file(root, table) for root in (first, second) for table in COLUMNS):
        for package in ("duckdb-ext-avro", "duckdb-ext-iceberg"):
            load_extension(con, package)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")
    differ = 0
    for table in COLUMNS:
        a, b = source(first, table), source(second, table)
        n_a = con.execute(f"SELECT count(*) FROM {a}").fetchone()[0]
        n_b = con.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
        only_a = con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").fetchone()[0]
        only_b = con.execute(f"SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})").fetchone()[0]
        differ += bool(only_a or only_b)
        print(f"{table:<10} rows {n_a:>9,} vs {n_b:>9,}   only in first {only_a:>7,}   only in second {only_b:>7,}")
        if only_a or only_b:
            for row in con.execute(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b} LIMIT 3").fetchall():
                print("   first :", row)
            for row in con.execute(f"SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a} LIMIT 3").fetchall():
                print("   second:", row)
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
