"""proxy.visitwriter: the batching writer, against real SQLite files."""
from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from proxy.db import open_db, open_db_sync
from proxy.records import (
    DnsQueryRecord,
    VisitRecord,
    dropped_counts,
    read_dns_queries,
    read_visits,
    read_visits_sync,
)
from proxy.visitwriter import BatchWriter

T0 = 1_767_600_000  # 2026-01-05T08:00:00Z


def visit(i: int, *, host: str | None = None, user: str | None = "y3.pupil") -> VisitRecord:
    blocked = i % 5 == 0
    return VisitRecord(
        ts=T0 + i / 10, user=user, group="ks2", device=f"ks2-laptop-{i % 7:02d}",
        client_ip=f"10.20.2.{i % 50 + 10}", method="GET" if i % 9 else "POST",
        scheme="https", host=host or f"site{i % 300}.example", path=f"/page/{i % 1000}",
        categories=("games", "child") if blocked else (), action="block" if blocked else "allow",
        rule="category.blocked" if blocked else "default.allow",
        search_term="volcanoes" if i % 97 == 0 else None, bytes=1000 + i, page_view=i % 3 == 0,
        flagged=i % 50 == 0, intercepted=True, status=None if blocked else 200,
    )


def count(path: Path, table: str = "visits") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def meta(path: Path, key: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])
    finally:
        conn.close()


async def test_burst_of_100000_visits_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "burst.sqlite3"
    writer = BatchWriter(path, queue_size=150_000, batch_size=2_000, flush_interval=0.05)
    await writer.start()
    accepted = sum(writer.submit(visit(i)) for i in range(100_000))  # no await: a true burst
    assert accepted == 100_000
    assert writer.stats.queue_depth > 0
    await writer.stop()
    stats = writer.stats
    assert (stats.submitted, stats.written, stats.dropped) == (100_000, 100_000, 0)
    assert stats.batches >= 50 and stats.queue_depth == 0
    assert count(path) == 100_000
    assert meta(path, "visits_dropped") == 0


async def test_round_trip_through_the_dictionaries(tmp_path: Path) -> None:
    path = tmp_path / "rt.sqlite3"
    writer = BatchWriter(path)
    await writer.start()
    records = [visit(i) for i in range(200)] + [visit(1000, user=None)]
    for record in records:
        writer.submit(record)
    query = DnsQueryRecord(ts=T0 + 5, client_ip="10.20.1.21", device="ks1-ipad-01", user=None,
                           group="ks1", qname="games.example", qtype=1, action="block",
                           rule="category.blocked", upstream=None, latency_ms=0, rcode=0)
    writer.submit(query)
    await writer.flush()
    assert writer.stats.written == 202
    conn = await open_db(path, readonly=True)
    try:
        rows = await read_visits(conn, T0, T0 + 10_000)
        assert len(rows) == 201
        for row, record in zip(rows, records, strict=True):
            stored = row.record
            assert stored.ts == float(int(record.ts))
            assert stored.categories == tuple(sorted(record.categories))
            expected = {k: getattr(record, k) for k in record.__slots__ if k not in ("ts", "categories")}
            assert {k: getattr(stored, k) for k in expected} == expected
        mine = await read_visits(conn, T0, T0 + 10, user="y3.pupil")
        assert [r.record.ts for r in mine] == [float(T0 + i // 10) for i in range(100)]
        assert await read_visits(conn, T0, T0 + 10, user="nobody") == []
        dns = await read_dns_queries(conn, T0, T0 + 10)
        assert [d.record for d in dns] == [query]
        assert await dropped_counts(conn) == {"visits_dropped": 0, "dns_queries_dropped": 0}
    finally:
        await conn.close()
    await writer.stop()
    sync = open_db_sync(path)
    assert len(read_visits_sync(sync, T0, T0 + 10_000)) == 201
    # one dictionary row per distinct host (200 sites, the DNS name), however often seen
    assert sync.execute("SELECT count(*) FROM hosts").fetchone()[0] == 201
    sync.close()


async def test_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "full.sqlite3"
    writer = BatchWriter(path, queue_size=10, batch_size=1_000, flush_interval=60)
    await writer.start()
    results = [writer.submit(visit(i)) for i in range(25)]
    query = DnsQueryRecord(T0, "10.20.1.21", None, None, "ks1", "a.example", 1, "allow",
                           "default.allow", "9.9.9.9", 12, 0)
    assert writer.submit(query) is False
    assert results == [True] * 10 + [False] * 15
    assert writer.stats.dropped_queue_full == 16 and writer.stats.queue_depth == 10
    await writer.stop()
    assert writer.submit(visit(99)) is False  # after stop: refused and counted, never raises
    assert writer.stats.written == 10
    assert count(path) == 10
    assert meta(path, "visits_dropped") == 15
    assert meta(path, "dns_queries_dropped") == 1


async def test_failing_batch_is_retried_then_counted_and_persisted(tmp_path: Path) -> None:
    path = tmp_path / "fail.sqlite3"
    admin = open_db_sync(path)
    admin.execute("CREATE TRIGGER disk_full BEFORE INSERT ON visits "
                  "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    writer = BatchWriter(path, max_attempts=3, retry_delay=0.001)
    await writer.start()
    for i in range(7):
        writer.submit(visit(i, host="new-host.example"))
    await writer.flush()
    stats = writer.stats
    assert (stats.written, stats.dropped_failed, stats.failed_batches) == (0, 7, 1)
    assert stats.last_error is not None and "disk is full" in stats.last_error
    assert count(path) == 0
    # the database takes writes again: the drops are recorded with the next batch
    admin.execute("DROP TRIGGER disk_full")
    writer.submit(visit(100, host="new-host.example"))
    await writer.flush()
    assert meta(path, "visits_dropped") == 7
    await writer.stop()
    # the host id cached by the rolled-back batch was not kept: the row joins back
    rows = read_visits_sync(admin, T0, T0 + 100)
    assert [r.record.host for r in rows] == ["new-host.example"]
    admin.close()


async def test_locked_database_beyond_busy_timeout_counts_drops(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    other = open_db_sync(path)
    writer = BatchWriter(path, max_attempts=2, retry_delay=0.001, busy_timeout_ms=20)
    await writer.start()
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    for i in range(3):
        writer.submit(visit(i))
    await writer.flush()
    assert writer.stats.dropped_failed == 3
    assert "locked" in (writer.stats.last_error or "")
    other.execute("ROLLBACK")
    await writer.stop()  # nothing else queued: stop still records the drops
    assert meta(path, "visits_dropped") == 3
    other.close()


async def test_readers_do_not_block_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    writer = BatchWriter(path, flush_interval=0.01)
    await writer.start()
    writer.submit(visit(1))
    await writer.flush()
    reader = await open_db(path, readonly=True)
    try:
        await reader.execute("BEGIN")
        before = await read_visits(reader, T0, T0 + 1_000)
        for i in range(2, 500):
            writer.submit(visit(i))
        await asyncio.wait_for(writer.flush(), timeout=30)
        assert await read_visits(reader, T0, T0 + 1_000) == before  # a stable snapshot
        await reader.execute("COMMIT")
        assert len(await read_visits(reader, T0, T0 + 1_000)) == 499
    finally:
        await reader.close()
        await writer.stop()


async def test_flush_requires_a_running_writer(tmp_path: Path) -> None:
    writer = BatchWriter(tmp_path / "x.sqlite3")
    with pytest.raises(RuntimeError, match="not running"):
        await writer.flush()
    with pytest.raises(ValueError):
        BatchWriter(tmp_path / "x.sqlite3", queue_size=0)


async def test_one_bad_record_does_not_sink_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite3"
    writer = BatchWriter(path, max_attempts=3, retry_delay=0.001)
    await writer.start()
    good = [visit(i) for i in range(9)]
    bad = dataclasses.replace(visit(9), bytes="lots")  # type: ignore[arg-type]
    for record in good[:5] + [bad] + good[5:]:
        writer.submit(record)
    await writer.flush()
    stats = writer.stats
    assert (stats.written, stats.dropped_failed, stats.failed_batches) == (9, 1, 1)
    assert "ValueError" in (stats.last_error or "")
    await writer.stop()
    await writer.stop()  # a second stop is harmless
    assert count(path) == 9
    assert meta(path, "visits_dropped") == 1
    with pytest.raises(RuntimeError, match="runs once"):
        await writer.start()


async def test_a_partial_batch_is_written_after_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "tick.sqlite3"
    writer = BatchWriter(path, batch_size=1_000, flush_interval=0.02)
    await writer.start()
    try:
        writer.submit(visit(1))  # far below batch_size, and nobody calls flush()
        for _ in range(500):  # generous: this checks that it happens, not how fast
            if writer.stats.written:
                break
            await asyncio.sleep(0.01)
        assert writer.stats.written == 1 and count(path) == 1
    finally:
        await writer.stop()


def dns_row(i: int, name: str) -> tuple[float, str, str | None, str | None, str, str, int, str, str, str | None,
                                         int | None, int | None]:
    """What the resolver submits: a plain tuple in DnsQueryRecord's field order."""
    return (T0 + i, f"10.20.2.{i % 3 + 10}", "ks2-laptop-01" if i % 2 else "", None, "ks2", name, 1 + i % 2,
            "block" if i % 4 == 0 else "allow", "category.blocked" if i % 4 == 0 else "allow",
            None if i % 4 == 0 else "127.0.0.1:53", i % 5, 0)


async def test_dns_rows_submitted_as_tuples_read_back_as_records(tmp_path: Path) -> None:
    path = tmp_path / "dnsrows.sqlite3"
    writer = BatchWriter(path, batch_size=100)
    await writer.start()
    rows = [dns_row(i, f"name{i % 150}.example") for i in range(600)]
    record = DnsQueryRecord(T0 + 700, "10.20.1.21", "ks1-ipad-01", "y1.pupil", "ks1", "name3.example", 28,
                            "allow", "allow", "cache", None, None)    # no latency, no rcode: stored as NULL
    for row in rows:
        assert writer.submit(row)
    writer.submit(record)
    await writer.stop()
    assert writer.stats.written == 601 and writer.stats.batches >= 6
    conn = await open_db(path, readonly=True)
    try:
        back = [r.record for r in await read_dns_queries(conn, T0, T0 + 1_000)]
    finally:
        await conn.close()
    # an empty device is stored as none, like a missing one
    expected = [DnsQueryRecord(float(r[0]), r[1], r[2] or None, *r[3:]) for r in rows] + [record]
    assert back == expected
    sync = open_db_sync(path)
    assert sync.execute("SELECT count(*) FROM hosts").fetchone()[0] == 150    # each name stored once
    sync.close()


async def test_bad_dns_rows_are_dropped_alone(tmp_path: Path) -> None:
    path = tmp_path / "baddns.sqlite3"
    writer = BatchWriter(path, max_attempts=2, retry_delay=0.001)
    await writer.start()
    good = [dns_row(i, f"ok{i}.example") for i in range(6)]
    bad_type = dns_row(6, "bad.example")[:6] + ("A",) + dns_row(6, "bad.example")[7:]   # qtype must be a number
    short = dns_row(7, "short.example")[:11]
    for row in good[:3] + [bad_type, short] + good[3:]:
        writer.submit(row)  # type: ignore[arg-type]
    await writer.stop()
    assert (writer.stats.written, writer.stats.dropped_failed) == (6, 2)
    assert count(path, "dns_queries") == 6
    assert meta(path, "dns_queries_dropped") == 2
