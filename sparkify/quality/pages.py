"""The report pages: one HTML page per run (OUTPUT/_reports/<run id>.html, beside its JSON) and the index of runs
(OUTPUT/_reports/index.html), made from the JSON reports alone, so a page shows the JSON's values and
``python -m sparkify.report OUTPUT`` rebuilds them from older runs' reports.

Each page stands alone: styles inline, charts inline SVG (``charts``, pygal), no script, no link outside
_reports/; it opens from disk or from S3 with no network.
"""

from __future__ import annotations

import html
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from sparkify.quality import charts

Report = Dict[str, Any]
TREND_RUNS = 30  # the index's charts: the newest entries
LISTED = 1000  # the index lists the newest runs (a page stays under 1 MB); older ones: their JSON and pages
EXIT_CODES = {"ok": 0, "nothing new": 0, "checks failed": 1}

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:6px;margin:2px 0}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.ok,.passed{background:#1a7f37}.failed,.error,.checks-failed{background:#cf222e}
.skipped,.nothing-new,.running{background:#6e7781}
.problem{border-left:4px solid #cf222e;padding-left:12px}.muted{color:#6e7781}
svg{max-width:100%;height:auto}
"""


# ---------------------------------------------------------------- small pieces


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def badge(status: str) -> str:
    return f'<span class="badge {esc(status.replace(" ", "-"))}">{esc(status)}</span>'


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else esc(value)


def human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return str(size)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; ``rows`` hold HTML already escaped; ``numeric``: the columns aligned right."""
    cls = [' class="n"' if i in numeric else "" for i in range(len(header))]
    head = "".join(f"<th{cls[i]}>{esc(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls[i]}>{c}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )


def exit_code(report: Report) -> int:
    """The command's exit code, as the report records it (older reports: from the status)."""
    return int(report.get("exit_code", EXIT_CODES.get(report.get("status", ""), 2)))


def rejected_share(report: Report) -> float:
    sources = report.get("sources", {}).values()
    read = sum(s.get("read", 0) for s in sources)
    return sum(s.get("rejected", 0) for s in sources) / read if read else 0.0


def failed_checks(report: Report) -> List[Dict[str, Any]]:
    return [c for c in report.get("checks", []) if c.get("status") in ("failed", "error")]


# ---------------------------------------------------------------- one run's page


def run_page(report: Report) -> str:
    """A run's page: status, exit code; what failed and what was rejected first; then the input per source,
    the tables written, the timeline of the stages, and every check with its SQL."""
    body = [header_section(report)]
    failed = failed_checks(report)
    if failed:
        body.append(checks_section(failed, "Failed checks", problem=True))
    if report.get("rejects"):
        body.append(rejects_section(report["rejects"]))
    body += [sources_section(report), tables_section(report)]
    if report.get("stages"):
        body.append(timeline_section(report["stages"]))
    if report.get("checks"):
        body.append(checks_section(report["checks"], f"Checks ({len(report['checks'])})"))
    body.append('<p class="muted"><a href="index.html">All runs</a></p>')
    return document(f"Sparkify run {report.get('run_id', '')}", "".join(body))


def header_section(report: Report) -> str:
    stream = report.get("stream") or {}
    facts = [
        ("Status", badge(report.get("status", "unknown"))),
        ("Exit code", f'<span id="exit-code">{exit_code(report)}</span>'),
        ("Mode", esc(report.get("mode") or ("micro-batch" if stream else ""))),
        ("Started", esc(report.get("started_at"))),
        ("Wall time", f"{report.get('seconds', {}).get('total', 0):,.1f} s"),
        ("Input", f"<code>{esc(report.get('input_root'))}</code>"),
        ("Output", f"<code>{esc(report.get('output_root'))}</code>"),
        ("Spark jobs", number(report.get("spark_jobs", 0))),
    ]
    if stream:
        facts.append(("Stream", esc(", ".join(f"{k} {v}" for k, v in stream.items()))))
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in facts)
    message = f"<p><strong>{esc(report['message'])}</strong></p>" if report.get("message") else ""
    return f"<h1>Run {esc(report.get('run_id'))}</h1><table>{rows}</table>{message}"


def sources_section(report: Report) -> str:
    rows = [
        (esc(name), number(s.get("files", 0)), human_bytes(s.get("bytes", 0)), number(s.get("read", 0)),
         number(s.get("used", 0)), number(s.get("rejected", 0)), number(s.get("next_song", 0)))
        for name, s in report.get("sources", {}).items()
    ]  # fmt: skip
    header = ["source", "files", "bytes", "read", "used", "rejected", "NextSong plays"]
    return "<h2>Input</h2>" + table(header, rows, numeric=range(1, 7))


def tables_section(report: Report) -> str:
    written = list(report.get("tables", [])) + list(report.get("quarantine", []))
    rows = [
        (f"<code>{esc(t['table'])}</code>", number(t.get("rows", 0)), number(t.get("files", 0)),
         human_bytes(t.get("bytes", 0)), number(t.get("partitions", 0)),
         number(len(t.get("partitions_written") or ())), f"{t.get('seconds', 0):.1f}")
        for t in written
    ]  # fmt: skip
    header = ["table", "rows", "files", "bytes", "partitions", "partitions written", "seconds"]
    return "<h2>Tables written</h2>" + (table(header, rows, numeric=range(1, 7)) if rows else "<p>None.</p>")


def checks_section(checks: Sequence[Dict[str, Any]], title: str, problem: bool = False) -> str:
    rows = [
        (badge(c.get("status", "")), esc(c.get("name")), f"{esc(c.get('comparison'))} {esc(c.get('expected'))}",
         esc(c.get("actual")), f"<pre>{esc(c.get('test_sql'))}</pre>{esc(c.get('detail') or '')}")
        for c in checks
    ]  # fmt: skip
    cls = ' class="problem"' if problem else ""
    listed = table(["", "check", "expected", "actual", "SQL"], rows)
    return f"<section{cls}><h2>{esc(title)}</h2>{listed}</section>"


def rejects_section(rejects: Dict[str, Dict[str, Any]]) -> str:
    parts = [f'<section class="problem"><h2>Rejected records ({sum(r["count"] for r in rejects.values()):,})</h2>']
    for reason, found in sorted(rejects.items(), key=lambda item: -item[1]["count"]):
        examples = [
            (esc(e.get("source")), f"<code>{esc(e.get('file'))}</code>", f"<pre>{esc(e.get('raw'))}</pre>")
            for e in found.get("examples", [])
        ]
        listed = table(["source", "file", "raw (200 characters at most)"], examples)
        parts.append(f"<h3>{esc(reason)}: {found['count']:,}</h3>{listed}")
    return "".join(parts) + "</section>"


def timeline_section(stages: Dict[str, float]) -> str:
    slowest, seconds = max(stages.items(), key=lambda item: item[1])
    named = f'<p>Slowest stage: <strong id="slowest">{esc(slowest)}</strong> ({seconds:,.1f} s)</p>'
    return "<h2>Timeline</h2>" + named + charts.timeline(stages)


# ---------------------------------------------------------------- the index of runs


def entries(reports: Sequence[Report]) -> List[Report]:
    """The index's rows, oldest first: a batch run as it is; a stream's micro-batches one row per hour (per
    checkpoint), their counts summed, its status the worst, its page the hour's last batch."""
    ordered = sorted(reports, key=lambda r: (r.get("started_at", ""), r.get("run_id", "")))
    rows: List[Report] = []
    hours: Dict[Tuple[str, str], Report] = {}
    for report in ordered:
        stream = report.get("stream") or {}
        if "batch_id" not in stream:
            rows.append(dict(report, batches=0))
            continue
        key = (str(stream.get("checkpoint", "")), report.get("started_at", "")[:13])
        if key not in hours:
            hours[key] = {"run_id": f"stream {key[1]}:00", "started_at": report.get("started_at"), "mode": "stream",
                          "status": "ok", "exit_code": 0, "batches": 0, "sources": {}, "tables": [], "checks": [],
                          "stages": {}, "seconds": {"total": 0.0}}  # fmt: skip
            rows.append(hours[key])
        add_batch(hours[key], report)
    return rows


def add_batch(hour: Report, batch: Report) -> None:
    """Sum a micro-batch into its hour's row."""
    hour["batches"] += 1
    hour["page"] = f"{batch.get('run_id')}.html"
    if exit_code(batch) > hour["exit_code"]:
        hour["exit_code"], hour["status"] = exit_code(batch), batch.get("status", "")
    for name, counts in batch.get("sources", {}).items():
        into = hour["sources"].setdefault(name, {})
        for key, value in counts.items():
            into[key] = into.get(key, 0) + value
    rows = {t["table"]: t for t in hour["tables"]}
    for written in batch.get("tables", []):
        rows.setdefault(written["table"], {"table": written["table"], "rows": 0})["rows"] += written.get("rows", 0)
    hour["tables"] = list(rows.values())
    hour["checks"] += failed_checks(batch)
    for name, seconds in batch.get("stages", {}).items():
        hour["stages"][name] = hour["stages"].get(name, 0.0) + seconds
    hour["seconds"]["total"] += batch.get("seconds", {}).get("total", 0.0)


def index_page(reports: Sequence[Report]) -> str:
    """Every run, newest first (a stream's micro-batches by the hour), and the trends of the newest
    ``TREND_RUNS``: rows written per table, rejected share, wall time per stage, checks failed."""
    rows = entries(reports)
    recent = rows[-TREND_RUNS:]
    older = max(0, len(rows) - LISTED)
    note = f" The newest {LISTED:,} are listed; {older:,} older ones have their JSON and pages here." if older else ""
    body = [f"<h1>Sparkify runs</h1><p>{len(rows):,} runs ({len(reports):,} reports), newest first.{note}</p>"]
    if recent:
        body.append(f"<h2>Trends: the last {len(recent)} runs</h2>" + trend_charts(recent))
    listing = [
        (f'<a href="{esc(r.get("page") or str(r.get("run_id")) + ".html")}">{esc(r.get("run_id"))}</a>',
         esc(r.get("started_at")), esc(r.get("mode") or ""), badge(r.get("status", "")), str(exit_code(r)),
         number(r["batches"]) if r.get("batches") else "", number(sum(t.get("rows", 0) for t in r.get("tables", []))),
         f"{rejected_share(r):.2%}", number(len(failed_checks(r))), f"{r.get('seconds', {}).get('total', 0):,.1f}")
        for r in reversed(rows[-LISTED:])
    ]  # fmt: skip
    header = ["run", "started", "mode", "status", "exit", "batches", "rows written", "rejected", "checks failed", "s"]
    body.append('<h2>Runs</h2><div id="runs">' + table(header, listing, numeric=(4, 5, 6, 7, 8, 9)) + "</div>")
    return document("Sparkify runs", "".join(body))


def trends(recent: Sequence[Report]) -> Dict[str, Dict[str, List[Any]]]:
    """The charts' series over ``recent`` (oldest first): rows per table, rejected share, seconds per stage,
    checks failed."""
    tables = sorted({t["table"] for r in recent for t in r.get("tables", [])})
    stages = list(dict.fromkeys(name for r in recent for name in r.get("stages", {})))

    def rows_of(r: Report, name: str) -> Any:
        return next((t.get("rows", 0) for t in r.get("tables", []) if t["table"] == name), None)

    return {
        "rows": {name: [rows_of(r, name) for r in recent] for name in tables},
        "rejected": {"rejected share": [rejected_share(r) for r in recent]},
        "stages": {name: [round(r.get("stages", {}).get(name, 0.0), 2) for r in recent] for name in stages},
        "checks": {"checks failed": [len(failed_checks(r)) for r in recent]},
    }


def trend_charts(recent: Sequence[Report]) -> str:
    labels = [str(r.get("started_at", ""))[:16].replace("T", " ") for r in recent]
    series = trends(recent)
    return (
        charts.lines("Rows written per table", labels, series["rows"])
        + charts.lines("Rejected share of the records read", labels, series["rejected"], percent=True)
        + charts.stacked_bars("Wall time per stage (seconds)", labels, series["stages"])
        + charts.stacked_bars("Checks failed", labels, series["checks"])
    )
