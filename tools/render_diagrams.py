"""Render star.png (the star schema) and etl-graph.png (the pipeline) from sparkify.core.schemas.

python tools/render_diagrams.py        # writes both PNGs at the repository root
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sparkify.core.schemas import LOG_COLUMNS, SONG_COLUMNS, TABLES, Table  # noqa: E402

FACT_COLOR, DIM_COLOR, INPUT_COLOR = "#f6d7a7", "#c8e0f4", "#e2e2e2"
LINE = 0.32  # height of one text line, in axis units


def box(ax, x, y, width, title, lines, color):
    """A titled box whose top-left corner is (x, y); returns its height."""
    height = LINE * (len(lines) + 1.4)
    ax.add_patch(FancyBboxPatch((x, y - height), width, height, boxstyle="round,pad=0.05", fc=color, ec="#333"))
    ax.text(x + width / 2, y - LINE * 0.7, title, ha="center", va="center", weight="bold", fontsize=10)
    for i, line in enumerate(lines):
        ax.text(x + 0.12, y - LINE * (i + 1.7), line, va="center", fontsize=8, family="monospace")
    return height


def column_lines(table: Table):
    lines = []
    for name, kind in table.columns:
        marks = []
        if name in table.primary_key:
            marks.append("PK")
        if name in table.references:
            marks.append(f"FK→{table.references[name]}")
        if name in table.partition_by:
            marks.append("partition")
        if name in table.sort_within:
            marks.append("sorted")
        lines.append(f"{name:<12} {kind:<9} {' '.join(marks)}")
    return lines


def render_star(path: str) -> None:
    fact = next(t for t in TABLES if t.kind == "fact")
    dims = [t for t in TABLES if t.kind == "dimension"]
    fig, ax = plt.subplots(figsize=(13, 9))
    width = 4.5
    fx, fy = 5.0, 6.6
    box(ax, fx, fy, width, f"{fact.name} (fact)", column_lines(fact), FACT_COLOR)
    spots = [(0.0, 9.2), (10.0, 9.2), (0.0, 3.4), (10.0, 3.4)]
    for (x, y), dim in zip(spots, dims):
        h = box(ax, x, y, width, dim.name, column_lines(dim), DIM_COLOR)
        fk = next(c for c, ref in fact.references.items() if ref == dim.name)
        row = fact.column_names.index(fk)
        start = (fx if x < fx else fx + width, fy - LINE * (row + 1.7))
        end = (x + width if x < fx else x, y - h / 2)
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#555"})
    ax.set_xlim(-0.3, 14.8)
    ax.set_ylim(-0.2, 9.6)
    ax.axis("off")
    ax.set_title("Sparkify star schema (partition columns become folders: year=…/month=…)", fontsize=12)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def render_graph(path: str) -> None:
    fig, ax = plt.subplots(figsize=(13, 6.5))
    inputs = {
        "song_data": (0.0, 5.6, [f"{name}: {kind}" for name, kind in SONG_COLUMNS[:6]] + ["…"]),
        "log_data": (0.0, 2.6, [f"{name}: {kind}" for name, kind in LOG_COLUMNS[:6]] + ["…"]),
    }
    stages = {
        "song_data": ("extract + clean_songs", ["explicit schema", "recursive *.json", "year 0 → null"]),
        "log_data": ("extract + clean_events", ["explicit schema", "mojibake repair", "ts → UTC timestamp", "dedup"]),
    }
    for name, (x, y, lines) in inputs.items():
        box(ax, x, y, 3.0, f"{name}/ (JSON)", lines, INPUT_COLOR)
        title, notes = stages[name]
        box(ax, 3.8, y - 0.4, 3.0, title, notes, "#e8f4d9")
        ax.annotate("", xy=(3.8, y - 0.9), xytext=(3.05, y - 0.9), arrowprops={"arrowstyle": "->"})
    for i, table in enumerate(TABLES):
        y = 6.2 - i * 1.25
        parts = ", ".join(table.partition_by) or "—"
        box(
            ax,
            8.6,
            y,
            3.6,
            f"{table.name}",
            [f"partitioned by: {parts}"],
            FACT_COLOR if table.kind == "fact" else DIM_COLOR,
        )
        for source in table.sources:
            sy = inputs[source][1] - 1.3
            ax.annotate("", xy=(8.6, y - 0.4), xytext=(6.85, sy), arrowprops={"arrowstyle": "->", "color": "#555"})
    ax.text(7.7, 0.05, "load: repartition by partition columns → Parquet", ha="center", fontsize=9, style="italic")
    ax.set_xlim(-0.2, 12.4)
    ax.set_ylim(-0.2, 6.6)
    ax.axis("off")
    ax.set_title("Sparkify ETL: extract → transform (pure) → load", fontsize=12)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    render_star(os.path.join(ROOT, "star.png"))
    render_graph(os.path.join(ROOT, "etl-graph.png"))


if __name__ == "__main__":
    main()
