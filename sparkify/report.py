"""What a run prints at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from sparkify.load import Written


@dataclass
class RunResult:
    input_root: str
    output_root: str
    tables: List[Written] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary(result: RunResult) -> str:
    header = f"{'table':<10} {'rows':>10} {'files':>7} {'partitions':>10} {'size':>10}"
    lines = [f"Input:  {result.input_root}", f"Output: {result.output_root}", "", header, "-" * len(header)]
    for t in result.tables:
        parts = str(t.partitions) if t.partitions else "-"
        lines.append(f"{t.table:<10} {t.rows:>10,} {t.files:>7,} {parts:>10} {human_bytes(t.bytes):>10}")
    lines.append("")
    lines.append("Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    return "\n".join(lines)
