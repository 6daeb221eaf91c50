"""How long the report pages take to draw, and how big they are (bench/README.md, "Report pages").

    .venv/bin/python bench/pages.py [--out bench/results/pages.json]

Synthetic JSON reports shaped like the job's (sparkify.core.results.RunResult.to_json): a run page with 21 checks,
15 stages and rejects of 3 reasons; the index over 40 daily runs (the issue's case), 365 daily runs, and 365 runs
plus a stream of 8,640 micro-batches (a day at one per 10 s), and 3,000 daily runs (past the listing's cap). Each
figure is the best of 5 (the first draw imports pygal: reported apart). Nothing here touches Spark or a disk beyond
the result file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sparkify.quality import pages

STAGES = ["start Spark session", "list input", "read songs", "read logs", "write _quarantine", "write songs",
          "write artists", "write users", "write time", "write songplays", "checks", "register in catalog",
          "transform", "plan", "report"]  # fmt: skip
TABLES = ["songs", "artists", "users", "time", "songplays"]


def batch_run(i: int) -> dict:
    return {
        "run_id": f"2018{i:04d}T020000Z-{i:04x}",
        "started_at": f"{2019 + i // 336}-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}T02:00:00+00:00",
        "mode": "incremental", "status": "ok", "exit_code": 0, "spark_jobs": 99, "input_root": "s3://raw",
        "output_root": "s3://lake", "seconds": {"total": 20.0 + i % 5},
        "sources": {"song_data": {"files": 14896, "bytes": 3_900_000, "read": 14896, "used": 14896, "rejected": 0},
                    "log_data": {"files": 1, "bytes": 200_000, "read": 8000 + i, "used": 7990, "rejected": 10 + i % 3}},
        "tables": [{"table": t, "path": f"s3://lake/{t}", "rows": 1000 * (k + 1) + i, "files": 2, "bytes": 40_000,
                    "partitions": 2, "seconds": 1.0, "partitions_written": ["year=2018/month=11"]}
                   for k, t in enumerate(TABLES)],
        "checks": [{"name": f"check {c}", "test_sql": "SELECT COUNT(*) FROM songplays WHERE song_id IS NULL",
                    "comparison": "expected_result", "expected": 0, "actual": 0, "status": "passed"}
                   for c in range(21)],
        "stages": {s: 0.5 + (k % 4) for k, s in enumerate(STAGES)},
        "rejects": {r: {"count": 7, "examples": [{"source": "log_data", "file": "s3://raw/log_data/x.json",
                                                    "raw": "{" + "x" * 198}] * 5} for r in ("a", "b", "c")},
    }  # fmt: skip


def micro_batch(b: int) -> dict:
    return {
        "run_id": f"stream-batch-{b:08d}", "started_at": f"2019-02-01T{b // 360:02d}:{b // 6 % 60:02d}:00+00:00",
        "mode": "micro-batch", "status": "ok", "exit_code": 0, "stream": {"batch_id": b, "checkpoint": "cp"},
        "sources": {"log_data": {"read": 100, "used": 100, "rejected": 0}}, "seconds": {"total": 4.0},
        "tables": [{"table": t, "rows": 100} for t in ("users", "time", "songplays")],
        "stages": {"read": 1.0, "write users": 1.2, "write time": 0.3, "write songplays": 1.4},
    }  # fmt: skip


def best_of(draw, times: int = 5) -> tuple:
    seconds, text = [], ""
    for _ in range(times):
        begun = time.perf_counter()
        text = draw()
        seconds.append(time.perf_counter() - begun)
    return min(seconds), len(text.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "pages.json"))
    args = parser.parse_args()
    begun = time.perf_counter()
    pages.run_page(batch_run(0))
    first = time.perf_counter() - begun
    cases = {
        "run page": lambda: pages.run_page(batch_run(1)),
        "index, 40 runs": lambda: pages.index_page([batch_run(i) for i in range(40)]),
        "index, 365 runs": lambda: pages.index_page([batch_run(i) for i in range(365)]),
        "index, 365 runs + 8,640 micro-batches": lambda: pages.index_page(
            [batch_run(i) for i in range(365)] + [micro_batch(b) for b in range(8640)]
        ),
        "index, 3,000 runs": lambda: pages.index_page([batch_run(i) for i in range(3000)]),
    }
    results = {"first draw (imports pygal) s": round(first, 3), "load average": os.getloadavg()[0]}
    for name, draw in cases.items():
        seconds, size = best_of(draw)
        results[name] = {"seconds": round(seconds, 3), "bytes": size}
        print(f"{name:<40} {seconds * 1000:8.1f} ms {size / 1024:8.1f} KiB", flush=True)
    results["load average after"] = os.getloadavg()[0]
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    load = f"{results['load average']:.2f} -> {results['load average after']:.2f}"
    print(f"first draw {first * 1000:.0f} ms; load {load}")


if __name__ == "__main__":
    main()
