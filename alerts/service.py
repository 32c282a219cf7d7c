"""The alert service: flagged hits in, emails out, never on the request path.

`submit()` (called by the `addons/alerts.py` addon for every decided request)
runs the rules (a few set operations) and appends the hits to an in-memory
list; it never waits.  A background task, every `tick_s`:

 1. writes the waiting hits to SQLite in one transaction, each immediate hit
    opening or joining its incident (`alerts.incidents`);
 2. composes the emails that are due (`alerts.compose`) into the outbox;
 3. delivers due outbox rows (`alerts.sender`).

A hit is durable once step 1 committed (a fraction of a second after the
request); from then on nothing loses it: the outbox is sent after restarts and
SMTP outages.  `stop()` writes what is waiting and makes one last delivery pass.
Tests drive it without the task: `await service.open()`, then `run_once()`
with an injected clock and mailer.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from alerts.hits import Hit
from alerts.rules import AlertRules
from config.schema import Settings
from proxy.db import open_db, transaction, utc_iso
from proxy.engine import Engine, Evaluation

if TYPE_CHECKING:
    from alerts.compose import Composer
    from alerts.sender import Backoff, Delivery, Sender
    from alerts.smtp import Mailer

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def topic_from(engine: Engine) -> Callable[[str], str]:
    """The watch-list topic of a search term, from the engine's (live) watch lists."""
    def topic(term: str) -> str:
        match = engine.watchlists.match(term)
        return match.topic if match is not None else ""

    return topic


class AlertService:
    def __init__(self, settings: Settings, db_path: Path, *, clock: Clock = utcnow, mailer: Mailer | None = None,
                 watch_topic: Callable[[str], str] | None = None, tick_s: float = 0.5,
                 backoff: Backoff | None = None, stop_timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.db_path = db_path
        self.clock = clock
        self._mailer = mailer
        self._backoff = backoff
        self.rules = AlertRules(settings, watch_topic)
        self.tick_s = tick_s
        self.stop_timeout_s = stop_timeout_s
        self.window = dt.timedelta(minutes=settings.alerts.group_window_minutes)
        self._waiting: list[Hit] = []
        self._wake = asyncio.Event()
        self._pass = asyncio.Lock()  # one pass at a time: the loop's, a caller's (tests, CLI), stop()'s
        self._conn: aiosqlite.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.submitted = 0
        self.stored = 0
        self._failed_passes = 0
        self._stopping = False

    # The sending side (templates, SMTP) is imported when first used: a process that only submits hits
    # (`schoolgate dns`, which hands them to nobody) starts ~0.1 s sooner without jinja2 and smtplib.
    @cached_property
    def mailer(self) -> Mailer:
        from alerts.smtp import SmtpMailer

        return self._mailer or SmtpMailer(self.settings.smtp)

    @cached_property
    def composer(self) -> Composer:
        from alerts.compose import Composer

        return Composer(self.settings)

    @cached_property
    def sender(self) -> Sender:
        from alerts.sender import Sender

        return Sender(self.mailer, self.settings.alerts.sender, self.clock, self._backoff)

    # -- the request path ----------------------------------------------------
    def submit(self, ev: Evaluation, url: str, *, at: dt.datetime | None = None, attempt: bool = True) -> None:
        """Hand one decided request to the rules; returns at once."""
        d = ev.decision
        if not (d.flagged or d.blocked or ev.watch_phrase):
            return
        try:
            hits = self.rules.classify(ev, url, at or self.clock(), attempt=attempt)
        except Exception:  # an alert bug must never break filtering
            logger.exception("alert rules failed for a request to %s", ev.host)
            return
        for hit in hits:
            self.submit_hit(hit)

    def submit_hit(self, hit: Hit) -> None:
        self._waiting.append(hit.redacted())
        self.submitted += 1
        self._wake.set()

    # -- background work -----------------------------------------------------
    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the alert service is not open")
        return self._conn

    async def open(self) -> None:
        if self._conn is None:
            self._conn = await open_db(self.db_path)

    async def start(self) -> None:
        await self.open()
        try:
            await self._retry_pending_now()
        except Exception as exc:  # noqa: BLE001 - e.g. locked: they go at their own time
            logger.warning("alerts: could not make the waiting emails due now: %s", exc)
        self._task = asyncio.create_task(self._loop(), name="schoolgate-alerts")

    async def _retry_pending_now(self) -> None:
        """Emails left pending by an earlier run are tried at once, not after that run's back-off.

        A restart is often what follows fixing the mail settings; the back-off starts again from here.
        """
        now = utc_iso(self.clock())
        cur = await self.conn.execute("UPDATE alert_outbox SET next_attempt_at = ? WHERE status = 'pending' AND "
                                      "next_attempt_at > ?", (now, now))
        if cur.rowcount:
            logger.info("alerts: %d email(s) left waiting by the previous run: trying them now", cur.rowcount)

    async def stop(self) -> None:
        if self._task is not None:
            # let a pass in progress finish: cancelled between the server's "250" and mark_sent, it would
            # leave a delivered email pending, and the last pass below would send it a second time
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.stop_timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._conn is not None:
            try:
                await asyncio.wait_for(self.run_once(), self.stop_timeout_s)
            except Exception:  # pending rows stay in the outbox for the next start
                logger.exception("alerts: last delivery pass at stop failed; pending alerts are kept")
            await self._conn.close()
            self._conn = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            except TimeoutError:
                pass
            if self._stopping:
                return
            self._wake.clear()
            try:
                await self.run_once()
                self._failed_passes = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # keep going: the hits and the outbox are durable
                self._failed_passes += 1
                if self._failed_passes == 1:   # once per outage, not twice a second until it ends
                    logger.exception("alerts: a pass failed; retrying every %.1f s", self.tick_s)
                await asyncio.sleep(self.tick_s)

    async def flush(self) -> int:
        """Write the waiting hits (and their incidents) in one transaction."""
        if not self._waiting:
            return 0
        hits, self._waiting = self._waiting, []
        try:
            from alerts.incidents import join_or_open
            from alerts.outbox import insert_hits

            async with transaction(self.conn):
                incidents = await join_or_open(self.conn, hits, window=self.window,
                                               timezone=self.settings.school.timezone)
                await insert_hits(self.conn, hits, incidents)
        except BaseException:
            self._waiting[0:0] = hits     # not lost: written on the next pass
            raise
        self.stored += len(hits)
        return len(hits)

    async def compose(self) -> int:
        return await self.composer.compose(self.conn, self.clock())

    async def deliver(self) -> Delivery:
        return await self.sender.deliver(self.conn)

    async def run_once(self) -> Delivery:
        """One pass: store hits, compose due emails, deliver due rows.

        When storing or composing fails (the disk is full, the database locked), the new hits stay in
        memory for the next pass and what the outbox already holds is still delivered; then the error
        is raised for the caller to log.  Passes never overlap: they share one connection, and
        two at once would nest transactions on it (or deliver a row twice).
        """
        async with self._pass:
            try:
                await self.flush()
                await self.compose()
            except Exception as exc:
                log = logger.error if self._failed_passes == 0 else logger.debug
                log("alerts: could not store new hits (%s: %s); %d wait in memory for the next pass, "
                    "delivering the outbox meanwhile", type(exc).__name__, exc, len(self._waiting))
                await self.deliver()
                raise
            return await self.deliver()
