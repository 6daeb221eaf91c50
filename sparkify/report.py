"""The run report: a JSON file under OUTPUT/_reports/ and a short table on the console."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

from sparkify.load import Written
from sparkify.quality import CheckResult, format_results


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


@dataclass
class SourceCounts:
    files: int = 0
    bytes: int = 0
    read: int = 0
    used: int = 0
    rejected: int = 0
    next_song: int = 0  # log_data only: usable NextSong events
    ignored_files: int = 0  # files that are not *.json, left unread


@dataclass
class RunResult:
    run_id: str
    input_root: str
    output_root: str
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    sources: Dict[str, SourceCounts] = field(default_factory=dict)
    tables: List[Written] = field(default_factory=list)
    quarantine: List[Written] = field(default_factory=list)
    checks: List[CheckResult] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)
    # Finer than ``seconds``, for finding the next bottleneck: Spark session start, listing the
    # input, reading (parse, flag, cache, count) songs and logs, each table's write.
    stages: Dict[str, float] = field(default_factory=dict)
    # what was registered in the catalog ([CATALOG]): created/updated/unchanged tables, partitions added
    catalog: Dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    message: str = ""

    @property
    def checks_failed(self) -> int:
        return sum(c.failed for c in self.checks)

    def to_json(self) -> str:
        body: Dict[str, Any] = asdict(self)
        body["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        body["stages"] = {k: round(v, 3) for k, v in self.stages.items()}
        return json.dumps(body, indent=2, default=str)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary(result: RunResult, report_uri: str = "") -> str:
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
        lines += [
            "",
            f"Catalog ({c['catalog']}): {c['database']}: {len(c['created'])} tables created, {len(c['updated'])} "
            f"updated, {len(c['unchanged'])} unchanged; {added:,} partitions added",
        ]
    if result.message:
        lines += ["", result.message]
    if report_uri:
        lines.append(f"Report: {report_uri}")
    return "\n".join(lines)
