"""The benchmark's data sets: made by the project's own generator (tools/make_sample.py), cached.

    python bench/datasets.py                       # make every set that is missing
    python bench/datasets.py public many-events    # only these

Each set lives in bench/data/<set>/ (git-ignored). A set is complete when its marker file
bench/data/<set>/_generated.json exists and records the same generator arguments; otherwise
the folder is removed and the set is made again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
DATA_DIR = os.path.join(BENCH_DIR, "data")
GENERATOR = os.path.join(REPO_ROOT, "tools", "make_sample.py")
MARKER = "_generated.json"

COMMON = ["--days", "30", "--start", "2018-11-01"]

# name -> generator arguments (besides --out)
SETS: Dict[str, List[str]] = {
    # The shape of the public Udacity data: 14,896 song files, 8,056 events over November 2018, 96 users.
    "public": ["--songs", "14896", "--events", "8056", "--users", "96"] + COMMON,
    # Ten times the songs (150,001 small files) and a million events.
    "many-songs": ["--songs", "150000", "--events", "1000000", "--users", "1000"] + COMMON,
    # Ten million events (about 4 GB of JSON lines in 30 files), the public number of songs.
    "many-events": ["--songs", "15000", "--events", "10000000", "--users", "5000"] + COMMON,
    # many-events with a tenth of the events: the two show whether the cost is linear in events.
    "events-1m": ["--songs", "15000", "--events", "1000000", "--users", "5000"] + COMMON,
    # The bundled sample's size: a smoke test of the benchmark itself (not in the default sets).
    "tiny": ["--songs", "300", "--events", "1800", "--users", "40"] + COMMON,
}

DESCRIPTIONS = {
    "public": "shape of the public data: 14,896 songs, 8,056 events, 96 users, 30 days",
    "many-songs": "150,000 songs (150,001 files), 1,000,000 events, 1,000 users, 30 days",
    "many-events": "15,000 songs, 10,000,000 events, 5,000 users, 30 days",
    "events-1m": "15,000 songs, 1,000,000 events, 5,000 users, 30 days (many-events / 10)",
    "tiny": "300 songs, 1,800 events, 40 users, 30 days (smoke test)",
}


def set_dir(name: str) -> str:
    return os.path.join(DATA_DIR, name)


def marker(name: str) -> Dict:
    path = os.path.join(set_dir(name), MARKER)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def input_size(folder: str) -> Dict[str, int]:
    files = size = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith(".json"):
                files += 1
                size += os.path.getsize(os.path.join(root, name))
    return {"files": files, "bytes": size}


def ensure(name: str, python: str = sys.executable) -> Dict:
    """Make the set unless its marker says it is complete with the same arguments. Returns the marker."""
    args = SETS[name]
    found = marker(name)
    if found.get("args") == args:
        return found
    folder = set_dir(name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(DATA_DIR, exist_ok=True)
    print(f"generating {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    begun = time.monotonic()
    subprocess.run([python, GENERATOR, "--out", folder] + args, check=True)
    seconds = time.monotonic() - begun
    info = {
        "set": name,
        "args": args,
        "generator": "tools/make_sample.py",
        "seconds": round(seconds, 1),
        "song_data": input_size(os.path.join(folder, "song_data")),
        "log_data": input_size(os.path.join(folder, "log_data")),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
    print(f"generated {name} in {seconds:.1f} s: {info['song_data']} songs, {info['log_data']} logs", file=sys.stderr)
    return info


if __name__ == "__main__":
    for set_name in sys.argv[1:] or [s for s in SETS if s != "tiny"]:
        ensure(set_name)
