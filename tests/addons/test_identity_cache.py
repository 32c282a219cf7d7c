"""Identities kept per client connection: reused while nothing they depend on changes, never stale."""
from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import proxy.engine
from config.loader import DEFAULT_CONFIG, load_settings
from proxy import register
from proxy.db import open_db
from proxy.engine import Engine
from proxy.identity import IdentityCache
from proxy.policy import Identity, Override
from proxy.register import Device, RegisterSnapshot, User
from tests.support.school import start_school

LONDON = ZoneInfo("Europe/London")
MONDAY = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LONDON).astimezone(dt.UTC)
LAPTOP = "10.20.3.11"     # the teacher's single-user laptop in the demo school


def snapshot(status: str = "active", until: dt.date | None = None) -> RegisterSnapshot:
    user = User("teacher", "A Teacher", "staff", "staff", status=status, status_until=until)
    laptop = Device("teacher-laptop", None, LAPTOP, "school_single_user", assigned_user="teacher")
    return RegisterSnapshot({"teacher": user}, {laptop.name: laptop})


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    engine = Engine(load_settings(DEFAULT_CONFIG), register=snapshot())
    engine.calls = 0   # type: ignore[attr-defined]
    real = proxy.engine.identify

    def counting(*args: object, **kwargs: object) -> Identity:
        engine.calls += 1   # type: ignore[attr-defined]
        return real(*args, **kwargs)   # type: ignore[arg-type]

    monkeypatch.setattr(proxy.engine, "identify", counting)
    return engine


def test_one_connection_is_identified_once_per_login(engine: Engine) -> None:
    first = engine.identify(LAPTOP, None, MONDAY, conn="c1")
    assert first.user == "teacher" and first.source == "assigned"
    assert engine.identify(LAPTOP, None, MONDAY + dt.timedelta(minutes=5), conn="c1") is first
    assert engine.calls == 1   # type: ignore[attr-defined]
    other = engine.identify(LAPTOP, "head", MONDAY, conn="c1")    # a login on the same connection
    assert other.user == "head" and other.source == "login"
    assert engine.identify(LAPTOP, None, MONDAY, conn="c2") is not first   # another connection
    assert engine.calls == 3   # type: ignore[attr-defined]
    assert engine.identify(LAPTOP, None, MONDAY) is not first            # no connection: never kept
    engine.forget_connection("c1")
    assert engine.identify(LAPTOP, None, MONDAY, conn="c1") == first
    assert engine.calls == 5   # type: ignore[attr-defined]


def test_a_reload_that_changes_nothing_keeps_them_and_a_change_does_not(engine: Engine) -> None:
    first = engine.identify(LAPTOP, None, MONDAY, conn="c1")
    generation = engine.generation
    engine.register = snapshot()                 # what Runtime.refresh does every few seconds
    engine.arp = {}
    engine.overrides = ()
    assert engine.generation == generation
    assert engine.identify(LAPTOP, None, MONDAY, conn="c1") is first
    engine.register = snapshot("banned")         # the teacher banned: the open connection sees it
    assert engine.generation == generation + 1
    assert engine.identify(LAPTOP, None, MONDAY, conn="c1").user_state == "banned"
    engine.arp = {"10.20.3.12": "aa:bb:cc:dd:ee:ff"}
    engine.overrides = (Override(1, "ks2", MONDAY, MONDAY + dt.timedelta(hours=1), category="games"),)
    engine.settings = replace(engine.settings)
    assert engine.generation == generation + 4
    assert engine.calls == 2   # type: ignore[attr-defined]
    engine.identify(LAPTOP, None, MONDAY, conn="c1")
    assert engine.calls == 3   # type: ignore[attr-defined]


def test_the_date_is_part_of_it_so_a_ban_ends_on_time(engine: Engine) -> None:
    last_day = dt.date(2026, 11, 23)
    engine.register = snapshot("banned", until=last_day)
    evening = dt.datetime(2026, 11, 23, 23, 59, 59, tzinfo=LONDON).astimezone(dt.UTC)
    assert engine.identify(LAPTOP, None, evening, conn="c1").user_state == "banned"
    assert engine.identify(LAPTOP, None, evening + dt.timedelta(seconds=1), conn="c1").user_state == "active"


def test_the_school_date_is_the_local_one_across_midnight_and_clock_changes() -> None:
    engine = Engine(load_settings(DEFAULT_CONFIG))
    rnd = random.Random(7)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    moments = sorted(start + dt.timedelta(seconds=rnd.randrange(0, 366 * 86400)) for _ in range(3000))
    for day in ("2026-03-29", "2026-10-25"):      # both of London's changes, to the minute around them
        d = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        moments += [d + dt.timedelta(minutes=m) for m in range(-90, 180)]
    moments += [m.astimezone(LONDON) for m in moments[:200]]   # any aware time zone
    for at in moments:
        assert engine.local_date(at) == at.astimezone(LONDON).date(), at


def test_the_cache_forgets_the_oldest_connections_first() -> None:
    cache = IdentityCache(limit=2)
    who = Identity(client_ip="10.20.2.5", known=True, group="ks2")
    for conn in ("a", "b", "c"):
        cache.put(conn, None, 1, who)
    assert len(cache) == 2 and cache.get("a", None, 1) is None and cache.get("c", None, 1) is who
    assert cache.get("c", None, 2) is None      # another key (generation, date, address): a miss


async def test_through_the_real_proxy_a_ban_reaches_an_open_connection(tmp_path: Path) -> None:
    school = await start_school(tmp_path)
    try:
        c = school.client("127.0.4.21")     # y3.pupil's loaned laptop, one keep-alive connection
        assert (await c.get("http://example.org/hello.html")).status_code == 200
        assert len(school.runtime.engine.identities) == 1
        conn = await open_db(school.ctx.db_path)
        await register.ban(conn, "y3.pupil", None, by="test", reason="misuse incident")
        await conn.close()
        await school.runtime.refresh()
        r = await c.get("http://example.org/hello.html")
        assert r.status_code == 403 and r.headers["x-schoolgate-rule"] == "register.banned"
        await c.aclose()
        for _ in range(100):                 # the proxy sees the client go and forgets it
            if len(school.runtime.engine.identities) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(school.runtime.engine.identities) == 0
    finally:
        await school.close()
