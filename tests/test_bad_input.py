"""Bad input: the job keeps going, quarantines what it cannot use (file, raw text, reason),
counts it, and loses nothing."""

from __future__ import annotations

import collections
import json
import os

import pytest

from sparkify.core.errors import UserError
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from sparkify.runs.plan import INCREMENTAL, Job
from tests.conftest import read_table, run_etl

NOV_1 = 1541030400000  # 2018-11-01 00:00:00 UTC


def song(song_id, title="Song", **extra):
    row = {
        "num_songs": 1,
        "artist_id": "AR1",
        "artist_latitude": None,
        "artist_longitude": None,
        "artist_location": "",
        "artist_name": "Band",
        "song_id": song_id,
        "title": title,
        "duration": 200.0,
        "year": 2001,
    }
    row.update(extra)
    return json.dumps(row)


def event(item, page="NextSong", user="7", ts=None, **extra):
    row = {
        "artist": "Band",
        "auth": "Logged In",
        "firstName": "Ann",
        "gender": "F",
        "itemInSession": item,
        "lastName": "Lee",
        "length": 200.0,
        "level": "free",
        "location": "Oslo",
        "method": "PUT",
        "page": page,
        "registration": None,
        "sessionId": 1,
        "song": "Song",
        "status": 200,
        "ts": ts or NOV_1 + item * 1000,
        "userAgent": '"UA"',
        "userId": user,
    }
    row.update(extra)
    return json.dumps(row)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture(scope="module")
def bad_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bad-input"))
    songs = os.path.join(root, "song_data", "A", "A")
    write(f"{songs}/A/TRGOOD.json", song("SO1"))
    write(f"{songs}/B/TRSEVERAL.json", song("SO2") + song("SO3") + "\n" + song("SO4") + "\n")  # 3 objects
    write(f"{songs}/C/TRTRUNCATED.json", song("SO5")[:40])
    write(f"{songs}/D/TREMPTY.json", "")
    write(f"{songs}/E/TRWRONGTYPE.json", song("SO6", duration="long"))
    write(f"{songs}/F/TRNOID.json", song(None))
    write(f"{songs}/G/TRNUMBER.json", song("SO7", title=1999))  # a number where text is expected: kept
    write(f"{songs}/notes.txt", "not a song")
    logs = os.path.join(root, "log_data", "2018", "11")
    lines = [
        event(0, page="Home"),
        event(1),
        event(1),  # the same event twice
        event(2, ts="yesterday"),  # a non-numeric ts
        event(3)[:30],  # a truncated line
        json.dumps({k: v for k, v in json.loads(event(4)).items() if k != "ts"}),  # a missing field
        event(5, user=""),  # a play without a user
        event(6, user=42),  # a number where text is expected: kept as "42"
        "",  # a blank line is no record
        event(7, page="Home", user="8") + event(8, user="8"),  # two objects on one line
    ]
    write(f"{logs}/2018-11-01-events.json", "\n".join(lines) + "\n")
    write(f"{logs}/2018-11-02-events.json", "")
    write(f"{logs}/.DS_Store", "\x00\x01binary")
    write(f"{logs}/README.md", "# notes")
    return root


@pytest.fixture(scope="module")
def bad_run(spark, settings, bad_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bad-output"))
    lenient = settings.with_overrides(input_root=bad_root, output_root=out, max_rejected_share=1.0)
    return engine.run(spark, lenient, checks=DEFAULT_CHECKS), out


@pytest.mark.slow
def test_every_bad_record_is_quarantined_with_file_raw_text_and_reason(spark, bad_run):
    _, out = bad_run
    quarantine = spark.read.json(os.path.join(out, "_quarantine")).collect()
    by_reason = collections.Counter((r["source"], r["reason"]) for r in quarantine)
    wrong = "not valid JSON, or a field of the wrong type (see raw)"
    assert by_reason == {
        ("song_data", wrong): 2,  # truncated file, "duration": "long"
        ("song_data", "missing song_id"): 1,
        ("log_data", "repeat of an event already read"): 1,
        ("log_data", wrong): 2,  # "ts": "yesterday", truncated line
        ("log_data", "missing ts (epoch milliseconds)"): 1,
        ("log_data", "NextSong without userId"): 1,
    }
    truncated = next(r for r in quarantine if r["source_file"].endswith("TRTRUNCATED.json"))
    assert truncated["raw"] == song("SO5")[:40]
    yesterday = next(r for r in quarantine if '"yesterday"' in r["raw"])
    assert yesterday["source_file"].endswith("2018-11-01-events.json")


@pytest.mark.slow
def test_accounting_holds(bad_run):
    result, _ = bad_run
    songs, logs = result.sources["song_data"], result.sources["log_data"]
    assert (songs.read, songs.used, songs.rejected) == (8, 5, 3)
    assert (logs.read, logs.used, logs.rejected) == (10, 5, 5)  # the blank line is no record
    assert logs.read == logs.used + logs.rejected
    assert songs.read == songs.used + songs.rejected
    written = {t.table: t for t in result.tables}
    assert written["songplays"].rows == logs.next_song == 3
    assert written["songs"].rows == 5
    assert result.quarantine[0].rows == songs.rejected + logs.rejected
    assert (songs.ignored_files, logs.ignored_files) == (1, 1)  # notes.txt, README.md (.DS_Store is hidden)
    assert [c.name for c in result.checks if c.failed] == []


@pytest.mark.slow
def test_good_records_in_bad_files_are_all_used(spark, bad_run):
    _, out = bad_run
    songs = {r[0]: r for r in read_table(spark, out, "songs")}
    assert sorted(songs) == ["SO1", "SO2", "SO3", "SO4", "SO7"]
    assert songs["SO7"][1] == "1999"
    plays = read_table(spark, out, "songplays")
    assert sorted(p[2] for p in plays) == ["42", "7", "8"]
    assert {p[4] for p in plays} == {"SO1"}  # title, artist and duration match SO1 (lowest song_id)


def test_too_many_rejects_fail_the_run_before_the_tables(spark, settings, bad_root, tmp_path):
    strict = settings.with_overrides(input_root=bad_root, output_root=str(tmp_path))
    with pytest.raises(UserError) as failure:
        engine.run(spark, strict)
    message = str(failure.value)
    assert "song_data: 37.5% of records were rejected (3 of 8), above MAX_REJECTED_SHARE 5.0%" in message
    assert os.path.join(str(tmp_path), "_quarantine") in message
    assert not os.path.exists(tmp_path / "songplays")
    assert os.path.exists(tmp_path / "_quarantine")
    reports = [n for n in os.listdir(tmp_path / "_reports") if n.endswith(".json")]
    report = json.loads((tmp_path / "_reports" / reports[0]).read_text())
    assert report["status"] == "failed" and "MAX_REJECTED_SHARE" in report["message"] and report["exit_code"] == 2


@pytest.mark.slow
def test_a_failed_run_leaves_no_table_in_the_local_catalog(bad_root, tmp_path):
    """The default command registers a fresh output's tables while it reads (registered over their written
    folders, the songs table's would be listed first). Failing at the reject limit, after that and before
    any table is written, it drops them again: no table in the catalog, no empty table folder."""
    out = tmp_path / "out"
    run = run_etl("--input", bad_root, "--output", str(out), master="local[2]")
    assert run.returncode == 2, run.stderr[-3000:]
    assert "above MAX_REJECTED_SHARE" in run.stderr
    assert sorted(os.listdir(out)) == ["_catalog", "_quarantine", "_reports"]
    shown = run_etl("--output", str(out), "sql", "SHOW TABLES IN sparkify", module="sparkify.catalog")
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "|namespace|tableName|isTemporary|" in shown.stdout.replace(" ", "")
    assert not any(name in shown.stdout for name in ("songs", "artists", "users", "time", "songplays"))


def test_an_empty_input_is_a_clear_error(spark, settings, tmp_path):
    for name in ("song_data", "log_data"):
        os.makedirs(tmp_path / "in" / name)
    with pytest.raises(UserError, match=r"No records found under .*song_data \(0 files\)"):
        engine.run(spark, settings.with_overrides(input_root=str(tmp_path / "in"), output_root=str(tmp_path / "o")))


@pytest.mark.slow
def test_no_run_deletes_the_quarantine_of_another(spark, settings, bad_root, tmp_path):
    """Each run keeps its own rejects: a later (incremental) run must not delete the earlier ones."""
    import datetime as dt
    import shutil

    src, out = str(tmp_path / "in"), str(tmp_path / "out")
    shutil.copytree(bad_root, src)
    lenient = settings.with_overrides(input_root=src, output_root=out, max_rejected_share=1.0)
    first = engine.run(spark, lenient)
    write(f"{src}/log_data/2018/11/2018-11-03-events.json", event(1, ts=NOV_1 + 2 * 86_400_000) + "\n")
    later = engine.run(spark, lenient, job=Job(INCREMENTAL, days=(dt.date(2018, 11, 3), dt.date(2018, 11, 3))))
    assert later.status == "ok"
    rejects = spark.read.json(os.path.join(out, "_quarantine")).collect()
    by_run = collections.Counter(r["run"] for r in rejects)
    assert by_run == {first.run_id: 8, later.run_id: 3}  # the later run re-read song_data: its 3 rejects
    assert first.quarantine[0].rows == 8 and later.quarantine[0].rows == 3
    assert first.quarantine[0].path.endswith(f"_quarantine/run={first.run_id}")
