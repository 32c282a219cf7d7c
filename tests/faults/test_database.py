"""The database under faults: a long reader, an exclusive lock, a full disk.

In every case the proxy keeps filtering (allowed pages arrive, blocked ones get
the block page), no visit is lost without being counted in `meta`, and the
log says what happened.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from proxy.status import check_store
from tests.alerts.smtpserver import SmtpServer
from tests.faults.helpers import burst, free_port, meta, query, quick_writer, scalar, start_school, until, visit_paths


def _urls(tag: str, n: int) -> list[str]:
    """Allowed and blocked (gambling) requests, each with its own path."""
    return [f"http://{'example.com' if i % 3 else 'bet365.com'}/{tag}/{i}" for i in range(n)]


def _check_filtering(urls: list[str], codes: list[int]) -> None:
    for url, code in zip(urls, codes, strict=True):
        assert code == (403 if "bet365" in url else 200), (url, code)


async def test_a_long_reader_blocks_nothing(tmp_path: Path) -> None:
    school = await start_school(tmp_path)
    db = school.ctx.db_path
    reader = sqlite3.connect(db, timeout=10)
    try:
        client = school.client("127.0.2.7")
        reader.execute("BEGIN")
        before = reader.execute("SELECT COUNT(*) FROM visits").fetchone()[0]   # the snapshot is held from here
        urls = _urls("read", 60)
        codes = await burst(client, urls)
        await school.runtime.writer.flush()                  # written while the reader still holds its snapshot
        assert reader.execute("SELECT COUNT(*) FROM visits").fetchone()[0] == before   # it really was held
        assert scalar(db, "SELECT COUNT(*) FROM visits") == before + 60
    finally:
        reader.execute("COMMIT")
        reader.close()
        await school.close()
    _check_filtering(urls, codes)
    assert sorted(p for p in visit_paths(db) if p.startswith("/read/")) == sorted("/" + u.split("/", 3)[3]
                                                                               for u in urls)
    assert meta(db, "visits_dropped") == 0


def _hold_exclusive(db: Path, acquired: threading.Event, release: threading.Event) -> None:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        acquired.set()
        release.wait(30)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def test_an_exclusive_lock_longer_than_the_busy_timeout(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    school = await start_school(tmp_path, prepare=quick_writer)
    db = school.ctx.db_path
    writer = school.runtime.writer
    acquired, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(db, acquired, release))
    try:
        client = school.client("127.0.2.8")
        first = _urls("before", 20)
        _check_filtering(first, await burst(client, first))
        await writer.flush()

        holder.start()
        assert await asyncio.to_thread(acquired.wait, 10)
        locked = _urls("locked", 40)
        codes = await burst(client, locked)                 # filtering goes on while the store is locked
        _check_filtering(locked, codes)
        await writer.flush()                                # returns once the rows are written or given up
        assert writer.stats.dropped_failed == 40
        assert "gave up on" in caplog.text and "database is locked" in caplog.text
        assert "visits not logged" in caplog.text or "counted in meta visits_dropped" in caplog.text
        assert meta(db, "visits_dropped") == 0              # the lock is still held: nothing recorded yet
    finally:
        release.set()
        if holder.is_alive() or holder.ident is not None:
            await asyncio.to_thread(holder.join, 30)

    try:
        await until(lambda: meta(db, "visits_dropped") == 40, what="the drops to reach meta")
        assert "recorded dropped rows in meta" in caplog.text
        after = _urls("after", 20)
        _check_filtering(after, await burst(client, after))
        await writer.flush()
        status = check_store(school.ctx, sqlite3.connect(db), school.clock())
    finally:
        await school.close()
    paths = visit_paths(db)
    assert sum(p.startswith("/locked/") for p in paths) == 0
    assert sum(p.startswith("/before/") for p in paths) == 20 and sum(p.startswith("/after/") for p in paths) == 20
    assert status.level == "WARN" and "40 visits not logged" in status.summary      # reported
    assert status.details["visits_dropped"] == 40


def _cap_pages(conn: sqlite3.Connection, extra: int = 0) -> int:
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count = {pages + extra}")
    return pages


async def test_a_full_disk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The database cannot grow: filtering goes on, drops are counted, alerts already acknowledged are sent."""
    caplog.set_level(logging.INFO)
    smtp_port = free_port()
    smtp = SmtpServer(port=smtp_port)                       # down for now

    def prepare(runtime: object) -> None:
        quick_writer(runtime)  # type: ignore[arg-type]
        runtime.alerts.tick_s = 0.05  # type: ignore[attr-defined]

    school = await start_school(tmp_path, prepare=prepare, replace={"port = 25": f"port = {smtp_port}"})
    db = school.ctx.db_path
    rt = school.runtime
    loop = asyncio.get_running_loop()
    try:
        pupils = [school.client(f"127.0.2.{n}") for n in (11, 12, 13)]
        for c in pupils:                                     # three flagged hits, three alert emails
            assert (await c.get("http://pornhub.com/")).status_code == 403
        await until(lambda: scalar(db, "SELECT COUNT(*) FROM alert_outbox") == 3, what="three outbox rows")
        acknowledged = query(db, "SELECT id, message_id FROM alert_outbox ORDER BY id")
        await rt.writer.flush()
        rows_before = scalar(db, "SELECT COUNT(*) FROM visits")

        # the disk is full: neither the visit writer nor the alert service can grow the database
        await loop.run_in_executor(rt.writer._executor, _cap_pages, rt.writer._conn)
        async with rt.alerts.conn.execute("PRAGMA page_count") as cur:
            row = await cur.fetchone()
        await rt.alerts.conn.execute(f"PRAGMA max_page_count = {int(row[0]) if row else 0}")

        long = "x" * 600                                     # every visit needs room in the paths dictionary
        urls = [f"http://{'example.com' if i % 2 else 'bet365.com'}/full/{i}/{long}" for i in range(80)]
        _check_filtering(urls, await burst(pupils[0], urls))
        another = school.client("127.0.2.14")
        assert (await another.get("http://adult-example.test/")).status_code == 403   # a new flagged hit
        await rt.writer.flush()
        assert rt.writer.stats.dropped_failed >= 40           # a few may fit in the last pages' free space
        assert "database or disk is full" in caplog.text and "gave up on" in caplog.text

        await smtp.start()                                   # the mail server is back while the disk is still full
        school.clock.now += dt.timedelta(minutes=1)          # past the back-off (at most a minute)
        await until(lambda: len(smtp.received) >= 3, what="the acknowledged alerts to be delivered")
        assert "alerts: could not store new hits (OperationalError: database or disk is full)" in caplog.text
        said = [r for r in caplog.records if r.getMessage().startswith("alerts: a pass failed")
                and r.exc_info and "disk is full" in str(r.exc_info[1])]
        assert len(said) == 1                                 # said once, not at every pass (a lock met under
        #                                                       load before the cap is an outage of its own)
        dropped = rt.writer.stats.dropped_failed

        # space again: the waiting hit is stored and sent, the drops reach meta
        await loop.run_in_executor(rt.writer._executor, lambda: rt.writer._conn.execute(  # type: ignore[union-attr]
            "PRAGMA max_page_count = 1073741823"))
        await rt.alerts.conn.execute("PRAGMA max_page_count = 1073741823")
        school.clock.now += dt.timedelta(minutes=1)
        await until(lambda: len(smtp.received) >= 4, what="the hit held in memory to be sent")
        await until(lambda: meta(db, "visits_dropped") == dropped, what="the drops to reach meta")
    finally:
        await school.close()
        await smtp.stop()
    written = scalar(db, "SELECT COUNT(*) FROM visits") - rows_before
    assert written + dropped == 81                           # every visit (80 + the flagged one) written or counted
    sent_ids = [r.message["Message-ID"] for r in smtp.received]
    assert len(sent_ids) == len(set(sent_ids)) == 4          # each email once
    assert {m for _, m in acknowledged} <= set(sent_ids)
    assert scalar(db, "SELECT COUNT(*) FROM alert_outbox WHERE status = 'sent'") == 4
