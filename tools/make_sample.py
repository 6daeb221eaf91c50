"""Generate Sparkify input data in the real format: seeded, deterministic, any size.

    python tools/make_sample.py --out data/sample                      # the bundled sample
    python tools/make_sample.py --out bench/data/public --songs 14896 --events 8056 --days 30 \
        --start 2018-11-01                                               # the full public shape

Quirks of the real data (../shared/data/udacity-sample) that it reproduces, measured by
tests/test_generator.py against the real files:

- song_data: one object per file in A/B/C/TRxxx.json, non-ASCII written as \\u escapes, no final
  newline; year 0 (about 60%), no location and no coordinates (about 40%), a location without
  coordinates, coordinates always in pairs; one artist_id with several names, titles shared by
  several song_ids, titles that look like numbers (some stored as JSON numbers), a few titles
  with a trailing space.
- log_data: one file per day holding only that day's events sorted by time, compact JSON lines
  with \\u escapes and "\\/", no final newline; every timestamp ends in the same milliseconds.
- Mojibake only in the song and artist of plays, and every non-ASCII one garbled: mostly two
  layers of UTF-8-read-as-Latin-1 as in the real logs ("BeyoncÃ\\u0083Â©"), some one and some
  three layers. User names and locations are plain ASCII, as in the real logs.
- userAgent wrapped in literal quotes when it holds a comma (CSV quoting), bare otherwise.
- Logged-out rows (about 3.5%): userId "", every user field null, pages Home/Login/About/Help,
  before a Login or after a Logout in a user's session, or alone in a visitor's session.
- Pages, methods and statuses as in the real logs (Login/Logout/Save Settings/Submit * are PUT
  307, Error is GET 404); about 8% of users change level through Submit Upgrade/Downgrade, the
  level changing on the next event; a few paid users make most of the events.
- Plays that match a song (exactly or within a fraction of a second, garbled or not) and plays
  that do not (including ones whose duration is too far off); titles and artists that are numbers.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import json
import os
import random
import string
from typing import Dict, List, Optional

UNICODE_ARTISTS = [
    "Björk",
    "Sigur Rós",
    "Motörhead",
    "Beyoncé",
    "Mötley Crüe",
    "Café Tacvba",
    "Röyksopp",
    "Zoé",
    "Hervé",
    "Noir Désir",
    "Maná",
    "Édith Piaf",
    "Sébastien Tellier",
    "Ángela Carrasco",
]
UNICODE_TITLES = [
    "Jóga",
    "Déjà Vu",
    "Niño Soldado",
    "Représente",
    "De São Paulo À Belém",
    "Ces Gens Là",
    "No Hay Nadie Como Tú",
    "Sincerité Et Jalousie",
    "Für Elise",
    "Señorita",
    "Ça Plane Pour Moi",
    "Smörgåsbord",
    "Hoppípolla",
    "Canción",
]
NUMERIC_NAMES = ["311", "1990s", "2Pac", "808 State", "3 Doors Down", "10cc", "50 Cent", "3OH!3"]
NUMERIC_TITLES = ["1979", "1999", "2112", "99", "7", "1234", "#40", "1-2-8"]
WORDS = (
    "love night heart fire rain dream blue city road light dance shadow river gold summer wild "
    "stone time soul girl boy home moon star sky world song dark sweet lost free"
).split()
SYLLABLES = "ka lo mi ra ne to su vi da pe lu mo ri sa be no".split()
PLACES = [
    ("Nashville, TN", 36.16778, -86.77836),
    ("London, England", 51.50632, -0.12714),
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("Chicago", 41.88415, -87.63241),
    ("California - LA", 34.05349, -118.24532),
    ("Hamburg, Germany", 53.55334, 9.99245),
    ("Toronto, Ontario, Canada", 43.64856, -79.38533),
    ("Memphis, TN", 35.14968, -90.04892),
    ("New York, NY [Spanish Harlem]", 40.79195, -73.94512),
    ("Ohio", 40.41173, -82.90712),
]
USER_PLACES = [
    "San Francisco-Oakland-Hayward, CA",
    "Portland-South Portland, ME",
    "Lansing-East Lansing, MI",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Atlanta-Sandy Springs-Roswell, GA",
    "Waterloo-Cedar Falls, IA",
    "Lake Havasu City-Kingman, AZ",
    "San Jose-Sunnyvale-Santa Clara, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Nashville-Davidson--Murfreesboro--Franklin, TN",
    "Minneapolis-St. Paul-Bloomington, MN-WI",
    "Washington-Arlington-Alexandria, DC-VA-MD-WV",
    "Tampa-St. Petersburg-Clearwater, FL",
    "Klamath Falls, OR",
    "Winston-Salem, NC",
]
FIRST_NAMES = [
    "Walter",
    "Kaylee",
    "Lily",
    "Jacob",
    "Chloe",
    "Tegan",
    "Aleena",
    "Jayden",
    "Ava",
    "Noah",
    "Mia",
    "Cecilia",
]
LAST_NAMES = ["Frye", "Summers", "Koch", "Klein", "Cuevas", "Levine", "Kirby", "Harrell", "Cruz", "Smith", "Ortiz"]
# Real agents: the logs quote the ones that hold a comma (CSV quoting), not the others.
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.78.2 (KHTML, like Gecko) Version/7.0.6 Safari/537.78.2",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
]
# Logged-in pages besides NextSong, with their weights in the real logs; "_offer" becomes Upgrade or
# Downgrade and "_submit" Submit Upgrade or Submit Downgrade once the user's level at that time is known.
OTHER_PAGES = ["Home", "_offer", "Settings", "Help", "About", "Save Settings", "Error"]
OTHER_WEIGHTS = [635, 81, 56, 38, 22, 10, 9]
PLAY_SHARE = 0.95  # of a session's logged-in actions besides its first Home, Submit and Logout
LOGGED_OUT_PAGES = ["Home", "Home", "Home", "About", "Help"]
PUT_307 = {"Login", "Logout", "Save Settings", "Submit Upgrade", "Submit Downgrade"}
LAYERS = [2] * 8 + [1, 3]  # mojibake layers: mostly two, as in the real logs
DAY_MS = 86_400_000


def garble(text: str, layers: int = 1) -> str:
    """UTF-8 bytes read as Latin-1, `layers` times: 'Björk' -> 'BjÃ¶rk' -> 'BjÃ\\x83Â¶rk'."""
    for _ in range(layers):
        text = text.encode("utf-8").decode("latin-1")
    return text


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def ident(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))

    def phrase(self, low: int = 1, high: int = 3) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high))).title()

    def title(self, numeric: float = 0.002) -> str:
        r = self.rng.random()
        if r < 0.025:
            return self.rng.choice(UNICODE_TITLES) + ("" if self.rng.random() < 0.5 else " " + self.phrase(1, 1))
        if r < 0.025 + numeric:
            return self.rng.choice(NUMERIC_TITLES)
        if r < 0.028 + numeric:
            return self.phrase() + " "  # a trailing space, kept on both sides
        return self.phrase()

    def artist_name(self) -> str:
        r = self.rng.random()
        if r < 0.035:
            return self.rng.choice(UNICODE_ARTISTS) + ("" if self.rng.random() < 0.5 else " " + self.phrase(1, 1))
        if r < 0.045:
            return self.rng.choice(NUMERIC_NAMES)
        name = "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(2, 3))).title()
        return name if self.rng.random() < 0.6 else f"The {name}s"

    def artists(self, count: int) -> List[Dict]:
        result = []
        for _ in range(count):
            place: Optional[tuple] = self.rng.choice(PLACES) if self.rng.random() < 0.61 else None
            coords = place is not None and self.rng.random() < 0.72  # some real locations come without them
            name = self.artist_name()
            result.append(
                {
                    "artist_id": self.ident("AR"),
                    "names": [name] + ([f"{name} featuring {self.artist_name()}"] if self.rng.random() < 0.05 else []),
                    "location": place[0] if place else "",
                    "latitude": place[1] if coords else None,
                    "longitude": place[2] if coords else None,
                }
            )
        return result

    def songs(self, count: int, artists: List[Dict]) -> List[Dict]:
        songs: List[Dict] = []
        for i in range(count):
            artist = artists[i % len(artists)] if i < len(artists) else self.rng.choice(artists)
            if songs and self.rng.random() < 0.03:
                title = self.rng.choice(songs)["title"]  # a title shared by several song_ids
            else:
                title = self.title(numeric=0.012)
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
                    "duration": round(self.rng.uniform(30, 600), 5),
                    "year": 0 if self.rng.random() < 0.6 else self.rng.randint(1960, 2010),
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
    """About 15% paid and 8% who change level (one paid user who downgrades, the others free)."""
    order = list(range(count))
    gen.rng.shuffle(order)
    paid = set(order[: max(1, round(count * 0.15))])
    changers = set(order[len(paid) - 1 : len(paid) - 1 + max(1, round(count * 0.08))])
    users = []
    for i in range(count):
        agent = gen.rng.choice(AGENTS)
        users.append(
            {
                "userId": str(i + 2),
                "firstName": gen.rng.choice(FIRST_NAMES),
                "lastName": gen.rng.choice(LAST_NAMES),
                "gender": gen.rng.choice("MF"),
                "level": "paid" if i in paid else "free",
                "location": gen.rng.choice(USER_PLACES),
                "registration": 1540000000000 + gen.rng.randint(0, 10**6) * 1000,
                "userAgent": f'"{agent}"' if "," in agent else agent,
                "changes_level": i in changers,
            }
        )
    return users


def log_text(gen: Generator, text: str) -> str:
    """A song or artist as the log holds it: non-ASCII text garbled, mostly twice."""
    return text if text.isascii() else garble(text, gen.rng.choice(LAYERS))


def play(gen: Generator, songs: List[Dict], match_share: float) -> Dict:
    if songs and gen.rng.random() < match_share:
        song = gen.rng.choice(songs)
        off = 0.0 if gen.rng.random() < 0.7 else gen.rng.choice([-0.4, 0.25, 1.5, -1.9])
        if gen.rng.random() < 0.05:
            off = gen.rng.choice([5.0, -7.5])  # same title and artist, duration too far off
        return {
            "song": log_text(gen, str(song["title"])),
            "artist": log_text(gen, song["artist_name"]),
            "length": round(song["duration"] + off, 5),
        }
    return {
        "song": log_text(gen, gen.title()),
        "artist": log_text(gen, gen.artist_name()),
        "length": round(gen.rng.uniform(30, 700), 5),
    }


def event(user: Optional[Dict], ts: int, session: int, item: int, page: str, **extra) -> Dict:
    """One log row; its level is set later, in time order (see resolve_levels)."""
    logged_in = user is not None
    row = {
        "artist": None,
        "auth": "Logged In" if logged_in else "Logged Out",
        "firstName": user["firstName"] if logged_in else None,
        "gender": user["gender"] if logged_in else None,
        "itemInSession": item,
        "lastName": user["lastName"] if logged_in else None,
        "length": None,
        "level": None,
        "location": user["location"] if logged_in else None,
        "method": "PUT" if page in PUT_307 or page in ("NextSong", "_submit") else "GET",
        "page": page,
        "registration": float(user["registration"]) if logged_in else None,
        "sessionId": session,
        "song": None,
        "status": 307 if page in PUT_307 or page == "_submit" else 404 if page == "Error" else 200,
        "ts": ts,
        "userAgent": user["userAgent"] if logged_in else None,
        "userId": user["userId"] if logged_in else "",
    }
    row.update(extra)
    return row


def session_rows(gen: Generator, user: Dict, songs: List[Dict], match_share: float, ts: int, session: int) -> List:
    """(owner, row) pairs of one session: the owner is the user whose level the row carries."""
    rows: List = []

    def add(who: Optional[Dict], page: str, gap: int, **extra) -> None:
        nonlocal ts
        ts += gap * 1000
        rows.append((user, event(who, ts, session, len(rows), page, **extra)))

    if gen.rng.random() < 0.03:  # a visitor who never logs in
        add(None, "Home", 0)
        return rows
    if gen.rng.random() < 0.1:  # logged out first, then Login
        for _ in range(gen.rng.randint(0, 2)):
            add(None, gen.rng.choice(LOGGED_OUT_PAGES), gen.rng.randint(0, 40))
        add(None, "Login", gen.rng.randint(1, 20))
        add(user, "Home", 0)
    elif gen.rng.random() < 0.5:
        add(user, "Home", 0)
    actions = min(150, 1 + int(gen.rng.expovariate(1 / 7)))
    submit_at = gen.rng.randrange(actions) if user["changes_level"] and gen.rng.random() < 0.5 else -1
    gap = gen.rng.choice([0, 0, 1, 5])
    for i in range(actions):
        if i == submit_at:
            user["changes_level"] = False
            add(user, "_offer", gap)
            add(user, "_submit", gen.rng.randint(5, 60))
            add(user, "Home", 0)  # the new level shows from here on
            gap = gen.rng.randint(1, 30)
        elif gen.rng.random() < PLAY_SHARE:
            p = play(gen, songs, match_share)
            add(user, "NextSong", gap, **p)
            gap = int(p["length"]) if gen.rng.random() < 0.7 else gen.rng.randint(1, 120)  # skipped
        else:
            add(user, gen.rng.choices(OTHER_PAGES, OTHER_WEIGHTS)[0], gap)
            gap = gen.rng.choice([0, 1, 5, 20])
    if gen.rng.random() < 0.1:
        add(user, "Logout", gap)
        for _ in range(gen.rng.choice([0, 1, 1, 2])):
            add(None, "Home", gen.rng.randint(1, 30))
    return rows


def resolve_levels(rows: List, levels: Dict[str, str]) -> None:
    """Levels in time order: a Submit carries the old level, the rows after it the new one."""
    for owner, row in rows:
        uid = owner["userId"]
        level = levels[uid]
        row["level"] = level
        if row["page"] == "_offer":
            row["page"] = "Upgrade" if level == "free" else "Downgrade"
        elif row["page"] == "_submit":
            row["page"] = "Submit Upgrade" if level == "free" else "Submit Downgrade"
            levels[uid] = "paid" if level == "free" else "free"


def dumps(row: Dict) -> str:
    """A log line as the real files write it: compact, \\u escapes, '/' escaped."""
    return json.dumps(row, separators=(",", ":")).replace("/", "\\/")


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
    millis = gen.rng.randint(0, 999)  # every real timestamp ends in the same milliseconds
    for user in users:
        user["registration"] += millis
    # A few heavy users make most of the events: paid ones and the ones who change level, as in the real logs.
    weights = [
        20 * gen.rng.lognormvariate(0, 0.5)
        if u["level"] == "paid" or u["changes_level"]
        else gen.rng.lognormvariate(0, 1)
        for u in users
    ]
    cumulative = list(itertools.accumulate(weights))
    levels = {u["userId"]: u["level"] for u in users}
    first_day: Dict[int, List[Dict]] = {}  # every user has a session on some day, as in the real logs
    for user in users:
        first_day.setdefault(gen.rng.randrange(days), []).append(user)
    session = 1
    for d, target in enumerate(per_day):
        day = start + dt.timedelta(days=d)
        day_ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)
        rows: List = []
        due = first_day.get(d, [])
        while len(rows) < target:
            user = due.pop() if due else users[bisect.bisect(cumulative, gen.rng.random() * cumulative[-1])]
            ts = day_ms + gen.rng.randint(0, DAY_MS // 1000 - 1) * 1000 + millis
            new = session_rows(gen, user, songs, match_share, ts, session)
            rows.extend(r for r in new if r[1]["ts"] < day_ms + DAY_MS)  # the file holds its day only
            session += 1
        rows.sort(key=lambda r: r[1]["ts"])
        rows = rows[:target]
        resolve_levels(rows, levels)
        folder = os.path.join(out, "log_data", f"{day:%Y}", f"{day:%m}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{day:%Y-%m-%d}-events.json"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(dumps(r) for _, r in rows))  # no final newline, as in the real files


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
