"""Reading many small objects from S3: the ways the job could fetch song_data/, against DuckDB's reader.

    python bench/small_reads.py                      # public's song_data/, +0 and +20 ms, 3 reps each
    python bench/small_reads.py --delays 0 --reps 1 --ways boto3-32,arrow-64 --label quick

Starts SeaweedFS on 127.0.0.1 (tests/s3server.py), uploads the set's song_data/ once, then per delay
puts the counting proxy (bench/s3proxy.py) in front of it and times, alternating the ways in each rep:

- ``signed-N``: one LIST per 1,000 keys, then a GET per object from N threads, each signed by botocore's
  SigV4 signer and sent by urllib3 (``sparkify.platform.s3.SignedS3``: the job's way since 2026-12-06);
- ``boto3-N``: the same LIST, then a boto3 ``get_object`` per object from N threads (the job's way before);
- ``arrow-N``: the same LIST, then each object read with pyarrow's S3 file system (the AWS SDK for C++:
  a HEAD and a GET per object) from N threads;
- ``duckdb``: DuckDB's httpfs reading every object's text (``read_blob`` over the glob), in its own process.

Each way is a fresh process (no warm connection pool, imports counted as a user pays them), and prints the
objects and bytes it read: the wall seconds, CPU seconds of the process and of the S3 server (user + system) and
requests are
kept in results/small-reads/<set>[.LABEL].json.
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
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

import datasets
import psutil
import s3bench
from s3proxy import S3Proxy

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "small-reads")
PREFIX = "raw/song_data/"


def fetcher(way: str, settings, keys: List[str]):
    """How one way GETs an object by key (the job's way: sparkify.platform.s3.SignedS3)."""
    from sparkify.platform import s3

    kind, threads = way.rsplit("-", 1)
    if kind == "signed":
        return s3.SignedS3(settings, "lake", int(threads)).get
    if kind == "boto3":
        client = s3.client(settings, max_connections=int(threads))
        return lambda key: client.get_object(Bucket="lake", Key=key)["Body"].read()
    from pyarrow import fs

    arrow = fs.S3FileSystem(
        access_key=settings.aws.access_key_id,
        secret_key=settings.aws.secret_access_key,
        endpoint_override=urllib.parse.urlsplit(settings.s3_endpoint).netloc,
        scheme="http",
    )

    def get(key: str) -> bytes:
        with arrow.open_input_stream(f"lake/{key}", compression=None) as stream:
            return stream.read()

    return get


def read_with(way: str, endpoint: str, key: str, secret: str) -> Dict[str, float]:
    """Every object under lake/raw/song_data/, read one way; what it read."""
    sys.path.insert(0, s3bench.bench.REPO_ROOT)
    from sparkify.core.config import AwsCredentials, Settings
    from sparkify.platform import s3

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
    settings = Settings(
        input_root="s3a://lake/raw",
        output_root="",
        s3_endpoint=endpoint,
        s3_path_style=True,
        aws=AwsCredentials(access_key_id=key, secret_access_key=secret),
    )
    listed = s3.client(settings).get_paginator("list_objects_v2").paginate(Bucket="lake", Prefix=PREFIX)
    keys = [item["Key"] for page in listed for item in page.get("Contents", []) if item["Key"].endswith(".json")]
    get = fetcher(way, settings, keys)
    with ThreadPoolExecutor(int(way.rsplit("-", 1)[1])) as pool:
        size = sum(len(body) for body in pool.map(get, keys))
    return {"objects": len(keys), "bytes": size, "seconds": time.monotonic() - begun}


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
    parser.add_argument("--ways", default="signed-64,boto3-32,arrow-64,duckdb")
    parser.add_argument("--label", default="", help="results/small-reads/<set>[.LABEL].json")
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
            weed = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "weed"]  # the server's CPU
            for delay in [int(d) for d in args.delays.split(",")]:
                with S3Proxy(parts.hostname, parts.port, delay=delay / 1000.0) as proxy:
                    ways = [w for w in args.ways.split(",") if w]
                    for rep in range(args.reps):
                        for way in ways if rep % 2 == 0 else list(reversed(ways)):
                            proxy.take()
                            load = os.getloadavg()[0]
                            server_cpu = sum(sum(p.cpu_times()[:2]) for p in weed)
                            begun = time.monotonic()
                            out = subprocess.run(
                                [sys.executable, __file__, "--child", way, "--endpoint",
                                 f"http://127.0.0.1:{proxy.port}", "--key", server.ACCESS_KEY,
                                 "--secret", server.SECRET_KEY],
                                check=True, capture_output=True, text=True,
                            )  # fmt: skip
                            found = json.loads(out.stdout.strip().splitlines()[-1])
                            found.update(wall=time.monotonic() - begun, requests=len(proxy.take()), load=load)
                            found["server_cpu_seconds"] = sum(sum(p.cpu_times()[:2]) for p in weed) - server_cpu
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
                "median_server_cpu_seconds": round(statistics.median(r["server_cpu_seconds"] for r in runs), 2),
                "objects": runs[0]["objects"],
                "requests": runs[0]["requests"],
                "load": [round(r["load"], 2) for r in runs],
            }
            for way, runs in ways.items()
        }
        for delay, ways in results.items()
    }
    name = args.set + (f".{args.label}" if args.label else "") + ".json"
    with open(os.path.join(RESULTS, name), "w", encoding="utf-8") as handle:
        json.dump({"set": args.set, "summary": summary, "runs": results}, handle, indent=2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
