"""Pure transforms: DataFrames in, DataFrames out, no I/O. Each table's rules live here.

Every table ends in an explicit ``select`` of the columns declared in ``sparkify.core.schemas``.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sparkify.core.schemas import (
    ARTISTS,
    CORRUPT_RECORD,
    ORIGIN,
    RAW_TEXT,
    SONGPLAYS,
    SONGS,
    SOURCE_FILE,
    TIME,
    USERS,
    VALID_UTF8,
    Table,
)

# Column added by the flag_* transforms: why a row cannot be used (null: it can).
REASON = "_reject_reason"

# A character U+00C2..U+00F4 followed by one in U+0080..U+00BF: what a UTF-8 lead and
# continuation byte look like when the bytes were decoded as Latin-1 (e.g. "BjÃ¶rk").
_MOJIBAKE = "[\u00c2-\u00f4][\u0080-\u00bf]"


# Real logs are garbled more than once ("BeyoncÃ\u0083Â©" is "Beyoncé" encoded twice): the
# repair is repeated while the text still shows the pattern, at most this many rounds.
MOJIBAKE_ROUNDS = 3


def _repair_once(col: Column) -> Column:
    """Undo one round of UTF-8-read-as-Latin-1, where the text shows the pattern, every
    character fits in Latin-1 (so re-encoding is lossless) and the bytes then decode as valid
    UTF-8. Other text is left as it is; ASCII text (as many bytes as characters, most values) is
    not searched at all (1M events, five columns, three rounds: 1.3 s instead of 2.3-2.6 s)."""
    repaired = F.decode(F.encode(col, "ISO-8859-1"), "UTF-8")
    latin1_only = ~col.rlike("[^\u0000-\u00ff]")
    valid = ~repaired.contains("\ufffd")
    ascii_only = F.octet_length(col) == F.length(col)
    return F.when(ascii_only, col).when(col.rlike(_MOJIBAKE) & latin1_only & valid, repaired).otherwise(col)


def repair_mojibake(df: DataFrame, *columns: str) -> DataFrame:
    """Repair the given text columns until stable (MOJIBAKE_ROUNDS at most): "BjÃ¶rk" (one
    layer) and "BeyoncÃ\u0083Â©" (two, as in the real logs) both become the text they were.

    One select per round, each over the previous round's columns: nesting the rounds in one
    expression would copy the column's expression five times per round."""
    for _ in range(MOJIBAKE_ROUNDS):
        df = df.select([_repair_once(F.col(c)).alias(c) if c in columns else F.col(c) for c in df.columns])
    return df


def _conform(df: DataFrame, table: Table) -> DataFrame:
    """The schema contract: exactly the declared columns, in order, with the declared types (cast by
    the type's SQL name: one call into the JVM per cast, where a DataType object takes several; the
    five tables' plans about 0.1 s quicker to build on public)."""
    return df.select([F.col(name).cast(kind).alias(name) for name, kind in table.columns])


def _blank_to_null(col: Column) -> Column:
    trimmed = F.trim(col)
    return F.when(trimmed == "", F.lit(None)).otherwise(trimmed)


def _blank(col: Column) -> Column:
    return col.isNull() | (F.trim(col) == "")


def _first_reason(*rules: Tuple[Column, str]) -> Column:
    """The text of the first rule that holds; null when none does."""
    reason = F.lit(None).cast("string")
    for condition, text in reversed(rules):
        reason = F.when(condition, F.lit(text)).otherwise(reason)
    return reason


REPEAT = "repeat of an event already read"
WRONG_JSON = "not valid JSON, or a field of the wrong type (see raw)"
EMPTY_MESSAGE = "a message without a value (null)"
MAX_EVENT_BYTES = 1024 * 1024  # real events are about 300 bytes
TOO_LARGE = f"an event above {MAX_EVENT_BYTES:,} bytes (see raw): not an app event"
NOT_UTF8 = "not valid UTF-8 (raw_base64 holds the line's bytes; raw shows U+FFFD for the bad ones): re-export as UTF-8"


def flag_log_rows(logs: DataFrame, repeats: bool = True, keep_raw: bool = False) -> DataFrame:
    """Add REASON to each raw log row (null: usable). An event is identified by (userId,
    sessionId, itemInSession, ts); a second copy of the same event is flagged as a repeat.
    ``repeats`` False: repeats are not looked for (the window below shuffles and sorts every row
    with its raw text), for logs that ``repeated_events`` has shown to hold none (or a stream, whose
    state finds them: ``deduplicated``). ``keep_raw``: usable rows keep their raw text too."""
    reason = _first_reason(
        (F.col(RAW_TEXT).isNull(), EMPTY_MESSAGE),
        (F.octet_length(F.col(RAW_TEXT)) > MAX_EVENT_BYTES, TOO_LARGE),
        (~F.col(VALID_UTF8), NOT_UTF8),
        (F.col(CORRUPT_RECORD).isNotNull(), WRONG_JSON),
        (F.col("ts").isNull(), "missing ts (epoch milliseconds)"),
        (_blank(F.col("page")), "missing page"),
        (F.col("sessionId").isNull() | F.col("itemInSession").isNull(), "missing sessionId or itemInSession"),
        ((F.col("page") == "NextSong") & _blank(F.col("userId")), "NextSong without userId"),
        ((F.col("page") == "NextSong") & _blank(F.col("song")), "NextSong without song title"),
    )
    flagged = logs.withColumn(REASON, reason)
    if repeats:
        identity = Window.partitionBy("userId", "sessionId", "itemInSession", "ts").orderBy(
            F.col(REASON).asc_nulls_first(), SOURCE_FILE, "page", "song", "artist", "length", "level"
        )
        repeat = (F.row_number().over(identity) > 1) & F.col(REASON).isNull()
        flagged = flagged.withColumn(REASON, F.when(repeat, F.lit(REPEAT)).otherwise(F.col(REASON)))
    return flagged if keep_raw else _raw_of_rejects_only(flagged)


def _raw_of_rejects_only(flagged: DataFrame) -> DataFrame:
    """The raw text is the quarantine's: usable rows drop it, so a cached frame of flagged rows
    does not hold every input byte a second time."""
    return flagged.withColumn(RAW_TEXT, F.when(F.col(REASON).isNotNull(), F.col(RAW_TEXT)))


def flag_song_rows(songs: DataFrame) -> DataFrame:
    """Add REASON to each raw song row (null: usable)."""
    reason = _first_reason(
        (~F.col(VALID_UTF8), NOT_UTF8),
        (F.col(CORRUPT_RECORD).isNotNull(), WRONG_JSON),
        (_blank(F.col("song_id")), "missing song_id"),
        (_blank(F.col("artist_id")), "missing artist_id"),
        (F.col("title").isNull(), "missing title"),
    )
    return _raw_of_rejects_only(songs.withColumn(REASON, reason))


def usable(flagged: DataFrame) -> DataFrame:
    return flagged.where(F.col(REASON).isNull())


def rejected(flagged: DataFrame, source: str) -> DataFrame:
    """Quarantine records: where they came from (a Kafka message: its topic, partition, offset
    and timestamp too), their raw text and why they were rejected."""
    origin = (
        [F.col(f"{ORIGIN}.{field}").alias(f"kafka_{field}") for field in ("topic", "partition", "offset", "timestamp")]
        if ORIGIN in flagged.columns
        else []
    )
    return flagged.where(F.col(REASON).isNotNull()).select(
        F.lit(source).alias("source"),
        F.col(SOURCE_FILE).alias("source_file"),
        *origin,
        F.col(RAW_TEXT).alias("raw"),
        F.when(~F.col(VALID_UTF8), F.base64(F.col(RAW_TEXT).cast("binary"))).alias("raw_base64"),
        F.col(REASON).alias("reason"),
    )


def reject_examples(rejects: DataFrame, per_reason: int = 5, width: int = 200) -> DataFrame:
    """Per reason: how many quarantine records it holds (``count``) and its first ``per_reason`` records
    (``n``, by source, file and text) with their raw text cut to ``width`` characters: what a report shows."""
    by_reason = Window.partitionBy("reason")
    return rejects.select(
        "reason",
        "source",
        "source_file",
        F.substring(F.coalesce(F.col("raw"), F.lit("")), 1, width).alias("raw"),
        F.count(F.lit(1)).over(by_reason).alias("count"),
        F.row_number().over(by_reason.orderBy("source", "source_file", "raw")).alias("n"),
    ).where(F.col("n") <= per_reason)


def tally(flagged: DataFrame, count_plays: bool) -> DataFrame:
    """One row of counts: records read, used, rejected (and usable NextSong events)."""
    ok = F.col(REASON).isNull()
    aggs = [
        F.count(F.lit(1)).alias("read"),
        F.count(F.when(ok, 1)).alias("used"),
        F.count(F.when(~ok, 1)).alias("rejected"),
    ]
    if count_plays:
        aggs.append(F.count(F.when(ok & (F.col("page") == "NextSong"), 1)).alias("next_song"))
    return flagged.agg(*aggs)


def flagged_events(logs: DataFrame, repeats: bool = True, keep_raw: bool = False) -> DataFrame:
    """Parsed log rows -> each one flagged (``flag_log_rows``) and cleaned (``clean_events``), keeping
    what the quarantine needs of it (``rejected``). One frame, cached once by a run or a micro-batch:
    the counts and the quarantine read its flags, the tables its usable rows' clean columns; nothing
    downstream plans, compiles or runs the mojibake rounds again (public: songplays write 4.5-7.3 s ->
    2.5 s). ``repeats``, ``keep_raw``: see flag_log_rows."""
    flagged = flag_log_rows(logs, repeats, keep_raw)
    kept = [c for c in (SOURCE_FILE, RAW_TEXT, VALID_UTF8, ORIGIN, REASON) if c in flagged.columns]
    return clean_events(flagged, kept)


def repeated_events(events: DataFrame, partitions: int) -> DataFrame:
    """The identities held by more than one usable row of ``flagged_events(logs, repeats=False)``, by
    their 64-bit hash (``identity_hash``) and count: empty when flag_log_rows would flag no repeat in
    ``logs``. Over the cleaned columns, where a blank userId is null like a missing one, so it finds at
    least the identities the window would. Two identities that share a hash (about one chance in 370,000 at
    10M events) are found too: that only sends the run through the window, which decides.

    ``partitions``: the hashes are shuffled into this many partitions, then counted. Nearly every identity
    is unique, so counting within each input partition first shrinks nothing, and adaptive execution would
    coalesce the counting into a few tasks, each holding millions of hashes in one table."""
    hashes = usable(events).select(identity_hash().alias("identity_hash")).repartition(partitions, "identity_hash")
    return hashes.groupBy("identity_hash").count().where(F.col("count") > 1)


def identity_hash() -> Column:
    """An event's identity as one 64-bit hash: the aggregate that looks for repeats groups one fixed-width
    key instead of four columns with a string (10M events, warm: 8.6-14.8 s instead of 11.3-15.9 s; 1M:
    1.18-1.33 s instead of 1.37-1.63 s)."""
    return F.xxhash64("user_id", "session_id", "item_in_session", "ts")


# --- a stream's repeats: Structured Streaming's state ---------------------------------------------

KIND = "_kind"  # what a row of a stream's micro-batch is (``deduplicated``)
EVENT, LATE, MOMENT = "event", "late", "moment"
EVENT_TIME = "_event_time"  # the watermark's column: the event's start_time (null: never late)
DEDUPE_KEY = "_dedupe_key"
LATE_EVENT = (
    "later than the stream's watermark ([STREAM] WATERMARK behind the latest event time seen): a repeat "
    "this late cannot be told from a new event. If it is new, load its day with a batch run (--since)"
)


def deduplicated(flagged: DataFrame, watermark: str) -> DataFrame:
    """A stream's flagged events (``flagged_events(..., repeats=False, keep_raw=True)``) without the
    events its earlier micro-batches held, by Structured Streaming's state (``dropDuplicatesWithinWatermark``,
    the watermark ``watermark`` behind the latest event time seen). Each row comes out as one of KIND:

    - ``event``: an event not seen before (or a record that cannot be used: flagged, never deduplicated);
    - ``late``: an event older than the watermark, not held by the state: quarantined (LATE_EVENT);
    - ``moment``: the start_time of a usable NextSong event not seen before: a row of the time table.

    A usable event enters the state operator as three rows: its ``event`` row (keyed by its identity,
    at its event time), then a ``late`` twin (the same key, no event time: never dropped as late), then
    for a play its ``moment`` (keyed by its start_time). The operator keeps the first row of a key it does
    not hold: a new event on time comes out as its ``event`` row (the twin is then a repeat); a repeat
    the state still holds comes out not at all; an event older than the watermark is dropped by the
    operator as late, so its twin comes out, unless the state still holds its key (a repeat). Rows of
    one input row stay in their order through the operator's shuffle (both come from one task). A
    twin without an event time expires at the end of its micro-batch; so does a record that cannot be
    used, keyed by a fresh uuid (its raw text may repeat)."""
    usable = F.col(REASON).isNull()
    kinds = (
        F.when(usable & (F.col("page") == "NextSong"), F.array(*map(F.lit, (EVENT, LATE, MOMENT))))
        .when(usable, F.array(F.lit(EVENT), F.lit(LATE)))
        .otherwise(F.array(F.lit(EVENT)))
    )
    rows = flagged.withColumn(KIND, F.explode(kinds))
    kind = F.col(KIND)
    identity = F.concat_ws("|", F.coalesce(F.col("user_id"), F.lit("")), "session_id", "item_in_session", "ts")
    key = (
        F.when(~usable, F.concat(F.lit("rejected|"), F.expr("uuid()")))
        .when(kind == MOMENT, F.concat(F.lit("moment|"), F.col("ts").cast("string")))
        .otherwise(F.concat(F.lit("event|"), identity))
    )
    # each row carries only what its kind needs through the operator's shuffle: a twin what the quarantine
    # keeps of it, a moment its start_time, an event all but its raw text (a rejected record's: all)
    needs = {RAW_TEXT: ~usable | (kind == LATE), "start_time": kind != LATE}
    quarantined = (SOURCE_FILE, VALID_UTF8, ORIGIN, REASON, KIND)
    keyed = rows.select(
        *[c if c in quarantined else F.when(needs.get(c, kind == EVENT), F.col(c)).alias(c) for c in rows.columns],
        key.alias(DEDUPE_KEY),
        F.when(usable & (kind != LATE), F.col("start_time")).alias(EVENT_TIME),
    )
    return keyed.withWatermark(EVENT_TIME, watermark).dropDuplicatesWithinWatermark([DEDUPE_KEY])


def batch_events(rows: DataFrame) -> DataFrame:
    """A micro-batch's events (``deduplicated`` rows but the moments), late ones flagged LATE_EVENT."""
    late = F.col(KIND) == LATE
    events = rows.where(F.col(KIND) != MOMENT)
    return events.withColumn(REASON, F.when(late, F.lit(LATE_EVENT)).otherwise(F.col(REASON)))


def batch_moments(rows: DataFrame) -> DataFrame:
    """A micro-batch's new play timestamps (``deduplicated``: each one once, never seen before)."""
    return rows.where(F.col(KIND) == MOMENT)


def batch_tally() -> Sequence[Column]:
    """A micro-batch's counts over its ``deduplicated`` rows, as ``tally``'s (an Observation's
    aggregates: no pass of their own), and ``months``: the (year, month) of its plays as "YYYYMM,…"."""
    event = F.col(KIND) != MOMENT
    ok = event & F.col(REASON).isNull() & (F.col(KIND) == EVENT)
    month = F.year("start_time") * 100 + F.month("start_time")
    return [
        F.count(F.when(event, 1)).alias("read"),
        F.count(F.when(ok, 1)).alias("used"),
        F.count(F.when(event & ~ok, 1)).alias("rejected"),
        F.count(F.when(ok & (F.col("page") == "NextSong"), 1)).alias("next_song"),
        F.array_join(F.collect_set(F.when(F.col(KIND) == MOMENT, month).cast("string")), ",").alias("months"),
    ]


def clean_events(logs: DataFrame, keep: Sequence[str] = ()) -> DataFrame:
    """Log rows -> typed events, their text repaired (see repair_mojibake); ``keep``: columns
    carried along as they are."""
    events = logs.select(
        *keep,
        F.timestamp_millis(F.col("ts")).alias("start_time"),
        F.col("ts"),
        _blank_to_null(F.col("userId")).alias("user_id"),
        F.col("firstName").alias("first_name"),
        F.col("lastName").alias("last_name"),
        F.col("gender"),
        F.lower(F.trim(F.col("level"))).alias("level"),
        F.col("page"),
        F.col("sessionId").alias("session_id"),
        F.col("itemInSession").alias("item_in_session"),
        F.col("song"),
        F.col("artist"),
        F.col("length"),
        F.col("location"),
        # userAgent arrives wrapped in literal double quotes: drop that one pair.
        F.regexp_replace(F.col("userAgent"), '^"(.*)"$', "$1").alias("user_agent"),
    )
    return repair_mojibake(events, "first_name", "last_name", "song", "artist", "location")


def song_plays(events: DataFrame) -> DataFrame:
    """Only NextSong events are plays."""
    return events.where(F.col("page") == "NextSong")


def clean_songs(songs: DataFrame) -> DataFrame:
    """Raw song rows -> trimmed text, year 0 -> null (unknown), blank location -> null."""
    return songs.select(
        F.trim(F.col("song_id")).alias("song_id"),
        F.col("title"),
        F.trim(F.col("artist_id")).alias("artist_id"),
        F.col("artist_name"),
        _blank_to_null(F.col("artist_location")).alias("artist_location"),
        F.col("artist_latitude"),
        F.col("artist_longitude"),
        F.when(F.col("year") > 0, F.col("year")).alias("year"),
        F.col("duration"),
    )


def _first_per(df: DataFrame, key: str, *order: Column) -> DataFrame:
    """Keep one row per key: the first by the given order (deterministic)."""
    window = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window)).where(F.col("_rank") == 1).drop("_rank")


def songs_table(songs: DataFrame) -> DataFrame:
    """One row per song_id; a song listed twice keeps its first row by (title, artist_id, duration)."""
    first = _first_per(songs, "song_id", F.col("title").asc_nulls_last(), F.col("artist_id"), F.col("duration"))
    return _conform(first, SONGS)


def artists_table(songs: DataFrame) -> DataFrame:
    """One row per artist_id. With several names or places for one id, the most complete row
    wins (coordinates known, then location known), then the alphabetically first name."""
    first = _first_per(
        songs,
        "artist_id",
        F.col("artist_latitude").isNull(),
        F.col("artist_location").isNull(),
        F.col("artist_name").asc_nulls_last(),
        F.col("song_id"),
    )
    renamed = first.select(
        "artist_id",
        F.col("artist_name").alias("name"),
        F.col("artist_location").alias("location"),
        F.col("artist_latitude").alias("latitude"),
        F.col("artist_longitude").alias("longitude"),
    )
    return _conform(renamed, ARTISTS)


def users_table(events: DataFrame, known: Optional[DataFrame] = None) -> DataFrame:
    """One row per user who played a song; names and level from the user's latest event
    (any page), so a user who upgraded or downgraded shows the level they have now.
    last_seen is the time of that event. ``known``: users already written, merged in (see
    merge_users); they keep up with their latest events even without a play in these events."""
    listeners = song_plays(events).where(F.col("user_id").isNotNull()).select("user_id")
    if known is not None:
        listeners = listeners.unionByName(known.select("user_id"))
    latest = _first_per(
        events.where(F.col("user_id").isNotNull()),
        "user_id",
        F.col("ts").desc(),
        F.col("item_in_session").desc(),
        F.col("level").asc_nulls_last(),
    )
    latest = latest.withColumn("last_seen", F.col("start_time"))
    users = _conform(latest.join(listeners.distinct(), on="user_id", how="inner"), USERS)
    return users if known is None else merge_users(users, known)


def upsert(new: DataFrame, old: DataFrame, key: str, table: Table) -> DataFrame:
    """Rows of ``new`` and of ``old``; where both hold a key, the new row."""
    both = new.withColumn("_this_run", F.lit(1)).unionByName(old.withColumn("_this_run", F.lit(0)))
    return _conform(_first_per(both, key, F.col("_this_run").desc()), table)


def merge_users(new: DataFrame, old: DataFrame) -> DataFrame:
    """Users of this run merged with the users already written: per user the row seen last
    wins (this run's on a tie), so a rerun of an older month cannot roll a level back."""
    both = new.withColumn("_this_run", F.lit(1)).unionByName(old.withColumn("_this_run", F.lit(0)))
    latest = _first_per(both, "user_id", F.col("last_seen").desc_nulls_last(), F.col("_this_run").desc())
    return _conform(latest, USERS)


def time_table(plays: DataFrame, distinct: bool = True) -> DataFrame:
    """One row per distinct play timestamp. Parts are in UTC (the session time zone).
    week is the ISO week; weekday is ISO: 1 = Monday ... 7 = Sunday. ``distinct`` False: ``plays``
    holds each timestamp once already (a stream's ``batch_moments``)."""
    moments = plays.select("start_time").distinct() if distinct else plays.select("start_time")
    parts = moments.select(
        "start_time",
        F.hour("start_time").alias("hour"),
        F.dayofmonth("start_time").alias("day"),
        F.weekofyear("start_time").alias("week"),
        F.month("start_time").alias("month"),
        F.year("start_time").alias("year"),
        (F.weekday("start_time") + 1).alias("weekday"),
    )
    return _conform(parts, TIME)


def songplay_id(*cols: Column) -> Column:
    """A stable id: the first 60 bits of SHA-256 over the event's identity, as a positive bigint.
    Same event, same id, on every run and every engine (see tools/reference.py)."""
    identity = F.concat_ws("|", *[c.cast("string") for c in cols])
    return F.conv(F.substring(F.sha2(identity, 256), 1, 15), 16, 10).cast("bigint")


def match_songs(plays: DataFrame, songs: DataFrame, tolerance: float) -> DataFrame:
    """Add song_id/artist_id to each play (rows keyed by songplay_id): same title, same artist
    name, durations within ``tolerance`` seconds. With several candidates the closest duration
    wins, then the lowest song_id. A play that matches nothing keeps null ids: every play stays.

    Only a (title, artist name) pair held by several songs can give a play several candidates:
    the plays of those few pairs are ranked, every other play joins the broadcast catalog
    directly, without a shuffle of the plays."""
    lookup = songs.select(
        F.col("title").alias("_title"),
        F.col("artist_name").alias("_artist"),
        F.col("duration").alias("_duration"),
        F.col("song_id"),
        F.col("artist_id"),
    )
    shared = lookup.groupBy("_title", "_artist").count().where(F.col("count") > 1).drop("count")
    unique = lookup.join(shared, on=["_title", "_artist"], how="left_anti")
    same_pair = (F.col("song") == F.col("_title")) & (F.col("artist") == F.col("_artist"))
    gap = F.abs(F.col("length") - F.col("_duration"))
    condition = same_pair & (gap <= F.lit(tolerance))
    direct = plays.join(F.broadcast(shared), on=same_pair, how="left_anti").join(
        F.broadcast(unique), on=condition, how="left"
    )
    candidates = plays.join(F.broadcast(shared), on=same_pair, how="left_semi").join(
        F.broadcast(lookup), on=condition, how="left"
    )
    ranked = _first_per(
        candidates,
        "songplay_id",
        gap.asc_nulls_last(),
        F.col("song_id").asc_nulls_last(),
        F.col("artist_id").asc_nulls_last(),
    )
    return direct.unionByName(ranked).drop("_title", "_artist", "_duration")


def songplays_table(plays: DataFrame, songs: DataFrame, tolerance: float) -> DataFrame:
    """The fact: one row per NextSong event, matched to a song where possible."""
    keyed = plays.withColumn(
        "songplay_id",
        songplay_id(F.col("ts"), F.col("user_id"), F.col("session_id"), F.col("item_in_session")),
    )
    matched = match_songs(keyed, songs, tolerance)
    dated = matched.withColumn("year", F.year("start_time")).withColumn("month", F.month("start_time"))
    return _conform(dated, SONGPLAYS)


def star_schema(
    songs: DataFrame, events: DataFrame, known_users: Optional[DataFrame], tolerance: float
) -> Dict[str, DataFrame]:
    """The five tables from clean songs and events (the same for a full run, an incremental
    run and a stream micro-batch), by name. Frames are lazy: a mode uses those it publishes.
    ``known_users``: the users already written, merged in (see users_table)."""
    plays = song_plays(events)
    return {
        SONGS.name: songs_table(songs),
        ARTISTS.name: artists_table(songs),
        USERS.name: users_table(events, known_users),
        TIME.name: time_table(plays),
        SONGPLAYS.name: songplays_table(plays, songs, tolerance),
    }
