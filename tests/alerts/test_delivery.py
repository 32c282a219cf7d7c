"""Delivery: exactly once across an SMTP outage and a restart; TLS, login and refusals in words."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from alerts import outbox
from alerts.smtp import SmtpMailer, build_message
from tests.alerts.helpers import Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import SmtpServer, self_signed

ADULT = "http://pornhub.com/"
PASSWORD = {"SCHOOLGATE_SMTP_PASSWORD": "s3cret"}


def _rows(tmp_path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    return db.execute("SELECT id, status, attempts, last_error, next_attempt_at, sent_at FROM alert_outbox "
                      "ORDER BY id").fetchall()


async def test_outage_then_recovery_delivers_each_alert_exactly_once(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer()
    await smtp.start()
    port = smtp.port
    await smtp.stop()                                     # the mail server is down
    svc = service(demo_settings(port), tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        for user in ("a.pupil", "b.pupil", "c.pupil"):
            svc.submit(evaluation(user=user), ADULT)
        result = await svc.run_once()
        assert (result.sent, result.failed) == (0, 3)
        rows = _rows(tmp_path)
        assert [r[1] for r in rows] == ["pending"] * 3
        assert all("connection refused by 127.0.0.1:" in str(r[3]) for r in rows)
        assert all(r[4] == "2026-11-23T10:04:05+00:00" for r in rows)      # next try after 5 s
        clock.advance(seconds=5)
        assert (await svc.run_once()).failed == 3                           # still down: back-off doubles
        assert _rows(tmp_path)[0][4] == "2026-11-23T10:04:15+00:00"

        smtp.port = port
        await smtp.start()                                                  # back on the same port
        clock.advance(seconds=3)
        assert (await svc.run_once()).sent == 0                             # not due yet
        clock.advance(seconds=7)
        assert (await svc.run_once()).sent == 3
        for _ in range(3):
            clock.advance(minutes=1)
            assert (await svc.run_once()).sent == 0
    finally:
        await svc.stop()
        await smtp.stop()
    assert len(smtp.received) == 3
    assert len({r.message["Message-ID"] for r in smtp.received}) == 3
    assert sorted(r.text.split("User:")[1].split(",")[0].strip() for r in smtp.received) == [
        "a.pupil", "b.pupil", "c.pupil"]
    assert [r[1] for r in _rows(tmp_path)] == ["sent"] * 3


async def test_pending_alerts_are_sent_after_a_restart(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer()
    await smtp.start()
    port = smtp.port
    await smtp.stop()
    first = service(demo_settings(port), tmp_path / "db.sqlite3", clock)
    await first.open()
    first.submit(evaluation(), ADULT)
    first.submit(evaluation("http://nordvpn.com/", cats=("vpn",), user="y4.pupil"), "http://nordvpn.com/")
    await first.stop()                                    # stop writes and tries once: the server is down
    assert [r[1] for r in _rows(tmp_path)] == ["pending", "pending"]

    smtp.port = port
    await smtp.start()
    clock.advance(minutes=1)
    second = service(demo_settings(port), tmp_path / "db.sqlite3", clock)   # a new process, same database
    await second.open()
    try:
        assert (await second.run_once()).sent == 2
        clock.advance(minutes=15)
        assert (await second.run_once()).sent == 0
    finally:
        await second.stop()
        await smtp.stop()
    assert sorted(r.subject for r in smtp.received) == [
        "[Schoolgate] IMMEDIATE: adult content - ks2",
        "[Schoolgate] IMMEDIATE: getting round the filter: sites that hide where you are going - ks2"]


async def test_crash_between_accept_and_mark_resends_the_same_message_id(tmp_path: Path, smtp: SmtpServer,
                                                                        clock: Clock) -> None:
    """The one duplicate window: documented, and the copy is recognisably the same message."""
    svc = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)
    await svc.open()
    svc.submit(evaluation(), ADULT)
    await svc.flush()
    await svc.compose()
    [row] = await outbox.due(svc.conn, clock())
    await outbox.mark_attempt(svc.conn, row.id, clock())
    session = await svc.mailer.open()                     # the server accepts it, then the process "dies"
    await session.send(build_message(sender="schoolgate@demo-primary.example", recipients=row.recipients,
                                     subject=row.subject, text=row.body_text, html=row.body_html,
                                     message_id=row.message_id, date=0, urgent=True),
                       "schoolgate@demo-primary.example", row.recipients)
    await session.close()
    await svc.conn.close()
    svc._conn = None
    again = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)
    await again.open()
    try:
        assert (await again.run_once()).sent == 1         # never lost: sent again on restart
    finally:
        await again.stop()
    assert len(smtp.received) == 2
    assert smtp.received[0].message["Message-ID"] == smtp.received[1].message["Message-ID"] == row.message_id


async def test_starttls_with_login(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer(tls="starttls", cert=self_signed(tmp_path), login=("schoolgate", "s3cret"))
    await smtp.start()
    s = demo_settings(smtp.port, security="starttls", username="schoolgate")
    mailer = SmtpMailer(s.smtp, ssl_context=smtp.client_context(), environ=PASSWORD)
    svc = service(s, tmp_path / "db.sqlite3", clock, mailer=mailer)
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        assert (await svc.run_once()).sent == 1
    finally:
        await svc.stop()
        await smtp.stop()
    assert smtp.received[0].subject == "[Schoolgate] IMMEDIATE: adult content - ks2"


async def test_implicit_tls_with_login_and_a_wrong_password(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer(tls="tls", cert=self_signed(tmp_path), login=("schoolgate", "s3cret"))
    await smtp.start()
    s = demo_settings(smtp.port, security="tls", username="schoolgate")
    wrong = SmtpMailer(s.smtp, ssl_context=smtp.client_context(), environ={"SCHOOLGATE_SMTP_PASSWORD": "nope"})
    svc = service(s, tmp_path / "db.sqlite3", clock, mailer=wrong)
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        assert (await svc.run_once()).sent == 0
        assert "login refused for user 'schoolgate' at 127.0.0.1:" in str(_rows(tmp_path)[0][3])
    finally:
        await svc.stop()
    right = service(s, tmp_path / "db.sqlite3", clock,
                    mailer=SmtpMailer(s.smtp, ssl_context=smtp.client_context(), environ=PASSWORD))
    await right.open()
    try:
        clock.advance(minutes=1)
        assert (await right.run_once()).sent == 1
    finally:
        await right.stop()
        await smtp.stop()
    assert len(smtp.received) == 1


async def test_untrusted_certificate_is_a_tls_error(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer(tls="tls", cert=self_signed(tmp_path))
    await smtp.start()
    s = demo_settings(smtp.port, security="tls")
    svc = service(s, tmp_path / "db.sqlite3", clock)      # the system's CAs do not know this certificate
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        assert (await svc.run_once()).sent == 0
    finally:
        await svc.stop()
        await smtp.stop()
    assert "TLS failed with 127.0.0.1:" in str(_rows(tmp_path)[0][3])
    assert "not trusted" in str(_rows(tmp_path)[0][3])


async def test_a_refused_recipient_is_recorded(tmp_path: Path, clock: Clock) -> None:
    smtp = SmtpServer(refuse={"head@demo-primary.example"})
    await smtp.start()
    svc = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        assert (await svc.run_once()).sent == 1
    finally:
        await svc.stop()
        await smtp.stop()
    assert smtp.received[0].recipients == ["esafety@demo-primary.example"]
    [row] = _rows(tmp_path)
    assert row[1] == "sent" and "refused head@demo-primary.example: 550" in str(row[3])
