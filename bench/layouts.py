"""The songs layout's cost: year folders sorted by artist_id (the default) vs the classic (year, artist_id) folders.

    python bench/layouts.py                 # the public set, both layouts
    python bench/layouts.py --set events-1m

For each layout the job runs once (python etl.py --skip-checks, with a copy of dl.cfg whose
[ETL] SONGS_PARTITION_BY is the layout) into bench/data/_runs/layouts/<set>/<layout>/, and the
run report gives the songs write's seconds. Then a fresh Spark session per layout (an analyst's
first query pays the listing of the table's folders) times three reads of the written tables:

- full scan:      SELECT COUNT(*), COUNT(DISTINCT artist_id) FROM songs
- one artist:     SELECT title, year FROM songs WHERE artist_id = <the artist with most songs>
- analyst query:  queries/01_most_played_songs.sql (songplays joined to songs and artists)

Writes bench/results/layouts.<set>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import datasets
from run import RESULTS_DIR, RUNS_DIR, config_copy

LAYOUTS = {"year, artist_id": "year-artist_id", "year": "year"}
QUERY_FILE = os.path.join(datasets.REPO_ROOT, "queries", "01_most_played_songs.sql")


def run_job(set_name: str, layout: str) -> Dict:
    output = os.path.join(RUNS_DIR, "layouts", set_name, LAYOUTS[layout])
    shutil.rmtree(output, ignore_errors=True)
    config = config_copy({("ETL", "SONGS_PARTITION_BY"): layout})
    command = [sys.executable, os.path.join(datasets.REPO_ROOT, "etl.py"), "--config", config, "--skip-checks"]
    command += ["--input", os.path.join(datasets.DATA_DIR, set_name), "--output", output, "--master", "local[*]"]
    begun = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - begun
    (report_path,) = glob.glob(os.path.join(output, "_reports", "*.json"))
    with open(report_path, encoding="utf-8") as handle:
        report = json.load(handle)
    songs = next(t for t in report["tables"] if t["table"] == "songs")
    return {
        "output": output,
        "job_wall_seconds": round(wall, 2),
        "songs_write_seconds": round(songs["seconds"], 2),
        "songs_files": songs["files"],
        "songs_partitions": songs["partitions"],
    }


def time_queries(output: str) -> Dict[str, float]:
    """Run in a process of its own (``query`` sub-command): a fresh session, as an analyst's."""
    sys.path.insert(0, datasets.REPO_ROOT)
    from sparkify.core.config import Settings
    from sparkify.platform.session import build_session
    from sparkify.quality.checks import register_tables
    from sparkify.sinks import read_table

    spark = build_session(Settings(input_root=output, output_root=output, master="local[*]"))
    seconds: Dict[str, float] = {}
    begun = time.monotonic()
    register_tables(lambda table: read_table(spark, output, table))
    seconds["list tables (register views)"] = time.monotonic() - begun
    begun = time.monotonic()
    spark.sql("SELECT COUNT(*), COUNT(DISTINCT artist_id) FROM songs").collect()
    seconds["full scan of songs"] = time.monotonic() - begun
    (artist,) = spark.sql(
        "SELECT artist_id FROM songs GROUP BY artist_id ORDER BY COUNT(*) DESC, artist_id LIMIT 1"
    ).first()
    begun = time.monotonic()
    spark.sql(f"SELECT title, year FROM songs WHERE artist_id = '{artist}'").collect()
    seconds["one artist's songs"] = time.monotonic() - begun
    with open(QUERY_FILE, encoding="utf-8") as handle:
        sql = handle.read()
    begun = time.monotonic()
    spark.sql(sql).collect()
    seconds["analyst query 01 (most played songs)"] = time.monotonic() - begun
    spark.stop()
    return {k: round(v, 2) for k, v in seconds.items()}


def markdown(set_name: str, results: Dict[str, Dict]) -> str:
    rows = [
        ("songs folders", "songs_partitions"),
        ("songs files", "songs_files"),
        ("songs write (s)", "songs_write_seconds"),
        ("job wall (s)", "job_wall_seconds"),
    ]
    head = f"| {set_name} | " + " | ".join(f"songs by ({k})" for k in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:,}" for r in results.values()) + " |")
    for query in next(iter(results.values()))["queries"]:
        lines.append(f"| {query} (s) | " + " | ".join(f"{r['queries'][query]}" for r in results.values()) + " |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="public", choices=datasets.SETS)
    parser.add_argument("--query", help=argparse.SUPPRESS)  # internal: time the queries on this output
    args = parser.parse_args(argv)
    if args.query:
        print(json.dumps(time_queries(args.query)))
        return 0
    datasets.ensure(args.set)
    results: Dict[str, Dict] = {}
    for layout in LAYOUTS:
        print(f"{args.set}: songs by ({layout}) ...", file=sys.stderr, flush=True)
        result = run_job(args.set, layout)
        timed = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--query", result["output"]],
            check=True,
            capture_output=True,
            text=True,
        )
        result["queries"] = json.loads(timed.stdout.strip().splitlines()[-1])
        results[layout] = result
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"layouts.{args.set}.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print(markdown(args.set, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
