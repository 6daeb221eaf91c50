"""Reading many small objects from S3: the ways the job could fetch song_data/, against DuckDB's reader.

    python bench/small_reads.py                      # public's song_data/, +0 and +20 ms, 3 reps each
    python bench/small_reads.py --delays 0 --reps 1 --ways boto3-32,arrow-64

Starts SeaweedFS on 127.0.0.1 (tests/s3server.py), uploads the set's song_data/ once, then per delay
puts the counting proxy (bench/s3proxy.py) in front of it and times, alternating the ways in each rep:

- ``boto3-N``: one LIST per 1,000 keys, then a GET per object with boto3 from N threads (the job's way
  until 2026-12-06);
- ``arrow-N``: the same LIST, then each object read with pyarrow's S3 file system (the AWS SDK for C++,
  no Python per request) from N threads;
- ``duckdb``: DuckDB's httpfs reading every object's text (``read_text`` over the glob), in its own process.

Each way is a fresh process (no warm connection pool, imports counted as a user pays them), and prints the
objects and bytes it read: the wall seconds, CPU seconds of the process (user + system) and requests are
kept in results/small-reads.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from typing import Dict, List

import datasets
import s3bench
from s3proxy import S3Proxy

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "small-reads.json")
PREFIX = "raw/song_data/"


def read_with(way: str, endpoint: str, key: str, secret: str) -> Dict[str, float]:
    """Every object under lake/raw/song_data/, read one way; what it read."""
    sys.path.insert(0, s3bench.bench.REPO_ROOT)
    from sparkify import s3
    from sparkify.config import AwsCredentials, Settings
    from sparkify.extract import small_s3_objects

    begun = time.monotonic()
    if way == "duckdb":
        import duckdb
        from duckdb_etl import use_s3

        con = duckdb.connect()
        use_s3(con, urllib.parse.urlsplit(endpoint).netloc, key, secret)
        objects, size = con.execute(
            f"SELECT count(*), sum(octet_length(content::BLOB)) FROM read_blob('s3://lake/{PREFIX}**/*.json')"
        ).fetchone()
        return {"objects": objects, "bytes": size, "seconds": time.monotonic() - begun}
    kind, threads = way.rsplit("-", 1)
    settings = Settings(
        input_root="s3a://lake/raw",
        output_root="",
        s3_endpoint=endpoint,
        s3_path_style=True,
        aws=AwsCredentials(access_key_id=key, secret_access_key=secret),
    )
    files = small_s3_objects(settings, "s3a://lake/raw/song_data", int(threads), reader=kind)
    assert files is not None
    size = 0
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(files.threads) as pool:
        size = sum(len(b) for b in pool.map(files.fetch, files.uris))
    del s3
    return {"objects": len(files.uris), "bytes": size, "seconds": time.monotonic() - begun}


def child(args: argparse.Namespace) -> int:
    found = read_with(args.child, args.endpoint, args.key, args.secret)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    found["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(found))
    return 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="public")
    parser.add_argument("--delays", default="0,20")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ways", default="boto3-32,arrow-32,arrow-64,duckdb")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    server = s3bench.s3server_module()
    datasets.ensure(args.set)
    results: Dict[str, Dict[str, List[Dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as work:
        runner = server.run_seaweedfs(work)
        endpoint = next(runner)
        try:
            client = server.client(endpoint)
            client.create_bucket(Bucket=s3bench.BUCKET)
            uploaded = s3bench.upload(client, datasets.set_dir(args.set))
            print(f"uploaded {uploaded[0]:,} objects in {uploaded[2]:.1f} s", file=sys.stderr)
            parts = urllib.parse.urlsplit(endpoint)
            for delay in [int(d) for d in args.delays.split(",")]:
                with S3Proxy(parts.hostname, parts.port, delay=delay / 1000.0) as proxy:
                    ways = [w for w in args.ways.split(",") if w]
                    for rep in range(args.reps):
                        for way in ways if rep % 2 == 0 else list(reversed(ways)):
                            proxy.take()
                            load = os.getloadavg()[0]
                            begun = time.monotonic()
                            out = subprocess.run(
                                [sys.executable, __file__, "--child", way, "--endpoint",
                                 f"http://127.0.0.1:{proxy.port}", "--key", server.ACCESS_KEY,
                                 "--secret", server.SECRET_KEY],
                                check=True, capture_output=True, text=True,
                            )  # fmt: skip
                            found = json.loads(out.stdout.strip().splitlines()[-1])
                            found.update(wall=time.monotonic() - begun, requests=len(proxy.take()), load=load)
                            results.setdefault(f"+{delay} ms", {}).setdefault(way, []).append(found)
                            print(f"+{delay} ms {way}: {json.dumps(found)}", file=sys.stderr, flush=True)
        finally:
            runner.close()
    summary = {
        delay: {
            way: {
                "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
                "median_wall_seconds": round(statistics.median(r["wall"] for r in runs), 2),
                "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 2),
                "objects": runs[0]["objects"],
                "requests": runs[0]["requests"],
                "load": [round(r["load"], 2) for r in runs],
            }
            for way, runs in ways.items()
        }
        for delay, ways in results.items()
    }
    with open(RESULT, "w", encoding="utf-8") as handle:
        json.dump({"set": args.set, "summary": summary, "runs": results}, handle, indent=2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
