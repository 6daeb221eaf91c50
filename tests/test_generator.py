"""The generator (tools/make_sample.py) reproduces the quirks of the real public data.

One helper, quirks(), measures a data set the same way for the generated data and for the real
sample in ../shared/data/udacity-sample; the comparisons with the real sample are skipped when it
is absent, the checks on the generated data alone always run. No Spark.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
from typing import Dict, List, Optional, Tuple

import pytest

from tests.conftest import SHARED_SAMPLE
from tools import make_sample

MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")
USER_FIELDS = ("firstName", "lastName", "gender", "location", "registration", "userAgent")
TEXT_FIELDS = ("song", "artist", "firstName", "lastName", "location", "userAgent")


def unwrap(text: str) -> Tuple[int, str]:
    """(layers of UTF-8-read-as-Latin-1, the text without them)."""
    layers = 0
    while MOJIBAKE.search(text) and all(ord(c) <= 0xFF for c in text):
        try:
            text = text.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            break
        layers += 1
    return layers, text


def numeric_looking(text: object) -> bool:
    """'1999', '#40', '1-2-8': a digit and no letter."""
    text = str(text)
    return any(c.isdigit() for c in text) and not any(c.isalpha() for c in text)


def quirks(root: str) -> Dict:  # noqa: PLR0912 -- one pass over the files, one branch per statistic
    """The quirk statistics of a data set (song_data/ and log_data/ under root)."""
    song_paths = sorted(glob.glob(os.path.join(root, "song_data", "**", "*.json"), recursive=True))
    log_paths = sorted(glob.glob(os.path.join(root, "log_data", "**", "*.json"), recursive=True))
    songs: List[Dict] = []
    song_raw_ascii = True
    for path in song_paths:
        with open(path, "rb") as handle:
            raw = handle.read()
        song_raw_ascii = song_raw_ascii and raw.isascii()
        songs.append(json.loads(raw))
    events: List[Dict] = []
    log_format = {"trailing_newline": 0, "ascii_only": 0, "compact": 0, "sorted_by_ts": 0, "one_day": 0}
    for path in log_paths:
        with open(path, "rb") as handle:
            raw = handle.read()
        rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
        events.extend(rows)
        log_format["trailing_newline"] += raw.endswith(b"\n")
        log_format["ascii_only"] += raw.isascii()
        log_format["compact"] += b'", "' not in raw and b'":"' in raw
        log_format["sorted_by_ts"] += [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
        days = {r["ts"] // 86_400_000 for r in rows}
        log_format["one_day"] += len(days) == 1
    plays = [e for e in events if e["page"] == "NextSong"]
    logged_out = [e for e in events if e["userId"] == ""]

    layers: collections.Counter = collections.Counter()
    garbled_fields = set()
    clean_non_ascii = 0
    for e in events:
        for field in TEXT_FIELDS:
            value = e.get(field)
            if not isinstance(value, str) or value.isascii():
                continue
            n, _ = unwrap(value)
            if n:
                layers[n] += 1
                garbled_fields.add(field)
            else:
                clean_non_ascii += 1

    catalog = {(str(s["title"]), s["artist_name"]) for s in songs}
    matched_by_layers: collections.Counter = collections.Counter()
    for p in plays:
        (ls, song), (la, artist) = unwrap(p["song"]), unwrap(p["artist"])
        if (song, artist) in catalog:
            matched_by_layers[max(ls, la)] += 1

    agents = [e["userAgent"] for e in events if e["userAgent"] is not None]
    quoted = [a for a in agents if len(a) >= 2 and a.startswith('"') and a.endswith('"')]
    levels: Dict[str, set] = collections.defaultdict(set)
    for e in events:
        if e["userId"]:
            levels[e["userId"]].add(e["level"])
    names: Dict[str, set] = collections.defaultdict(set)
    for s in songs:
        names[s["artist_id"]].add(s["artist_name"])
    statuses: Dict[str, set] = collections.defaultdict(set)
    for e in events:
        statuses[e["page"]].add((e["method"], e["status"]))

    def share(part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    return {
        "songs": len(songs),
        "events": len(events),
        "plays": len(plays),
        "play_share": share(len(plays), len(events)),
        "empty_user_share": share(len(logged_out), len(events)),
        "logged_out_pages": {e["page"] for e in logged_out},
        "logged_out_auth": {e["auth"] for e in logged_out},
        "logged_out_user_fields": {f for e in logged_out for f in USER_FIELDS if e[f] is not None},
        "logged_out_share_a_session": share(
            len({e["sessionId"] for e in logged_out} & {e["sessionId"] for e in events if e["userId"]}),
            len({e["sessionId"] for e in logged_out}),
        ),
        "mojibake_layers": dict(layers),
        "garbled_fields": garbled_fields,
        "garbled_share_of_plays": share(sum(layers.values()), len(plays)),
        "clean_non_ascii": clean_non_ascii,
        "matched_plays_by_layers": dict(matched_by_layers),
        "agent_quoted_share": share(len(quoted), len(agents)),
        "agent_quoted_iff_comma": all((a in quoted) == ("," in a) for a in agents),
        "users": len(levels),
        "users_both_levels_share": share(sum(len(v) == 2 for v in levels.values()), len(levels)),
        "paid_event_share": share(sum(e["level"] == "paid" for e in events), len(events)),
        "page_method_status": dict(statuses),
        "ts_millis": {e["ts"] % 1000 for e in events},
        "non_play_with_song": sum(1 for e in events if e["page"] != "NextSong" and e["song"] is not None),
        "numeric_songs": sum(numeric_looking(p["song"]) for p in plays),
        "numeric_artists": sum(str(p["artist"])[:1].isdigit() for p in plays),
        "log_format": log_format,
        "log_files": len(log_paths),
        "song_files_ascii": song_raw_ascii,
        "year0_share": share(sum(s["year"] == 0 for s in songs), len(songs)),
        "null_coords_share": share(sum(s["artist_latitude"] is None for s in songs), len(songs)),
        "unpaired_coords": sum((s["artist_latitude"] is None) != (s["artist_longitude"] is None) for s in songs),
        "empty_location_share": share(sum(s["artist_location"] == "" for s in songs), len(songs)),
        "artists": len(names),
        "artists_several_names_share": share(sum(len(v) > 1 for v in names.values()), len(names)),
        "numeric_titles": sum(numeric_looking(s["title"]) for s in songs),
        "json_number_titles": sum(not isinstance(s["title"], str) for s in songs),
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Dict:
    root = str(tmp_path_factory.mktemp("generated"))
    make_sample.main(["--out", root, "--songs", "400", "--events", "3000", "--users", "40", "--days", "4"])
    return quirks(root)


@pytest.fixture(scope="module")
def real() -> Dict:
    if not os.path.isdir(SHARED_SAMPLE):
        pytest.skip(f"the real public sample is absent: {SHARED_SAMPLE}")
    return quirks(SHARED_SAMPLE)


def most_common(counts: Dict[int, int]) -> Optional[int]:
    return max(counts, key=counts.get) if counts else None


# ---- the generated data alone (always run) ----


def test_generated_sizes_are_the_ones_asked_for(generated):
    assert generated["songs"] == 401  # one song stored twice, in two files
    assert generated["events"] == 3000
    assert generated["log_files"] == 4


def test_mojibake_is_mostly_two_layers_with_some_one_and_three(generated):
    layers = generated["mojibake_layers"]
    assert most_common(layers) == 2
    assert {1, 2, 3} <= set(layers)
    assert layers[2] > 2 * (layers[1] + layers[3])
    assert generated["garbled_fields"] == {"song", "artist"}
    assert generated["clean_non_ascii"] == 0  # every non-ASCII song/artist text in the log is garbled


def test_two_layer_plays_match_their_song(generated):
    assert generated["matched_plays_by_layers"].get(2, 0) >= 10
    assert generated["matched_plays_by_layers"].get(0, 0) > 0


def test_logged_out_rows(generated):
    assert 0.01 < generated["empty_user_share"] < 0.08
    assert generated["logged_out_auth"] == {"Logged Out"}
    assert generated["logged_out_user_fields"] == set()
    assert "Login" in generated["logged_out_pages"] and "Home" in generated["logged_out_pages"]


def test_user_agents_are_quoted_when_they_hold_a_comma(generated):
    assert generated["agent_quoted_iff_comma"]
    assert 0.5 < generated["agent_quoted_share"] < 1


def test_some_users_change_level(generated):
    assert 0 < generated["users_both_levels_share"] < 0.3


def test_song_quirks(generated):
    assert 0.3 < generated["year0_share"] < 0.8
    assert 0.3 < generated["null_coords_share"] < 0.8
    assert generated["unpaired_coords"] == 0
    assert 0 < generated["artists_several_names_share"] < 0.1
    assert generated["numeric_titles"] > 0 and generated["json_number_titles"] > 0
    assert generated["song_files_ascii"]


def test_numbers_in_log_text(generated):
    assert generated["numeric_songs"] > 0 and generated["numeric_artists"] > 0
    assert generated["non_play_with_song"] == 0


def test_log_files_are_written_like_the_real_ones(generated):
    files = generated["log_files"]
    fmt = generated["log_format"]
    assert fmt == {
        "trailing_newline": 0,
        "ascii_only": files,
        "compact": files,
        "sorted_by_ts": files,
        "one_day": files,
    }
    assert len(generated["ts_millis"]) == 1


def test_same_seed_same_bytes(tmp_path):
    def digest(root: str) -> Dict[str, bytes]:
        files = glob.glob(os.path.join(root, "**", "*.json"), recursive=True)
        return {os.path.relpath(p, root): open(p, "rb").read() for p in files}

    args = ["--songs", "30", "--events", "200", "--users", "5", "--days", "2"]
    make_sample.main(["--out", str(tmp_path / "a")] + args)
    make_sample.main(["--out", str(tmp_path / "b")] + args)
    make_sample.main(["--out", str(tmp_path / "c"), "--seed", "7"] + args)
    assert digest(str(tmp_path / "a")) == digest(str(tmp_path / "b"))
    assert digest(str(tmp_path / "a")) != digest(str(tmp_path / "c"))


# ---- compared with the real public sample (skipped when it is absent) ----


def test_real_sample_is_the_one_described(real):
    assert (real["songs"], real["events"], real["log_files"]) == (71, 8056, 30)
    assert real["mojibake_layers"] == {2: 346}
    assert real["garbled_fields"] == {"song", "artist"}


def test_mojibake_layers_like_the_real_logs(real, generated):
    assert most_common(generated["mojibake_layers"]) == most_common(real["mojibake_layers"]) == 2
    assert generated["garbled_fields"] == real["garbled_fields"]
    assert generated["clean_non_ascii"] == real["clean_non_ascii"] == 0
    assert 0.3 < generated["garbled_share_of_plays"] / real["garbled_share_of_plays"] < 3


def test_log_quirks_like_the_real_logs(real, generated):
    assert 0.4 < generated["empty_user_share"] / real["empty_user_share"] < 2.5
    assert generated["logged_out_pages"] <= real["logged_out_pages"]
    assert generated["logged_out_user_fields"] == real["logged_out_user_fields"] == set()
    assert generated["logged_out_share_a_session"] > 0 and real["logged_out_share_a_session"] > 0
    assert generated["agent_quoted_iff_comma"] and real["agent_quoted_iff_comma"]
    assert abs(generated["agent_quoted_share"] - real["agent_quoted_share"]) < 0.2
    assert abs(generated["play_share"] - real["play_share"]) < 0.08
    assert 0.3 < generated["users_both_levels_share"] / real["users_both_levels_share"] < 3
    assert real["paid_event_share"] > 0.5 and generated["paid_event_share"] > 0.5
    for page, pairs in generated["page_method_status"].items():
        assert pairs == real["page_method_status"][page], page
    assert len(generated["ts_millis"]) == len(real["ts_millis"]) == 1
    assert generated["log_format"]["compact"] == generated["log_files"]
    assert real["log_format"] == {k: (0 if k == "trailing_newline" else 30) for k in generated["log_format"]}


def test_song_quirks_like_the_real_songs(real, generated):
    for key in ("year0_share", "null_coords_share", "empty_location_share"):
        assert abs(generated[key] - real[key]) < 0.15, key
    assert generated["unpaired_coords"] == real["unpaired_coords"] == 0
    assert generated["song_files_ascii"] and real["song_files_ascii"]


def test_numbers_in_text_like_the_real_logs(real, generated):
    for key in ("numeric_songs", "numeric_artists"):
        assert real[key] > 0 and generated[key] > 0, key
        ratio = (generated[key] / generated["plays"]) / (real[key] / real["plays"])
        assert 0.2 < ratio < 5, key
