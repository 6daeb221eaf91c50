"""The report pages of an output, rebuilt from its JSON reports: the index of every run, and the page of each
run that has none (older runs, or runs where pygal was missing).

    python -m sparkify.report output/
    python -m sparkify.report s3a://bucket/lake          # S3: through Spark's S3A, as the job writes them

Exit code 0 when the index is written, 2 when there is nothing to index or the pages cannot be drawn here.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from sparkify.cli import user_errors_exit_2
from sparkify.core.config import DEFAULT_CONFIG, load_settings
from sparkify.core.errors import UserError
from sparkify.platform.fs import file_names, is_local
from sparkify.platform.session import build_session
from sparkify.quality import charts, site


def rebuild(spark, output_root: str) -> str:
    """Write the missing run pages and the index; return what was done, in one line."""
    if charts.missing():
        raise UserError(f"The report pages cannot be drawn here: {charts.missing()}.")
    reports = site.read_reports(spark, output_root)
    if not reports:
        raise UserError(f"No JSON reports under {site.reports_folder(output_root)}: run etl.py on this output first.")
    present = set(file_names(spark, site.reports_folder(output_root)))
    missing = [r for r in reports if f"{r['run_id']}.html" not in present]
    for report in missing:
        site.write_run_page(spark, output_root, report)
    index = site.write_index(spark, output_root)
    if index is None:
        raise UserError(f"Could not write the index under {site.reports_folder(output_root)}.")
    return f"Index of {len(reports):,} reports: {index} ({len(missing):,} run pages written)"


@user_errors_exit_2
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.report", description="Rebuild the report pages of an output from its JSON reports."
    )
    parser.add_argument("output", nargs="?", help="output root; default: OUTPUT_DATA of the config")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="settings file; default: %(default)s")
    args = parser.parse_args(argv)
    settings = load_settings(args.config).with_overrides(output_root=args.output)
    # a local output needs no Spark; S3 is read and written through Hadoop's S3A, as the job does
    spark = None if is_local(settings.output_root) else build_session(settings)
    print(rebuild(spark, settings.output_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
