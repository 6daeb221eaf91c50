"""What a run did, as data: its sources' counts, the tables written, the checks' results (no pyspark)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Tuple


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class Written:
    table: str
    path: str
    rows: int
    files: int
    bytes: int
    partitions: int
    seconds: float = 0.0
    partitions_written: Tuple[str, ...] = ()  # the partition folders this run wrote, where known


@dataclass(frozen=True)
class CheckResult:
    name: str
    test_sql: str
    comparison: str
    expected: Any
    actual: Any
    status: str  # "passed", "failed", "error", "skipped"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "error")


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
    spark_jobs: int = 0  # the Spark jobs the run started (a stream's micro-batch: its own)
    # a stream's micro-batch: its id, the stream's checkpoint and query id, its watermark
    stream: Dict[str, Any] = field(default_factory=dict)
    mode: str = ""  # full, incremental, checks, stream songs, micro-batch (runs.plan's job kinds)
    exit_code: int = 0  # the command's: 0 ok, 1 a check failed, 2 a problem to fix, 3 Spark failed, 4 the JVM died
    # rejected records per reason: {"count": n, "examples": [{"source", "file", "raw"}]} (raw: 200 characters at
    # most, secrets masked; sparkify.runs.write.reject_summary)
    rejects: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def checks_failed(self) -> int:
        return sum(c.failed for c in self.checks)

    def to_json(self) -> str:
        body: Dict[str, Any] = asdict(self)
        body["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        body["stages"] = {k: round(v, 3) for k, v in self.stages.items()}
        return json.dumps(body, indent=2, default=str)
