"""Grouping into one email with a count, the hourly cap with its summary, and digest timing (injected clock)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.decision import Page
from tests.alerts.helpers import Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import SmtpServer

ADULT = "http://pornhub.com/"


def _db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "db.sqlite3")


async def test_repeated_hits_of_one_user_become_one_email_then_one_follow_up(tmp_path: Path, smtp: SmtpServer,
                                                                            clock: Clock) -> None:
    svc = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)   # window: 10 minutes
    await svc.open()
    try:
        for i in range(5):
            svc.submit(evaluation(), f"{ADULT}v/{i}")
        assert (await svc.run_once()).sent == 1
        [first] = await smtp.wait_for(1)
        assert first.subject == "[Schoolgate] IMMEDIATE: adult content - ks2 (5 times)"
        assert "Count:      5 attempts" in first.text
        assert all(f"{ADULT}v/{i}" in first.text for i in range(5))

        clock.advance(minutes=2)
        for i in range(3):
            svc.submit(evaluation(), f"{ADULT}w/{i}")
        svc.submit(evaluation(user="y5.other"), ADULT)     # someone else: an email of its own, now
        assert (await svc.run_once()).sent == 1
        await smtp.wait_for(2)
        assert "y5.other" in smtp.received[1].text

        clock.advance(minutes=7)                           # 9 minutes after the first email: still waiting
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=1, seconds=1)
        assert (await svc.run_once()).sent == 1
        await smtp.wait_for(3)
        follow = smtp.received[2]
        assert follow.subject == "[Schoolgate] IMMEDIATE: adult content - ks2 (follow-up: 3 more)"
        assert "y3.pupil" in follow.text and f"{ADULT}w/2" in follow.text
        assert "Monday 23 November 2026, 10:06" in follow.text
        clock.advance(minutes=30)
        assert (await svc.run_once()).sent == 0
    finally:
        await svc.stop()
    db = _db(tmp_path)
    # one incident for y3.pupil holding all 8 hits, one for y5.other
    assert db.execute("SELECT user_name, hits FROM incidents ORDER BY id").fetchall() == [("y3.pupil", 8),
                                                                                          ("y5.other", 1)]
    assert db.execute("SELECT COUNT(*) FROM alert_hits WHERE outbox_id IS NULL").fetchone() == (0,)


async def test_hourly_cap_sends_a_summary_and_loses_nothing(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    svc = service(demo_settings(smtp.port, max_emails_per_hour=3), tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        for n in range(10):
            svc.submit(evaluation(user=f"pupil{n:02d}"), ADULT)
        assert (await svc.run_once()).sent == 4             # 3 alerts + 1 summary
        got = await smtp.wait_for(4)
        summary = [r for r in got if "summary" in r.subject]
        assert len(summary) == 1
        assert summary[0].subject == "[Schoolgate] IMMEDIATE: summary of 7 more flagged hits (7 people or devices)"
        for n in range(3, 10):
            assert f"pupil{n:02d}" in summary[0].text
        assert "INC-20261123-" in summary[0].text

        clock.advance(minutes=1)                            # more during the storm: held for the next summary
        for n in range(10, 15):
            svc.submit(evaluation(user=f"pupil{n:02d}"), ADULT)
        svc.submit(evaluation("http://x.test/", cats=("iwf",), rule="illegal_tier", page=Page.ILLEGAL,
                              user="pupil99"), "http://x.test/")
        assert (await svc.run_once()).sent == 1             # the illegal tier is never held by the cap
        await smtp.wait_for(5)
        assert "illegal content" in smtp.received[4].subject
        clock.advance(minutes=9, seconds=1)
        assert (await svc.run_once()).sent == 1
        await smtp.wait_for(6)
        assert "summary of 5 more flagged hits" in smtp.received[5].subject
    finally:
        await svc.stop()
    db = _db(tmp_path)
    assert db.execute("SELECT COUNT(*), SUM(outbox_id IS NULL) FROM alert_hits").fetchone() == (16, 0)
    assert db.execute("SELECT COUNT(*), SUM(hits) FROM incidents").fetchone() == (16, 16)


async def test_digest_goes_at_the_top_of_the_hour(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    s = demo_settings(smtp.port, digest_recipients=("dsl@demo-primary.example",))
    svc = service(s, tmp_path / "db.sqlite3", clock)                       # 10:04
    await svc.open()
    try:
        for _ in range(3):
            svc.submit(evaluation("http://hack.example/", cats=("hacking",), severity="digest"),
                       "http://hack.example/")
        svc.submit(evaluation("http://203.0.113.9/", cats=("bare-ip",), rule="bare_ip", severity="digest",
                              user="y4.pupil"), "http://203.0.113.9/")
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=55)                                          # 10:59
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=1)                                           # 11:00
        assert (await svc.run_once()).sent == 1
        [digest] = await smtp.wait_for(1)
        assert digest.recipients == ["dsl@demo-primary.example"]
        assert digest.subject == "[Schoolgate] DIGEST: 4 flagged hits, Monday 23 November 2026, 10:04 to 11:00"
        assert "3 x breaking into computers" in digest.text and "y3.pupil" in digest.text
        assert "1 x a web address made only of numbers" in digest.text
        assert digest.message["Importance"] is None
        clock.advance(hours=2)
        assert (await svc.run_once()).sent == 0
    finally:
        await svc.stop()


async def test_daily_digest_goes_at_the_end_of_the_school_day(tmp_path: Path, smtp: SmtpServer,
                                                              clock: Clock) -> None:
    svc = service(demo_settings(smtp.port, digest_every="daily"), tmp_path / "db.sqlite3", clock)   # 10:04
    await svc.open()
    try:
        svc.submit(evaluation("http://hack.example/", cats=("hacking",), severity="digest"), "http://hack.example/")
        clock.advance(hours=5, minutes=25)                                 # 15:29
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=1)                                           # 15:30, the end of the school day
        svc.submit(evaluation("http://ddos.example/", cats=("ddos",), severity="digest"), "http://ddos.example/")
        assert (await svc.run_once()).sent == 1
        [digest] = await smtp.wait_for(1)
        assert "1 flagged hit," in digest.subject and "breaking into computers" in digest.text
        assert "attacking websites" not in digest.text                     # 15:30's hit waits for tomorrow
        clock.advance(hours=23, minutes=59)
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=1)
        assert (await svc.run_once()).sent == 1
        await smtp.wait_for(2)
        assert "attacking websites" in smtp.received[1].text
    finally:
        await svc.stop()


async def test_an_idle_pass_never_takes_the_write_lock(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    """With no hit waiting, a pass only reads: another writer holding the lock does not delay or fail it."""
    path = tmp_path / "db.sqlite3"
    svc = service(demo_settings(smtp.port), path, clock)
    await svc.open()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        await svc.conn.execute("PRAGMA busy_timeout = 50")
        holder.execute("BEGIN IMMEDIATE")                   # the visit writer, in the middle of a batch
        assert (await svc.run_once()).sent == 0             # would raise "database is locked" if it wrote
        svc.submit(evaluation(), ADULT)                     # a hit: this pass must write, and waits its turn
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await svc.run_once()
        holder.execute("COMMIT")
        assert (await svc.run_once()).sent == 1             # the hit was kept in memory, and is sent now
        await smtp.wait_for(1)
    finally:
        holder.close()
        await svc.stop()


async def test_passes_started_together_take_turns_and_send_each_email_once(tmp_path: Path, smtp: SmtpServer,
                                                                           clock: Clock) -> None:
    """The loop's pass and a caller's (a test, `stop()`) share one connection: run at once, they
    would nest transactions on it ("cannot start a transaction within a transaction", seen in CI)
    or join each other's.  Each pass is held open across awaits here; none may overlap another."""
    import asyncio

    svc = service(demo_settings(smtp.port), tmp_path / "db.sqlite3", clock)
    await svc.open()
    running, most = 0, 0
    compose = svc.composer.compose

    async def slow_compose(conn, now):  # type: ignore[no-untyped-def]
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.02)
            return await compose(conn, now)
        finally:
            running -= 1

    svc.composer.compose = slow_compose  # type: ignore[method-assign]
    try:
        for round_ in range(3):
            for i in range(4):
                svc.submit(evaluation(user=f"y{round_}.p{i}"), f"{ADULT}{round_}/{i}")
            results = await asyncio.gather(*(svc.run_once() for _ in range(4)))
            assert sum(r.sent for r in results) == 4
        await smtp.wait_for(12)
        assert len(smtp.received) == 12
        assert most == 1
    finally:
        await svc.stop()
    assert _db(tmp_path).execute("SELECT COUNT(*) FROM alert_hits WHERE outbox_id IS NULL").fetchone() == (0,)
