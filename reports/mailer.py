"""Emailing a report: the plain-text and HTML parts, through the alerts' SMTP code.

The connection, TLS and login handling and the plain-words errors are the
alerts' (`alerts.smtp`); a report only builds its message.  The Message-ID is
stable for a week's report, so a second copy is recognisable as such.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from email.message import EmailMessage

from alerts.smtp import Mailer, MailError, SmtpMailer, build_message
from config.schema import Settings

logger = logging.getLogger(__name__)

__all__ = ["MailError", "Mailer", "report_message", "send_message", "default_mailer"]


def report_message(settings: Settings, *, label: str, subject: str, text: str, html: str,
                   recipients: Sequence[str], now: dt.datetime) -> EmailMessage:
    sender = settings.alerts.sender
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "schoolgate.invalid"
    digest = hashlib.sha256(f"{settings.school.name}|{label}".encode()).hexdigest()[:16]
    return build_message(sender=sender, recipients=recipients, subject=subject, text=text, html=html,
                         message_id=f"<schoolgate.report.{label}.{digest}@{domain}>", date=now.timestamp(),
                         urgent=False)


def default_mailer(settings: Settings) -> Mailer:
    return SmtpMailer(settings.smtp)


async def send_message(mailer: Mailer, message: EmailMessage, sender: str,
                       recipients: Sequence[str]) -> dict[str, str]:
    """Send one message; raises `MailError` when it was not sent at all, returns the recipients refused
    when it was sent to the others (they are not sent it twice: the caller records them)."""
    if not recipients:
        raise MailError("no recipients for the report: set recipients in [reports] (or [alerts])", permanent=True)
    session = await mailer.open()
    try:
        refused = await session.send(message, sender, recipients)
    finally:
        await session.close()
    if refused:
        logger.warning("report %s: recipients refused: %s", message["Subject"],
                       "; ".join(f"{a} ({why})" for a, why in refused.items()))
    logger.info("report %s emailed to %s", message["Subject"], ", ".join(r for r in recipients if r not in refused))
    return refused
