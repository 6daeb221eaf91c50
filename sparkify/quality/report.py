"""The run's summary on the console: sources, tables, checks, seconds, catalog."""

from __future__ import annotations

from typing import Sequence

from sparkify.core.results import CheckResult, RunResult


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary(result: RunResult, report_uri: str = "", last_line: str = "") -> str:
    """What a run prints: its counts, tables, checks, catalog, message; last, ``last_line`` (the report's page)
    or the JSON report's path."""
    lines = [f"Run {result.run_id}: {result.status}", f"Input:  {result.input_root}"]
    header = f"{'source':<10} {'files':>7} {'size':>10} {'read':>10} {'used':>10} {'rejected':>9}"
    if result.sources:
        lines += ["", header, "-" * len(header)]
    for name, s in result.sources.items():
        lines.append(
            f"{name:<10} {s.files:>7,} {human_bytes(s.bytes):>10} {s.read:>10,} {s.used:>10,} {s.rejected:>9,}"
        )
    ignored = {name: s.ignored_files for name, s in result.sources.items() if s.ignored_files}
    if ignored:
        lines.append("Not read (not *.json): " + ", ".join(f"{n} {c:,} files" for n, c in ignored.items()))
    if result.tables:
        header = f"{'table':<11} {'rows':>10} {'files':>7} {'partitions':>10} {'size':>10} {'seconds':>8}"
        lines += ["", f"Output: {result.output_root}", header, "-" * len(header)]
        for t in result.tables + result.quarantine:
            parts = f"{t.partitions:,}" if t.partitions else "-"
            lines.append(
                f"{t.table:<11} {t.rows:>10,} {t.files:>7,} {parts:>10} {human_bytes(t.bytes):>10} {t.seconds:>8.1f}"
            )
    if result.checks:
        lines += ["", format_results(result.checks)]
    if result.seconds:
        lines += ["", "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items())]
    if result.catalog:
        c = result.catalog
        added = sum(c.get("partitions_added", {}).values())
        if c.get("metadata_files"):  # Iceberg's own catalog: its commits registered the tables
            tables = len(c["metadata_files"])
            line = f"Catalog ({c['catalog']}): {tables} tables, each commit the catalog's; metadata files in the report"
        else:
            line = (
                f"Catalog ({c['catalog']}): {c['database']}: {len(c['created'])} tables created, {len(c['updated'])} "
                f"updated, {len(c['unchanged'])} unchanged; {added:,} partitions added"
            )
        lines += ["", line]
    if result.message:
        lines += ["", result.message]
    if last_line or report_uri:
        lines.append(last_line or f"Report: {report_uri}")
    return "\n".join(lines)


def format_results(results: Sequence[CheckResult]) -> str:
    lines = []
    for r in results:
        symbol = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}[r.status]
        op = "==" if r.comparison == "expected_result" else r.comparison
        line = f"  {symbol} {r.name}"
        if r.status == "failed":
            line += f": got {r.actual!r}, expected {op} {r.expected!r}"
        elif r.detail:
            line += f": {r.detail}"
        lines.append(line)
    failed = sum(r.failed for r in results)
    passed = sum(r.status == "passed" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    lines.append(
        f"Checks: {passed} of {len(results)} passed"
        + (f", {skipped} skipped" if skipped else "")
        + (f", {failed} FAILED" if failed else "")
    )
    return "\n".join(lines)
