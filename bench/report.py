"""Benchmark of the weekly report on a week of a 1,500-pupil school (10 million visits by default).

    python -m bench.report [--json] [--visits N] [--dir DIR] [--no-peer]

1. A week of visits is generated straight into a store under a temporary
   folder (`bench.reportdata`: executemany in big transactions, not through
   the writer's queue); it is deleted at the end.
2. The weekly report (every pass, the events, the HTML and all the CSV files)
   is made in a fresh child process, so its peak RSS is the report's alone.
   The previous week is empty here (one week is generated), so "change from
   last week" costs nothing, as it does in service, where the previous
   week's figures are cached when its report is made.
3. Peer, in the same run on the same data: the query a first version would
   write, one GROUP BY over the readable view (`visit_view`) by user, device,
   group, categories and action for the week.
The last line printed is one JSON object (with --json: only that line).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from config.loader import DEFAULT_CONFIG, load_settings

WEEK = "2026-W47"
MONDAY = dt.date(2026, 11, 16)


def measure(db: Path, out: Path) -> dict[str, float]:
    """Make the weekly report of `db` (run in the child process)."""
    from reports.period import parse_week
    from reports.produce import make_weekly

    settings = load_settings(DEFAULT_CONFIG)
    period = parse_week(WEEK, settings.school.timezone)
    started = time.perf_counter()
    made = make_weekly(db, settings, period, now=dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC), out_dir=out)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"report_s": round(elapsed, 2), "peak_rss_mb": round(peak, 1),
            "visits_counted": made.report.glance.visits, "flagged": made.report.glance.flagged,
            "html_kb": round(len(made.html) / 1024), "csv_files": len(made.files.csvs)}


def peer(db: Path) -> float:
    settings = load_settings(DEFAULT_CONFIG)
    tz = settings.school.timezone
    start = int(dt.datetime.combine(MONDAY, dt.time(0), tz).timestamp())
    end = start + 7 * 86400
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    started = time.perf_counter()
    conn.execute("SELECT user_name, device, group_name, categories, action, COUNT(*) FROM visit_view "
                 "WHERE ts >= ? AND ts < ? GROUP BY 1, 2, 3, 4, 5", (start, end)).fetchall()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--visits", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary store goes (default /tmp)")
    parser.add_argument("--no-peer", action="store_true", help="skip the naive GROUP BY peer")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)   # child process: DB path
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.measure.parent / "reports")))
        return 0
    say = (lambda *a: None) if args.json else print
    from bench.reportdata import generate_week

    settings = load_settings(DEFAULT_CONFIG)
    with tempfile.TemporaryDirectory(prefix="schoolgate-bench-report-", dir=args.dir) as tmp:
        db = Path(tmp) / "store.sqlite3"
        started = time.perf_counter()
        visits = generate_week(db, args.visits, MONDAY, settings.school.timezone, progress=not args.json)
        generated = time.perf_counter() - started
        size_mb = db.stat().st_size / 1e6
        say(f"generated {visits:,} visits in {generated:.0f} s ({size_mb:.0f} MB)")
        child = subprocess.run([sys.executable, "-m", "bench.report", "--measure", str(db)], check=True,
                               capture_output=True, text=True, env={**os.environ})
        result = json.loads(child.stdout.strip().splitlines()[-1])
        say(f"weekly report: {result['report_s']} s, peak RSS {result['peak_rss_mb']} MB")
        peer_s = None if args.no_peer else peer(db)
        if peer_s is not None:
            say(f"peer (one GROUP BY over visit_view): {peer_s:.1f} s")
    out = {"visits": visits, **result, "generate_s": round(generated, 1), "db_mb": round(size_mb),
           "peer_group_by_s": None if peer_s is None else round(peer_s, 2),
           "speed_ratio_vs_peer": None if peer_s is None else round(peer_s / result["report_s"], 2),
           "machine": {"cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                       "python": platform.python_version(), "sqlite": sqlite3.sqlite_version}}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
