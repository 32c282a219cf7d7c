"""The mail server is down for a whole (injected-clock) day: alerts wait in the outbox, then go exactly once."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest

from proxy.db import utc_iso
from proxy.runtime import Runtime
from tests.alerts.helpers import Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import SmtpServer
from tests.faults.helpers import free_port, query, scalar, start_school, until


def _fast_alerts(runtime: Runtime) -> None:
    runtime.alerts.tick_s = 0.02


async def test_alerts_survive_a_day_without_smtp_and_are_delivered_once(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    smtp = SmtpServer(port=port)                       # not started: the mail server is down
    school = await start_school(tmp_path, prepare=_fast_alerts, replace={"port = 25": f"port = {port}"})
    db = school.ctx.db_path

    def attempts() -> int:
        return int(scalar(db, "SELECT MIN(attempts) FROM alert_outbox"))

    try:
        for n in range(21, 26):                        # five pupils' laptops, one flagged site each
            assert (await school.client(f"127.0.2.{n}").get("http://pornhub.com/")).status_code == 403
        await until(lambda: scalar(db, "SELECT COUNT(*) FROM alert_outbox") == 5, what="five alerts queued")
        await until(lambda: attempts() >= 1, what="a first delivery attempt")
        start = school.clock.now
        for step in range(1, 25):                      # a day in hourly steps: one more try at each
            before = attempts()
            school.clock.now = start + dt.timedelta(hours=step)
            if step == 10:                             # mid-outage: filtering and alerting go on
                r = await school.client("127.0.2.26").get("http://nordvpn.com/")
                assert r.status_code == 403
                await until(lambda: scalar(db, "SELECT COUNT(*) FROM alert_outbox") == 6, what="a sixth alert")
            await until(lambda b=before, s=step: attempts() > b or s == 10, what=f"a retry at step {step}")
        rows = query(db, "SELECT status, attempts, last_error FROM alert_outbox")
        assert {r[0] for r in rows} == {"pending"}
        assert min(r[1] for r in rows) >= 24 - 10 and max(r[1] for r in rows) >= 24
        assert all("connection refused by 127.0.0.1:" in r[2] for r in rows)
        assert "alert emails waiting" in caplog.text and "is the mail server running" in caplog.text
        assert school.clock.now - start == dt.timedelta(days=1)

        await smtp.start()                             # back, on the same port
        school.clock.now += dt.timedelta(minutes=1)    # the back-off is capped at a minute
        await until(lambda: len(smtp.received) >= 6, what="every alert to arrive")
        await until(lambda: scalar(db, "SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending'") == 0)
        for _ in range(5):                             # later passes (several ticks each) send nothing again
            school.clock.now += dt.timedelta(minutes=15)
            await asyncio.sleep(0.1)
        assert len(smtp.received) == 6
    finally:
        await school.close()
        await smtp.stop()
    assert len(smtp.received) == 6
    ids = [r.message["Message-ID"] for r in smtp.received]
    assert len(set(ids)) == 6
    assert sorted(ids) == sorted(r[0] for r in query(db, "SELECT message_id FROM alert_outbox"))
    assert {r[0] for r in query(db, "SELECT status FROM alert_outbox")} == {"sent"}
    assert "6 alert email(s) sent" in caplog.text
    subjects = sorted(r.subject for r in smtp.received)
    assert subjects.count("[Schoolgate] IMMEDIATE: adult content - ks2") == 5


async def test_a_restart_tries_the_waiting_emails_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """After the mail settings are fixed and the service restarted, alerts do not sit out the old back-off."""
    caplog.set_level(logging.INFO)
    clock = Clock()
    smtp = SmtpServer(port=free_port())
    first = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)
    await first.open()
    first.submit(evaluation(), "http://pornhub.com/")
    for _ in range(6):                                 # six failures: the next try is a minute away
        await first.run_once()
        clock.advance(minutes=2)
    clock.advance(minutes=-2)
    await first.stop()
    [(next_at,)] = query(tmp_path / "db.sqlite3", "SELECT next_attempt_at FROM alert_outbox")
    assert next_at > utc_iso(clock())
    await smtp.start()
    second = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock, tick_s=0.02)
    try:
        await second.start()                           # the clock does not move: only the start makes it due
        await smtp.wait_for(1)
    finally:
        await second.stop()
        await smtp.stop()
    assert "alerts: 1 email(s) left waiting by the previous run: trying them now" in caplog.text
    assert len(smtp.received) == 1
