"""Guessing is slow: the review form's rate limit, and proxy login failures locked out per client.

Both through the real proxy from loopback clients (each address a device):
the sixth review request in ten minutes from one client gets 429 while
another client is unaffected; wrong proxy passwords lock that client out
(new connections refused, requests on an open connection killed, even with
the right password) until the window passes on the runtime's clock, with one
log line per lock-out and other clients unaffected.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons
from passlib.apache import HtpasswdFile

from addons import RuntimeRef
from addons.loginguard import LoginGuard
from tests.security import rawhttp
from tests.support.school import School, start_school

TEACHER, TEACHER_PW = "teacher", "Chalk&Board-42"
FAILURES, WINDOW_MIN = 4, 10


def _addr(school: School) -> tuple[str, int]:
    addr = school.service.address
    assert addr is not None
    return addr


async def _review(school: School, ip: str, ref: str, token: str) -> int:
    body = urlencode({"reference": ref, "csrf_token": token, "why": "for our Tudor topic"}).encode()
    answer = await rawhttp.send(_addr(school), ip, "POST", "http://schoolgate.local/review", [
        ("Host", "schoolgate.local"), ("Content-Type", "application/x-www-form-urlencoded")], body)
    return answer.status


async def test_sixth_review_request_in_ten_minutes_gets_429_and_others_are_unaffected(tmp_path: Path) -> None:
    school = await start_school(tmp_path)
    try:
        forms = {}
        for ip in ("127.0.2.31", "127.0.2.32"):
            page = await rawhttp.send(_addr(school), ip, "GET", "http://www.bet365.com/", [("Host", "www.bet365.com")])
            assert page.status == 403
            ref = re.search(r'name="reference" value="([^"]+)"', page.text)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert ref and token
            forms[ip] = (ref.group(1), token.group(1))
        first = [await _review(school, "127.0.2.31", *forms["127.0.2.31"]) for _ in range(6)]
        assert first == [200] * 5 + [429]
        assert await _review(school, "127.0.2.32", *forms["127.0.2.32"]) == 200       # another device
        # a forged token is refused (403) before it is stored
        assert await _review(school, "127.0.2.32", forms["127.0.2.32"][0], "0" * 32) == 403
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(school.ctx.db_path)) as db:
            assert db.execute("SELECT COUNT(*) FROM review_requests").fetchone() == (6,)
    finally:
        await school.close()


async def _school_with_logins(tmp_path: Path) -> School:
    ht = HtpasswdFile(str(tmp_path / "users.htpasswd"), new=True)
    ht.set_password(TEACHER, TEACHER_PW)
    ht.save()
    school = await start_school(tmp_path, replace={
        'auth = "none"': f'auth = "htpasswd"\nhtpasswd = "{tmp_path / "users.htpasswd"}"'})
    assert school.service.master is not None
    school.service.master.options.update(schoolgate_login_failures=FAILURES, schoolgate_login_window=WINDOW_MIN)
    return school


async def _get(school: School, ip: str, password: str | None) -> int:
    headers = [("Host", "example.org")]
    if password is not None:
        headers.append(("Proxy-Authorization", rawhttp.basic(TEACHER, password)))
    return (await rawhttp.send(_addr(school), ip, "GET", "http://example.org/", headers)).status


async def test_wrong_passwords_lock_the_client_out_for_the_window(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    school = await _school_with_logins(tmp_path)
    try:
        attacker, neighbour = "127.0.2.41", "127.0.2.42"
        assert await _get(school, attacker, None) == 407          # the challenge: not a failure
        assert await _get(school, attacker, None) == 407
        assert await _get(school, attacker, TEACHER_PW) == 200    # so the right password still works
        statuses = [await _get(school, attacker, f"guess-{i}") for i in range(FAILURES)]
        assert statuses == [407] * FAILURES
        assert await _get(school, attacker, TEACHER_PW) == 0      # refused at connect: no answer at all
        assert await _get(school, attacker, "guess-again") == 0
        assert await _get(school, neighbour, TEACHER_PW) == 200   # another device is unaffected
        locks = [r for r in caplog.records if "failed logins from 127.0.2.41" in r.getMessage()]
        assert len(locks) == 1                                     # logged once per lock-out
        assert TEACHER_PW not in caplog.text and "guess-" not in caplog.text
        school.clock.now += dt.timedelta(minutes=WINDOW_MIN - 1)
        assert await _get(school, attacker, TEACHER_PW) == 0      # still inside the window
        school.clock.now += dt.timedelta(minutes=1, seconds=1)
        assert await _get(school, attacker, TEACHER_PW) == 200    # the window has passed
        assert [await _get(school, attacker, "x") for _ in range(FAILURES - 1)] == [407] * (FAILURES - 1)
        assert await _get(school, attacker, TEACHER_PW) == 200    # old failures do not count again
        assert school.origin.seen and all("proxy-authorization" not in str(s["headers"]).lower()
                                          for s in school.origin.seen)
    finally:
        await school.close()


async def test_requests_on_an_open_connection_are_killed_once_locked(tmp_path: Path) -> None:
    school = await _school_with_logins(tmp_path)
    try:
        conn = await rawhttp.KeepAlive.open(_addr(school), "127.0.2.51")
        try:
            for i in range(FAILURES):
                answer = await conn.get("http://example.org/", [
                    ("Host", "example.org"), ("Proxy-Authorization", rawhttp.basic(TEACHER, f"nope-{i}"))])
                assert answer.status == 407
            answer = await conn.get("http://example.org/", [
                ("Host", "example.org"), ("Proxy-Authorization", rawhttp.basic(TEACHER, TEACHER_PW))])
            assert answer.status == 0, "a locked-out client's request on an open connection was answered"
        finally:
            await conn.close()
        assert school.origin.seen == []
    finally:
        await school.close()


def test_options_are_checked_and_failures_expire() -> None:
    now = [1000.0]
    guard = LoginGuard(RuntimeRef(), clock=lambda: now[0])
    with taddons.context(guard) as tctx:
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(guard, schoolgate_login_failures=0)
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(guard, schoolgate_login_window=0)
        tctx.configure(guard, schoolgate_login_failures=3, schoolgate_login_window=5)
    assert guard.max_failures == 3 and guard.window_s == 300
    guard._failed("10.20.2.5", now[0])
    guard._failed("10.20.2.5", now[0] + 100)
    guard._failed("10.20.2.5", now[0] + 301)    # the first one has left the window: two in it
    assert not guard.locked("10.20.2.5", now[0] + 301)
    guard._failed("10.20.2.5", now[0] + 302)
    assert guard.locked("10.20.2.5", now[0] + 302) and guard.lockouts == 1
    assert guard.locked("10.20.2.5", now[0] + 601) and not guard.locked("10.20.2.5", now[0] + 602)
