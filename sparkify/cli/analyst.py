"""Analysts' queries: run them against an output; show differences with expected results, or save the results.

    python -m sparkify.analyst                      # the output of dl.cfg (OUTPUT_DATA)
    python -m sparkify.analyst --output s3a://bucket/lake --queries queries/
    python -m sparkify.analyst --output s3a://bucket/lake --results s3a://bucket/lake/_reports/queries/2018-11-30

Each ``queries/NAME.sql`` is checked against ``queries/NAME.expected.csv``, computed once
without Spark (``tools/expected_results.py``: SQLite over a plain-Python build of the tables).
Exit code 0 when all agree, 1 when any differs (shown side by side), 2 on a usage problem (a query
that does not run is one: its file is named).

``--results FOLDER`` is the lake's daily report (the Airflow DAG's last step): each query's result is
written to FOLDER/NAME.csv and nothing is compared (the expected files hold the bundled sample's results).
The queries folder may be on S3 (EMR: the one ``sparkify.emr submit`` uploads beside the code).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from functools import partial
from typing import List, Optional, Sequence, Tuple

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from sparkify.core.config import DEFAULT_CONFIG, REPO_ROOT, load_settings
from sparkify.core.errors import UserError
from sparkify.platform.fs import file_names, join_uri, read_text, write_text
from sparkify.platform.session import build_session
from sparkify.quality.checks import register_tables
from sparkify.sinks import read_table
from sparkify.sinks.iceberg import iceberg_output

QUERIES_DIR = join_uri(REPO_ROOT, "queries")
Rows = List[Tuple[str, ...]]
Query = Tuple[str, str, str]  # name, file, SQL


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


def read_queries(spark: SparkSession, folder: str) -> List[Query]:
    """Every NAME.sql of ``folder`` (local or S3), by name."""
    names = [n for n in file_names(spark, folder) if n.endswith(".sql")]
    if not names:
        raise UserError(f"No *.sql files in {folder}: pass --queries FOLDER holding the analysts' queries.")
    files = [join_uri(folder, n) for n in names]
    return [(n[: -len(".sql")], f, read_text(spark, f) or "") for n, f in zip(names, files)]


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


def result_csv(spark: SparkSession, path: str, sql: str) -> str:
    """A query's result as CSV text (header first); a query that does not run names its file."""
    try:
        df = spark.sql(sql)
        return to_csv(df.columns, [tuple(r) for r in df.collect()])
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path} does not run on this output: {first}. Fix the query (or the tables).") from None


def compare(spark: SparkSession, query: Query) -> Tuple[bool, str]:
    """Whether a query's result equals its NAME.expected.csv, and the line (or the side-by-side) that says so."""
    name, path, sql = query
    actual = read_csv(result_csv(spark, path, sql))
    text = read_text(spark, expected_path(path))
    if text is None:
        raise UserError(f"{expected_path(path)} is missing: run `python tools/expected_results.py` to compute it.")
    expected = read_csv(text)
    if actual == expected:
        return True, f"  ok   {name} ({len(actual) - 1} rows)"
    return False, side_by_side(name, expected, actual)


def run_queries(spark: SparkSession, output_root: str, folder: str = QUERIES_DIR) -> Tuple[int, str]:
    """Run every query; return (number that differ, printable report)."""
    register_tables(partial(read_table, spark, output_root))
    outcomes = [compare(spark, query) for query in read_queries(spark, folder)]
    differing = sum(1 for same, _ in outcomes if not same)
    report = [line for _, line in outcomes]
    report.append(f"Queries: {len(outcomes) - differing} agree, {differing} differ")
    return differing, "\n".join(report)


def save_results(spark: SparkSession, output_root: str, folder: str, results: str) -> str:
    """Run every query and write its result to ``results``/NAME.csv; return the printable report."""
    register_tables(partial(read_table, spark, output_root))
    report = []
    for name, path, sql in read_queries(spark, folder):
        text = result_csv(spark, path, sql)
        target = join_uri(results, f"{name}.csv")
        write_text(spark, target, text)
        report.append(f"  saved {name} ({len(read_csv(text)) - 1} rows) to {target}")
    report.append(f"Queries: {len(report)} saved under {results}")
    return "\n".join(report)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run the analysts' queries against an output; diff with expected.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    parser.add_argument("--output", help="output root to query; default: OUTPUT_DATA of the config")
    parser.add_argument("--queries", default=QUERIES_DIR, help="folder of NAME.sql + NAME.expected.csv (or S3)")
    parser.add_argument("--results", help="save each result as RESULTS/NAME.csv instead of comparing (lake reports)")
    parser.add_argument("--master", help="Spark master; default: local[*]")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config).with_overrides(output_root=args.output, master=args.master)
        # the tables are read as they are written (register_tables tells Parquet and Iceberg apart); a
        # session opens Iceberg tables when the config says so or the output has them
        spark = build_session(settings, with_iceberg=iceberg_output(settings))
        if args.results:
            differing, report = 0, save_results(spark, settings.output_root, args.queries, args.results)
        else:
            differing, report = run_queries(spark, settings.output_root, args.queries)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
