"""SMTP delivery with the standard library's `smtplib`, in a worker thread.

`SmtpMailer(settings.smtp)` opens a `MailSession` (connect, STARTTLS or
implicit TLS, login) and sends messages over it; every failure comes back as
a `MailError` whose message says in plain words what failed: connection
refused, no answer, TLS, login, sender or recipient refused.  The TLS context
(the system's trusted CAs by default) and the environment the password is read
from are injected, so tests can use a throwaway certificate.  stdlib smtplib is
used on purpose: no new dependency, and sending is a few calls per alert.
"""
from __future__ import annotations

import asyncio
import email.policy
import email.utils
import os
import smtplib
import socket
import ssl
import logging
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Protocol

from config.schema import SmtpSettings

logger = logging.getLogger(__name__)

# RFC 5322 allows 998 characters a line; the default 78 folds long subjects oddly ("Subject:\n [Schoolgate]...").
_POLICY = email.policy.SMTP.clone(max_line_length=998)


class MailError(Exception):
    """A send that failed; `connection` = the server could not be used at all."""

    def __init__(self, message: str, *, connection: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.connection = connection
        self.permanent = permanent


class MailSession(Protocol):
    async def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, str]: ...

    async def close(self) -> None: ...


class Mailer(Protocol):
    def describe(self) -> str: ...

    async def open(self) -> MailSession: ...


def load_password(smtp: SmtpSettings, environ: Mapping[str, str] | None = None) -> str:
    """The SMTP password from `password_file`, else the environment variable `password_env`."""
    if smtp.password_file is not None:
        try:
            return smtp.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MailError(f"cannot read the SMTP password file {smtp.password_file}: {exc.strerror}",
                            connection=True) from None
    env = os.environ if environ is None else environ
    value = env.get(smtp.password_env, "") if smtp.password_env else ""
    if not value:
        raise MailError(f"no SMTP password: set the environment variable {smtp.password_env or '(none named)'} "
                        "or password_file in [smtp]", connection=True)
    return value


def explain(exc: BaseException, smtp: SmtpSettings) -> MailError:
    """A failure in words a technician can act on."""
    where = f"{smtp.host}:{smtp.port}"
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError(f"TLS failed with {where}: the server's certificate is not trusted "
                         f"({exc.verify_message or exc.reason})", connection=True)
    if isinstance(exc, ssl.SSLError):
        hint = " (is security right? port 465 usually means tls, 587 starttls)" if "VERSION" in str(
            exc.reason or "").upper() else ""
        return MailError(f"TLS failed with {where}: {exc.reason or exc}{hint}", connection=True)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailError(f"login refused for user {smtp.username!r} at {where}: {exc.smtp_code} "
                         f"{_text(exc.smtp_error)}", connection=True, permanent=True)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(f"{where} does not support what the config asks for: {exc} (check security and "
                         "username in [smtp])", connection=True, permanent=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{addr} ({code} {_text(msg)})" for addr, (code, msg) in exc.recipients.items())
        return MailError(f"recipient refused by {where}: {refused}", permanent=True)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return MailError(f"sender {exc.sender} refused by {where}: {exc.smtp_code} {_text(exc.smtp_error)}",
                         permanent=True)
    if isinstance(exc, smtplib.SMTPDataError):
        return MailError(f"message refused by {where}: {exc.smtp_code} {_text(exc.smtp_error)}",
                         permanent=exc.smtp_code >= 500)
    if isinstance(exc, TimeoutError) or (isinstance(exc, smtplib.SMTPServerDisconnected)
                                         and isinstance(exc.__context__, TimeoutError)):
        # smtplib turns a reply that never came into "Connection unexpectedly closed: timed out": the server
        # did not close anything, it stopped answering
        return MailError(f"no answer from {where} within {smtp.timeout_s:g} s (timed out)", connection=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailError(f"{where} closed the connection: {exc}", connection=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return MailError(f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}", connection=True,
                         permanent=exc.smtp_code >= 500)
    if isinstance(exc, ConnectionRefusedError):
        return MailError(f"connection refused by {where}: is the mail server running, and are host and port "
                         "right?", connection=True)
    if isinstance(exc, socket.gaierror):
        return MailError(f"cannot find the mail server {smtp.host!r}: {exc.strerror}", connection=True)
    if isinstance(exc, OSError):
        return MailError(f"cannot reach {where}: {exc.strerror or exc}", connection=True)
    return MailError(f"sending through {where} failed: {type(exc).__name__}: {exc}")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class SmtpSession:
    def __init__(self, client: smtplib.SMTP, smtp: SmtpSettings) -> None:
        self.client = client
        self.smtp = smtp

    async def send(self, message: EmailMessage, sender: str, recipients: Sequence[str]) -> dict[str, str]:
        """Send one message; returns the recipients refused (when some were accepted)."""
        try:
            refused = await asyncio.to_thread(self.client.send_message, message, sender, list(recipients))
        except Exception as exc:  # noqa: BLE001 - every failure is reported in words
            raise explain(exc, self.smtp) from exc
        return {addr: f"{code} {_text(msg)}" for addr, (code, msg) in refused.items()}

    async def close(self) -> None:
        def quit_quietly() -> None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()

        await asyncio.to_thread(quit_quietly)


class SmtpMailer:
    def __init__(self, smtp: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None,
                 environ: Mapping[str, str] | None = None, local_hostname: str | None = None) -> None:
        self.smtp = smtp
        self.ssl_context = ssl_context
        self.environ = environ
        self.local_hostname = local_hostname

    def describe(self) -> str:
        login = f", login {self.smtp.username}" if self.smtp.username else ""
        return f"{self.smtp.host}:{self.smtp.port} (security {self.smtp.security}{login})"

    async def open(self) -> SmtpSession:
        try:
            client = await asyncio.to_thread(self._connect)
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, self.smtp) from exc
        return SmtpSession(client, self.smtp)

    def _connect(self) -> smtplib.SMTP:
        s = self.smtp
        context = self.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if s.security == "tls":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context,
                                      local_hostname=self.local_hostname)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s, local_hostname=self.local_hostname)
        try:
            client.ehlo()
            if s.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailError(f"{s.host}:{s.port} does not offer STARTTLS (security = \"starttls\")",
                                    connection=True, permanent=True)
                client.starttls(context=context)
                client.ehlo()
            if s.username:
                client.login(s.username, load_password(s, self.environ))
        except BaseException:
            client.close()
            raise
        return client


def build_message(*, sender: str, recipients: Sequence[str], subject: str, text: str, html: str,
                  message_id: str, date: float, urgent: bool) -> EmailMessage:
    """The email for one outbox row, with its stable Message-ID."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(date, localtime=False)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if urgent:
        msg["Importance"] = "high"
        msg["X-Priority"] = "1"
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    return msg
