"""`schoolgate report weekly | governors`, `schoolgate purge`, `schoolgate export-user NAME`.

Handlers take `(args, ctx)` and return the exit code: 0 done, 1 operational
error (the mail server refused, the database cannot be read), 2 bad usage.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

from alerts.smtp import MailError
from proxy.context import Context
from proxy.db import open_db_sync
from reports import runs, uptime
from reports.export import ExportError, export_user
from reports.governors import build_governors, write_governors
from reports.mailer import default_mailer
from reports.period import PeriodError, days_between, last_complete_week, parse_days, parse_week
from reports.produce import email_weekly, make_weekly
from reports.retention import purge, vacuum_dictionaries

logger = logging.getLogger(__name__)

SERVICE_RUNNING_WITHIN = dt.timedelta(minutes=3)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", parents=[common], help="the weekly audit report and the governors' summary")
    rsub = p.add_subparsers(dest="report_command", metavar="KIND", required=True)
    a = rsub.add_parser("weekly", parents=[common], help="the weekly audit report (HTML and CSV files)")
    a.add_argument("--week", help="an ISO week such as 2026-W47 (default: last week)")
    a.add_argument("--out", type=Path, help="folder for the report (default: DATA/reports)")
    a.add_argument("--send", action="store_true", help="also email it to the report recipients")
    a.set_defaults(handler=report_weekly)
    a = rsub.add_parser("governors", parents=[common], help="the anonymised summary for governors")
    a.add_argument("--from", dest="first", help="first day, YYYY-MM-DD (default: a year ago)")
    a.add_argument("--to", dest="last", help="last day, YYYY-MM-DD (default: yesterday)")
    a.add_argument("--out", type=Path, help="folder for the summary (default: DATA/reports)")
    a.set_defaults(handler=report_governors)

    p = sub.add_parser("purge", parents=[common], help="delete what is older than the retention periods")
    p.add_argument("--vacuum-dictionaries", action="store_true",
                   help="also remove stored names no visit uses any more (only while the service is stopped)")
    p.add_argument("--force", action="store_true", help="vacuum even if the service seems to be running")
    p.set_defaults(handler=purge_cmd)

    p = sub.add_parser("export-user", parents=[common], help="subject access export of one person (CSV and JSON)")
    p.add_argument("name", help="the user name in the register")
    p.add_argument("--out", type=Path, help="folder for the export (default: DATA/exports)")
    p.set_defaults(handler=export_cmd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fail(message: str, code: int = 1) -> int:
    print(f"schoolgate: {message}", file=sys.stderr)
    return code


def report_weekly(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings
    tz = s.school.timezone
    now = _now()
    try:
        period = parse_week(args.week, tz) if args.week else last_complete_week(now, tz)
    except PeriodError as exc:
        return _fail(str(exc), 2)
    if not ctx.db_path.exists():
        return _fail(f"no database at {ctx.db_path}: run `schoolgate init` first")
    made = make_weekly(ctx.db_path, s, period, now=now, out_dir=args.out or ctx.reports_dir,
                       index_path=ctx.index_path)
    g = made.report.glance
    print(f"weekly report {period.label} ({period.describe()}): {g.visits:,} requests, {g.blocked:,} blocked, "
          f"{g.flagged:,} flagged")
    print(f"  {made.files.html}")
    print(f"  {len(made.files.csvs)} CSV files in {made.files.folder}")
    if not args.send:
        return 0
    conn = open_db_sync(ctx.db_path)
    try:
        runs.record_manual(conn, period.label, "sending", now, folder=str(made.files.folder))
        try:
            refused = asyncio.run(email_weekly(s, made, default_mailer(s), now))
        except MailError as exc:
            runs.record_manual(conn, period.label, "failed", now, error=str(exc), folder=str(made.files.folder))
            return _fail(f"the report was not emailed: {exc}")
        runs.record_manual(conn, period.label, "sent", now, refused=refused, folder=str(made.files.folder))
    finally:
        conn.close()
    sent_to = [r for r in s.reports.recipients if r not in refused]
    print(f"  emailed to {', '.join(sent_to)}")
    if refused:
        return _fail("refused by the mail server: " + "; ".join(f"{a} ({w})" for a, w in refused.items()))
    return 0


def report_governors(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings
    tz = s.school.timezone
    now = _now()
    today = now.astimezone(tz).date()
    try:
        if args.first or args.last:
            first = args.first or (today - dt.timedelta(days=365)).isoformat()
            last = args.last or (today - dt.timedelta(days=1)).isoformat()
            period = parse_days(first, last, tz)
        else:
            period = days_between(today - dt.timedelta(days=365), today - dt.timedelta(days=1), tz)
    except PeriodError as exc:
        return _fail(str(exc), 2)
    if not ctx.db_path.exists():
        return _fail(f"no database at {ctx.db_path}: run `schoolgate init` first")
    conn = open_db_sync(ctx.db_path)
    try:
        summary = build_governors(conn, s, period, now=now, index_path=ctx.index_path)
    finally:
        conn.close()
    html, csv = write_governors(summary, args.out or ctx.reports_dir)
    print(f"governors' summary {period.describe()}: {summary.glance.blocked:,} blocked, "
          f"{summary.glance.flagged:,} flagged")
    print(f"  {html}\n  {csv}")
    return 0


def _service_running(conn: Any, now: dt.datetime) -> bool:
    spans = uptime.load_spans(conn)
    return bool(spans) and now - spans[-1][1] < SERVICE_RUNNING_WITHIN


def purge_cmd(args: argparse.Namespace, ctx: Context) -> int:
    if not ctx.db_path.exists():
        return _fail(f"no database at {ctx.db_path}")
    now = _now()
    conn = open_db_sync(ctx.db_path)
    try:
        result = purge(conn, ctx.settings.retention, now)
        for table, count in result.deleted.items():
            print(f"  {table:<18} {count:>10,} deleted")
        if args.vacuum_dictionaries:
            if _service_running(conn, now) and not args.force:
                return _fail("the service looks to be running (it recorded it was up in the last 3 minutes): "
                             "stop it before vacuuming the dictionaries, or give --force")
            for table, count in vacuum_dictionaries(conn).items():
                print(f"  {table:<18} {count:>10,} unused names removed")
    finally:
        conn.close()
    return 0


def export_cmd(args: argparse.Namespace, ctx: Context) -> int:
    if not ctx.db_path.exists():
        return _fail(f"no database at {ctx.db_path}")
    conn = open_db_sync(ctx.db_path)
    try:
        folder = export_user(conn, args.name, args.out or ctx.data_dir / "exports", _now())
    except ExportError as exc:
        return _fail(str(exc))
    finally:
        conn.close()
    print(f"everything held about {args.name} is in {folder} (CSV files and export.json; readable by you only)")
    return 0
