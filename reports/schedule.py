"""The report's background task: the weekly report, the daily purge, the uptime record.

Every `check_every` seconds (and once at start, after `first_delay`):

* extend the uptime span (`reports.uptime`);
* if a weekly report is due - the newest week whose send time (by default
  Monday 07:00 school time, the week after it) has passed - and its run is
  not recorded, claim it (`reports.runs.claim`, one transaction) and make and
  email it.  A run missed while the service was down is therefore sent when it
  starts; only the newest missed week is sent, never a backlog;
* once a day, at or after `PURGE_HOUR` school time, apply the retention
  periods (`reports.retention`).

The clock and the mailer are injected; `tick()` runs one round for tests.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from alerts.smtp import Mailer
from config.schema import Settings
from proxy.db import open_db_sync, transaction_sync
from reports import runs, uptime
from reports.mailer import default_mailer
from reports.period import Period, week_of
from reports.produce import run_weekly
from reports.retention import purge

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
T = TypeVar("T")
PURGE_HOUR = 2
PURGE_KEY = "retention_last_purge"


def send_time(period: Period, settings: Settings) -> dt.datetime:
    """When a week's report is due: the configured weekday and time of the following week."""
    r = settings.reports
    day = period.last_day + dt.timedelta(days=1 + r.weekday)
    return dt.datetime.combine(day, r.time, period.tz)


def due_week(now: dt.datetime, settings: Settings) -> Period:
    """The newest week whose report is due at `now`."""
    tz = settings.school.timezone
    week = week_of(now.astimezone(tz).date(), tz).previous()
    while send_time(week, settings) > now:
        week = week.previous()
    return week


@dataclass
class TickResult:
    week: str | None = None         # the week whose report this tick made
    state: str = ""                 # its run's state afterwards
    purged: bool = False


class ReportScheduler:
    def __init__(self, settings: Settings, db_path: Path, reports_dir: Path, *, index_path: Path | None = None,
                 clock: Clock | None = None, mailer: Mailer | None = None, check_every: float = 60.0,
                 first_delay: float = 60.0) -> None:
        self.settings = settings
        self.db_path = db_path
        self.reports_dir = reports_dir
        self.index_path = index_path
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.mailer = mailer or default_mailer(settings)
        self.check_every = check_every
        self.first_delay = first_delay
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._with_conn, lambda c: uptime.start_span(c, self.clock()))
        self._task = asyncio.create_task(self._loop(), name="schoolgate-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._with_conn, lambda c: uptime.heartbeat(c, self.clock()))

    def _with_conn(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = open_db_sync(self.db_path)
        try:
            return work(conn)
        finally:
            conn.close()

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the schedule must outlive one bad round
                logger.exception("report schedule: this round failed; trying again in %.0f s", self.check_every)
            await asyncio.sleep(self.check_every)

    async def tick(self) -> TickResult:
        now = self.clock()
        result = TickResult()
        await asyncio.to_thread(self._with_conn, lambda c: uptime.heartbeat(c, now))
        week = due_week(now, self.settings)
        run = await asyncio.to_thread(self._with_conn, lambda c: runs.claim(c, week.label, now))
        if run is not None:
            done = await run_weekly(self.db_path, self.settings, week, run, now=now, out_dir=self.reports_dir,
                                    mailer=self.mailer, index_path=self.index_path)
            result.week, result.state = week.label, done.state
        result.purged = await asyncio.to_thread(self._with_conn, lambda c: self._purge_if_due(c, now))
        return result

    def _purge_if_due(self, conn: sqlite3.Connection, now: dt.datetime) -> bool:
        local = now.astimezone(self.settings.school.timezone)
        today = local.date().isoformat()
        if local.hour < PURGE_HOUR:
            return False
        with transaction_sync(conn):
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (PURGE_KEY,)).fetchone()
            if row is not None and str(row[0]) >= today:
                return False
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                         "value = excluded.value", (PURGE_KEY, today))
        purge(conn, self.settings.retention, now)
        return True
