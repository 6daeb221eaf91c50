"""Data-quality checks: data, not code. Each check is a dict

    {'name': ..., 'test_sql': ..., 'expected_result': ...}          # equality
    {'name': ..., 'test_sql': ..., '>': 0}                          # or one comparison key

``test_sql`` returns one value; it runs with spark.sql over the five tables as temp views named like
them: after a run, the songs table as the run wrote it (cached during the write), the others read
back from the output; with --checks-only every table read back. ``{placeholders}`` in
test_sql or the expected value are filled from the run (e.g. ``{next_song_events}``); a check
whose placeholder the run does not know (as in --checks-only) is reported as skipped.
"""

from __future__ import annotations

import operator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from sparkify.core.errors import first_line
from sparkify.core.results import CheckResult
from sparkify.core.schemas import SONGPLAYS, TABLES, TIME, Table

Check = Dict[str, Any]
Reader = Callable[[Table], DataFrame]  # one output table, read back (the caller's sink knows its format)
CONCURRENT_CHECKS = 4

# Tables read back that are not cached for the checks: a few files per month, each check scans
# only the columns it reads. Cached whole (every column, user_agent and location included), 10M
# events' songplays and time took 17-27 s per table to cache, two checks building each at once.
# many-events, one alternating pair: checks 35.6 s cached, 13.0 s scanned (bench/README.md).
SCANNED_PER_QUERY = (SONGPLAYS.name, TIME.name)

COMPARISONS: Dict[str, Callable[[Any, Any], bool]] = {
    "expected_result": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _key_checks() -> List[Check]:
    checks: List[Check] = []
    for table in TABLES:
        key = ", ".join(table.primary_key)
        nulls = " OR ".join(f"{c} IS NULL" for c in table.primary_key)
        checks.append(
            {
                "name": f"{table.name}: primary key ({key}) not null",
                "test_sql": f"SELECT COUNT(*) FROM {table.name} WHERE {nulls}",
                "expected_result": 0,
            }
        )
        checks.append(
            {
                "name": f"{table.name}: primary key ({key}) unique",
                "test_sql": f"SELECT COUNT(*) FROM (SELECT {key} FROM {table.name} GROUP BY {key} HAVING COUNT(*) > 1)",
                "expected_result": 0,
            }
        )
    return checks


def _orphans(child: str, column: str, parent: str, parent_column: Optional[str] = None) -> Check:
    parent_column = parent_column or column
    return {
        "name": f"{child}.{column} -> {parent}.{parent_column}: no orphans",
        "test_sql": f"SELECT COUNT(*) FROM {child} c LEFT ANTI JOIN {parent} p ON c.{column} = p.{parent_column} "
        f"WHERE c.{column} IS NOT NULL",
        "expected_result": 0,
    }


DEFAULT_CHECKS: List[Check] = [
    *_key_checks(),
    _orphans("songplays", "user_id", "users"),
    _orphans("songplays", "start_time", "time"),
    _orphans("songplays", "song_id", "songs"),
    _orphans("songplays", "artist_id", "artists"),
    _orphans("songs", "artist_id", "artists"),
    {
        "name": "levels are free or paid",
        "test_sql": "SELECT (SELECT COUNT(*) FROM users WHERE level NOT IN ('free', 'paid') OR level IS NULL)"
        " + (SELECT COUNT(*) FROM songplays WHERE level NOT IN ('free', 'paid') OR level IS NULL)",
        "expected_result": 0,
    },
    {
        "name": "no songplay before 2000 or in the future",
        "test_sql": "SELECT COUNT(*) FROM songplays "
        "WHERE start_time < TIMESTAMP '2000-01-01 00:00:00' OR start_time > current_timestamp()",
        "expected_result": 0,
    },
    {
        "name": "songplays: partition columns agree with start_time",
        "test_sql": "SELECT COUNT(*) FROM songplays WHERE year <> year(start_time) OR month <> month(start_time)",
        "expected_result": 0,
    },
    {
        "name": "time: partition columns agree with start_time",
        "test_sql": "SELECT COUNT(*) FROM time WHERE year <> year(start_time) OR month <> month(start_time) "
        "OR hour <> hour(start_time)",
        "expected_result": 0,
    },
    {
        "name": "songplays written = NextSong events read (less rejected)",
        "test_sql": "SELECT COUNT(*) FROM songplays WHERE {written_partitions}",
        "expected_result": "{next_song_events}",
    },
    {"name": "songplays not empty", "test_sql": "SELECT COUNT(*) FROM songplays", ">": 0},
]


def register_tables(
    read: Reader, cache: bool = False, written: Optional[Mapping[str, DataFrame]] = None
) -> List[DataFrame]:
    """Each table as a temp view: read back from the output by ``read`` (``sinks.read_table``: Parquet
    or Iceberg tables alike, with their declared schema), or, for a table
    in ``written``, the cached frame a run has just written whole (the sink's ``as_written``).

    ``cache``: each table read back is read once, whatever the number of queries over it (the
    songs table is thousands of one-row files; the checks used to scan all of them again for
    each check: 106 s for the 21 default checks on the public shape), except songplays and time
    (SCANNED_PER_QUERY). Returns the frames cached here, which the caller unpersists."""
    cached = []
    for table in TABLES:
        if written and table.name in written:
            written[table.name].select(*table.column_names).createOrReplaceTempView(table.name)
            continue
        frame = read(table)
        if cache and table.name not in SCANNED_PER_QUERY:
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(frame)
        frame.createOrReplaceTempView(table.name)
    return cached


def _comparison(check: Check) -> str:
    found = [key for key in COMPARISONS if key in check]
    if len(found) != 1:
        raise ValueError(
            f"check {check.get('name')!r} needs exactly one of {', '.join(COMPARISONS)}; it has {found or 'none'}"
        )
    return found[0]


def _fill(value: Any, context: Mapping[str, Any]) -> Any:
    return value.format(**context) if isinstance(value, str) and "{" in value else value


def _coerce(expected: Any, actual: Any) -> Any:
    """An expected value filled from a placeholder is text: compare it as the actual's type."""
    if isinstance(expected, str) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return type(actual)(expected)
        except ValueError:
            return expected
    return expected


def run_check(spark: SparkSession, check: Check, context: Mapping[str, Any]) -> CheckResult:
    comparison = _comparison(check)
    name = str(check.get("name") or check["test_sql"])
    try:
        sql = _fill(check["test_sql"], context)
        expected = _fill(check[comparison], context)
    except KeyError as missing:
        return CheckResult(
            name, check["test_sql"], comparison, check[comparison], None, "skipped", f"needs {missing} from a run"
        )
    try:
        row = spark.sql(sql).first()
    except Exception as exc:  # a broken check is reported, not fatal: the others still run
        message = first_line(exc).strip() or type(exc).__name__
        return CheckResult(name, sql, comparison, expected, None, "error", message[:300])
    actual = row[0] if row is not None else None
    expected = _coerce(expected, actual)
    passed = actual is not None and COMPARISONS[comparison](actual, expected)
    return CheckResult(name, sql, comparison, expected, actual, "passed" if passed else "failed")


def run_checks(
    spark: SparkSession,
    read: Reader,
    checks: Sequence[Check],
    context: Optional[Mapping[str, Any]] = None,
    written: Optional[Mapping[str, DataFrame]] = None,
) -> List[CheckResult]:
    """Run every check (collecting all failures) over the output's tables (``read``: one read back); the tables
    in ``written`` (a run's, cached as written) are not read back.

    The checks are small queries over cached tables: a few run at once (Spark schedules the
    jobs of several threads side by side), in the order given in the results."""
    frames = register_tables(read, cache=True, written=written)
    try:
        with ThreadPoolExecutor(max_workers=CONCURRENT_CHECKS) as pool:
            return list(pool.map(lambda check: run_check(spark, check, context or {}), checks))
    finally:
        for frame in frames:
            frame.unpersist()
