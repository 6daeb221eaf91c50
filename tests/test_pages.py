"""The report pages: each run's page shows its JSON report's values (problems first), the index lists the runs
with their trends, `python -m sparkify.report` rebuilds them, and a real headless Chromium renders them with no
console error and no request outside the page."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import shutil
from html.parser import HTMLParser

import pytest

from sparkify.cli import report as report_cli
from sparkify.quality import charts, pages, site
from sparkify.quality.checks import DEFAULT_CHECKS
from sparkify.runs import engine
from tests.test_bad_input import event, song, write

LOUD = ("error", "warning")  # console messages that fail the page's test
FAKE_KEY = "AKIAABCDEFGHIJKLMNOP"  # shaped like an AWS access key id: never on a page
FAILING = {"name": "more users than there are", "test_sql": "SELECT COUNT(*) FROM users", "expected_result": -1}


class Cells(HTMLParser):
    """The text of every table row (a list of cell texts), and of every element with an id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows, self.ids, self._row, self._cell, self._id = [], {}, None, None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        self._id.append(dict(attrs).get("id"))
        if self._id[-1]:
            self.ids[self._id[-1]] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if self._id:
            self._id.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for name in filter(None, self._id):
            self.ids[name] += data

    def row(self, first: str):
        return next(r for r in self.rows if r and r[0] == first)


def read_page(root: str, run_id: str) -> str:
    with open(os.path.join(root, "_reports", f"{run_id}.html"), encoding="utf-8") as handle:
        return handle.read()


def read_json(root: str, run_id: str) -> dict:
    with open(os.path.join(root, "_reports", f"{run_id}.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def troubled(spark, settings, tmp_path_factory):
    """A run with rejects of three reasons (7 of one: more than a page shows; one quoting an AWS key id, one
    longer than 200 characters) and a failed check."""
    root = str(tmp_path_factory.mktemp("troubled-input"))
    write(f"{root}/song_data/A/A/A/TRGOOD.json", song("SO1"))
    write(f"{root}/song_data/A/A/B/TRNOID.json", song(None))
    no_ts = [json.dumps({k: v for k, v in json.loads(event(10 + i)).items() if k != "ts"}) for i in range(7)]
    lines = [event(i) for i in range(5)] + no_ts + [event(3, artist=f"{FAKE_KEY} " + "x" * 300, ts="yesterday")]
    write(f"{root}/log_data/2018/11/2018-11-01-events.json", "\n".join(lines) + "\n")
    out = str(tmp_path_factory.mktemp("troubled-output"))
    lenient = settings.with_overrides(input_root=root, output_root=out, max_rejected_share=1.0)
    result = engine.run(spark, lenient, checks=[*DEFAULT_CHECKS, FAILING])
    return result, out


def test_the_run_page_shows_the_json_reports_values(sample_run):
    result, root = sample_run
    report, page = read_json(root, result.run_id), Cells(read_page(root, result.run_id))
    assert page.row("Status")[1] == report["status"] == "ok"
    assert page.ids["exit-code"] == str(report["exit_code"]) == "0"
    for name, counts in report["sources"].items():
        shown = page.row(name)
        assert [shown[1], *shown[3:7]] == [f"{counts[k]:,}" for k in ("files", "read", "used", "rejected", "next_song")]
    for written in report["tables"]:
        shown = page.row(written["table"])
        assert [shown[1], shown[2], shown[4]] == [f"{written[k]:,}" for k in ("rows", "files", "partitions")]
        assert shown[5] == f"{len(written['partitions_written']):,}"
    checks = {r[1]: r for r in page.rows if len(r) == 5 and r[0] in ("passed", "failed", "error", "skipped")}
    assert len(checks) == len(report["checks"]) == 21
    for check in report["checks"]:
        assert checks[check["name"]][0] == check["status"] and checks[check["name"]][4] == check["test_sql"]
        assert checks[check["name"]][3] == str(check["actual"])
    slowest = max(report["stages"].items(), key=lambda item: item[1])[0]
    assert page.ids["slowest"] == slowest
    assert "Failed checks" not in read_page(root, result.run_id)  # nothing failed: no such section


@pytest.mark.slow
def test_failed_checks_and_rejects_come_first_with_examples_and_no_secret(spark, troubled):
    result, out = troubled
    report, text = read_json(out, result.run_id), read_page(out, result.run_id)
    assert report["status"] == "checks failed" and report["exit_code"] == 1
    failed, rejects, inputs = (text.index(s) for s in ("<h2>Failed checks", "<h2>Rejected records", "<h2>Input"))
    assert failed < rejects < inputs
    assert FAILING["name"] in text[failed:rejects]
    # the report's counts per reason are the quarantine's (read back independently)
    quarantine = spark.read.json(os.path.join(out, "_quarantine")).collect()
    assert {k: v["count"] for k, v in report["rejects"].items()} == collections.Counter(r["reason"] for r in quarantine)
    assert report["rejects"]["missing ts (epoch milliseconds)"]["count"] == 7
    for reason, found in report["rejects"].items():
        assert len(found["examples"]) == min(5, found["count"])
        assert all(len(e["raw"]) <= 200 and e["file"].endswith(".json") for e in found["examples"])
        assert f"{reason}: {found['count']:,}" in text
    assert FAKE_KEY not in json.dumps(report) and FAKE_KEY not in text
    assert any("*** " + "x" * 10 in e["raw"] for f in report["rejects"].values() for e in f["examples"])


def synthetic_reports(batch_runs: int = 40):
    """``batch_runs`` daily runs (rows, rejects, stage times and failed checks that change run by run), then a
    stream's 12 micro-batches over two hours."""
    reports = []
    for i in range(batch_runs):
        reports.append({
            "run_id": f"2018110{i // 10}T{i % 10:02d}0000Z-{i:04x}",
            "started_at": f"2018-11-{i + 1:02d}T02:00:00+00:00", "mode": "incremental",
            "status": "checks failed" if i % 7 == 0 else "ok", "exit_code": 1 if i % 7 == 0 else 0,
            "sources": {"log_data": {"files": 1, "bytes": 1000, "read": 1000 + i, "used": 1000 - i, "rejected": 2 * i}},
            "tables": [{"table": "songplays", "rows": 100 * i, "files": 1, "bytes": 1, "partitions": 1},
                       {"table": "users", "rows": 50 + i, "files": 1, "bytes": 1, "partitions": 0}],
            "checks": [{"name": "c", "test_sql": "SELECT 1", "status": "failed" if i % 7 == 0 else "passed"}],
            "stages": {"read logs": 1.0 + i, "write songplays": 2.0}, "seconds": {"total": 3.0 + i},
        })  # fmt: skip
    for b in range(12):
        reports.append({
            "run_id": f"stream-batch-{b:08d}", "started_at": f"2018-12-01T{10 + b // 6:02d}:{b * 5 % 60:02d}:00+00:00",
            "mode": "micro-batch", "status": "ok", "exit_code": 0, "stream": {"batch_id": b, "checkpoint": "cp"},
            "sources": {"log_data": {"read": 10, "used": 10, "rejected": 0}},
            "tables": [{"table": "songplays", "rows": 10}], "stages": {"read": 0.5}, "seconds": {"total": 0.5},
        })  # fmt: skip
    return reports


def test_an_index_of_40_runs_and_a_stream_lists_each_run_and_the_stream_by_the_hour():
    reports = synthetic_reports(40)
    text = pages.index_page(reports)
    runs = Cells(text.split('<div id="runs">')[1]).rows[1:]
    assert len(runs) == 42  # 40 runs, the stream's 12 batches as 2 hours
    assert [r[0] for r in runs[:2]] == ["stream 2018-12-01T11:00", "stream 2018-12-01T10:00"]
    assert [r[5] for r in runs[:2]] == ["6", "6"] and runs[0][6] == "60"  # batches, rows written
    assert runs[2][0] == reports[39]["run_id"] and runs[-1][0] == reports[0]["run_id"]  # newest first
    assert runs[-1][3] == "checks failed" and runs[-1][8] == "1" and runs[-2][8] == "0"
    # the trends: the newest 30 entries (28 runs, 2 stream hours), each value as computed here
    recent = pages.entries(reports)[-30:]
    trends = pages.trends(recent)
    daily = reports[12:40]
    assert trends["rows"]["songplays"] == [100 * i for i in range(12, 40)] + [60, 60]
    assert trends["rows"]["users"] == [50 + i for i in range(12, 40)] + [None, None]
    assert trends["rejected"]["rejected share"] == [2 * i / (1000 + i) for i in range(12, 40)] + [0.0, 0.0]
    assert trends["stages"]["read logs"] == [1.0 + i for i in range(12, 40)] + [0.0, 0.0]
    assert trends["stages"]["read"] == [0.0] * 28 + [3.0, 3.0]
    assert trends["checks"]["checks failed"] == [int(r["status"] == "checks failed") for r in daily] + [0, 0]
    # the charts draw those values: the rows chart's points are the songplays and users rows
    rows_chart = text[text.index("Rows written per table") - 2000 :].split("</svg>")[0]
    drawn = collections.Counter(re.findall(r'<desc class="value">([^<]+)</desc>', rows_chart))
    expected = [v for values in trends["rows"].values() for v in values if v is not None]
    assert drawn == collections.Counter(f"{v:,}".replace(",", "") if v < 1000 else str(v) for v in expected)
    assert text.count("<svg") == 4 and len(text.encode()) < 1_000_000


def test_the_report_command_rebuilds_the_index_and_the_missing_pages(tmp_path, capsys):
    folder = tmp_path / "_reports"
    folder.mkdir()
    for report in synthetic_reports(40):
        (folder / f"{report['run_id']}.json").write_text(json.dumps(report))
    (folder / "notes.json").write_text("not JSON")  # left out, with a warning
    assert report_cli.main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"Index of 52 reports: {folder}/index.html (52 run pages written)"
    assert "notes.json is not a JSON report" in captured.err
    assert len(list(folder.glob("*.html"))) == 53
    assert "20181103T090000Z-0027" in (folder / "index.html").read_text()
    assert report_cli.main([str(tmp_path)]) == 0  # again: only the index
    assert "(0 run pages written)" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report_cli.main([str(empty)]) == 2
    assert f"No JSON reports under {empty}/_reports: run etl.py on this output first." in capsys.readouterr().err


def test_without_pygal_the_json_is_written_and_one_line_says_the_pages_were_skipped(
    sample_run, tmp_path, monkeypatch, capsys
):
    result, _ = sample_run
    monkeypatch.setattr(charts, "missing", lambda: "pygal is not installed (No module named 'pygal')")
    monkeypatch.setattr(site, "_told", [])
    for _ in range(2):
        engine.write_report(None, dataclasses.replace(result, output_root=str(tmp_path)))
    assert sorted(os.listdir(tmp_path / "_reports")) == [f"{result.run_id}.json"]
    err = capsys.readouterr().err
    assert err.count("Report pages skipped") == 1
    assert "Report pages skipped (the JSON reports are written): pygal is not installed" in err


@pytest.mark.slow
@pytest.mark.browser
def test_the_pages_render_in_chromium_with_no_error_and_no_request_outside(troubled, tmp_path):
    from playwright.sync_api import sync_playwright

    result, out = troubled
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: `make test` installs it (make browser)"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    reports = os.path.join(out, "_reports")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        try:
            for name, charts_expected in ((f"{result.run_id}.html", 1), ("index.html", 4)):
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                problems, requests = [], []
                page.on("console", lambda m, seen=problems: seen.append(m.text) if m.type in LOUD else 0)
                page.on("pageerror", lambda e, seen=problems: seen.append(str(e)))
                page.on("request", lambda r, seen=requests: seen.append(r.url))
                page.goto(f"file://{reports}/{name}", wait_until="load")
                svgs = page.locator("svg.pygal-chart")
                assert svgs.count() == charts_expected, name
                for i in range(charts_expected):
                    box = svgs.nth(i).bounding_box()
                    assert box and box["width"] > 300 and box["height"] > 100, (name, i, box)
                assert page.locator("svg.pygal-chart .series").count() > 0
                shot = tmp_path / name.replace(".html", ".png")
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 20_000
                assert problems == [], problems
                assert requests == [f"file://{reports}/{name}"], requests
                page.close()
        finally:
            browser.close()
