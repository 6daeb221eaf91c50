"""Each table's rules on tiny in-memory DataFrames (no files)."""

from __future__ import annotations

import hashlib

import pytest
from pyspark.sql import functions as F

from sparkify import transform
from sparkify.core.schemas import (
    CORRUPT_RECORD,
    LOG_COLUMNS,
    LOG_SCHEMA,
    RAW_TEXT,
    SONG_SCHEMA,
    SOURCE_FILE,
    VALID_UTF8,
)

# 2018-11-29 23:59:59 UTC: 15:59 in Los Angeles, where the tests run, and a Thursday.
LATE_THURSDAY = 1543535999000


def log_row(**values):
    row = {name: None for name, _ in LOG_COLUMNS}
    row.update(
        auth="Logged In",
        firstName="Ann",
        lastName="Lee",
        gender="F",
        itemInSession=0,
        level="free",
        location="Nashville, TN",
        method="PUT",
        page="NextSong",
        sessionId=1,
        status=200,
        ts=LATE_THURSDAY,
        userAgent='"Mozilla/5.0 (X11)"',
        userId="7",
        song="Song A",
        artist="Band A",
        length=200.0,
    )
    row.update(values)
    return row


def song_row(**values):
    row = dict(
        num_songs=1,
        artist_id="AR1",
        artist_latitude=None,
        artist_longitude=None,
        artist_location="",
        artist_name="Band A",
        song_id="SO1",
        title="Song A",
        duration=200.0,
        year=2001,
    )
    row.update(values)
    return row


@pytest.fixture
def logs(spark):
    """Raw log rows as the reader gives them: with the corrupt-record and source-file columns."""

    def make(*rows):
        df = spark.createDataFrame(list(rows), LOG_SCHEMA)
        with_raw = df.withColumn(RAW_TEXT, F.to_json(F.struct(*df.columns)))
        with_raw = with_raw.withColumn(CORRUPT_RECORD, F.lit(None).cast("string")).withColumn(VALID_UTF8, F.lit(True))
        return with_raw.withColumn(SOURCE_FILE, F.lit("f.json"))

    return make


@pytest.fixture
def songs(spark):
    return lambda *rows: transform.clean_songs(spark.createDataFrame(list(rows), SONG_SCHEMA))


def events_of(logs_df):
    """The events as a run and a micro-batch use them: flagged and cleaned in one frame, usable rows."""
    return transform.usable(transform.flagged_events(logs_df))


def plays_of(logs_df, songs_df, tolerance=2.0):
    plays = transform.song_plays(events_of(logs_df))
    return transform.songplays_table(plays, songs_df, tolerance)


def test_only_next_song_events_are_plays(logs, songs):
    df = logs(
        log_row(page="Home", itemInSession=0),
        log_row(page="NextSong", itemInSession=1),
        log_row(page="Logout", itemInSession=2),
    )
    rows = plays_of(df, songs(song_row())).collect()
    assert len(rows) == 1
    assert rows[0]["song_id"] == "SO1"


def test_time_parts_are_utc_and_weekday_is_iso(logs):
    events = events_of(logs(log_row(ts=LATE_THURSDAY)))
    row = (
        transform.time_table(transform.song_plays(events))
        .select(F.unix_millis("start_time").alias("ms"), "hour", "day", "week", "month", "year", "weekday")
        .collect()[0]
    )
    assert tuple(row) == (LATE_THURSDAY, 23, 29, 48, 11, 2018, 4)


def test_songplay_partition_columns_follow_utc_start_time(logs, songs):
    first_of_december = 1543622400000  # 2018-12-01 00:00:00 UTC, still November in Los Angeles
    row = plays_of(logs(log_row(ts=first_of_december)), songs(song_row())).collect()[0]
    assert (row["year"], row["month"]) == (2018, 12)


def test_users_hold_latest_level_whatever_the_input_order(logs):
    df = logs(
        log_row(ts=3000, itemInSession=2, level="paid", page="Submit Upgrade"),
        log_row(ts=1000, itemInSession=0, level="free", page="NextSong"),
        log_row(ts=2000, itemInSession=1, level="free", page="Home"),
        log_row(userId="8", ts=5000, level="paid"),
        log_row(userId="8", ts=6000, level="free", page="Submit Downgrade", itemInSession=1),
    )
    users = {r["user_id"]: r["level"] for r in transform.users_table(events_of(df)).collect()}
    assert users == {"7": "paid", "8": "free"}


def test_users_latest_event_on_a_tied_ts_is_the_later_item(logs):
    """Two events at a user's latest ts: the higher itemInSession decides, not an earlier ts's later item."""
    df = logs(
        log_row(ts=5000, itemInSession=3, level="free"),
        log_row(ts=5000, itemInSession=4, level="paid", page="Home"),
        log_row(ts=4000, itemInSession=9, level="free"),
        log_row(userId="8", ts=7000, itemInSession=2, level="paid"),
        log_row(userId="8", ts=6000, itemInSession=8, level="free", page="Home"),
    )
    users = {r["user_id"]: (r["level"], r["last_seen"]) for r in transform.users_table(events_of(df)).collect()}
    assert {user: (level, int(seen.timestamp() * 1000)) for user, (level, seen) in users.items()} == {
        "7": ("paid", 5000),
        "8": ("paid", 7000),
    }


def test_users_leave_out_logged_out_rows_and_non_listeners(logs):
    df = logs(
        log_row(userId="", auth="Logged Out", firstName=None, page="Home"),
        log_row(userId="9", page="Home"),
        log_row(userId="7"),
    )
    assert [r["user_id"] for r in transform.users_table(events_of(df)).collect()] == ["7"]


def test_a_repeated_event_counts_once(logs, songs):
    df = logs(log_row(), log_row(), log_row(itemInSession=1, ts=LATE_THURSDAY + 1))
    assert plays_of(df, songs(song_row())).count() == 2


def test_unmatched_play_is_kept_with_null_ids(logs, songs):
    rows = plays_of(logs(log_row(song="Nobody Knows", artist="Nobody")), songs(song_row())).collect()
    assert len(rows) == 1
    assert (rows[0]["song_id"], rows[0]["artist_id"]) == (None, None)
    assert rows[0]["user_id"] == "7"


@pytest.mark.parametrize(
    "length, expected",
    [
        (201.9, "SO1"),
        pytest.param(198.1, "SO1", marks=pytest.mark.slow),  # `make test-fast` keeps one case either side of 2 s
        (202.1, None),
        pytest.param(150.0, None, marks=pytest.mark.slow),
    ],
)
def test_duration_tolerance(logs, songs, length, expected):
    rows = plays_of(logs(log_row(length=length)), songs(song_row(duration=200.0)), tolerance=2.0).collect()
    assert rows[0]["song_id"] == expected


@pytest.mark.slow
def test_closest_duration_wins_among_songs_sharing_title_and_artist(logs, songs):
    catalog = songs(song_row(song_id="SO1", duration=201.5), song_row(song_id="SO2", duration=200.2))
    rows = plays_of(logs(log_row(length=200.0)), catalog).collect()
    assert [r["song_id"] for r in rows] == ["SO2"]


def test_mojibake_is_repaired_so_the_play_matches(logs, songs):
    garbled = "Björk".encode().decode("latin-1")
    assert garbled == "BjÃ¶rk"
    catalog = songs(song_row(artist_name="Björk", title="Jóga", artist_id="ARB"))
    df = logs(log_row(artist=garbled, song="Jóga".encode().decode("latin-1"), location="San JosÃ©, CA"))
    row = plays_of(df, catalog).collect()[0]
    assert (row["song_id"], row["artist_id"], row["location"]) == ("SO1", "ARB", "San José, CA")


def garble(text, layers):
    """UTF-8 read as Latin-1, ``layers`` times, as the real logs hold it."""
    for _ in range(layers):
        text = text.encode().decode("latin-1")
    return text


def test_real_log_mojibake_is_two_layers_deep():
    assert garble("Beyoncé", 2) == "BeyoncÃ\u0083Â©"
    assert garble("Everybody´s Free", 2) == "EverybodyÃ\u0082Â´s Free"


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("text", ["Beyoncé", "Kollaa Kestää", "Relicário", "Everybody´s Free", "Sigur Rós"])
def test_mojibake_is_repaired_whatever_its_layers(spark, text, layers):
    df = spark.createDataFrame([(garble(text, layers), "x")], "t string, other string")
    row = transform.repair_mojibake(df, "t").first()
    assert (row["t"], row["other"]) == (text, "x")


@pytest.mark.slow
def test_a_two_layer_play_is_matched_to_its_song(logs, songs):
    catalog = songs(song_row(artist_name="Beyoncé", title="Déjà Vu", artist_id="ARB", duration=240.0))
    df = logs(log_row(artist=garble("Beyoncé", 2), song=garble("Déjà Vu", 2), length=240.0))
    row = plays_of(df, catalog).collect()[0]
    assert (row["song_id"], row["artist_id"]) == ("SO1", "ARB")


@pytest.mark.parametrize("text", ["Björk", "São Paulo", "Ãlvaro", "plain", "Ã", "日本 Ã¶"])
def test_text_that_is_not_mojibake_is_left_alone(spark, text):
    df = spark.createDataFrame([(text,)], "t string")
    assert transform.repair_mojibake(df, "t").first()["t"] == text


@pytest.mark.slow
def test_songplay_ids_are_stable_and_independent_of_spark(logs, songs):
    df = logs(log_row(), log_row(itemInSession=1, ts=LATE_THURSDAY + 5))
    first = sorted(r["songplay_id"] for r in plays_of(df, songs(song_row())).collect())
    second = sorted(r["songplay_id"] for r in plays_of(df, songs(song_row())).collect())
    expected = sorted(
        int(hashlib.sha256(f"{ts}|7|1|{item}".encode()).hexdigest()[:15], 16)
        for ts, item in ((LATE_THURSDAY, 0), (LATE_THURSDAY + 5, 1))
    )
    assert first == second == expected


@pytest.mark.slow
def test_user_agent_loses_its_literal_quotes(logs, songs):
    row = plays_of(logs(log_row(userAgent='"Mozilla/5.0 "quoted" (X11)"')), songs(song_row())).collect()[0]
    assert row["user_agent"] == 'Mozilla/5.0 "quoted" (X11)'


def test_song_year_zero_becomes_null_and_duplicates_collapse(songs):
    rows = transform.songs_table(songs(song_row(year=0), song_row(year=0), song_row(song_id="SO2"))).collect()
    assert sorted((r["song_id"], r["year"]) for r in rows) == [("SO1", None), ("SO2", 2001)]


def test_artist_with_several_names_keeps_the_most_complete_row(songs):
    catalog = songs(
        song_row(song_id="SO1", artist_name="Aaa", artist_location=""),
        song_row(
            song_id="SO2",
            artist_name="Zed feat. Aaa",
            artist_location="Oslo",
            artist_latitude=59.9,
            artist_longitude=10.7,
        ),
        song_row(song_id="SO3", artist_name="Bbb", artist_location="Bergen"),
    )
    rows = transform.artists_table(catalog).collect()
    assert [tuple(r) for r in rows] == [("AR1", "Zed feat. Aaa", "Oslo", 59.9, 10.7)]


def test_numeric_looking_text_stays_text(spark):
    df = spark.read.schema(SONG_SCHEMA).json(
        spark.sparkContext.parallelize(['{"song_id": "SO9", "artist_id": "AR9", "title": 1979, "artist_name": 311}'])
    )
    row = transform.songs_table(transform.clean_songs(df)).first()
    assert row["title"] == "1979"


def test_rows_that_cannot_be_used_are_flagged_with_a_reason(logs):
    df = logs(
        log_row(),
        log_row(),  # the same event twice
        log_row(ts=None, itemInSession=1),
        log_row(userId="", itemInSession=2),
        log_row(page=None, itemInSession=3),
        log_row(sessionId=None, itemInSession=4),
        log_row(song=None, itemInSession=5),
        log_row(page="Home", userId="", itemInSession=6),  # a logged-out page view is fine
    )
    reasons = sorted(r[transform.REASON] or "" for r in transform.flag_log_rows(df).collect())
    assert reasons == [
        "",
        "",
        "NextSong without song title",
        "NextSong without userId",
        "missing page",
        "missing sessionId or itemInSession",
        "missing ts (epoch milliseconds)",
        "repeat of an event already read",
    ]
    counts = transform.tally(transform.flag_log_rows(df), count_plays=True).first().asDict()
    assert counts == {"read": 8, "used": 2, "rejected": 6, "next_song": 1}
    # flagged and cleaned in one frame (what a run caches): the same flags and counts, and each reject
    # keeps what the quarantine shows of it
    both = transform.flagged_events(df)
    assert transform.tally(both, count_plays=True).first().asDict() == counts
    quarantined = {r["reason"]: r for r in transform.rejected(both, "log_data").collect()}
    assert sorted(quarantined) == reasons[2:]
    missing_page = quarantined["missing page"]
    assert missing_page["source_file"] == "f.json" and '"itemInSession":3' in missing_page["raw"]


@pytest.mark.slow
def test_repeated_events_finds_what_the_window_would_flag_before_it_runs(logs):
    """A run caches the logs flagged without the repeat-finding window, and flags them again with it
    only when repeated_events finds an identity held twice by usable rows."""

    def repeated(*rows):
        events = transform.flagged_events(logs(*rows), repeats=False)
        found = sorted(r["count"] for r in transform.repeated_events(events, 1).collect())
        # the hashes shuffled into more partitions before they are counted: the same identities
        assert sorted(r["count"] for r in transform.repeated_events(events, 3).collect()) == found
        return found

    # distinct events, and a second copy that is rejected for a reason of its own: no repeat to flag
    assert repeated(log_row(itemInSession=1), log_row(itemInSession=2), log_row(itemInSession=2, page=None)) == []
    assert [r[transform.REASON] for r in transform.flag_log_rows(logs(log_row(), log_row(page=None))).collect()].count(
        transform.REPEAT
    ) == 0
    # two usable copies of one event, three of another
    assert repeated(log_row(itemInSession=1), log_row(itemInSession=1), *[log_row(itemInSession=2)] * 3) == [2, 3]
    # one part of the identity differs, each part in turn: no repeat
    for part in ({"userId": "2"}, {"sessionId": 2}, {"itemInSession": 3}, {"ts": LATE_THURSDAY + 1}):
        assert repeated(log_row(), log_row(**part)) == [], part
    # a blank and a missing userId are one identity after cleaning: found (the window then decides)
    assert repeated(log_row(page="Home", userId=""), log_row(page="Home", userId=None)) == [2]


@pytest.mark.slow
def test_each_play_appears_once_whether_its_title_is_shared_or_not(logs, songs):
    catalog = songs(
        song_row(song_id="SO1", duration=201.5),
        song_row(song_id="SO2", duration=200.2),  # same title and artist as SO1
        song_row(song_id="SO3", title="Solo", duration=100.0),
    )
    plays = logs(
        log_row(length=200.0, itemInSession=1),
        log_row(song="Solo", length=100.5, itemInSession=2),
        log_row(song="Solo", length=150.0, itemInSession=3),
        log_row(song="Nobody Knows", itemInSession=4),
        log_row(length=190.0, itemInSession=5),  # shared title, but no duration close enough
    )
    rows = plays_of(plays, catalog).collect()
    assert len({r["songplay_id"] for r in rows}) == 5
    assert sorted(r["song_id"] or "-" for r in rows) == ["-", "-", "-", "SO2", "SO3"]
