"""Analysts' queries with expected results: run them against an output and show differences.

    python -m sparkify.analyst                      # the output of dl.cfg (OUTPUT_DATA)
    python -m sparkify.analyst --output s3a://bucket/lake --queries queries/

Each ``queries/NAME.sql`` is checked against ``queries/NAME.expected.csv``, computed once
without Spark (``tools/expected_results.py``: SQLite over a plain-Python build of the tables).
Exit code 0 when all agree, 1 when any differs (shown side by side), 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import sys
from functools import partial
from typing import List, Optional, Sequence, Tuple

from sparkify.core.config import DEFAULT_CONFIG, REPO_ROOT, load_settings
from sparkify.core.errors import UserError
from sparkify.platform.session import build_session
from sparkify.quality.checks import register_tables
from sparkify.sinks import read_table
from sparkify.sinks.iceberg import iceberg_output

QUERIES_DIR = os.path.join(REPO_ROOT, "queries")
Rows = List[Tuple[str, ...]]


def cell(value: object) -> str:
    """One value as the expected files hold it: empty for null, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def to_csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[cell(v) for v in row] for row in rows])
    return out.getvalue()


def read_csv(text: str) -> Rows:
    return [tuple(row) for row in csv.reader(io.StringIO(text))]


def query_files(folder: str) -> List[str]:
    files = sorted(glob.glob(os.path.join(folder, "*.sql")))
    if not files:
        raise UserError(f"No *.sql files in {folder}: pass --queries FOLDER holding the analysts' queries.")
    return files


def expected_path(sql_path: str) -> str:
    return sql_path[: -len(".sql")] + ".expected.csv"


def side_by_side(name: str, expected: Rows, actual: Rows, width: int = 44) -> str:
    lines = [f"{name}: differs", f"  {'expected':<{width}} | actual"]
    for i in range(max(len(expected), len(actual))):
        left = ",".join(expected[i]) if i < len(expected) else "(none)"
        right = ",".join(actual[i]) if i < len(actual) else "(none)"
        mark = " " if left == right else "!"
        lines.append(f"{mark} {left[:width]:<{width}} | {right}")
    return "\n".join(lines)


def run_queries(spark, output_root: str, folder: str = QUERIES_DIR) -> Tuple[int, str]:
    """Run every query; return (number that differ, printable report)."""
    register_tables(partial(read_table, spark, output_root))
    differing, report = 0, []
    for path in query_files(folder):
        name = os.path.basename(path)[: -len(".sql")]
        with open(path, encoding="utf-8") as handle:
            df = spark.sql(handle.read())
        actual = read_csv(to_csv(df.columns, [tuple(r) for r in df.collect()]))
        try:
            with open(expected_path(path), encoding="utf-8") as handle:
                expected = read_csv(handle.read())
        except OSError:
            raise UserError(
                f"{expected_path(path)} is missing: run `python tools/expected_results.py` to compute it."
            ) from None
        if actual == expected:
            report.append(f"  ok   {name} ({len(actual) - 1} rows)")
        else:
            differing += 1
            report.append(side_by_side(name, expected, actual))
    report.append(f"Queries: {len(report) - differing} agree, {differing} differ")
    return differing, "\n".join(report)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the analysts' queries against an output; diff with expected.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    parser.add_argument("--output", help="output root to query; default: OUTPUT_DATA of the config")
    parser.add_argument("--queries", default=QUERIES_DIR, help="folder of NAME.sql + NAME.expected.csv")
    parser.add_argument("--master", help="Spark master; default: local[*]")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config).with_overrides(output_root=args.output, master=args.master)
        # the tables are read as they are written (register_tables tells Parquet and Iceberg apart); a
        # session opens Iceberg tables when the config says so or the output has them
        spark = build_session(settings, with_iceberg=iceberg_output(settings))
        differing, report = run_queries(spark, settings.output_root, args.queries)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
