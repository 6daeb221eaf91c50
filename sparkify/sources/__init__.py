"""Sources: how events reach the job, one module each, and one line each in SOURCES."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

from pyspark.sql import DataFrame, SparkSession

from sparkify.core.config import Settings
from sparkify.core.errors import UserError
from sparkify.sources import files, kafka


def _no_jars(settings: Settings) -> str:
    return ""


def _no_precheck(settings: Settings) -> None:
    return None


@dataclass(frozen=True)
class Source:
    """A source of events for the stream (``etl.py --stream --source NAME``). Song data always comes from
    the input root's song_data/ (``files``)."""

    # new events as text: columns SOURCE_FILE (where each came from), value (one JSON event), ORIGIN optional
    stream_frame: Callable[[SparkSession, Settings, int], DataFrame]
    # the stream's checkpoint (its offsets, batch ids) under the output root
    checkpoint: Callable[[Settings], str]
    # before Spark starts: fail at once, naming what to fix (the input root is checked for every mode)
    precheck: Callable[[Settings], None] = _no_precheck
    # jars the session needs on its class path, comma-separated ("" for none)
    jars: Callable[[Settings], str] = _no_jars


SOURCES: Dict[str, Source] = {
    "files": Source(files.stream_frame, files.checkpoint),
    "kafka": Source(kafka.stream_frame, kafka.checkpoint, kafka.precheck, kafka.jars),
}


def source_named(name: str) -> Source:
    """The source called ``name``; UserError naming the choices otherwise."""
    if name not in SOURCES:
        raise UserError(f"No source {name!r}: choose one of {', '.join(SOURCES)} (--source).")
    return SOURCES[name]
