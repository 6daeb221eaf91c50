"""Side-by-side benchmark: the project's Spark job vs a DuckDB script, on generated data sets.

    python bench/run.py                                   # every set, 3 repetitions each
    python bench/run.py --sets public --reps 1 --per-stage
    python bench/run.py --sets many-songs --reps 1 --timeout 3600
    python bench/run.py --sets public --skip-checks        # variant: the job without its checks
    python bench/run.py --s3 --reps 3                      # the public set on S3 (SeaweedFS), 0 and 20 ms/request

For each set (made by tools/make_sample.py and cached under bench/data/<set>/, see
bench/datasets.py) the two engines run alternately on the same input, each in a fresh output
folder under bench/data/_runs/<set>/<engine>/:

    job:    python etl.py --input D --output O --master local[*]     (as a user runs it: checks on)
    duckdb: python bench/duckdb_etl.py D O

With --skip-checks the job gets --skip-checks: a variant, stored as results/<set>.skip-checks.json
and shown as "<set> (checks skipped)", never mixed with the default rows. A run that exits
non-zero is recorded as failed, with its exit code and the last lines of its stderr.

Measured per run: wall time of the process, peak memory of its whole process tree (RSS of the
process and all its descendants, JVM included, summed every 0.1 s), output files / bytes /
partitions per table (walking the output), rows per table (from each engine's own report),
events per second, and the machine's load average. The job's run report
(O/_reports/<run id>.json) gives its per-stage seconds, the data-quality checks' among them.

Writes bench/results/<set>.json per set, bench/results/summary.md and bench/results/chart.png.
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":  # s3bench's `import run` must get this module, with the settings main() makes
    sys.modules["run"] = sys.modules[__name__]
import datasets

BENCH_DIR = datasets.BENCH_DIR
REPO_ROOT = datasets.REPO_ROOT
RESULTS_DIR = os.path.join(BENCH_DIR, "results")
RUNS_DIR = os.path.join(datasets.DATA_DIR, "_runs")
# An earlier run's output is moved here before the next run and deleted when the benchmark ends (set_aside).
SET_ASIDE_DIR = os.path.join(RUNS_DIR, "_set_aside")
TABLES = ("songs", "artists", "users", "time", "songplays")
PARTITION_DEPTH = {"songs": 2, "artists": 0, "users": 0, "time": 2, "songplays": 2}
DEFAULT_SETS = "public,many-songs,many-events,events-1m"
ENGINES = ("job", "duckdb")
SKIP_CHECKS_LABEL = "skip-checks"  # the last part of a --skip-checks variant's result name
STDERR_TAIL_LINES = 20  # of a failed run's stderr, kept in the result

# Targets of the issue "Fast at scale: a benchmark that proves it".
TARGET_PUBLIC_SECONDS = 30.0
TARGET_RATIO = 1.0
MILESTONE_RATIO = 1.5
TARGET_PEAK_BYTES = 4 * 1024**3
TARGET_FILES_PER_PARTITION = 2
GIB = 1024**3


# The songs layout both engines write ([ETL] SONGS_PARTITION_BY): the job's default, or the classic
# (year, artist_id) with --classic-songs (main sets it; results name it in "songs_partition_by").
SONGS_BY = {"layout": "year"}
CLASSIC_SONGS = "year, artist_id"


def command(
    engine: str, input_root: str, output_root: str, job_config: Optional[str] = None, skip_checks: bool = False
) -> List[str]:
    """The job exactly as a user runs it (data-quality checks on), unless ``skip_checks`` (a variant)."""
    if engine == "job":
        return (
            [sys.executable, os.path.join(REPO_ROOT, "etl.py"), "--input", input_root, "--output", output_root]
            + (["--skip-checks"] if skip_checks else [])
            + ["--master", "local[*]"]
            + (["--config", job_config] if job_config else [])
        )
    layout = ["--songs-by", SONGS_BY["layout"].replace(" ", "")]
    return [sys.executable, os.path.join(BENCH_DIR, "duckdb_etl.py"), input_root, output_root, *layout]


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self.jvm_classpath_jars: List[str] = []  # the .jars/ entries on the JVM's command line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        try:
            root = psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
                if not self.jvm_classpath_jars and proc.name() == "java":
                    args = " ".join(proc.cmdline())
                    self.jvm_classpath_jars = sorted(
                        {
                            os.path.basename(p)
                            for p in args.replace(":", " ").replace(",", " ").split()
                            if "/.jars/" in p
                        }
                    ) or ["none"]
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def kill_tree(pid: int) -> None:
    """End the process we started and its descendants (by pid, nothing else)."""
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass


def walk_output(output_root: str) -> Dict[str, Dict]:
    """Per table: data files, bytes, partition folders and the most files in one partition."""
    tables: Dict[str, Dict] = {}
    for table in TABLES:
        base = os.path.join(output_root, table)
        per_folder: Dict[str, int] = {}
        files = size = 0
        for folder, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
            data = [n for n in names if not n.startswith(("_", "."))]
            if data:
                per_folder[os.path.relpath(folder, base)] = len(data)
            files += len(data)
            size += sum(os.path.getsize(os.path.join(folder, n)) for n in data)
        tables[table] = {
            "files": files,
            "bytes": size,
            "partitions": len(per_folder) if PARTITION_DEPTH[table] else 0,
            "max_files_per_partition": max(per_folder.values()) if per_folder else 0,
        }
    return tables


def job_report(output_root: str) -> Optional[Dict]:
    reports = [p for p in glob.glob(os.path.join(output_root, "_reports", "*.json")) if not p.endswith("duckdb.json")]
    if not reports:
        return None
    with open(max(reports, key=os.path.getmtime), encoding="utf-8") as handle:
        return json.load(handle)


def duckdb_report(output_root: str) -> Optional[Dict]:
    path = os.path.join(output_root, "_reports", "duckdb.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def stages(engine: str, report: Optional[Dict], wall: float) -> Dict[str, float]:
    """Per-stage seconds from the engine's own report, plus what the report does not cover."""
    if not report:
        return {}
    result: Dict[str, float] = {}
    if engine == "job":
        secs = report.get("seconds", {})
        if report.get("stages"):  # the job's per-stage mode (reports since the benchmark's second round)
            result.update(report["stages"])
            result["transform (lazy plans)"] = secs.get("transform", 0.0)
            result["outside the stages (python start, imports, state, report)"] = wall - sum(result.values())
            return {k: round(v, 3) for k, v in result.items()}
        result["extract (list + read + parse + flag + count, songs and logs)"] = secs.get("extract", 0.0)
        result["transform (lazy plans)"] = secs.get("transform", 0.0)
        for written in report.get("quarantine", []):
            result["write _quarantine"] = written.get("seconds", 0.0)
        for written in report.get("tables", []):
            result[f"write {written['table']}"] = written.get("seconds", 0.0)
        result["outside the report (python + JVM start, session, report)"] = wall - secs.get("total", 0.0)
    else:
        secs = report.get("seconds", {})
        for name, value in secs.items():
            if name != "total":
                result[name] = value
        result["outside the report (python + duckdb import)"] = wall - secs.get("total", 0.0)
    return {k: round(v, 3) for k, v in result.items()}


def rows_of(engine: str, report: Optional[Dict]) -> Dict[str, int]:
    if not report:
        return {}
    if engine == "job":
        return {t["table"]: t["rows"] for t in report.get("tables", [])}
    return dict(report.get("rows", {}))


def git_state() -> Dict:
    """The job's code at the time of a run: HEAD and uncommitted changes to etl.py / sparkify/
    (the job under test is the working tree, which may be changing while the benchmark runs)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False
            ).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "head": git("rev-parse", "--short", "HEAD").strip(),
        "uncommitted": [
            line for line in git("status", "--porcelain", "--", "etl.py", "sparkify", "tools").splitlines() if line
        ],
        "dot_jars": sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, ".jars", "*.jar"))),
    }


def set_aside(output_root: str) -> None:
    """Move an earlier run's output out of the way; it is deleted when the benchmark ends. Deleted right
    before a run, its ~28,000 files and folders slowed that run's own file creation (ext4 without a
    journal skips inodes freed in the last minutes; measured in bench/README.md, "What is measured")."""
    if os.path.exists(output_root):
        os.makedirs(SET_ASIDE_DIR, exist_ok=True)
        os.rename(output_root, os.path.join(SET_ASIDE_DIR, f"{time.time_ns()}"))


def run_once(
    engine: str,
    set_name: str,
    timeout: Optional[float],
    log_dir: str,
    rep: int,
    driver_memory: Optional[str] = None,
    label: str = "",
    job_config: Optional[str] = None,
    skip_checks: bool = False,
) -> Dict:
    input_root = datasets.set_dir(set_name)
    output_root = os.path.join(RUNS_DIR, set_name, engine)
    set_aside(output_root)
    os.makedirs(os.path.dirname(output_root), exist_ok=True)
    cmd = command(engine, input_root, output_root, job_config, skip_checks)
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if engine == "job" and driver_memory:
        # pyspark starts the JVM through spark-submit with these arguments (the job's code is unchanged).
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
    tag = f"{set_name}.{label}" if label else set_name
    log_path = os.path.join(log_dir, f"{tag}.{engine}.{rep}.log")
    err_path = os.path.join(log_dir, f"{tag}.{engine}.{rep}.stderr.log")
    code_state = git_state() if engine == "job" else None
    load_before = os.getloadavg()
    print(f"  {engine:<6} rep {rep + 1}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log_path, "w", encoding="utf-8") as log, open(err_path, "w", encoding="utf-8") as err:
        begun = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=err, env=env)
        timed_out = False
        with TreeMemory(proc.pid) as memory:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_tree(proc.pid)
                code = proc.wait()
        wall = time.monotonic() - begun
    load_after = os.getloadavg()
    report = job_report(output_root) if engine == "job" else duckdb_report(output_root)
    outputs = walk_output(output_root)
    events = set_events(set_name)
    failed = timed_out or code != 0
    result = {
        "engine": engine,
        "rep": rep + 1,
        "command": " ".join(os.path.relpath(c, REPO_ROOT) if c.startswith(REPO_ROOT) else c for c in cmd),
        "checks": ("skipped" if skip_checks else "on") if engine == "job" else None,
        "exit_code": code,
        "timed_out": timed_out,
        "failed": failed,
        "stderr_tail": tail(err_path, STDERR_TAIL_LINES) if failed else [],
        "wall_seconds": round(wall, 3),
        "peak_rss_bytes": memory.peak,
        "memory_samples": memory.samples,
        "jvm_jars_from_dot_jars": memory.jvm_classpath_jars if engine == "job" else None,
        "events_per_second": round(events / wall, 1) if wall and not failed else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "tables": outputs,
        "rows": rows_of(engine, report),
        "stages": stages(engine, report, wall),
        "log": os.path.relpath(log_path, REPO_ROOT),
        "stderr_log": os.path.relpath(err_path, REPO_ROOT),
    }
    if code_state is not None:
        result["job_code"] = code_state
        result["driver_memory"] = driver_memory or "Spark's default (1g)"
    if engine == "job" and report:
        result["job_sources"] = report.get("sources", {})
        result["job_status"] = report.get("status")
    status = "TIMED OUT" if timed_out else f"FAILED (exit {code})" if code else "exit 0"
    checks = result["stages"].get("checks")
    print(
        f"  {engine:<6} rep {rep + 1}: {wall:8.1f} s  peak {memory.peak / GIB:5.2f} GiB  {status}  "
        + (f"checks {checks:.1f} s  " if checks is not None else "")
        + f"load {load_before[0]:.1f}->{load_after[0]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    for line in result["stderr_tail"]:
        print(f"    stderr| {line}", file=sys.stderr, flush=True)
    return result


def tail(path: str, lines: int) -> List[str]:
    """The last ``lines`` non-blank lines of a text file (a failed run's stderr)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def set_events(set_name: str) -> int:
    args = datasets.SETS[set_name]
    return int(args[args.index("--events") + 1])


def summarize(runs: List[Dict], events: int) -> Dict[str, Dict]:
    summary: Dict[str, Dict] = {}
    for engine in ENGINES:
        mine = [r for r in runs if r["engine"] == engine]
        ok = [r for r in mine if not run_failed(r)]
        if not mine:
            continue
        walls = [r["wall_seconds"] for r in ok]
        last = (ok or mine)[-1]
        summary[engine] = {
            "runs": len(mine),
            "ok_runs": len(ok),
            "timed_out": any(r["timed_out"] for r in mine),
            "failures": [
                {
                    "rep": r["rep"],
                    "exit_code": r["exit_code"],
                    "timed_out": r["timed_out"],
                    "stderr_tail": r.get("stderr_tail", []),
                }
                for r in mine
                if run_failed(r)
            ],
            "median_wall_seconds": round(statistics.median(walls), 2) if walls else None,
            "min_wall_seconds": min(walls) if walls else None,
            "max_wall_seconds": max(walls) if walls else None,
            "peak_rss_bytes": max(r["peak_rss_bytes"] for r in mine),
            "events_per_second": round(events / statistics.median(walls), 1) if walls else None,
            "files_per_table": {t: last["tables"][t]["files"] for t in TABLES},
            "bytes_per_table": {t: last["tables"][t]["bytes"] for t in TABLES},
            "partitions_per_table": {t: last["tables"][t]["partitions"] for t in TABLES},
            "max_files_per_partition": max(last["tables"][t]["max_files_per_partition"] for t in TABLES),
            "rows": last["rows"],
            "stages_median": median_stages(ok),
            "checks_median_seconds": median_checks(ok),
        }
    if "job" in summary and "duckdb" in summary:
        job, duck = summary["job"]["median_wall_seconds"], summary["duckdb"]["median_wall_seconds"]
        summary["ratio_job_over_duckdb"] = round(job / duck, 2) if job and duck else None
        rows_job, rows_duck = summary["job"]["rows"], summary["duckdb"]["rows"]
        summary["row_count_differences"] = {
            t: {"job": rows_job.get(t), "duckdb": rows_duck.get(t)}
            for t in TABLES
            if rows_job.get(t) != rows_duck.get(t)
        }
    return summary


def run_failed(run: Dict) -> bool:
    return bool(run["timed_out"] or run["exit_code"] != 0)


def median_checks(runs: List[Dict]) -> Optional[float]:
    """Median seconds of the job's data-quality checks (its report's "checks" stage); None when skipped."""
    values = [r["stages"]["checks"] for r in runs if "checks" in r.get("stages", {})]
    return round(statistics.median(values), 2) if values else None


def median_stages(runs: List[Dict]) -> Dict[str, float]:
    names: List[str] = []
    for r in runs:
        for name in r["stages"]:
            if name not in names:
                names.append(name)
    return {n: round(statistics.median([r["stages"].get(n, 0.0) for r in runs]), 2) for n in names}


def run_set(
    set_name: str,
    reps: int,
    timeout: Optional[float],
    engines: List[str],
    log_dir: str,
    label: str = "",
    driver_memory: Optional[str] = None,
    shuffle_partitions: Optional[int] = None,
    skip_checks: bool = False,
) -> Dict:
    """Runs of one set; ``label`` is the whole variant label (with --skip-checks it ends in
    SKIP_CHECKS_LABEL, so those results never replace or mix with the default ones)."""
    info = datasets.ensure(set_name)
    print(f"set {set_name}: {datasets.DESCRIPTIONS[set_name]}", file=sys.stderr, flush=True)
    changes = {}
    if shuffle_partitions:
        changes[("SPARK", "SHUFFLE_PARTITIONS")] = str(shuffle_partitions)
    changes[("ETL", "SONGS_PARTITION_BY")] = SONGS_BY["layout"]
    job_config = config_copy(changes) if changes else None
    runs = kept_runs(set_name, label, engines, skip_checks)
    for rep in range(reps):
        order = engines if rep % 2 == 0 else list(reversed(engines))
        for engine in order:
            runs.append(
                run_once(engine, set_name, timeout, log_dir, rep, driver_memory, label, job_config, skip_checks)
            )
    result = {
        "set": set_name,
        "label": label,
        "checks": "skipped" if skip_checks else "on",
        "driver_memory": driver_memory,
        "shuffle_partitions": shuffle_partitions,
        "songs_partition_by": SONGS_BY["layout"],
        "description": datasets.DESCRIPTIONS[set_name],
        "generator_args": info["args"],
        "generation_seconds": info.get("seconds"),
        "input": {"song_data": info.get("song_data"), "log_data": info.get("log_data")},
        "events": set_events(set_name),
        "reps": reps,
        "timeout_seconds": timeout,
        "machine": {
            "cpus": os.cpu_count(),
            "memory_bytes": psutil.virtual_memory().total,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "duckdb": package_version("duckdb"),
            "pyspark": package_version("pyspark"),
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "summary": summarize(runs, set_events(set_name)),
        "runs": runs,
    }
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{result_name(set_name, label)}.json")
    archive(path)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    return result


def config_copy(changes: Dict[tuple, str]) -> str:
    """A copy of dl.cfg with {(section, key): value} changed, passed to the job with --config."""
    import configparser

    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep the keys' case
    parser.read(os.path.join(REPO_ROOT, "dl.cfg"), encoding="utf-8")
    for (section, key), value in changes.items():
        parser[section][key] = value
    os.makedirs(RUNS_DIR, exist_ok=True)
    name = "-".join(f"{key.lower()}-{value}".replace(" ", "").replace(",", "+") for (_, key), value in changes.items())
    path = os.path.join(RUNS_DIR, f"dl.{name}.cfg")
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def kept_runs(set_name: str, label: str, engines: List[str], skip_checks: bool = False) -> List[Dict]:
    """With --engines naming one engine only, the other engine's runs in the existing result are kept
    (the job's only if they ran in the same mode: checks on, or --skip-checks)."""
    path = os.path.join(RESULTS_DIR, f"{result_name(set_name, label)}.json")
    if set(engines) >= set(ENGINES) or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        body = json.load(handle)
    kept = [
        r
        for r in body["runs"]
        if r["engine"] not in engines
        and (r["engine"] != "job" or ("--skip-checks" in r.get("command", "").split()) == skip_checks)
    ]
    if kept:
        print(
            f"  keeping {len(kept)} earlier run(s) of {', '.join(sorted({r['engine'] for r in kept}))}", file=sys.stderr
        )
    return kept


def result_name(set_name: str, label: str = "") -> str:
    return f"{set_name}.{label}" if label else set_name


def archive(path: str) -> None:
    """Keep an earlier result of the same set in results/history/<set>.<finished_at>.json."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        body = json.load(handle)
    stamp = body.get("finished_at", "")[:19].replace(":", "").replace("-", "")
    os.makedirs(os.path.join(RESULTS_DIR, "history"), exist_ok=True)
    name = result_name(body["set"], body.get("label", ""))
    shutil.move(path, os.path.join(RESULTS_DIR, "history", f"{name}.{stamp}.json"))


def load_results() -> Dict[str, Dict]:
    found = {}
    for path in sorted(glob.glob(os.path.join(RESULTS_DIR, "*.json"))):
        if os.path.basename(path).startswith("layouts."):  # bench/layouts.py's, another shape
            continue
        with open(path, encoding="utf-8") as handle:
            body = json.load(handle)
        if not {"set", "summary", "runs"} <= set(body) or body["set"] not in datasets.SETS:
            continue  # another benchmark's file (e.g. kafka_bench.py's kafka.json)
        name = display_name(body)
        # An old <set>.json run with --skip-checks and a newer <set>.skip-checks.json share a name: the newer wins.
        if name not in found or body.get("finished_at", "") >= found[name].get("finished_at", ""):
            found[name] = body
    order = sorted(found, key=lambda n: (list(datasets.SETS).index(found[n]["set"]), checks_skipped(found[n]), n))
    return {n: found[n] for n in order}


def checks_skipped(body: Dict) -> bool:
    """Whether the job ran with --skip-checks: the result says so, or (results written before the
    benchmark ran the checks) a job run's command has the flag."""
    if "checks" in body:
        return body["checks"] == "skipped"
    return any("--skip-checks" in r.get("command", "").split() for r in body["runs"] if r["engine"] == "job")


def display_name(body: Dict) -> str:
    """The row's name: <set>[.<label>], and " (checks skipped)" for the --skip-checks variant."""
    label = body.get("label", "")
    parts = [p for p in label.split(".") if p and p != SKIP_CHECKS_LABEL]
    name = result_name(body["set"], ".".join(parts))
    return f"{name} (checks skipped)" if checks_skipped(body) else name


def fmt_seconds(value: Optional[float], timed_out: bool = False, failed: bool = False) -> str:
    if value is None:
        return "timed out" if timed_out else "failed" if failed else "-"
    return f"{value:,.1f}"


def outcome(engine_summary: Dict) -> str:
    """Median wall seconds, or why there is none."""
    failed = bool(engine_summary) and engine_summary.get("ok_runs", 0) == 0
    return fmt_seconds(engine_summary.get("median_wall_seconds"), engine_summary.get("timed_out", False), failed)


def summary_markdown(results: Dict[str, Dict]) -> str:
    lines = [
        "| set | events | reps | job median s | job checks s | DuckDB median s | job / DuckDB | job peak GiB "
        "| DuckDB peak GiB "
        "| job max files/partition | DuckDB max files/partition | job events/s | DuckDB events/s "
        "| load avg | job code |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, body in results.items():
        s = body["summary"]
        job, duck = s.get("job", {}), s.get("duckdb", {})
        loads = [r["load_average_before"][0] for r in body["runs"]] + [r["load_average_after"][0] for r in body["runs"]]
        lines.append(
            f"| {name} | {body['events']:,} | {body['reps']} "
            f"| {outcome(job)} | {fmt_checks(body, job)} | {outcome(duck)} "
            f"| {s.get('ratio_job_over_duckdb') or '-'} "
            f"| {fmt_gib(job)} | {fmt_gib(duck)} | {fmt_files(job)} | {fmt_files(duck)} "
            f"| {fmt_rate(job.get('events_per_second'))} | {fmt_rate(duck.get('events_per_second'))} "
            f"| {min(loads):.1f}-{max(loads):.1f} | {job_code(body)} |"
        )
    lines.append("")
    lines.append(linearity_line(results))
    failures = failure_lines(results)
    if failures:
        lines += ["", "Failed runs (not in the medians):", ""] + failures
    return "\n".join(lines) + "\n"


def fmt_checks(body: Dict, job: Dict) -> str:
    """Median seconds of the job's checks, "skipped" for the variant, "-" when not measured."""
    if checks_skipped(body):
        return "skipped"
    value = job.get("checks_median_seconds")
    return f"{value:,.1f}" if value is not None else "-"


def failure_lines(results: Dict[str, Dict]) -> List[str]:
    """One item per failed run: engine, rep, exit code (or timed out) and its stderr's last line."""
    lines = []
    for name, body in results.items():
        for r in body["runs"]:
            if not run_failed(r):
                continue
            why = "timed out" if r["timed_out"] else f"exit {r['exit_code']}"
            last = (r.get("stderr_tail") or ["(no stderr kept)"])[-1].replace("|", "\\|")
            lines.append(
                f"- {name} / {r['engine']} rep {r['rep']}: **failed**, {why}, after {r['wall_seconds']:.1f} s: `{last}`"
            )
    return lines


def job_code(body: Dict) -> str:
    """Which job was measured: commit, uncommitted changes, fast local FS jar, driver memory."""
    runs = [r for r in body["runs"] if r["engine"] == "job"]
    if not runs:
        return "-"
    last = runs[-1]
    code = last.get("job_code", {})
    text = code.get("head", "?") + (" + uncommitted" if code.get("uncommitted") else "")
    if "sparkify-localfs.jar" in (last.get("jvm_jars_from_dot_jars") or []):
        text += ", fast local FS"
    if body.get("driver_memory"):
        text += f", driver {body['driver_memory']}"
    if body.get("shuffle_partitions"):
        text += f", {body['shuffle_partitions']} shuffle partitions"
    if body.get("songs_partition_by", CLASSIC_SONGS) == CLASSIC_SONGS:
        text += ", classic songs layout"
    failed = [r for r in runs if run_failed(r)]
    if failed:
        text += f", {len(failed)} of {len(runs)} runs failed"
    return text


def fmt_gib(engine_summary: Dict) -> str:
    return f"{engine_summary['peak_rss_bytes'] / GIB:.2f}" if engine_summary else "-"


def fmt_files(engine_summary: Dict) -> str:
    """Most files in one partition folder, of a run that finished."""
    return str(engine_summary["max_files_per_partition"]) if engine_summary.get("ok_runs") else "-"


def fmt_rate(value: Optional[float]) -> str:
    return f"{value:,.0f}" if value else "-"


def linearity(results: Dict[str, Dict], suffix: str = "") -> Dict[str, Optional[float]]:
    """many-events / events-1m per engine, of the unlabeled runs in one mode (suffix "" or
    " (checks skipped)": the two modes are not compared with each other)."""
    out: Dict[str, Optional[float]] = {}
    big_name, small_name = "many-events" + suffix, "events-1m" + suffix
    if big_name in results and small_name in results:
        for engine in ENGINES:
            big = results[big_name]["summary"].get(engine, {}).get("median_wall_seconds")
            small = results[small_name]["summary"].get(engine, {}).get("median_wall_seconds")
            out[engine] = round(big / small, 2) if big and small else None
    return out


def linearity_line(results: Dict[str, Dict]) -> str:
    lines = []
    for suffix in ("", " (checks skipped)"):
        ratios = linearity(results, suffix)
        if ratios:
            lines.append(
                f"many-events / events-1m{suffix} wall-time ratio (10x the events; target about 10): "
                + ", ".join(f"{engine} {ratio if ratio is not None else '-'}" for engine, ratio in ratios.items())
            )
    return "\n\n".join(lines) or "many-events / events-1m: not measured (run both sets)."


def per_stage_text(results: Dict[str, Dict]) -> str:
    lines = []
    for name, body in results.items():
        for engine in ENGINES:
            stages_median = body["summary"].get(engine, {}).get("stages_median")
            if not stages_median:
                continue
            lines.append(f"{name} / {engine}: median seconds per stage")
            for stage, value in stages_median.items():
                lines.append(f"  {stage:<62} {value:9.2f}")
    return "\n".join(lines) + "\n"


def chart(results: Dict[str, Dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = list(results)
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.5, 2.2 * len(names)), 4.8), dpi=120)
    colors = {"job": "#e25a1c", "duckdb": "#2b6cb0"}
    labels = {"job": "Spark job (etl.py)", "duckdb": "DuckDB script"}
    for i, engine in enumerate(ENGINES):
        xs, ys, texts = [], [], []
        for j, name in enumerate(names):
            s = results[name]["summary"].get(engine, {})
            value = s.get("median_wall_seconds")
            xs.append(j + (i - 0.5) * width)
            ys.append(value or 0)
            texts.append(outcome(s) + (" s" if value else ""))
        bars = ax.bar(xs, ys, width, label=labels[engine], color=colors[engine])
        for bar, text in zip(bars, texts):
            x = bar.get_x() + bar.get_width() / 2
            if bar.get_height() > 0:
                ax.annotate(
                    text,
                    (x, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
            elif text != "-":  # no median: say why, at the foot of the axis
                ax.text(
                    x,
                    0.02,
                    text,
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    rotation=90,
                    color=colors[engine],
                )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n{results[n]['events']:,} events\nreps {results[n]['reps']}" for n in names], fontsize=8)
    ax.set_ylabel("median wall time, seconds (log scale)")
    ax.axhline(TARGET_PUBLIC_SECONDS, color="grey", linestyle=":", linewidth=1)
    ax.text(len(names) - 0.5, TARGET_PUBLIC_SECONDS, " 30 s (public target)", va="bottom", ha="right", fontsize=7)
    ax.set_title("Sparkify ETL: Spark job vs DuckDB, median wall time per data set", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=DEFAULT_SETS, help=f"comma-separated, of {', '.join(datasets.SETS)}")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per engine and set (default 3)")
    parser.add_argument("--per-stage", action="store_true", help="print each engine's per-stage seconds")
    parser.add_argument("--engines", default="job,duckdb", help="job,duckdb (default both)")
    parser.add_argument("--timeout", type=float, help="seconds after which one run is stopped (default: none)")
    parser.add_argument("--label", default="", help="results go to results/<set>.<label>.json (a variant run)")
    parser.add_argument(
        "--driver-memory", help="the job's JVM heap, e.g. 3g (via PYSPARK_SUBMIT_ARGS; default: Spark's 1g)"
    )
    parser.add_argument(
        "--shuffle-partitions", type=int, help="run the job with a copy of dl.cfg with this [SPARK] SHUFFLE_PARTITIONS"
    )
    parser.add_argument(
        "--classic-songs",
        action="store_true",
        help="both engines write songs by (year, artist_id), the exercise's classic layout (results/<set>.classic...)",
    )
    parser.add_argument(
        "--skip-checks",
        action="store_true",
        help="variant: the job with --skip-checks (results/<set>[.<label>].skip-checks.json, "
        'shown as "<set> (checks skipped)"); by default the job runs as users run it, checks on',
    )
    parser.add_argument(
        "--s3",
        action="store_true",
        help="the S3 set: SeaweedFS on 127.0.0.1, the set uploaded once, both engines through a counting proxy "
        "(results/<set>.s3-<delay>ms.json; --sets defaults to public; see bench/s3bench.py)",
    )
    parser.add_argument(
        "--s3-delays", default="0,20", help="with --s3: ms added before each request, one variant each (default 0,20)"
    )
    parser.add_argument("--report-only", action="store_true", help="only redo summary.md and chart.png from results")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = arguments()
    args = parser.parse_args(argv)
    if args.classic_songs:
        SONGS_BY["layout"] = CLASSIC_SONGS
        args.label = f"{args.label}.classic" if args.label else "classic"
    if args.s3 and args.sets == DEFAULT_SETS:
        args.sets = "public"
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in datasets.SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown}; known: {', '.join(datasets.SETS)}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    label = args.label
    if args.skip_checks:
        label = f"{label}.{SKIP_CHECKS_LABEL}" if label else SKIP_CHECKS_LABEL
    if args.s3 and not args.report_only:
        import s3bench

        log_dir = os.path.join(RUNS_DIR, "logs")
        os.makedirs(log_dir, exist_ok=True)
        delays = [int(d) for d in args.s3_delays.split(",") if d.strip()]
        s3bench.run_s3_sets(sets, args.reps, args.timeout, engines, log_dir, delays, args.label, args.skip_checks)
    elif not args.report_only:
        log_dir = os.path.join(RUNS_DIR, "logs")
        os.makedirs(log_dir, exist_ok=True)
        for set_name in sets:
            run_set(
                set_name,
                args.reps,
                args.timeout,
                engines,
                log_dir,
                label,
                args.driver_memory,
                args.shuffle_partitions,
                args.skip_checks,
            )
        shutil.rmtree(SET_ASIDE_DIR, ignore_errors=True)
    results = load_results()
    os.makedirs(RESULTS_DIR, exist_ok=True)
    import s3bench

    text = summary_markdown(results)
    s3_text = s3bench.summary_markdown(results)
    if s3_text:
        text += "\n" + s3_text
    with open(os.path.join(RESULTS_DIR, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.write("\n```\n" + per_stage_text(results) + "```\n")
    chart(results, os.path.join(RESULTS_DIR, "chart.png"))
    print(text)
    if args.per_stage:
        print(per_stage_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
