"""The five Sparkify tables built by DuckDB, with the job's rules: the benchmark's yardstick.

    python bench/duckdb_etl.py INPUT OUTPUT [--threads N] [--memory-limit 4GB] [--songs-by year,artist_id]
    python bench/duckdb_etl.py s3://BUCKET/raw s3://BUCKET/out --s3-endpoint 127.0.0.1:8333 --report R.json

INPUT and OUTPUT may be s3:// URIs (the benchmark's S3 set): httpfs is loaded from the
duckdb-ext-httpfs wheel (no download) and an S3 secret is made from --s3-endpoint (host:port,
path-style, plain HTTP) and the AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables. An s3://
OUTPUT is expected to be a fresh prefix (nothing is deleted there); its report goes to --report.

INPUT holds song_data/ and log_data/ (*.json at any depth); OUTPUT gets songplays/, users/,
songs/, artists/, time/ as Parquet with the job's partitioning (songs by year, rows sorted by
artist_id, as the job's default; --songs-by year,artist_id: the classic layout), and _reports/duckdb.json with the
seconds of each stage and the rows of each table. Each table folder is replaced.

The rules are those of sparkify/transform.py (see README, "Output tables"):
- explicit column types (no inference), every *.json below the folder;
- rejected rows are left out (blank ids, missing ts/page/session, NextSong without user or song);
  a repeated event (same userId, sessionId, itemInSession, ts) counts once;
- ts epoch ms -> UTC timestamp; week is ISO; weekday is ISO (1 = Monday);
- mojibake repair of song/artist/first/last name/location: exactly the job's rule (text showing
  the pattern, all characters in Latin-1, whose Latin-1 bytes decode as valid UTF-8), repeated
  for 3 rounds as the job does (the real logs are garbled twice);
- songplay_id: the first 15 hex digits of sha256('ts|userId|sessionId|itemInSession') as bigint;
- plays matched to songs on title, artist name and duration within the tolerance (closest
  duration, then lowest song_id); unmatched plays kept with null ids;
- users: latest level and name by (ts, itemInSession) from any page, for users with a play;
- songs: year 0 -> null; one row per song_id; artists: one row per artist_id, most complete first.

Known differences from the job (none change the rows): the quarantine of rejected records is not
written; a null partition value goes to the folder `year=NULL` where Spark writes
`year=__HIVE_DEFAULT_PARTITION__`; file names differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Dict, List, Optional, Tuple

import duckdb

TOLERANCE = 2.0

SONG_COLUMNS = {
    "num_songs": "BIGINT",
    "artist_id": "VARCHAR",
    "artist_latitude": "DOUBLE",
    "artist_longitude": "DOUBLE",
    "artist_location": "VARCHAR",
    "artist_name": "VARCHAR",
    "song_id": "VARCHAR",
    "title": "VARCHAR",
    "duration": "DOUBLE",
    "year": "BIGINT",
}

LOG_COLUMNS = {
    "artist": "VARCHAR",
    "auth": "VARCHAR",
    "firstName": "VARCHAR",
    "gender": "VARCHAR",
    "itemInSession": "BIGINT",
    "lastName": "VARCHAR",
    "length": "DOUBLE",
    "level": "VARCHAR",
    "location": "VARCHAR",
    "method": "VARCHAR",
    "page": "VARCHAR",
    "registration": "DOUBLE",
    "sessionId": "BIGINT",
    "song": "VARCHAR",
    "status": "BIGINT",
    "ts": "BIGINT",
    "userAgent": "VARCHAR",
    "userId": "VARCHAR",
}


def is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://"))


def use_s3(con: duckdb.DuckDBPyConnection, endpoint: str, key: str = "", secret: str = "") -> None:
    """httpfs from the duckdb-ext-httpfs wheel (its file lies under duckdb_ext/extensions/<version>/<platform>/,
    no Python module), and one S3 secret: the endpoint, path-style URLs, plain HTTP, the keys given or else the
    environment's."""
    import importlib.metadata

    files = [f for f in importlib.metadata.files("duckdb-ext-httpfs") or [] if f.name == "httpfs.duckdb_extension"]
    if not files:
        raise SystemExit("httpfs.duckdb_extension not found: pip install -r bench/requirements.txt")
    con.execute(f"LOAD {sql_string(str(files[0].locate()))}")
    key = key or os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret = secret or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    con.execute(
        f"CREATE SECRET bench_s3 (TYPE s3, KEY_ID {sql_string(key)}, SECRET {sql_string(secret)}, "
        f"ENDPOINT {sql_string(endpoint)}, URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
    )


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def columns_struct(columns: Dict[str, str]) -> str:
    return "{" + ", ".join(f"{sql_string(k)}: {sql_string(v)}" for k, v in columns.items()) + "}"


def read_json(folder: str, columns: Dict[str, str]) -> str:
    pattern = os.path.join(folder, "**", "*.json")
    return (
        f"read_json({sql_string(pattern)}, format = 'newline_delimited', columns = {columns_struct(columns)}, "
        "filename = true, maximum_object_size = 16777216)"
    )


# Real logs are garbled more than once ("BeyoncÃ\u0083Â©" is "Beyoncé" encoded twice): as the job
# (sparkify.transform.MOJIBAKE_ROUNDS), the one-round repair is applied this many times, each round
# over the previous round's columns.
MOJIBAKE_ROUNDS = 3
REPAIRED = ("firstName", "lastName", "song", "artist", "location")


def repair_once(col: str) -> str:
    """Undo one round of UTF-8-read-as-Latin-1, as sparkify.transform._repair_once does: text that
    shows the pattern, every character in Latin-1, whose Latin-1 bytes decode as valid UTF-8.

    DuckDB has no Latin-1 codec, but for text whose characters are all <= U+00FF the Latin-1
    bytes are the code points themselves: hex them, from_hex() to a blob, decode() as UTF-8
    (TRY: null when not valid UTF-8, and then the text is kept)."""
    hex_digits = f"list_transform(string_split({col}, ''), c -> printf('%02x', ord(c)))"
    latin1_bytes = f"from_hex(array_to_string({hex_digits}, ''))"
    return (
        f"CASE WHEN regexp_matches({col}, '[\\x{{00C2}}-\\x{{00F4}}][\\x{{0080}}-\\x{{00BF}}]') "
        f"AND NOT regexp_matches({col}, '[^\\x{{0000}}-\\x{{00FF}}]') "
        f"THEN coalesce(try(decode({latin1_bytes})), {col}) ELSE {col} END"
    )


def repair(source: str, columns: Tuple[str, ...] = REPAIRED, rounds: int = MOJIBAKE_ROUNDS) -> str:
    """``source`` (a table or subquery) with ``columns`` repaired ``rounds`` times: one subquery per
    round over the previous one, so the SQL grows linearly (nesting the CASE in itself would copy
    the column's expression five times per round). A round changes only text that still shows the
    pattern, so repeating it is the job's "until stable, at most 3 rounds"."""
    for _ in range(rounds):
        replaced = ", ".join(f"{repair_once(c)} AS {c}" for c in columns)
        source = f"(SELECT * REPLACE ({replaced}) FROM {source})"
    return source


def blank(col: str) -> str:
    return f"({col} IS NULL OR trim({col}) = '')"


def statements(input_root: str, tolerance: float) -> List[tuple]:
    """(stage name, SQL) in order; the COPY statements get their target added by main()."""
    songs_src = read_json(os.path.join(input_root, "song_data"), SONG_COLUMNS)
    logs_src = read_json(os.path.join(input_root, "log_data"), LOG_COLUMNS)
    # Rejects and repeats are found on the raw text, then the text is repaired (as the job does).
    usable_logs = f"""(
            SELECT * FROM {logs_src}
            WHERE ts IS NOT NULL AND NOT {blank("page")} AND sessionId IS NOT NULL AND itemInSession IS NOT NULL
              AND NOT (page = 'NextSong' AND ({blank("userId")} OR {blank("song")}))
            QUALIFY row_number() OVER (
                PARTITION BY userId, sessionId, itemInSession, ts
                ORDER BY filename, page, song, artist, length, level) = 1
            )"""
    return [
        (
            "read songs",
            f"""
            CREATE TEMP TABLE songs_clean AS
            SELECT trim(song_id) AS song_id, title, trim(artist_id) AS artist_id, artist_name,
                   nullif(trim(artist_location), '') AS artist_location,
                   artist_latitude, artist_longitude,
                   CASE WHEN year > 0 THEN year END::INTEGER AS year, duration
            FROM {songs_src}
            WHERE NOT {blank("song_id")} AND NOT {blank("artist_id")} AND title IS NOT NULL
            """,
        ),
        (
            "read logs",
            f"""
            CREATE TEMP TABLE events AS
            SELECT epoch_ms(ts) AS start_time, ts,
                   nullif(trim(userId), '') AS user_id,
                   firstName AS first_name,
                   lastName AS last_name,
                   gender,
                   lower(trim(level)) AS level,
                   page,
                   sessionId AS session_id,
                   itemInSession AS item_in_session,
                   song,
                   artist,
                   length,
                   location,
                   regexp_replace(userAgent, '^"(.*)"$', '\\1') AS user_agent
            FROM {repair(usable_logs)}
            """,
        ),
        (
            "write songs",
            """
            CREATE TEMP TABLE songs_table AS
            SELECT song_id, title, artist_id, year, duration FROM songs_clean
            QUALIFY row_number() OVER (PARTITION BY song_id ORDER BY title ASC NULLS LAST, artist_id, duration) = 1
            """,
        ),
        (
            "write artists",
            """
            SELECT artist_id, artist_name AS name, artist_location AS location,
                   artist_latitude AS latitude, artist_longitude AS longitude
            FROM songs_clean
            QUALIFY row_number() OVER (
                PARTITION BY artist_id
                ORDER BY artist_latitude IS NULL, artist_location IS NULL, artist_name ASC NULLS LAST, song_id) = 1
            """,
        ),
        (
            "write users",
            """
            SELECT e.user_id, e.first_name, e.last_name, e.gender, e.level
            FROM (
                SELECT * FROM events WHERE user_id IS NOT NULL
                QUALIFY row_number() OVER (
                    PARTITION BY user_id ORDER BY ts DESC, item_in_session DESC, level ASC NULLS LAST) = 1
            ) e
            JOIN (SELECT DISTINCT user_id FROM events WHERE page = 'NextSong' AND user_id IS NOT NULL) l
              ON e.user_id = l.user_id
            """,
        ),
        (
            "write time",
            """
            SELECT start_time, hour(start_time)::INTEGER AS hour, day(start_time)::INTEGER AS day,
                   week(start_time)::INTEGER AS week, month(start_time)::INTEGER AS month,
                   year(start_time)::INTEGER AS year, isodow(start_time)::INTEGER AS weekday
            FROM (SELECT DISTINCT start_time FROM events WHERE page = 'NextSong')
            ORDER BY year, month
            """,
        ),
        (
            "write songplays",
            f"""
            WITH plays AS (
                SELECT *,
                       ('0x' || substr(sha256(concat_ws('|', ts::VARCHAR, user_id, session_id::VARCHAR,
                                                        item_in_session::VARCHAR)), 1, 15))::BIGINT AS songplay_id
                FROM events WHERE page = 'NextSong'
            ),
            best AS (  -- the chosen song of each play that has one (an equi-join, then the tolerance)
                SELECT p.songplay_id, s.song_id, s.artist_id
                FROM plays p
                JOIN songs_clean s ON p.song = s.title AND p.artist = s.artist_name
                WHERE abs(p.length - s.duration) <= {tolerance!r}
                QUALIFY row_number() OVER (
                    PARTITION BY p.songplay_id
                    ORDER BY abs(p.length - s.duration), s.song_id ASC NULLS LAST, s.artist_id ASC NULLS LAST) = 1
            ),
            matched AS (  -- every play, matched or not
                SELECT p.*, b.song_id, b.artist_id FROM plays p LEFT JOIN best b ON p.songplay_id = b.songplay_id
            )
            SELECT songplay_id, start_time, user_id, level, song_id, artist_id, session_id, location, user_agent,
                   year(start_time)::INTEGER AS year, month(start_time)::INTEGER AS month
            FROM matched
            ORDER BY year, month
            """,
        ),
    ]


# DuckDB's partitioned COPY keeps a buffer per open partition: ~150,000 (year, artist_id) folders in
# one COPY ran out of memory (18.8 GiB). Songs are written in chunks of at most this many folders.
FOLDERS_PER_COPY = 2000

SONGS_LAYOUTS = {"year": ("year",), "year,artist_id": ("year", "artist_id")}  # as the job's [ETL] SONGS_PARTITION_BY
PARTITIONS = {"songs": ("year",), "time": ("year", "month"), "songplays": ("year", "month")}
# The job's codecs (sparkify/schemas.py: the classic songs layout's one-row files are written uncompressed).
CODECS: Dict[str, str] = {}


def use_songs_layout(name: str) -> None:
    """Write songs as the job does with [ETL] SONGS_PARTITION_BY = ``name``."""
    PARTITIONS["songs"] = SONGS_LAYOUTS[name]
    if name == "year,artist_id":
        CODECS["songs"] = "UNCOMPRESSED"


def copy_sql(query: str, output_root: str, table: str) -> str:
    folder = os.path.join(output_root, table)
    codec = CODECS.get(table, "SNAPPY")
    if table in PARTITIONS:
        by = ", ".join(PARTITIONS[table])
        return (
            f"COPY ({query}) TO {sql_string(folder)} (FORMAT PARQUET, COMPRESSION {codec}, PARTITION_BY ({by}), "
            "OVERWRITE_OR_IGNORE)"
        )
    if not is_s3(folder):
        os.makedirs(folder, exist_ok=True)
    target = sql_string(os.path.join(folder, "data_0.parquet"))
    return f"COPY ({query}) TO {target} (FORMAT PARQUET, COMPRESSION {codec})"


def write_songs(con: duckdb.DuckDBPyConnection, output_root: str) -> int:
    """songs_table -> OUTPUT/songs/year=/ (rows sorted by artist_id), or the classic year=/artist_id=/
    in chunks of artist_ids (each folder in one chunk)."""
    folders = con.execute("SELECT count(*) FROM (SELECT DISTINCT year, artist_id FROM songs_table)").fetchone()[0]
    chunks = max(1, -(-folders // FOLDERS_PER_COPY)) if "artist_id" in PARTITIONS["songs"] else 1
    written = 0
    for chunk in range(chunks):
        query = (
            f"SELECT * FROM songs_table WHERE hash(artist_id) % {chunks} = {chunk} ORDER BY year, artist_id"
            if chunks > 1
            else "SELECT * FROM songs_table ORDER BY year, artist_id"
        )
        result = con.execute(copy_sql(query, output_root, "songs")).fetchall()
        written += int(result[0][0]) if result else 0
    return written


def write_report(report: Dict, path: str) -> None:
    if is_s3(path):
        raise SystemExit("give --report PATH (a local file) for an s3:// OUTPUT")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 4GB (default: DuckDB's, 80%% of RAM)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--s3-endpoint", help="host:port of the S3 server, for s3:// INPUT / OUTPUT")
    parser.add_argument("--report", help="write the report here (default: OUTPUT/_reports/duckdb.json, local only)")
    parser.add_argument("--songs-by", choices=sorted(SONGS_LAYOUTS), default="year", help="the songs layout")
    args = parser.parse_args(argv)
    use_songs_layout(args.songs_by)
    remote = is_s3(args.input) or is_s3(args.output)
    input_root = args.input if is_s3(args.input) else os.path.abspath(args.input)
    output_root = args.output if is_s3(args.output) else os.path.abspath(args.output)

    begun = time.monotonic()
    if not is_s3(output_root):
        os.makedirs(output_root, exist_ok=True)
    seconds: Dict[str, float] = {}
    rows: Dict[str, int] = {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = {sql_string(args.memory_limit)}")
    if remote:
        use_s3(con, args.s3_endpoint or "")
    seconds["start"] = time.monotonic() - begun

    for name, sql in statements(input_root, args.tolerance):
        started = time.monotonic()
        if name.startswith("write "):
            table = name.split(" ", 1)[1]
            if not is_s3(output_root):
                shutil.rmtree(os.path.join(output_root, table), ignore_errors=True)
            if table == "songs":
                con.execute(sql)
                rows[table] = write_songs(con, output_root)
            else:
                result = con.execute(copy_sql(sql, output_root, table)).fetchall()
                rows[table] = int(result[0][0]) if result else 0
        else:
            con.execute(sql)
        seconds[name] = time.monotonic() - started
        print(f"{name}: {seconds[name]:.2f} s", file=sys.stderr, flush=True)
    seconds["total"] = time.monotonic() - begun

    report = {
        "engine": f"duckdb {duckdb.__version__}",
        "input_root": input_root,
        "output_root": output_root,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "rows": rows,
    }
    write_report(report, args.report or os.path.join(output_root, "_reports", "duckdb.json"))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
