"""python -m sparkify.catalog sql "SELECT ...": one SQL statement over the local catalog of a local output."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from sparkify.cli import user_errors_exit_2
from sparkify.core.config import DEFAULT_CONFIG, load_settings
from sparkify.core.errors import UserError
from sparkify.platform.fs import is_local
from sparkify.platform.session import build_session


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Query the output's tables by name in its local catalog.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    parser.add_argument("--output", help="output root; default: OUTPUT_DATA of the config")
    sub = parser.add_subparsers(dest="command", required=True)
    query = sub.add_parser("sql", help="run one SQL statement, e.g. SELECT COUNT(*) FROM sparkify.songplays")
    query.add_argument("statement")
    args = parser.parse_args(argv)
    settings = load_settings(args.config).with_overrides(output_root=args.output, catalog_type="local")
    if not is_local(settings.output_root):
        raise UserError("The local catalog is for a local output; on S3 use [CATALOG] TYPE = glue and Athena.")

    spark = build_session(settings)
    frame = spark.sql(args.statement)
    frame.show(50, truncate=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
