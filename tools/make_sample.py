"""Generate Sparkify input data in the real format: seeded, deterministic, any size.

    python tools/make_sample.py --out data/sample                      # the bundled sample
    python tools/make_sample.py --out bench/data/public --songs 14896 --events 8056 --days 30 \
        --start 2018-11-01                                               # the full public shape

Quirks of the real data that it reproduces: logged-out rows with an empty userId, users who
change level free <-> paid, song year 0, null coordinates, empty locations, one artist_id
with several names, titles shared by several song_ids, titles that look like numbers (some
stored as JSON numbers), double-encoded UTF-8 (mojibake) in the log's song/artist/name/location
fields, userAgent wrapped in literal quotes, plays that match a song (exactly or within a
fraction of a second) and plays that do not (including ones whose duration is too far off).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import string
from typing import Dict, List, Optional

UNICODE_ARTISTS = ["Björk", "Sigur Rós", "Motörhead", "Beyoncé", "Mötley Crüe", "Café Tacvba", "Röyksopp", "Zoé"]
NUMERIC_NAMES = ["311", "1990s", "2Pac", "808 State"]
NUMERIC_TITLES = ["1979", "1999", "2112", "99", "7"]
WORDS = (
    "love night heart fire rain dream blue city road light dance shadow river gold summer wild "
    "stone time soul girl boy home moon star sky world song dark sweet lost free"
).split()
SYLLABLES = "ka lo mi ra ne to su vi da pe lu mo ri sa be no".split()
PLACES = [
    ("Nashville, TN", 36.16778, -86.77836),
    ("London, England", 51.50632, -0.12714),
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("Chicago, IL", 41.88415, -87.63241),
    ("Los Angeles, CA", 34.05349, -118.24532),
    ("Hamburg, Germany", 53.55334, 9.99245),
]
USER_PLACES = [
    "San Francisco-Oakland-Hayward, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Atlanta-Sandy Springs-Roswell, GA",
    "San José-Sunnyvale-Santa Clara, CA",
    "Chicago-Naperville-Elgin, IL-IN-WI",
]
FIRST_NAMES = ["Walter", "Kaylee", "Lily", "Jacob", "Chloe", "Tegan", "Aleena", "Zoë", "Jérôme", "Ava", "Noah", "Mia"]
LAST_NAMES = ["Frye", "Summers", "Koch", "Klein", "Cuevas", "Levine", "Kirby", "Müller", "Núñez", "Smith", "Ortiz"]
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 Safari/537.36",
]
OTHER_PAGES = ["Home", "Settings", "Help", "About", "Add to Playlist", "Thumbs Up", "Thumbs Down", "Upgrade"]


def mojibake(text: str) -> str:
    """UTF-8 bytes read as Latin-1: 'Björk' -> 'BjÃ¶rk'."""
    return text.encode("utf-8").decode("latin-1")


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def ident(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))

    def phrase(self, low: int = 1, high: int = 3) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high))).title()

    def artist_name(self) -> str:
        r = self.rng.random()
        if r < 0.06:
            return self.rng.choice(UNICODE_ARTISTS) + ("" if self.rng.random() < 0.5 else " " + self.phrase(1, 1))
        if r < 0.08:
            return self.rng.choice(NUMERIC_NAMES)
        name = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(2, 3))).title()
        return name if self.rng.random() < 0.6 else f"The {name}s"

    def artists(self, count: int) -> List[Dict]:
        result = []
        for _ in range(count):
            place: Optional[tuple] = self.rng.choice(PLACES) if self.rng.random() < 0.6 else None
            name = self.artist_name()
            result.append(
                {
                    "artist_id": self.ident("AR"),
                    "names": [name] + ([f"{name} featuring {self.artist_name()}"] if self.rng.random() < 0.05 else []),
                    "location": place[0] if place and self.rng.random() < 0.8 else "",
                    "latitude": place[1] if place and self.rng.random() < 0.7 else None,
                    "longitude": place[2] if place else None,
                }
            )
        for artist in result:  # coordinates come in pairs
            if artist["latitude"] is None:
                artist["longitude"] = None
        return result

    def songs(self, count: int, artists: List[Dict]) -> List[Dict]:
        songs: List[Dict] = []
        for i in range(count):
            artist = artists[i % len(artists)] if i < len(artists) else self.rng.choice(artists)
            if songs and self.rng.random() < 0.03:
                title = self.rng.choice(songs)["title"]  # a title shared by several song_ids
            elif self.rng.random() < 0.02:
                title = self.rng.choice(NUMERIC_TITLES)
            else:
                title = self.phrase()
            songs.append(
                {
                    "num_songs": 1,
                    "artist_id": artist["artist_id"],
                    "artist_latitude": artist["latitude"],
                    "artist_longitude": artist["longitude"],
                    "artist_location": artist["location"],
                    "artist_name": self.rng.choice(artist["names"]),
                    "song_id": self.ident("SO"),
                    "title": title,
                    "duration": round(self.rng.uniform(60, 600), 5),
                    "year": 0 if self.rng.random() < 0.45 else self.rng.randint(1960, 2010),
                }
            )
        return songs


def write_songs(gen: Generator, out: str, songs: List[Dict]) -> None:
    used = set()
    rows = list(songs)
    if rows:
        rows.append(dict(rows[0]))  # the same song in a second file, as in the real data
    for song in rows:
        while True:
            track = "TR" + "".join(gen.rng.choice(string.ascii_uppercase) for _ in range(3)) + gen.ident("")[:13]
            if track not in used:
                used.add(track)
                break
        folder = os.path.join(out, "song_data", track[2], track[3], track[4])
        os.makedirs(folder, exist_ok=True)
        body = dict(song)
        if body["title"].isdigit() and gen.rng.random() < 0.5:
            body["title"] = int(body["title"])  # a numeric-looking title stored as a JSON number
        with open(os.path.join(folder, track + ".json"), "w", encoding="utf-8") as handle:
            handle.write(json.dumps(body))


def make_users(gen: Generator, count: int) -> List[Dict]:
    return [
        {
            "userId": str(i + 2),
            "firstName": gen.rng.choice(FIRST_NAMES),
            "lastName": gen.rng.choice(LAST_NAMES),
            "gender": gen.rng.choice("MF"),
            "level": "paid" if gen.rng.random() < 0.3 else "free",
            "location": gen.rng.choice(USER_PLACES),
            "registration": float(1540000000000 + gen.rng.randint(0, 10**9)),
            "userAgent": '"' + gen.rng.choice(AGENTS) + '"',
        }
        for i in range(count)
    ]


def maybe_mojibake(gen: Generator, text: Optional[str], share: float) -> Optional[str]:
    if text and not text.isascii() and gen.rng.random() < share:
        return mojibake(text)
    return text


def play(gen: Generator, songs: List[Dict], match_share: float) -> Dict:
    r = gen.rng.random()
    if songs and r < match_share:
        song = gen.rng.choice(songs)
        off = 0.0 if gen.rng.random() < 0.7 else gen.rng.choice([-0.4, 0.25, 1.5, -1.9])
        if gen.rng.random() < 0.05:
            off = gen.rng.choice([5.0, -7.5])  # same title and artist, duration too far off
        return {
            "song": maybe_mojibake(gen, str(song["title"]), 0.6),
            "artist": maybe_mojibake(gen, song["artist_name"], 0.6),
            "length": round(song["duration"] + off, 5),
        }
    return {"song": gen.phrase(1, 4), "artist": gen.artist_name(), "length": round(gen.rng.uniform(30, 700), 5)}


def event(user: Optional[Dict], ts: int, session: int, item: int, page: str, level: str, **extra) -> Dict:
    logged_in = user is not None
    row = {
        "artist": None,
        "auth": "Logged In" if logged_in else "Logged Out",
        "firstName": user["firstName"] if logged_in else None,
        "gender": user["gender"] if logged_in else None,
        "itemInSession": item,
        "lastName": user["lastName"] if logged_in else None,
        "length": None,
        "level": level,
        "location": user["location"] if logged_in else None,
        "method": "PUT" if page in ("NextSong", "Login", "Submit Upgrade", "Submit Downgrade") else "GET",
        "page": page,
        "registration": user["registration"] if logged_in else None,
        "sessionId": session,
        "song": None,
        "status": 307 if page in ("Submit Upgrade", "Submit Downgrade") else 200,
        "ts": ts,
        "userAgent": user["userAgent"] if logged_in else None,
        "userId": user["userId"] if logged_in else "",
    }
    row.update(extra)
    return row


def write_logs(
    gen: Generator,
    out: str,
    songs: List[Dict],
    users: List[Dict],
    events: int,
    days: int,
    start: dt.date,
    match_share: float,
) -> None:
    per_day = [events // days + (1 if d < events % days else 0) for d in range(days)]
    session = 1
    for d, target in enumerate(per_day):
        day = start + dt.timedelta(days=d)
        day_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
        rows: List[Dict] = []
        while len(rows) < target:
            user = gen.rng.choice(users)
            ts = day_ms + gen.rng.randint(0, 86_399_000)
            user_rows = [event(user, ts, session, 0, "Home", user["level"])]
            for _ in range(gen.rng.randint(1, 12)):
                ts += gen.rng.randint(1, 300) * 1000
                item = len(user_rows)
                if gen.rng.random() < 0.8:
                    p = play(gen, songs, match_share)
                    user_rows.append(event(user, ts, session, item, "NextSong", user["level"], **p))
                    user_rows[-1]["location"] = maybe_mojibake(gen, user["location"], 0.5)
                    user_rows[-1]["firstName"] = maybe_mojibake(gen, user["firstName"], 0.5)
                elif gen.rng.random() < 0.3:
                    page = "Submit Downgrade" if user["level"] == "paid" else "Submit Upgrade"
                    user_rows.append(event(user, ts, session, item, page, user["level"]))
                    user["level"] = "free" if user["level"] == "paid" else "paid"
                else:
                    user_rows.append(event(user, ts, session, item, gen.rng.choice(OTHER_PAGES), user["level"]))
            ts += 1000
            user_rows.append(event(user, ts, session, len(user_rows), "Logout", user["level"]))
            for page in ("Home", "Login")[: gen.rng.randint(0, 2)]:
                ts += 1000
                user_rows.append(event(None, ts, session, len(user_rows), page, user["level"]))
            rows.extend(user_rows)
            session += 1
        rows = rows[:target]
        rows.sort(key=lambda r: r["ts"])
        folder = os.path.join(out, "log_data", f"{day:%Y}", f"{day:%m}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{day:%Y-%m-%d}-events.json"), "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def generate(
    out: str, songs: int, events: int, days: int, users: int, start: dt.date, seed: int, match_share: float
) -> None:
    gen = Generator(seed)
    artists = gen.artists(max(1, int(songs * 0.85)))
    song_rows = gen.songs(songs, artists)
    write_songs(gen, out, song_rows)
    write_logs(gen, out, song_rows, make_users(gen, users), events, days, start, match_share)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="root folder to write song_data/ and log_data/ into")
    parser.add_argument("--songs", type=int, default=300, help="song files (default %(default)s)")
    parser.add_argument("--events", type=int, default=1800, help="log events in all (default %(default)s)")
    parser.add_argument("--days", type=int, default=3, help="one log file per day (default %(default)s)")
    parser.add_argument("--users", type=int, default=40, help="distinct users (default %(default)s)")
    parser.add_argument("--start", default="2018-11-29", help="first day, YYYY-MM-DD (default %(default)s)")
    parser.add_argument("--seed", type=int, default=2018, help="random seed (default %(default)s)")
    parser.add_argument("--match-share", type=float, default=0.35, help="share of plays of a known song")
    args = parser.parse_args(argv)
    if os.path.exists(os.path.join(args.out, "song_data")) or os.path.exists(os.path.join(args.out, "log_data")):
        parser.error(f"{args.out} already holds song_data/ or log_data/: remove them first")
    generate(
        args.out,
        args.songs,
        args.events,
        args.days,
        args.users,
        dt.date.fromisoformat(args.start),
        args.seed,
        args.match_share,
    )


if __name__ == "__main__":
    main()
