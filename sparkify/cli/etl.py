"""etl.py's command line: the options, the mode they choose, and the exit code (sparkify.runs does the work)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import traceback
from dataclasses import replace
from typing import List, Optional

from sparkify.core.config import DEFAULT_CONFIG, load_settings
from sparkify.core.errors import EXIT_JVM_DIED, UserError, first_line, redact
from sparkify.platform.session import remove_jvm_error_log, run_failure
from sparkify.runs.modes import execute
from sparkify.sources import SOURCES


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the Sparkify star schema (songplays, users, songs, artists, time) "
        "as partitioned Parquet from song_data/ and log_data/ JSON.",
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help="settings file (configparser INI); default: %(default)s"
    )
    parser.add_argument(
        "--input", help="input root holding song_data/ and log_data/ (folder, s3:// or s3a://); overrides INPUT_DATA"
    )
    parser.add_argument("--output", help="output root for the five tables; overrides OUTPUT_DATA")
    parser.add_argument("--master", help="Spark master, e.g. local[2]; default: spark-submit's, else local[*]")
    parser.add_argument("--skip-checks", action="store_true", help="do not run the data-quality checks")
    modes = parser.add_argument_group("modes (one at most; none: a full run)").add_mutually_exclusive_group()
    modes.add_argument(
        "--checks-only", action="store_true", help="only run the data-quality checks against the existing output"
    )
    modes.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="incremental run: read only the log files of this day through --until; rewrite only the months "
        "they touch, merge users, keep songs/artists unless song_data/ changed",
    )
    modes.add_argument("--stream", action="store_true", help="process new log files in micro-batches")
    incremental = parser.add_argument_group("with --since")
    incremental.add_argument(
        "--until", type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help="last day of --since (default: today, UTC)"
    )
    incremental.add_argument("--rebuild-songs", action="store_true", help="rebuild songs and artists anyway")
    stream = parser.add_argument_group("with --stream (new log files, or a Kafka topic, in micro-batches)")
    stream.add_argument(
        "--source", choices=tuple(SOURCES), help="files: new files under log_data/ (default); kafka: [KAFKA]"
    )
    stream.add_argument("--servers", help="with --source kafka: bootstrap servers; overrides [KAFKA] BOOTSTRAP_SERVERS")
    stream.add_argument("--topic", help="with --source kafka: the topic; overrides [KAFKA] TOPIC")
    stream.add_argument("--available-now", action="store_true", help="process the files there are, then stop")
    stream.add_argument("--interval", type=float, help="seconds between micro-batches (default 10)")
    stream.add_argument("--timeout", type=float, help="stop after this many seconds")
    stream.add_argument("--files-per-batch", type=int, help="most log files in one micro-batch (default 1000)")
    parser.add_argument("--force", action="store_true", help="allow an output root that is a bucket's root")
    parser.add_argument("--presign", action="store_true", help="an S3 output: end with a URL opening the run's page")
    parser.add_argument("--verbose", action="store_true", help="Spark's INFO logs, progress bars and stack traces")
    args = parser.parse_args(argv)
    belongs = {
        "--since": ("until", "rebuild_songs"),
        "--stream": ("available_now", "interval", "timeout", "files_per_batch", "source", "servers", "topic"),
    }
    for mode, options in belongs.items():
        chosen = args.since is not None if mode == "--since" else args.stream
        for option in options:
            if getattr(args, option) not in (None, False) and not chosen:
                parser.error(f"--{option.replace('_', '-')} goes with {mode}: give {mode} too.")
    if (args.servers or args.topic) and args.source != "kafka":
        parser.error("--servers and --topic go with --source kafka.")
    if args.checks_only and args.skip_checks:
        parser.error("--skip-checks and --checks-only exclude each other: choose one.")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    settings = None
    try:
        settings = load_settings(args.config).with_overrides(
            input_root=args.input,
            output_root=args.output,
            master=args.master,
            verbose=args.verbose or None,
            allow_bucket_root=args.force or None,
        )
        days = None
        if args.since:
            days = (args.since, args.until or dt.datetime.now(dt.timezone.utc).date())
        stream = None
        if args.stream:
            stream = {
                "available_now": args.available_now,
                "interval_seconds": 10.0 if args.interval is None else args.interval,
                "timeout_seconds": args.timeout,
                "files_per_batch": args.files_per_batch or 1000,
                "source": args.source or "files",
            }
            kafka = settings.kafka
            settings = settings.with_overrides(
                kafka=replace(
                    kafka, bootstrap_servers=args.servers or kafka.bootstrap_servers, topic=args.topic or kafka.topic
                )
            )
        mode = "checks" if args.checks_only else "stream" if args.stream else "incremental" if days else "full"
        return execute(
            settings,
            mode=mode,
            stream=stream,
            skip_checks=args.skip_checks,
            days=days,
            rebuild_songs=args.rebuild_songs,
            presign=args.presign,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Spark/Java failures: one paragraph unless --verbose
        secrets = settings.aws.secrets if settings else ()
        message, died = run_failure(exc, secrets)
        if message is None or args.verbose:
            print(redact(traceback.format_exc(), secrets), file=sys.stderr)
        print(f"error: {redact(message or first_line(exc), secrets)}", file=sys.stderr)
        if not args.verbose:
            print("(run with --verbose for Spark's full error)", file=sys.stderr)
        return EXIT_JVM_DIED if died else 3
    finally:
        remove_jvm_error_log()
