"""The report pages on disk or S3: each run's page beside its JSON, and the index rebuilt from every JSON report
of OUTPUT/_reports/ (``pages`` draws them). Where pygal is missing the pages are skipped, with one line that
says why; the JSON reports are written anyway."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

from pyspark.sql import SparkSession

from sparkify.platform.fs import file_names, join_uri, read_text, write_text
from sparkify.quality import charts, pages

INDEX = "index.html"
_told: List[str] = []  # the reason pages were skipped, said once per process


def reports_folder(output_root: str) -> str:
    return join_uri(output_root, "_reports")


def page_uri(output_root: str, run_id: str) -> str:
    return join_uri(reports_folder(output_root), f"{run_id}.html")


def can_draw() -> bool:
    """Whether pages can be drawn here; if not, say why (once)."""
    why = charts.missing()
    if why and not _told:
        _told.append(why)
        print(f"Report pages skipped (the JSON reports are written): {why}", file=sys.stderr, flush=True)
    return not why


def write_run_page(spark: Optional[SparkSession], output_root: str, report: Dict[str, Any]) -> Optional[str]:
    """The run's page beside its JSON; its URI, or None when pages cannot be drawn here."""
    if not can_draw():
        return None
    uri = page_uri(output_root, str(report["run_id"]))
    write_text(spark, uri, pages.run_page(report))
    return uri


def read_reports(spark: Optional[SparkSession], output_root: str) -> List[Dict[str, Any]]:
    """Every run's JSON report under OUTPUT/_reports/ (unreadable ones left out, with a line each)."""
    folder = reports_folder(output_root)
    reports = []
    for name in file_names(spark, folder):
        if not name.endswith(".json"):
            continue
        try:
            report = json.loads(read_text(spark, join_uri(folder, name)) or "")
        except ValueError:
            print(f"warning: {join_uri(folder, name)} is not a JSON report: left out of the index", file=sys.stderr)
            continue
        if isinstance(report, dict) and "run_id" in report:
            reports.append(report)
    return reports


def write_index(spark: Optional[SparkSession], output_root: str) -> Optional[str]:
    """OUTPUT/_reports/index.html from every JSON report there; its URI, or None when pages cannot be drawn or
    it could not be written (a warning says so: the index never hides what the run itself did)."""
    if not can_draw():
        return None
    uri = join_uri(reports_folder(output_root), INDEX)
    try:
        write_text(spark, uri, pages.index_page(read_reports(spark, output_root)))
    except Exception as exc:
        print(f"warning: could not write {uri} ({type(exc).__name__})", file=sys.stderr)
        return None
    return uri
