"""The Monday schedule with an injected clock and a real SMTP server (aiosmtpd on 127.0.0.1, a free port)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from alerts.smtp import SmtpMailer
from proxy.db import open_db_sync
from reports import runs
from reports.schedule import ReportScheduler, due_week
from tests.alerts.smtpserver import SmtpServer
from tests.reports.weekdata import LONDON, Week, build_week


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path, count=300)


def scheduler(week: Week, tmp_path: Path, clock: Clock, port: int) -> ReportScheduler:
    settings = dataclasses.replace(week.settings, smtp=dataclasses.replace(week.settings.smtp, port=port))
    return ReportScheduler(settings, week.db_path, tmp_path / "reports", clock=clock,
                           mailer=SmtpMailer(settings.smtp), first_delay=3600)


def test_due_week_turns_over_at_monday_seven(week: Week) -> None:
    s = week.settings
    assert due_week(dt.datetime(2026, 11, 23, 6, 59, tzinfo=LONDON), s).label == "2026-W46"
    assert due_week(dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON), s).label == "2026-W47"
    assert due_week(dt.datetime(2026, 11, 29, 23, 0, tzinfo=LONDON), s).label == "2026-W47"
    # British Summer Time: 07:00 school time is 06:00 UTC
    assert due_week(dt.datetime(2026, 6, 15, 6, 0, tzinfo=dt.UTC), s).label == "2026-W24"
    assert due_week(dt.datetime(2026, 6, 15, 5, 59, tzinfo=dt.UTC), s).label == "2026-W23"


async def test_monday_report_is_emailed_once_with_its_html(week: Week, tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 6, 59, tzinfo=LONDON))
    sched = scheduler(week, tmp_path, clock, smtp.port)
    with open_db_sync(week.db_path) as conn:  # W46 is "already sent": the service ran last week
        runs.record_manual(conn, "2026-W46", "sent", clock())
    before = await sched.tick()
    assert before.week is None and smtp.received == []
    clock.now = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
    result = await sched.tick()
    assert (result.week, result.state) == ("2026-W47", "sent")
    [mail] = await smtp.wait_for(1)
    assert set(mail.recipients) == set(week.settings.reports.recipients)
    assert "2026-W47" in mail.subject
    assert "Weekly online safety audit" in mail.html and "<svg" in mail.html
    assert "The week at a glance" in mail.text
    assert "iwf-test-entry" not in mail.html + mail.text
    for minutes in (1, 60, 600):
        clock.now = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON) + dt.timedelta(minutes=minutes)
        assert (await sched.tick()).week is None
    # a restart (a new scheduler on the same store) does not send it again
    again = scheduler(week, tmp_path, clock, smtp.port)
    assert (await again.tick()).week is None
    assert len(smtp.received) == 1
    assert (tmp_path / "reports" / "weekly-2026-W47" / "report.html").exists()


async def test_run_missed_while_down_is_sent_at_start(week: Week, tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(dt.datetime(2026, 11, 25, 13, 30, tzinfo=LONDON))      # Wednesday: down since Sunday
    sched = scheduler(week, tmp_path, clock, smtp.port)
    result = await sched.tick()
    assert (result.week, result.state) == ("2026-W47", "sent")
    assert len(await smtp.wait_for(1)) == 1
    clock.now += dt.timedelta(days=1)
    assert (await sched.tick()).week is None and len(smtp.received) == 1


async def test_mail_server_down_then_retried_once_up(week: Week, tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON))
    port = smtp.port
    await smtp.stop()
    sched = scheduler(week, tmp_path, clock, port)
    assert (await sched.tick()).state == "failed"
    with open_db_sync(week.db_path) as conn:
        run = runs.get_run(conn, "2026-W47")
    assert run is not None and "refused" in run.error
    await smtp.start()
    clock.now += dt.timedelta(minutes=5)            # too soon to retry
    assert (await sched.tick()).week is None
    clock.now += dt.timedelta(minutes=30)
    assert (await sched.tick()).state == "sent"
    assert len(await smtp.wait_for(1)) == 1


async def test_a_run_that_died_while_sending_is_not_sent_again(week: Week, tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON))
    with open_db_sync(week.db_path) as conn:
        run = runs.claim(conn, "2026-W47", clock())
        assert run is not None
        runs.advance(conn, run, "sending", clock())
    clock.now += dt.timedelta(days=2)
    sched = scheduler(week, tmp_path, clock, smtp.port)
    assert (await sched.tick()).week is None
    assert smtp.received == []


async def test_daily_purge_runs_once_a_day(week: Week, tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(dt.datetime(2026, 11, 23, 1, 0, tzinfo=LONDON))
    sched = scheduler(week, tmp_path, clock, smtp.port)
    with open_db_sync(week.db_path) as conn:
        runs.record_manual(conn, "2026-W46", "sent", clock())
    assert (await sched.tick()).purged is False             # before 02:00
    clock.now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=LONDON)
    assert (await sched.tick()).purged is True
    clock.now = dt.datetime(2026, 11, 23, 23, 0, tzinfo=LONDON)
    assert (await sched.tick()).purged is False
    clock.now = dt.datetime(2026, 11, 24, 2, 30, tzinfo=LONDON)
    assert (await sched.tick()).purged is True
