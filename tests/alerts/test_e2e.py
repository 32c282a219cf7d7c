"""End to end: a pupil's request through the real proxy reaches the E-Safety Leader and the Head by email."""
from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.alerts.smtpserver import SmtpServer
from tests.support.school import School, start_school

LOANED_Y3, KS2_LAPTOP = "127.0.4.21", "127.0.2.21"


@pytest.fixture
async def school(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[School]:
    s = await start_school(tmp_path, replace={"port = 25\n": f"port = {smtp.port}\ntimeout_s = 5\n"})
    try:
        yield s
    finally:
        await s.close()


async def test_flagged_site_emails_day_time_device_and_user(school: School, smtp: SmtpServer) -> None:
    c = school.client(LOANED_Y3)
    r = await c.get("http://pornhub.com/some/video")
    assert r.status_code == 403
    [got] = await smtp.wait_for(1, timeout=10)
    assert sorted(got.recipients) == ["esafety@demo-primary.example", "head@demo-primary.example"]
    assert got.subject == "[Schoolgate] IMMEDIATE: adult content - ks2"
    for expected in ("Monday 23 November 2026, 10:00", "y3.pupil, pupil",
                     "loan-laptop-y3 (school device loaned for home use)", LOANED_Y3,
                     "http://pornhub.com/some/video", "INC-20261123-0001"):
        assert expected in got.text, expected


async def test_illegal_tier_over_https_emails_without_the_address(school: School, smtp: SmtpServer) -> None:
    c = school.client(KS2_LAPTOP)
    r = await c.get("https://iwf-test-entry.test/p/123")
    assert r.status_code in (403, 451)
    [got] = await smtp.wait_for(1, timeout=10)
    assert "illegal content - ks2 - INC-20261123-" in got.subject
    assert "ks2-laptop-01" in got.text and "not logged in" in got.text and KS2_LAPTOP in got.text
    assert "iwf-test-entry" not in got.message.as_string()
    db = sqlite3.connect(school.ctx.db_path)
    stored = [*db.execute("SELECT * FROM alert_hits"), *db.execute("SELECT * FROM alert_outbox"),
              *db.execute("SELECT * FROM incidents"), *db.execute("SELECT * FROM incident_entries")]
    assert stored and "iwf-test-entry" not in "\n".join(str(row) for row in stored)


async def test_unflagged_block_sends_nothing_and_the_visit_still_works(school: School, smtp: SmtpServer) -> None:
    c = school.client(LOANED_Y3)
    assert (await c.get("http://www.amazon.co.uk/")).status_code == 403      # shopping: blocked, not flagged
    assert (await c.get("http://example.org/hello.html")).status_code == 200
    assert (await c.get("http://pornhub.com/")).status_code == 403          # and then one that is
    [got] = await smtp.wait_for(1, timeout=10)
    assert "adult content" in got.subject
    db = sqlite3.connect(school.ctx.db_path)
    assert db.execute("SELECT kind, category FROM alert_hits").fetchall() == [("category", "adult")]
