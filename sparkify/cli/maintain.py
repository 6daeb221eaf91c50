"""Maintenance of an Iceberg output ([ETL] TABLE_FORMAT = iceberg): what a user of the format runs now and then.

    python -m sparkify.maintain                                   # the output of dl.cfg, the defaults below
    python -m sparkify.maintain --output s3a://bucket/lake --compact
    python -m sparkify.maintain --output output --expire-older-than 1d --retain-last 3 --orphans-older-than 1h

For each Iceberg table of the output, in this order:

1. ``--compact``: small data files rewritten into larger ones (Iceberg's rewrite_data_files, bin-pack:
   files of a partition merged when there are at least 2; the stream writes one file per micro-batch
   and month), and the manifests rewritten. One commit per table; readers see the same rows.
2. Snapshots older than ``--expire-older-than`` (default 7d) expired, keeping at least the last
   ``--retain-last`` (default 5): time travel to them ends, and the files only they referenced
   (replaced tables, compacted files) are deleted.
3. Orphan files removed: files under the table's folder that no snapshot references, e.g. those of a
   run killed before its commit, older than ``--orphans-older-than`` (default 3d, Iceberg's own
   safety age: a file being written by a run that has not committed yet is never that old). At least
   1d: Iceberg's procedure refuses a younger age (a writer other than this job, which the output lock
   does not hold back, may be about to commit such a file); younger orphans wait for a later run.

Everything goes through Iceberg's procedures (``CALL <catalog>.system.rewrite_data_files``,
``rewrite_manifests``, ``expire_snapshots``, ``remove_orphan_files``) on the output's catalog: its path tables,
its JDBC catalog, Glue or a REST catalog, as [CATALOG] says. The command holds the output
(sparkify.platform.lock) like a run does, so no run or stream of this job writes meanwhile. Exit code 0 done, 2 a
problem to fix (no Iceberg tables there, an orphan age under a day, the output held by a run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from dataclasses import dataclass, field
from typing import List, Optional

from pyspark.sql import SparkSession

from sparkify.core.config import DEFAULT_CONFIG, load_settings
from sparkify.core.errors import UserError
from sparkify.core.results import new_run_id
from sparkify.core.schemas import TABLES
from sparkify.platform import s3
from sparkify.platform.fs import join_uri
from sparkify.platform.lock import OutputLock
from sparkify.platform.session import build_session
from sparkify.sinks.iceberg import catalog_for, current_snapshot, is_iceberg_table, table_ident

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_ORPHAN_AGE = 86400  # remove_orphan_files refuses a younger one ("use the Action API")


def parse_age(text: str) -> float:
    """'7d', '12h', '30m', '0s' (or plain seconds) -> seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age: say e.g. 7d, 12h, 30m or 0s")
    return float(found.group(1)) * UNITS[found.group(2) or "s"]


@dataclass
class TableMaintenance:
    table: str
    snapshots_before: int = 0
    snapshots_after: int = 0
    data_files_before: int = 0
    data_files_after: int = 0
    rewritten_files: int = 0
    added_files: int = 0
    expired_data_files: int = 0
    orphans: List[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.table:<11} {self.snapshots_before:>5} -> {self.snapshots_after:<5} "
            f"{self.data_files_before:>6} -> {self.data_files_after:<6} {self.rewritten_files:>9} "
            f"{self.expired_data_files:>8} {len(self.orphans):>8} {self.seconds:>8.1f}"
        )


HEADER = (
    f"{'table':<11} {'snapshots':^14} {'data files':^16} {'compacted':>9} {'expired':>8} {'orphans':>8} {'seconds':>8}"
)


def _count_snapshots(spark: SparkSession, ident: str) -> int:
    return spark.sql(f"SELECT COUNT(*) FROM {ident}.snapshots").first()[0]


def _data_files(spark: SparkSession, ident: str) -> int:
    snapshot = current_snapshot(spark, ident)
    return 0 if snapshot is None else int((snapshot.summary or {}).get("total-data-files") or 0)


def _timestamp(epoch_seconds: float) -> str:
    """A SQL timestamp literal in UTC (the session's time zone)."""
    return dt.datetime.fromtimestamp(epoch_seconds, dt.timezone.utc).strftime("TIMESTAMP '%Y-%m-%d %H:%M:%S.%f'")


def maintain_table(
    spark: SparkSession,
    catalog: str,
    table: str,
    compact: bool,
    expire_older_than: float,
    retain_last: int,
    orphans_older_than: float,
    now: Optional[float] = None,
) -> TableMaintenance:
    """Compact (optionally), expire snapshots and remove orphan files of one table, with Iceberg's own
    procedures (``CALL catalog.system.*``). ``table``: its name in the catalog."""
    begun, ident, system = time.monotonic(), table_ident(spark, catalog, table), f"{catalog}.system"
    name = f"table => '{ident}'"
    done = TableMaintenance(table, _count_snapshots(spark, ident), data_files_before=_data_files(spark, ident))
    if compact and current_snapshot(spark, ident) is not None:
        options = "options => map('min-input-files', '2')"
        rewritten = spark.sql(f"CALL {system}.rewrite_data_files({name}, {options})").first()
        done.rewritten_files = int(rewritten.rewritten_data_files_count)
        done.added_files = int(rewritten.added_data_files_count)
        spark.sql(f"CALL {system}.rewrite_manifests({name})").collect()
    now = time.time() if now is None else now  # after the compaction: its snapshots are aged too
    expire = f"older_than => {_timestamp(now - expire_older_than)}, retain_last => {max(1, retain_last)}"
    expired = spark.sql(f"CALL {system}.expire_snapshots({name}, {expire})").first()
    done.expired_data_files = int(expired.deleted_data_files_count)
    orphans = f"{name}, older_than => {_timestamp(now - orphans_older_than)}"
    removed = spark.sql(f"CALL {system}.remove_orphan_files({orphans})").collect()
    done.orphans = [row.orphan_file_location for row in removed]
    done.snapshots_after = _count_snapshots(spark, ident)
    done.data_files_after = _data_files(spark, ident)
    done.seconds = time.monotonic() - begun
    return done


def maintain(
    spark: SparkSession,
    output_root: str,
    compact: bool = False,
    expire_older_than: float = 7 * 86400,
    retain_last: int = 5,
    orphans_older_than: float = 3 * 86400,
    tables: Optional[List[str]] = None,
) -> List[TableMaintenance]:
    """Each Iceberg table of the output (all five, or ``tables``), maintained; UserError when there is none."""
    catalog = catalog_for(spark, output_root)
    chosen = [t for t in TABLES if tables is None or t.name in tables]
    present = [t for t in chosen if is_iceberg_table(spark, join_uri(output_root, t.name))]
    if not present:
        raise UserError(
            f"No Iceberg tables in {output_root}: maintenance is for an output written with [ETL] TABLE_FORMAT = "
            "iceberg (a Parquet output has no snapshots to expire). Check --output."
        )
    return [
        maintain_table(spark, catalog, t.name, compact, expire_older_than, retain_last, orphans_older_than)
        for t in present
    ]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Maintain an Iceberg output: compact small files, expire old snapshots, remove orphan files."
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    parser.add_argument("--output", help="output root; default: OUTPUT_DATA of the config")
    parser.add_argument("--master", help="Spark master; default: local[*]")
    parser.add_argument("--tables", help="comma-separated tables (default: all five)")
    parser.add_argument("--compact", action="store_true", help="rewrite small data files (and manifests) first")
    parser.add_argument(
        "--expire-older-than", type=parse_age, default="7d", metavar="AGE", help="expire snapshots older (7d)"
    )
    parser.add_argument("--retain-last", type=int, default=5, metavar="N", help="but keep the last N snapshots (5)")
    parser.add_argument(
        "--orphans-older-than",
        type=parse_age,
        default="3d",
        metavar="AGE",
        help="remove files no snapshot references, older than AGE (3d; at least 1d)",
    )
    args = parser.parse_args(argv)
    try:
        if args.orphans_older_than < MIN_ORPHAN_AGE:
            raise UserError(
                f"--orphans-older-than {args.orphans_older_than:g}s is under a day: Iceberg's remove_orphan_files "
                "refuses it (a file that young may be one another writer is about to commit). Give 1d or more; "
                "younger orphans are removed by a later maintenance."
            )
        settings = load_settings(args.config).with_overrides(
            output_root=args.output, master=args.master, table_format="iceberg"
        )
        if not settings.output_root:
            raise UserError("No output: pass --output or set [ETL] OUTPUT_DATA in the config.")
        settings = settings.with_overrides(output_root=s3.normalize_uri(settings.output_root, s3.on_emr()))
        spark = build_session(settings)
        tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
        with OutputLock(settings, new_run_id(), "maintain"):
            done = maintain(
                spark,
                settings.output_root,
                args.compact,
                args.expire_older_than,
                args.retain_last,
                args.orphans_older_than,
                tables,
            )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Output: {settings.output_root}")
    print(HEADER)
    for table in done:
        print(table.line())
    for table in done:
        for path in table.orphans:
            print(f"removed orphan {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
