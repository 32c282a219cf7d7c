"""Make a weekly report (files on disk) and email it: the steps the CLI and the schedule share."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from alerts.smtp import Mailer, MailError
from config.schema import Settings
from proxy.db import open_db_sync
from reports import runs
from reports.mailer import report_message, send_message
from reports.model import WeeklyReport
from reports.output import ReportFiles, render_weekly, write_weekly
from reports.period import Period
from reports.weekly import build_report, cache_glance

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Made:
    report: WeeklyReport
    files: ReportFiles
    html: str
    text: str


def make_weekly(db_path: Path, settings: Settings, period: Period, *, now: dt.datetime, out_dir: Path,
                index_path: Path | None = None) -> Made:
    """Build, render and write the week's report (blocking: run it in a thread from async code)."""
    conn = open_db_sync(db_path)
    try:
        report = build_report(conn, settings, period, now=now, index_path=index_path)
        cache_glance(conn, report)
    finally:
        conn.close()
    html, text = render_weekly(report, settings.retention)
    files = write_weekly(report, out_dir, settings.retention, (html, text))
    return Made(report, files, html, text)


def subject(report: WeeklyReport) -> str:
    flagged = len(report.flagged)
    note = f"{flagged} flagged event{'s' if flagged != 1 else ''}" if flagged else "nothing flagged"
    return f"[Schoolgate] {report.school}: weekly online safety audit {report.period.label} ({note})"


async def email_weekly(settings: Settings, made: Made, mailer: Mailer, now: dt.datetime) -> dict[str, str]:
    recipients = settings.reports.recipients
    message = report_message(settings, label=made.report.period.label, subject=subject(made.report),
                             text=made.text, html=made.html, recipients=recipients, now=now)
    return await send_message(mailer, message, settings.alerts.sender, recipients)


async def run_weekly(db_path: Path, settings: Settings, period: Period, run: runs.Run, *, now: dt.datetime,
                     out_dir: Path, mailer: Mailer, index_path: Path | None = None) -> runs.Run:
    """The schedule's run of a claimed week: make, record `built`, send, record `sent` or `failed`."""
    def record(state: str, **changes: object) -> runs.Run:
        conn = open_db_sync(db_path)
        try:
            return runs.advance(conn, run, state, now, **changes)
        finally:
            conn.close()

    try:
        made = await asyncio.to_thread(make_weekly, db_path, settings, period, now=now, out_dir=out_dir,
                                       index_path=index_path)
    except Exception as exc:
        logger.exception("weekly report %s could not be made", period.label)
        return await asyncio.to_thread(record, "failed", error=f"could not be made: {exc}")
    run = await asyncio.to_thread(record, "built", folder=str(made.files.folder))
    run = await asyncio.to_thread(record, "sending")
    try:
        refused = await email_weekly(settings, made, mailer, now)
    except MailError as exc:
        logger.error("weekly report %s not emailed: %s (will retry)", period.label, exc)
        return await asyncio.to_thread(record, "failed", error=str(exc))
    return await asyncio.to_thread(record, "sent", refused=refused, error="")
