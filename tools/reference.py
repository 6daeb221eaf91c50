"""An independent computation of the five tables in plain Python over the raw JSON files.

It shares no code with the job: it re-states each table's rule (see README) in Python, so the
end-to-end tests can compare the Spark output with it row by row.
"""

from __future__ import annotations

import datetime as dt
import glob
import gzip
import hashlib
import json
import os
import re
from typing import Dict, Iterator, List, Optional, Tuple

MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")


def repair(text: Optional[str], rounds: int = 3) -> Optional[str]:
    """Undo UTF-8-read-as-Latin-1 while the text shows it (the real logs are garbled twice)."""
    for _ in range(rounds):
        if text is None or not MOJIBAKE.search(text) or any(ord(c) > 0xFF for c in text):
            return text
        try:
            text = text.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return text
    return text


def json_lines(folder: str) -> Iterator[dict]:
    """Objects of the *.json and *.json.gz files below ``folder``; a line that is not valid
    UTF-8 is no record (the job quarantines it)."""
    paths = glob.glob(os.path.join(folder, "**", "*.json"), recursive=True)
    paths += glob.glob(os.path.join(folder, "**", "*.json.gz"), recursive=True)
    for path in sorted(paths):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as handle:
            for raw in handle:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if line.strip():
                    yield json.loads(line)


def blank_to_none(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    text = text.strip(" ")
    return text or None


def as_text(value: object) -> Optional[str]:
    return None if value is None else str(value)


def utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts / 1000, tz=dt.timezone.utc)


class Reference:
    def __init__(self, root: str, tolerance: float = 2.0) -> None:
        self.tolerance = tolerance
        self.songs = [self._song(s) for s in json_lines(os.path.join(root, "song_data"))]
        self.songs = [s for s in self.songs if s["song_id"] and s["artist_id"] and s["title"] is not None]
        self.songs_by_name: Dict[tuple, List[dict]] = {}  # by (title, artist name), for match
        for s in self.songs:
            self.songs_by_name.setdefault((s["title"], s["artist_name"]), []).append(s)
        events: Dict[tuple, dict] = {}
        for e in json_lines(os.path.join(root, "log_data")):
            if not self._usable(e):
                continue
            events.setdefault((e.get("userId"), e["sessionId"], e["itemInSession"], e["ts"]), self._event(e))
        self.events = list(events.values())
        self.plays = [e for e in self.events if e["page"] == "NextSong"]

    @staticmethod
    def _usable(e: dict) -> bool:
        def blank(v: object) -> bool:
            return v is None or (isinstance(v, str) and not v.strip(" "))

        if e.get("ts") is None or blank(e.get("page")) or e.get("sessionId") is None or e.get("itemInSession") is None:
            return False
        return e["page"] != "NextSong" or not (blank(e.get("userId")) or blank(e.get("song")))

    @staticmethod
    def _song(s: dict) -> dict:
        year = s.get("year")
        return {
            "song_id": (as_text(s.get("song_id")) or "").strip(" ") or None,
            "title": as_text(s.get("title")),
            "artist_id": (as_text(s.get("artist_id")) or "").strip(" ") or None,
            "artist_name": as_text(s.get("artist_name")),
            "location": blank_to_none(s.get("artist_location")),
            "latitude": s.get("artist_latitude"),
            "longitude": s.get("artist_longitude"),
            "year": year if year and year > 0 else None,
            "duration": s.get("duration"),
        }

    @staticmethod
    def _event(e: dict) -> dict:
        agent = e.get("userAgent")
        if agent and len(agent) >= 2 and agent.startswith('"') and agent.endswith('"'):
            agent = agent[1:-1]
        level = e.get("level")
        return {
            "ts": e["ts"],
            "user_id": blank_to_none(e.get("userId")),
            "first_name": repair(e.get("firstName")),
            "last_name": repair(e.get("lastName")),
            "gender": e.get("gender"),
            "level": level.strip(" ").lower() if level is not None else None,
            "page": e.get("page"),
            "session_id": e.get("sessionId"),
            "item": e.get("itemInSession"),
            "song": repair(e.get("song")),
            "artist": repair(e.get("artist")),
            "length": e.get("length"),
            "location": repair(e.get("location")),
            "user_agent": agent,
        }

    # ---- the tables, as sets of tuples in the declared column order ----

    def songs_table(self) -> List[Tuple]:
        best: Dict[str, dict] = {}
        for s in sorted(
            self.songs, key=lambda s: (s["title"] is None, s["title"] or "", s["artist_id"], s["duration"])
        ):
            best.setdefault(s["song_id"], s)
        return [(s["song_id"], s["title"], s["artist_id"], s["year"], s["duration"]) for s in best.values()]

    def artists_table(self) -> List[Tuple]:
        def order(s: dict) -> tuple:
            return (
                s["latitude"] is None,
                s["location"] is None,
                s["artist_name"] is None,
                s["artist_name"] or "",
                s["song_id"],
            )

        best: Dict[str, dict] = {}
        for s in sorted(self.songs, key=order):
            best.setdefault(s["artist_id"], s)
        return [(a, s["artist_name"], s["location"], s["latitude"], s["longitude"]) for a, s in best.items()]

    def users_table(self) -> List[Tuple]:
        listeners = {p["user_id"] for p in self.plays if p["user_id"] is not None}
        latest: Dict[str, dict] = {}
        order = sorted(
            (e for e in self.events if e["user_id"] is not None),
            key=lambda e: (-e["ts"], -e["item"], e["level"] is None, e["level"] or ""),
        )
        for e in order:
            latest.setdefault(e["user_id"], e)
        return [
            (u, e["first_name"], e["last_name"], e["gender"], e["level"], e["ts"])
            for u, e in latest.items()
            if u in listeners
        ]

    def time_table(self) -> List[Tuple]:
        rows = []
        for ts in {p["ts"] for p in self.plays}:
            t = utc(ts)
            rows.append((ts, t.hour, t.day, t.isocalendar()[1], t.month, t.year, t.isoweekday()))
        return rows

    @staticmethod
    def songplay_id(p: dict) -> int:
        parts = [str(v) for v in (p["ts"], p["user_id"], p["session_id"], p["item"]) if v is not None]
        return int(hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:15], 16)

    def match(self, p: dict) -> Tuple[Optional[str], Optional[str]]:
        """The song of a play: same title and artist name, duration within the tolerance, the closest
        (then the smallest song_id, artist_id). Songs are looked up by (title, artist name): a scan of
        every song per play took 26 s here and 50 s in CI on the public shape (6,730 plays x 14,896 songs)."""
        candidates = [
            (abs(p["length"] - s["duration"]), s["song_id"], s["artist_id"])
            for s in self.songs_by_name.get((p["song"], p["artist"]), [])
            if p["song"] is not None
            and p["length"] is not None
            and s["duration"] is not None
            and abs(p["length"] - s["duration"]) <= self.tolerance
        ]
        if not candidates:
            return None, None
        _, song_id, artist_id = min(candidates)
        return song_id, artist_id

    def songplays_table(self) -> List[Tuple]:
        rows = []
        for p in self.plays:
            song_id, artist_id = self.match(p)
            t = utc(p["ts"])
            rows.append(
                (
                    self.songplay_id(p),
                    p["ts"],
                    p["user_id"],
                    p["level"],
                    song_id,
                    artist_id,
                    p["session_id"],
                    p["location"],
                    p["user_agent"],
                    t.year,
                    t.month,
                )
            )
        return rows

    def tables(self) -> Dict[str, List[Tuple]]:
        return {
            "songs": self.songs_table(),
            "artists": self.artists_table(),
            "users": self.users_table(),
            "time": self.time_table(),
            "songplays": self.songplays_table(),
        }
