"""Compute queries/*.expected.csv without Spark: SQLite over tools/reference.py's tables.

    python tools/expected_results.py                 # for the bundled sample
    python tools/expected_results.py --check         # exit 1 if a committed file is out of date

The queries are written in SQL that Spark and SQLite read alike; timestamps are epoch
milliseconds here, which changes nothing for queries that join or group on them.
"""

from __future__ import annotations

import argparse
import glob
import os
import sqlite3
import sys
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sparkify.cli.analyst import QUERIES_DIR, expected_path, to_csv  # noqa: E402
from sparkify.core.schemas import TABLES  # noqa: E402
from tools.reference import Reference  # noqa: E402

SAMPLE = os.path.join(ROOT, "data", "sample")


def load(tables: Dict[str, list]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for table in TABLES:
        cols = ", ".join(table.column_names)
        db.execute(f"CREATE TABLE {table.name} ({cols})")
        marks = ", ".join("?" for _ in table.column_names)
        db.executemany(f"INSERT INTO {table.name} VALUES ({marks})", tables[table.name])
    return db


def compute(input_root: str = SAMPLE, folder: str = QUERIES_DIR) -> Dict[str, str]:
    """Expected CSV text for each query file, by its expected-file path."""
    db = load(Reference(input_root).tables())
    results = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.sql"))):
        with open(path, encoding="utf-8") as handle:
            cursor = db.execute(handle.read())
        header = [d[0] for d in cursor.description]
        results[expected_path(path)] = to_csv(header, cursor.fetchall())
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=SAMPLE, help="raw input root (default: the bundled sample)")
    parser.add_argument("--queries", default=QUERIES_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for path, text in compute(args.input, args.queries).items():
        if args.check:
            current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if current != text:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    for path in stale:
        print(f"out of date: {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
