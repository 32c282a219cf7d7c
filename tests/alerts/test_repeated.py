"""The repeated-blocks rule (N blocked attempts by one user in M minutes) as emails received on a real SMTP server.

A summer date, so the school's time (BST) differs from UTC: the emails must say 14:33, not 13:33.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from config.schema import RepeatRule
from tests.alerts.helpers import LONDON, Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import SmtpServer

N, M = 10, 5                                               # the demo school's rule: 10 in 5 minutes
GAMES = evaluation("http://miniclip.com/", cats=("games",), severity="", rule="category.school_hours")
SUMMER = dt.datetime(2026, 6, 15, 14, 30, tzinfo=LONDON)   # Monday, BST: 13:30 UTC
WORDS = f"repeated blocked attempts ({N} blocked attempts within {M} minutes)"


def _attempts(svc, clock: Clock, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    """`count` blocked page requests by y3.pupil, one every 20 seconds (all within M minutes)."""
    for i in range(start, start + count):
        svc.submit(GAMES, f"http://miniclip.com/game{i}", at=clock.advance(seconds=20))


def _incidents(tmp_path: Path) -> list[tuple[str, str, int]]:
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    try:
        return db.execute("SELECT kind, user_name, hits FROM incidents ORDER BY id").fetchall()
    finally:
        db.close()


async def test_n_blocked_attempts_make_an_immediate_email_and_n_minus_1_none(tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(SUMMER)
    s = demo_settings(smtp.port, repeated=RepeatRule(N, M, "immediate"))
    svc = service(s, tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        _attempts(svc, clock, N - 1)                                   # 14:30:20 .. 14:33:00
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=1)
        assert (await svc.run_once()).sent == 0
        assert smtp.received == [] and _incidents(tmp_path) == []
        clock.advance(seconds=-60)
        _attempts(svc, clock, 1, start=N - 1)                          # the Nth, 14:33:20
        assert (await svc.run_once()).sent == 1
        [got] = await smtp.wait_for(1)
    finally:
        await svc.stop()
    assert sorted(got.recipients) == ["esafety@demo-primary.example", "head@demo-primary.example"]
    assert got.subject == f"[Schoolgate] IMMEDIATE: {WORDS} - ks2"
    assert got.message["Importance"] == "high"
    text = got.text
    for expected in ("When:       Monday 15 June 2026, 14:33", "User:       y3.pupil, pupil", "Group:      ks2",
                     "Device:     ks2-laptop-07 (school device shared by pupils)", "IP address: 10.20.2.17",
                     f"Category:   {WORDS}; list: blocked attempts",
                     f"Decision:   blocked by rule category.school_hours: {N} blocked attempts within {M} minutes",
                     f"Count:      {N} attempts", "Incident:   INC-20260615-0001", "http://miniclip.com/game9",
                     "schoolgate incidents record INC-20260615-0001",
                     "The policy's suggested actions (Unauthorised use of non-educational sites during lessons)",
                     "Refer to class teacher"):
        assert expected in text, expected
    assert "13:33" not in text and "13:3" not in got.subject             # never the UTC time
    html = got.html
    for expected in ("<td>Monday 15 June 2026, 14:33</td>", "<td>y3.pupil, pupil</td>", "<td>ks2</td>",
                     "<td>ks2-laptop-07 (school device shared by pupils)</td>", "<td>10.20.2.17</td>",
                     f"<td>{N} attempts</td>", "<td>INC-20260615-0001</td>", "category.school_hours"):
        assert expected in html, expected
    assert _incidents(tmp_path) == [("repeated", "y3.pupil", N)]            # the incident counts the attempts


async def test_with_the_demo_digest_severity_they_go_in_the_digest_and_open_no_incident(
        tmp_path: Path, smtp: SmtpServer) -> None:
    clock = Clock(SUMMER)
    s = demo_settings(smtp.port)
    assert s.alerts.repeated == RepeatRule(N, M, "digest")
    svc = service(s, tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        _attempts(svc, clock, N - 1)                                   # N - 1: nothing, even at digest time
        clock.advance(minutes=27)                                      # 15:00
        assert (await svc.run_once()).sent == 0
        clock.advance(minutes=10)                                      # 15:10: now N within M minutes
        _attempts(svc, clock, N, start=100)                            # the Nth at 15:13:20
        assert (await svc.run_once()).sent == 0                        # digest: not at once
        clock.advance(minutes=47)                                      # 16:00
        assert (await svc.run_once()).sent == 1
        [digest] = await smtp.wait_for(1)
    finally:
        await svc.stop()
    assert digest.subject == f"[Schoolgate] DIGEST: {N} flagged hits, Monday 15 June 2026, 15:13 to 16:00"
    assert digest.message["Importance"] is None
    text = digest.text
    for expected in (f"{N} x {WORDS}", "y3.pupil, pupil, group ks2, ks2-laptop-07 (school device shared by pupils)",
                     "Monday 15 June 2026, 15:13", "http://miniclip.com/game109"):
        assert expected in text, expected
    assert "INC-" not in text and _incidents(tmp_path) == []
