"""The Kafka stream's latency and throughput on this machine (issue 13, "Benchmark").

    python bench/kafka_bench.py                       # 1k and 10k events/s, then higher rates, then a drain
    python bench/kafka_bench.py --rates 1000 --seconds 30 --drain 0

Starts a Kafka broker (tests/kafka_broker.py: KRaft, 127.0.0.1, full JIT; stopped by its pid whatever
happens), creates a topic (3 partitions), starts the stream as a user would
(`etl.py --stream --source kafka --interval 2 --skip-checks`, its own process group, killed at the end)
on a fresh output, warms it up, then for each rate produces events at that fixed rate with
confluent-kafka (key = userId) and records each event's produce time.

Latency = from the event's produce() call to its songplay being readable in the output: a poller
(every 0.2 s) finds new songplays/year=…/month=…/batch-<id>.parquet files (moved into place only
when complete), reads their songplay_ids with DuckDB and matches them to the produced events
(songplay_id = first 60 bits of SHA-256 over "ts|userId|sessionId|itemInSession", as
tools/reference.py). Only NextSong events become songplays, so those are the ones timed.

Consumer lag = the broker's end offsets minus the offsets of the last committed batch in the
checkpoint (OUTPUT/_checkpoints/kafka/<topic>/offsets/<n> with commits/<n>), sampled every second.
A rate is kept up with when the lag does not grow over the second half of the run.
The drain run publishes a backlog as fast as the producer can and times the stream working it
off (batches of MAX_OFFSETS_PER_TRIGGER, 100,000): the stream's capacity.

Events: the log_data of --events (default bench/data/public, 8,026 lines) copied as many times
as needed, each copy's ts shifted by 1 ms more (so every event and songplay_id is new) and each run
in its own year (so one run's batches do not scan another run's months for duplicates).
The stream reads song_data/ of --input (default data/sample).
Raw results go to bench/results/kafka.json; see bench/KAFKA.md.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
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

from sparkify.cli.replay import load_events, producer_config  # noqa: E402
from tests.kafka_broker import JVM_OPTS, _die_with_parent, quiet, run_kafka  # noqa: E402

YEAR_MS = 366 * 24 * 3600 * 1000
BATCH_FILE = re.compile(r"batch-(\d+)\.parquet$")


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
    """The base events (valid ones, event-time order), copied and shifted on demand."""

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

    def make(self, count: int, year: int) -> Tuple[List[Tuple[Optional[bytes], bytes]], Dict[int, int]]:
        """``count`` messages (key, value) for run ``year``, and songplay_id -> message index."""
        messages: List[Tuple[Optional[bytes], bytes]] = []
        plays: Dict[int, int] = {}
        copy = 0
        while len(messages) < count:
            shift = year * YEAR_MS + copy
            for key, value, ts, user, session, item, play in self.base:
                if len(messages) >= count:
                    break
                new = ts + shift
                if play:
                    plays[songplay_id(new, user, session, item)] = len(messages)
                messages.append((key, value.replace(b'"ts":%d' % ts, b'"ts":%d' % new, 1)))
            copy += 1
        return messages, plays


class Watcher(threading.Thread):
    """Polls the output: new songplays batch files (first-seen time, songplay_ids), the checkpoint's
    committed offsets and the broker's end offsets (lag)."""

    def __init__(self, output: str, servers: str, topic: str, partitions: int):
        super().__init__(daemon=True)
        import duckdb
        from confluent_kafka import Consumer

        self.output, self.topic, self.partitions = output, topic, partitions
        self.db = duckdb.connect()
        self.consumer = Consumer({"bootstrap.servers": servers, "group.id": "kafka-bench-lag", "logger": quiet()})
        self.seen: Dict[str, float] = {}
        self.lock = threading.Lock()
        self.plays: Dict[int, int] = {}  # the current run's songplay_id -> message index
        self.produced_at: List[float] = []
        self.latencies: Dict[int, float] = {}  # message index -> seconds
        self.batches: Dict[int, int] = {}  # batch id -> songplays of the current run in it
        self.samples: List[Dict[str, Any]] = []
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

    def scan(self) -> None:
        pattern = os.path.join(self.output, "songplays", "year=*", "month=*", "batch-*.parquet")
        for path in glob.glob(pattern):
            if path in self.seen:
                continue
            now = time.time()
            self.seen[path] = now
            batch = int(BATCH_FILE.search(path).group(1))  # type: ignore[union-attr]
            ids = [r[0] for r in self.db.execute("SELECT songplay_id FROM read_parquet(?)", [path]).fetchall()]
            with self.lock:
                for sid in ids:
                    index = self.plays.get(sid)
                    if index is not None and index < len(self.produced_at) and index not in self.latencies:
                        self.latencies[index] = now - self.produced_at[index]
                        self.batches[batch] = self.batches.get(batch, 0) + 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
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


def start_stream(
    servers: str, topic: str, input_root: str, output: str, interval: float, log_path: str, master: Optional[str]
) -> subprocess.Popen:
    command = [
        sys.executable,
        os.path.join(ROOT, "etl.py"),
        "--input",
        input_root,
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
    found = []
    for batch in batches:
        path = os.path.join(output, "_reports", f"stream-batch-{batch:08d}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                report = json.load(handle)
        except (OSError, ValueError):
            continue
        read = (report.get("sources") or {}).get("log_data") or {}
        found.append(
            {
                "batch": batch,
                "read": read.get("read"),
                "status": report.get("status"),
                "seconds": report.get("seconds"),
                "stages": report.get("stages"),
                "tables": {t.get("table"): t.get("seconds") for t in report.get("tables") or []},
            }
        )
    return found


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
    year: int,
    events: Events,
    watcher: Watcher,
    servers: str,
    topic: str,
    stream: subprocess.Popen,
    log_path: str,
    output: str,
    catch_up: float,
) -> Dict[str, Any]:
    messages, plays = events.make(count, year)
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
        f"  p50 {result['latency_p50']} s, p95 {result['latency_p95']} s, {len(batches)} batches, "
        f"lag at end {result['lag_at_produce_end']:,}, caught up after {caught} s, keeps up {result['keeps_up']}, "
        f"produced {sent['achieved_rate']:,}/s, load {result['load_after']}",
        flush=True,
    )
    return result


def main(argv: Optional[List[str]] = None) -> int:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", default=os.path.join(ROOT, "bench", "data", "public"), help="root whose log_data/ is replayed"
    )
    parser.add_argument(
        "--input",
        default=os.path.join(ROOT, "data", "sample"),
        help="the stream's --input (its song_data/ is read once at start: 301 songs start in a minute, the "
        "public set's 14,897 take minutes on a loaded machine)",
    )
    parser.add_argument("--rates", default="1000,10000,20000", help="events/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each fixed-rate run")
    parser.add_argument("--drain", type=int, default=200_000, help="events of the backlog run (0: none)")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--master", default=None, help="the stream's Spark master (default: etl.py's, local[*])")
    parser.add_argument("--catch-up", type=float, default=180.0, help="most seconds to wait after a run")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "kafka.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work folder (output, logs)")
    args = parser.parse_args(argv)

    events = Events(args.events)
    work = tempfile.mkdtemp(prefix="kafka-bench-")
    output = os.path.join(work, "output")
    log_path = os.path.join(work, "stream.log")
    topic = "bench-events"
    results: Dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_at_start": loadavg()},
        "settings": {
            "interval": args.interval,
            "partitions": args.partitions,
            "input": args.input,
            "events": args.events,
            "base_events": len(events.base),
            "master": args.master or "local[*]",
            "max_offsets_per_trigger": 100_000,
        },
        "runs": [],
    }
    broker_dir = os.path.join(work, "broker")
    os.makedirs(broker_dir)
    broker_gen = run_kafka(broker_dir, jvm_opts=[o for o in JVM_OPTS if o != "-XX:TieredStopAtLevel=1"])
    stream: Optional[subprocess.Popen] = None
    watcher: Optional[Watcher] = None
    try:
        broker = next(broker_gen)
        broker.create_topic(topic, partitions=args.partitions)
        print(f"broker {broker.servers} (pid {broker.pid}), work {work}", flush=True)
        stream = start_stream(broker.servers, topic, args.input, output, args.interval, log_path, args.master)
        watcher = Watcher(output, broker.servers, topic, args.partitions)
        watcher.start()
        started = time.time()
        warm = one_run(
            "warm-up", 2000, 10_000, 1, events, watcher, broker.servers, topic, stream, log_path, output, 900
        )
        warm["stream_start_to_caught_up_seconds"] = round(time.time() - started, 1)
        results["runs"].append(warm)
        for year, rate in enumerate((float(r) for r in args.rates.split(",") if r), start=2):
            results["runs"].append(
                one_run(
                    f"{rate:.0f}/s",
                    rate,
                    int(rate * args.seconds),
                    year,
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
                    20,
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
        if stream is not None:
            stop_stream(stream)
            results["stream_log_tail"] = tail(log_path, 4000)
        reports = sorted(glob.glob(os.path.join(output, "_reports", "stream-batch-*.json")))
        results["all_batch_reports"] = batch_reports(output, [int(p[-13:-5]) for p in reports])
        broker_gen.close()  # stops the broker by its pid
        results["machine"]["load_at_end"] = loadavg()
        kept = [r for r in results["runs"] if r["target_rate"] and r["name"] != "warm-up" and r["keeps_up"]]
        results["max_sustained_rate"] = max((r["achieved_rate"] for r in kept), default=None)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
        print(f"results: {args.out}", flush=True)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
