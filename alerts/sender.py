"""The sender: delivers due outbox rows over SMTP, with retries and exponential back-off.

One pass (`deliver`) opens one SMTP session for the rows due now.  Before each
send the row's attempt is committed (`attempted_at`); right after the server
accepts it the row is marked sent (see `alerts.outbox` for why this gives
exactly-once delivery except inside a crash window of milliseconds, where the
stable Message-ID makes the second copy the same message).  When the server
cannot be reached at all, every due row is told why and when the next try is;
the delay doubles up to `cap_s` (a minute by default, so alerts go within a
minute of the mail server coming back).  Rows are never given up: a refused
recipient is retried every `permanent_cap_s` until someone fixes the config,
and `schoolgate alerts pending` shows the error.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from alerts import outbox
from alerts.smtp import Mailer, MailError, build_message

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Backoff:
    base_s: float = 5.0
    factor: float = 2.0
    cap_s: float = 60.0
    permanent_cap_s: float = 900.0

    def delay(self, failures: int, permanent: bool = False) -> dt.timedelta:
        """The wait after `failures` failures in a row (1 -> base_s)."""
        cap = self.permanent_cap_s if permanent else self.cap_s
        seconds = self.base_s * self.factor ** max(0, min(failures - 1, 30))
        return dt.timedelta(seconds=min(cap, seconds))


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    error: str = ""


class Sender:
    def __init__(self, mailer: Mailer, sender: str, clock: Clock, backoff: Backoff | None = None,
                 batch: int = 50) -> None:
        self.mailer = mailer
        self.sender = sender
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.batch = batch
        self.server_failures = 0

    async def deliver(self, conn: aiosqlite.Connection) -> Delivery:
        """Send the rows due now; never raises for a mail failure."""
        result = Delivery()
        now = self.clock()
        rows = await outbox.due(conn, now, self.batch)
        if not rows:
            return result
        try:
            session = await self.mailer.open()
        except MailError as exc:
            self.server_failures += 1
            wait = self.backoff.delay(self.server_failures, exc.permanent)
            await outbox.mark_retry(conn, [r.id for r in rows], str(exc), now + wait, count_attempt=True)
            logger.warning("alert emails waiting (%d due): %s; next try in %ds", len(rows), exc,
                           wait.total_seconds())
            return Delivery(0, len(rows), str(exc))
        self.server_failures = 0
        try:
            for row in rows:
                await outbox.mark_attempt(conn, row.id, self.clock())
                message = build_message(sender=self.sender, recipients=row.recipients, subject=row.subject,
                                        text=row.body_text, html=row.body_html, message_id=row.message_id,
                                        date=row.created_at.timestamp(), urgent=row.severity == "immediate")
                try:
                    refused = await session.send(message, self.sender, row.recipients)
                except MailError as exc:
                    wait = self.backoff.delay(row.attempts + 1, exc.permanent)
                    await outbox.mark_retry(conn, [row.id], str(exc), self.clock() + wait)
                    logger.error("alert %d not sent (attempt %d): %s", row.id, row.attempts + 1, exc)
                    result.failed += 1
                    result.error = str(exc)
                    if exc.connection:
                        break
                    continue
                note = "; ".join(f"refused {a}: {why}" for a, why in refused.items())
                await outbox.mark_sent(conn, row.id, self.clock(), note)
                if note:
                    logger.error("alert %d sent, but %s", row.id, note)
                result.sent += 1
        finally:
            await session.close()
        if result.sent:
            logger.info("%d alert email(s) sent", result.sent)
        return result
