"""The Kafka stream's latency and throughput on this machine (issue 13, "Benchmark").

    python bench/kafka_bench.py                       # 1k, 10k and 20k events/s, then a drain (Parquet)
    python bench/kafka_bench.py --format iceberg      # the same, the tables as Iceberg tables
    python bench/kafka_bench.py --rates 1000 --seconds 30 --drain 0
    python bench/kafka_bench.py --songs bench/data/public --rates 1000 --drain 0   # start-up on 14,897 songs

Starts a Kafka broker (tests/kafka_broker.py: KRaft, 127.0.0.1, full JIT; stopped by its pid whatever
happens), creates a topic (3 partitions), starts the stream as a user would
(`etl.py --stream --source kafka --interval 2 --skip-checks --config WORK/dl.cfg`, its own process group,
killed at the end) on a fresh output, warms it up, then for each rate produces events at that fixed rate
with confluent-kafka (key = userId) and records each event's produce time. The stream's dl.cfg is the
repository's with [ETL] TABLE_FORMAT = --format (parquet or iceberg); the rest as it is (e.g. [STREAM]
WATERMARK, the event-time watermark of the stream's deduplication).

Latency = from the event's produce() call to its songplay being readable in the output: a poller
(every 0.2 s) finds the songplays data files that became readable and matches their songplay_ids (read
with DuckDB) to the produced events (songplay_id = first 60 bits of SHA-256 over
"ts|userId|sessionId|itemInSession", as tools/reference.py). Only NextSong events become songplays, so
those are the ones timed.
- parquet: new songplays/year=…/month=…/batch-<id>.parquet files (moved into place only when complete).
- iceberg: songplays/ is an Iceberg path table; its data files are written before the commit, so a file
  counts only once a committed snapshot adds it. Each poll checks metadata/version-hint.text (and whether
  a next vN.metadata.json is already in place); on a new version it reads that metadata JSON, and for
  each snapshot not seen yet its manifest list and the manifests it added (Avro, with DuckDB's avro
  extension from the duckdb-ext-avro wheel: requirements-dev.txt), and takes the data files ADDED by
  that snapshot; the micro-batch is the snapshot summary's sparkify.stream-batch-id.
Files already read are never read again.

Consumer lag = the broker's end offsets minus the offsets of the last committed batch in the
checkpoint (OUTPUT/_checkpoints/kafka/<topic>/offsets/<n> with commits/<n>), sampled every second.
A rate is kept up with when the lag does not grow over the second half of the run.
The drain run publishes a backlog as fast as the producer can and times the stream working it
off (batches of MAX_OFFSETS_PER_TRIGGER, 100,000): the stream's capacity.

Start-up: seconds from the stream's launch to its songs report (OUTPUT/_reports/stream-*-songs.json:
song_data/ of --songs read and written) and to the first micro-batch's report
(_reports/stream-batch-00000000.json). Per micro-batch, its report's seconds, stages, log_data counts
and spark_jobs (the Spark jobs it ran; None where the job does not report it) are kept and printed,
and the load average before and after each run.

Events: the log_data of --events (default bench/data/public, 8,026 lines) copied as many times as
needed, every other field as it is, but each message's ts (event time, epoch ms) = its run's start time
+ the message's index in the run: strictly increasing over the whole benchmark (a run starts at the
wall clock, or 1 ms after the previous run's last event if that is later), so every songplay_id is new
and no event is older than the stream's watermark. Event time keeps pace with the wall clock at 1,000
events/s and runs ahead of it at higher rates (10k/s × 30 s: ~4.5 min ahead at the end, 20k/s ~9.5 min,
the drain of 200,000 ~3 min; a lead carries over to the next run only where it exceeds the wait between
them: at most ~17 min with the defaults); the watermark (1 hour by default) stays behind every event.
Each run's first_ts/last_ts and event_time_ahead_at_produce_end (s) are in the results.
The stream reads song_data/ of --songs (default data/sample) once, at its start.
Raw results go to bench/results/kafka.json (kafka-iceberg.json with --format iceberg); see bench/KAFKA.md.
"""

from __future__ import annotations

import argparse
import configparser
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from bench.compare import load_extension  # noqa: E402
from sparkify.cli.replay import load_events, producer_config  # noqa: E402
from tests.kafka_broker import JVM_OPTS, _die_with_parent, quiet, run_kafka  # noqa: E402

BATCH_FILE = re.compile(r"batch-(\d+)\.parquet$")
BATCH_REPORT = re.compile(r"stream-batch-(\d{8})\.json$")
BATCH_KEY = "sparkify.stream-batch-id"  # an Iceberg snapshot's summary: the micro-batch it appended
FORMATS = ("parquet", "iceberg")
Group = Tuple[float, int, List[str]]  # (first seen, batch id or -1, data files)


def loadavg() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def songplay_id(ts: int, user: Any, session: Any, item: Any) -> int:
    parts = [str(v) for v in (ts, user, session, item) if v is not None]
    return int(hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:15], 16)


class Events:
    """The base events (valid ones, event-time order), copied with real-time event times on demand."""

    def __init__(self, input_root: str):
        events, _ = load_events(input_root)
        self.base: List[Tuple[Optional[bytes], bytes, int, Any, Any, Any, bool]] = []
        for late, _ts, key, value in events:
            if late:
                continue
            record = json.loads(value)
            ts = record["ts"]
            if not isinstance(ts, int) or b'"ts":%d' % ts not in value:
                continue
            user = record.get("userId") or None
            play = record.get("page") == "NextSong"
            self.base.append((key, value, ts, user, record.get("sessionId"), record.get("itemInSession"), play))
        self.next_ts = 0  # the event time after the last one made: no run goes back in event time

    def make(self, count: int) -> Tuple[List[Tuple[Optional[bytes], bytes]], Dict[int, int], int]:
        """``count`` messages (key, value), message i with ts = the run's start (now in epoch ms, or
        just after the previous run's last ts if later) + i; songplay_id -> message index; the start."""
        start = max(int(time.time() * 1000), self.next_ts)
        messages: List[Tuple[Optional[bytes], bytes]] = []
        plays: Dict[int, int] = {}
        size = len(self.base)
        for index in range(count):
            key, value, ts, user, session, item, play = self.base[index % size]
            new = start + index
            if play:
                plays[songplay_id(new, user, session, item)] = index
            messages.append((key, value.replace(b'"ts":%d' % ts, b'"ts":%d' % new, 1)))
        self.next_ts = start + count
        return messages, plays, start


class ParquetFiles:
    """New songplays/year=…/month=…/batch-<id>.parquet files (each moved into place complete)."""

    def __init__(self, output: str):
        self.pattern = os.path.join(output, "songplays", "year=*", "month=*", "batch-*.parquet")
        self.seen: set = set()

    def new(self) -> List[Group]:
        found = [p for p in glob.glob(self.pattern) if p not in self.seen]
        now = time.time()
        groups: Dict[int, List[str]] = {}
        for path in found:
            self.seen.add(path)
            groups.setdefault(int(BATCH_FILE.search(path).group(1)), []).append(path)  # type: ignore[union-attr]
        return [(now, batch, paths) for batch, paths in sorted(groups.items())]


class IcebergFiles:
    """Data files of the Iceberg table songplays/ as committed snapshots add them: a snapshot counts when its
    metadata file is committed (the local catalog names it; a path table's vN.metadata.json is in place), its
    files are those its own manifests list as ADDED."""

    def __init__(self, output: str, con: Any):
        self.metadata = os.path.join(output, "songplays", "metadata")
        self.catalog = os.path.join(output, "_catalog", "iceberg.sqlite")  # the local JDBC catalog ([CATALOG] local)
        self.file: Optional[str] = None
        self.con = con
        load_extension(con, "duckdb-ext-avro")
        self.version = 0
        self.snapshots: set = set()
        self.seen: set = set()

    def _path(self, version: int) -> str:
        return os.path.join(self.metadata, f"v{version}.metadata.json")

    def current(self) -> int:  # a path table's
        """The newest metadata version in place: version-hint.text's, or a later one already committed
        (the hint is written after the commit)."""
        version = self.version
        try:
            with open(os.path.join(self.metadata, "version-hint.text"), encoding="utf-8") as handle:
                version = max(version, int(handle.read().strip()))
        except (OSError, ValueError):  # no table yet, or the hint being rewritten
            pass
        while os.path.exists(self._path(version + 1)):
            version += 1
        return version

    def current_file(self) -> Optional[str]:
        """The committed metadata file: the one the local catalog names (a path table's: version-hint.text's)."""
        if not os.path.exists(self.catalog):
            version = self.current()
            return self._path(version) if version else None
        try:
            with sqlite3.connect(f"file:{self.catalog}?mode=ro", uri=True) as db:
                query = "SELECT metadata_location FROM iceberg_tables WHERE table_name = 'songplays'"
                row = db.execute(query).fetchone()
        except sqlite3.Error:  # being written: the next poll
            return self.file
        return row[0][len("file:") :] if row and row[0].startswith("file:") else row[0] if row else None

    def new(self) -> List[Group]:
        found = self.current_file()
        if found is None or found == self.file:
            return []
        now = time.time()
        with open(found, encoding="utf-8") as handle:
            metadata = json.load(handle)
        groups: List[Group] = []
        done = set()
        for snapshot in sorted(metadata.get("snapshots") or [], key=lambda s: s.get("sequence-number", 0)):
            sid = snapshot["snapshot-id"]
            if sid in self.snapshots:
                continue
            batch = (snapshot.get("summary") or {}).get(BATCH_KEY)
            paths = [p for p in self.added(snapshot) if p not in self.seen]
            groups.append((now, int(batch) if batch is not None else -1, paths))
            done.add(sid)
        # only now, all read: an error above leaves everything to the next poll
        self.file = found
        self.snapshots |= done
        for _now, _batch, paths in groups:
            self.seen.update(paths)
        return [g for g in groups if g[2]]

    def added(self, snapshot: Dict[str, Any]) -> List[str]:
        """The data files ``snapshot`` added: entries ADDED (status 1) in the manifests it wrote."""
        sid = snapshot["snapshot-id"]
        manifests = self.con.execute(
            "SELECT manifest_path FROM read_avro(?) WHERE added_snapshot_id = ?", [snapshot["manifest-list"], sid]
        ).fetchall()
        paths: List[str] = []
        for (manifest,) in manifests:
            rows = self.con.execute(
                "SELECT data_file.file_path FROM read_avro(?) "
                "WHERE status = 1 AND (snapshot_id IS NULL OR snapshot_id = ?) AND data_file.content = 0",
                [manifest, sid],
            ).fetchall()
            paths += [p[len("file:") :] if p.startswith("file:") else p for (p,) in rows]
        return paths


class Watcher(threading.Thread):
    """Polls the output: songplays data files as they become readable (first-seen time, songplay_ids),
    the start-up reports, the checkpoint's committed offsets and the broker's end offsets (lag)."""

    def __init__(self, output: str, servers: str, topic: str, partitions: int, table_format: str):
        super().__init__(daemon=True)
        import duckdb
        from confluent_kafka import Consumer

        self.output, self.topic, self.partitions = output, topic, partitions
        self.db = duckdb.connect()
        self.files = IcebergFiles(output, self.db) if table_format == "iceberg" else ParquetFiles(output)
        self.pending: List[Group] = []  # seen, songplay_ids not read yet (a read that failed is retried)
        self.consumer = Consumer({"bootstrap.servers": servers, "group.id": "kafka-bench-lag", "logger": quiet()})
        self.lock = threading.Lock()
        self.plays: Dict[int, int] = {}  # the current run's songplay_id -> message index
        self.produced_at: List[float] = []
        self.latencies: Dict[int, float] = {}  # message index -> seconds
        self.batches: Dict[int, int] = {}  # batch id -> songplays of the current run in it
        self.samples: List[Dict[str, Any]] = []
        self.songs_report_at: Optional[float] = None  # when _reports/stream-*-songs.json was first seen
        self.first_batch_report_at: Optional[float] = None  # ... and _reports/stream-batch-00000000.json
        self.stop_event = threading.Event()
        self.error: Optional[str] = None
        self._last_lag = 0.0

    def start_run(self, plays: Dict[int, int], produced_at: List[float]) -> None:
        with self.lock:
            self.plays, self.produced_at = plays, produced_at
            self.latencies, self.batches, self.samples = {}, {}, []

    def checkpoint(self) -> Tuple[int, int, int]:
        """(last committed batch id, its end offsets' total, planned offsets' total of the newest batch)."""
        base = os.path.join(self.output, "_checkpoints", "kafka", self.topic)
        committed = (
            [int(n) for n in os.listdir(os.path.join(base, "commits")) if n.isdigit()]
            if os.path.isdir(os.path.join(base, "commits"))
            else []
        )
        planned = (
            [int(n) for n in os.listdir(os.path.join(base, "offsets")) if n.isdigit()]
            if os.path.isdir(os.path.join(base, "offsets"))
            else []
        )

        def total(batch: int) -> int:
            with open(os.path.join(base, "offsets", str(batch)), encoding="utf-8") as handle:
                lines = handle.read().splitlines()
            return sum(json.loads(lines[2])[self.topic].values())

        last = max(committed) if committed else -1
        return last, total(last) if last >= 0 else 0, total(max(planned)) if planned else 0

    def end_offsets(self) -> int:
        from confluent_kafka import TopicPartition

        return sum(
            self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
            for p in range(self.partitions)
        )

    def lag(self) -> Dict[str, Any]:
        batch, committed, planned = self.checkpoint()
        end = self.end_offsets()
        return {
            "t": time.time(),
            "end": end,
            "committed": committed,
            "planned": planned,
            "batch": batch,
            "lag": end - committed,
        }

    def startup(self) -> None:
        """The first time the stream's songs report and its first micro-batch's report are there."""
        reports = os.path.join(self.output, "_reports")
        if self.songs_report_at is None and glob.glob(os.path.join(reports, "stream-*-songs.json")):
            self.songs_report_at = time.time()
        if self.first_batch_report_at is None and os.path.exists(os.path.join(reports, "stream-batch-00000000.json")):
            self.first_batch_report_at = time.time()

    def scan(self) -> None:
        self.pending += self.files.new()
        while self.pending:
            seen, batch, paths = self.pending[0]
            ids = [r[0] for r in self.db.execute("SELECT songplay_id FROM read_parquet(?)", [paths]).fetchall()]
            self.pending.pop(0)
            with self.lock:
                for sid in ids:
                    index = self.plays.get(sid)
                    if index is not None and index < len(self.produced_at) and index not in self.latencies:
                        self.latencies[index] = seen - self.produced_at[index]
                        self.batches[batch] = self.batches.get(batch, 0) + 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.first_batch_report_at is None:
                    self.startup()
                self.scan()
                if time.time() - self._last_lag >= 1.0:
                    self._last_lag = time.time()
                    sample = self.lag()
                    with self.lock:
                        self.samples.append(sample)
            except Exception as exc:  # keep polling; the run reports the last error
                self.error = f"{type(exc).__name__}: {exc}"
            self.stop_event.wait(0.2)


def produce(
    servers: str, topic: str, messages: List[Tuple[Optional[bytes], bytes]], rate: float, produced_at: List[float]
) -> Dict[str, Any]:
    """Publish at ``rate`` events/s (0: as fast as possible), in steps of 10 ms; produced_at gets each
    message's produce() time."""
    from confluent_kafka import Producer

    errors: List[str] = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    producer = Producer(producer_config(servers, 10.0))
    step = max(1, int(rate / 100)) if rate else 1000
    begun = time.time()
    for start in range(0, len(messages), step):
        if rate:
            due = begun + start / rate
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
        for key, value in messages[start : start + step]:
            while True:
                try:
                    produced_at.append(time.time())
                    producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:
                    produced_at.pop()
                    producer.poll(0.01)
        producer.poll(0)
    sent = time.time()
    left = producer.flush(60)
    return {
        "events": len(messages),
        "produce_seconds": round(sent - begun, 3),
        "achieved_rate": round(len(messages) / max(sent - begun, 1e-9), 1),
        "acked_seconds": round(time.time() - begun, 3),
        "undelivered": left,
        "errors": errors[:3],
        "started": begun,
        "sent": sent,
    }


def stream_config(work: str, table_format: str) -> Tuple[str, Dict[str, str]]:
    """The stream's dl.cfg: the repository's, [ETL] TABLE_FORMAT set; its path and [STREAM] section."""
    parser = configparser.ConfigParser(interpolation=None)
    with open(os.path.join(ROOT, "dl.cfg"), encoding="utf-8") as handle:
        parser.read_file(handle)
    if not parser.has_section("ETL"):
        parser.add_section("ETL")
    parser.set("ETL", "TABLE_FORMAT", table_format)
    path = os.path.join(work, "dl.cfg")
    with open(path, "w", encoding="utf-8") as handle:
        parser.write(handle)
    stream = dict(parser.items("STREAM")) if parser.has_section("STREAM") else {}
    return path, stream


def start_stream(
    servers: str,
    topic: str,
    songs_root: str,
    output: str,
    config: str,
    interval: float,
    log_path: str,
    master: Optional[str],
) -> subprocess.Popen:
    command = [
        sys.executable,
        os.path.join(ROOT, "etl.py"),
        "--config",
        config,
        "--input",
        songs_root,
        "--output",
        output,
        "--skip-checks",
        "--stream",
        "--source",
        "kafka",
        "--servers",
        servers,
        "--topic",
        topic,
        "--interval",
        str(interval),
    ]
    if master:
        command[2:2] = ["--master", master]
    log = open(log_path, "wb")  # closed with the process
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )


def stop_stream(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def tail(path: str, size: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-size:]
    except OSError:
        return ""


def wait_caught_up(watcher: Watcher, stream: subprocess.Popen, log_path: str, timeout: float) -> Optional[float]:
    """Seconds until the committed offsets reach the end offsets (None: not within ``timeout``)."""
    begun = time.time()
    while time.time() - begun < timeout:
        if stream.poll() is not None:
            raise RuntimeError(f"the stream exited ({stream.returncode}):\n{tail(log_path)}")
        try:
            sample = watcher.lag()
            if sample["end"] > 0 and sample["lag"] == 0:
                return round(time.time() - begun, 2)
        except (OSError, ValueError, IndexError, KeyError):
            pass
        time.sleep(0.5)
    return None


def batch_reports(output: str, batches: List[int]) -> List[Dict[str, Any]]:
    """What each micro-batch's report says: its seconds and stages, its log_data counts, the Spark jobs it
    ran (``spark_jobs``: None where the job does not report it) and each table's seconds."""
    found = []
    for batch in batches:
        path = os.path.join(output, "_reports", f"stream-batch-{batch:08d}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            continue
        log_data = (report.get("sources") or {}).get("log_data") or {}
        found.append(
            {
                "batch": batch,
                "read": log_data.get("read"),
                "status": report.get("status"),
                "seconds": report.get("seconds"),
                "stages": report.get("stages"),
                "log_data": log_data,
                "spark_jobs": report.get("spark_jobs"),
                "tables": {t.get("table"): t.get("seconds") for t in report.get("tables") or []},
            }
        )
    return found


def all_batch_ids(output: str) -> List[int]:
    reports = glob.glob(os.path.join(output, "_reports", "stream-batch-*.json"))
    return sorted(int(m.group(1)) for m in map(BATCH_REPORT.search, reports) if m)


def batch_line(report: Dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return "?" if value is None else str(value)

    total = (report.get("seconds") or {}).get("total")
    return (
        f"    batch {report['batch']:>3}: {shown(report.get('read')):>7} events read, {shown(total)} s total, "
        f"{shown(report.get('spark_jobs'))} Spark jobs ({report.get('status')})"
    )


def slope(samples: List[Dict[str, Any]]) -> Optional[float]:
    """Least-squares slope of the lag (events/s) over the samples."""
    if len(samples) < 3:
        return None
    xs = [s["t"] for s in samples]
    ys = [s["lag"] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den, 1) if den else None


def one_run(
    name: str,
    rate: float,
    count: int,
    events: Events,
    watcher: Watcher,
    servers: str,
    topic: str,
    stream: subprocess.Popen,
    log_path: str,
    output: str,
    catch_up: float,
) -> Dict[str, Any]:
    messages, plays, first_ts = events.make(count)
    produced_at: List[float] = []
    watcher.start_run(plays, produced_at)
    load_before = loadavg()
    print(f"{time.strftime('%H:%M:%S')} {name}: {count:,} events at {rate or 'max'}/s (load {load_before})", flush=True)
    sent = produce(servers, topic, messages, rate, produced_at)
    end_sample = watcher.lag()
    caught = wait_caught_up(watcher, stream, log_path, catch_up)
    time.sleep(1.5)  # the poller's last scans
    with watcher.lock:
        latencies = list(watcher.latencies.values())
        batches = sorted(watcher.batches)
        samples = list(watcher.samples)
    during = [s for s in samples if sent["started"] <= s["t"] <= sent["sent"]]
    second_half = [s for s in during if s["t"] >= (sent["started"] + sent["sent"]) / 2]
    grow = slope(second_half)
    reports = batch_reports(output, batches)
    result = {
        "name": name,
        "target_rate": rate,
        **{k: v for k, v in sent.items() if k not in ("started", "sent")},
        "first_ts": first_ts,
        "last_ts": first_ts + count - 1,
        "event_time_ahead_at_produce_end": round((first_ts + count - 1) / 1000 - sent["sent"], 1),
        "songplays_expected": len(plays),
        "songplays_seen": len(latencies),
        "latency_p50": pct(latencies, 0.50),
        "latency_p95": pct(latencies, 0.95),
        "latency_max": round(max(latencies), 3) if latencies else None,
        "batches": len(batches),
        "batch_ids": batches,
        "lag_at_produce_end": end_sample["lag"],
        "lag_max": max((s["lag"] for s in during), default=None),
        "lag_slope_second_half": grow,
        "caught_up_seconds_after_produce": caught,
        "keeps_up": caught is not None and (grow is None or grow < 0.05 * (rate or sent["achieved_rate"])),
        "load_before": load_before,
        "load_after": loadavg(),
        "lag_samples": [
            {"t": round(s["t"] - sent["started"], 1), "lag": s["lag"], "batch": s["batch"]} for s in samples
        ],
        "reports": reports,
        "watcher_error": watcher.error,
    }
    if rate == 0 and samples:  # drain: the stream's rate working off the backlog
        moving = [s for s in samples if s["committed"] > samples[0]["committed"]]
        first = samples[0]
        last = moving[-1] if moving else first
        span = last["t"] - first["t"]
        result["drain_events_per_second"] = round((last["committed"] - first["committed"]) / span, 1) if span else None
    print(
        f"  p50 {result['latency_p50']} s, p95 {result['latency_p95']} s "
        f"({len(latencies):,} of {len(plays):,} songplays seen), {len(batches)} batches, "
        f"lag at end {result['lag_at_produce_end']:,}, caught up after {caught} s, keeps up {result['keeps_up']}, "
        f"produced {sent['achieved_rate']:,}/s; load (1, 5, 15 min) before {load_before} -> after "
        f"{result['load_after']}",
        flush=True,
    )
    for report in reports:
        print(batch_line(report), flush=True)
    return result


def startup_figures(watcher: Watcher, launched: float) -> Dict[str, Optional[float]]:
    def since(at: Optional[float]) -> Optional[float]:
        return round(at - launched, 1) if at is not None else None

    return {
        "songs_report_seconds": since(watcher.songs_report_at),
        "first_batch_report_seconds": since(watcher.first_batch_report_at),
    }


def count_song_files(songs_root: str) -> Optional[int]:
    folder = os.path.join(songs_root, "song_data")
    if not os.path.isdir(folder):
        return None
    return sum(1 for _dir, _subdirs, names in os.walk(folder) for n in names if n.endswith((".json", ".json.gz")))


def main(argv: Optional[List[str]] = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", default=os.path.join(ROOT, "bench", "data", "public"), help="root whose log_data/ is replayed"
    )
    parser.add_argument(
        "--songs",
        "--input",
        dest="songs",
        default=os.path.join(ROOT, "data", "sample"),
        metavar="ROOT",
        help="the stream's --input: its song_data/ is read once at start (data/sample: 301 songs; "
        "bench/data/public: 14,897 song files, minutes on a loaded machine)",
    )
    parser.add_argument("--format", choices=FORMATS, default="parquet", help="[ETL] TABLE_FORMAT of the stream")
    parser.add_argument("--rates", default="1000,10000,20000", help="events/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each fixed-rate run")
    parser.add_argument("--drain", type=int, default=200_000, help="events of the backlog run (0: none)")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--master", default=None, help="the stream's Spark master (default: etl.py's, local[*])")
    parser.add_argument("--catch-up", type=float, default=180.0, help="most seconds to wait after a run")
    parser.add_argument(
        "--out", default=None, help="results file (default: bench/results/kafka.json, kafka-iceberg.json for iceberg)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (output, logs)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(
        ROOT, "bench", "results", "kafka.json" if args.format == "parquet" else f"kafka-{args.format}.json"
    )

    events = Events(args.events)
    work = tempfile.mkdtemp(prefix="kafka-bench-")
    output = os.path.join(work, "output")
    log_path = os.path.join(work, "stream.log")
    config, stream_section = stream_config(work, args.format)
    topic = "bench-events"
    results: Dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_at_start": loadavg()},
        "settings": {
            "format": args.format,
            "interval": args.interval,
            "partitions": args.partitions,
            "songs": args.songs,
            "song_files": count_song_files(args.songs),
            "events": args.events,
            "base_events": len(events.base),
            "event_time": "ts = run start (epoch ms) + message index",
            "stream_section": stream_section,  # [STREAM] of the stream's dl.cfg (WATERMARK: default 1 hour)
            "master": args.master or "local[*]",
            "max_offsets_per_trigger": 100_000,
        },
        "startup": {},
        "runs": [],
    }
    broker_dir = os.path.join(work, "broker")
    os.makedirs(broker_dir)
    broker_gen = run_kafka(broker_dir, jvm_opts=[o for o in JVM_OPTS if o != "-XX:TieredStopAtLevel=1"])
    stream: Optional[subprocess.Popen] = None
    watcher: Optional[Watcher] = None
    launched = 0.0
    try:
        broker = next(broker_gen)
        broker.create_topic(topic, partitions=args.partitions)
        print(f"broker {broker.servers} (pid {broker.pid}), work {work}, format {args.format}", flush=True)
        watcher = Watcher(output, broker.servers, topic, args.partitions, args.format)
        launched = time.time()
        stream = start_stream(broker.servers, topic, args.songs, output, config, args.interval, log_path, args.master)
        watcher.start()
        warm = one_run("warm-up", 2000, 10_000, events, watcher, broker.servers, topic, stream, log_path, output, 900)
        warm["stream_start_to_caught_up_seconds"] = round(time.time() - launched, 1)
        results["runs"].append(warm)
        results["startup"] = startup_figures(watcher, launched)
        print(
            f"start-up: songs report {results['startup']['songs_report_seconds']} s, first batch report "
            f"{results['startup']['first_batch_report_seconds']} s after launch",
            flush=True,
        )
        for rate in (float(r) for r in args.rates.split(",") if r):
            results["runs"].append(
                one_run(
                    f"{rate:.0f}/s",
                    rate,
                    int(rate * args.seconds),
                    events,
                    watcher,
                    broker.servers,
                    topic,
                    stream,
                    log_path,
                    output,
                    args.catch_up,
                )
            )
            if not results["runs"][-1]["caught_up_seconds_after_produce"]:
                break  # the backlog did not clear: higher rates would only pile on
        if args.drain:
            results["runs"].append(
                one_run(
                    "drain",
                    0,
                    args.drain,
                    events,
                    watcher,
                    broker.servers,
                    topic,
                    stream,
                    log_path,
                    output,
                    max(args.catch_up, 300),
                )
            )
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"error: {results['error']}", file=sys.stderr)
    finally:
        if watcher is not None:
            watcher.stop_event.set()
            if not results["startup"] and launched:
                results["startup"] = startup_figures(watcher, launched)
        if stream is not None:
            stop_stream(stream)
            results["stream_log_tail"] = tail(log_path, 4000)
        results["all_batch_reports"] = batch_reports(output, all_batch_ids(output))
        broker_gen.close()  # stops the broker by its pid
        results["machine"]["load_at_end"] = loadavg()
        kept = [r for r in results["runs"] if r["target_rate"] and r["name"] != "warm-up" and r["keeps_up"]]
        results["max_sustained_rate"] = max((r["achieved_rate"] for r in kept), default=None)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
        print(f"all batches ({len(results['all_batch_reports'])}):")
        for report in results["all_batch_reports"]:
            print(batch_line(report))
        print(f"load at start {results['machine']['load_at_start']}, at end {results['machine']['load_at_end']}")
        print(f"results: {out}", flush=True)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
