"""proxy.db: opening the store (real SQLite files in tmp_path)."""
from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from proxy.db import (
    SCHEMA_VERSION,
    SchemaError,
    default_db_path,
    open_db,
    open_db_sync,
    parse_iso,
    retry_locked,
    transaction,
    transaction_sync,
    utc_iso,
)


async def scalar(conn: aiosqlite.Connection, sql: str) -> object:
    async with conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def test_open_db_creates_private_wal_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "store.sqlite3"
    conn = await open_db(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert await scalar(conn, "PRAGMA journal_mode") == "wal"
        assert await scalar(conn, "PRAGMA foreign_keys") == 1
        assert await scalar(conn, "PRAGMA synchronous") == 1  # NORMAL
        assert await scalar(conn, "PRAGMA busy_timeout") == 5_000
        assert await scalar(conn, "PRAGMA user_version") == SCHEMA_VERSION
        await conn.execute("INSERT INTO hosts (name) VALUES ('example.org')")
        wal = path.with_name(path.name + "-wal")
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        await conn.close()


def test_open_db_sync_tightens_a_loose_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "loose.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    conn = open_db_sync(path)
    conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_sync_and_async_open_the_same_schema(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "a.sqlite3")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    for table in ("hosts", "paths", "principals", "devices_seen", "rules", "categorysets", "terms",
                  "visits", "dns_queries", "users", "devices", "overrides", "alert_outbox",
                  "incidents", "incident_entries", "review_requests", "list_entries",
                  "audit_log", "meta"):
        assert table in tables


async def test_readonly_cannot_write_and_needs_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    conn = await open_db(path)
    await conn.close()
    ro = await open_db(path, readonly=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await ro.execute("INSERT INTO hosts (name) VALUES ('x')")
    finally:
        await ro.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 0")
    raw.commit()
    raw.close()
    with pytest.raises(SchemaError, match="older"):
        await open_db(path, readonly=True)
    with pytest.raises(SchemaError, match="older"):
        open_db_sync(path, readonly=True)


async def test_transaction_rolls_back_on_error_and_joins_an_outer_one(tmp_path: Path) -> None:
    conn = await open_db(tmp_path / "t.sqlite3")
    try:
        with pytest.raises(RuntimeError):
            async with transaction(conn):
                await conn.execute("INSERT INTO hosts (name) VALUES ('a.example')")
                raise RuntimeError("boom")
        async with transaction(conn):
            await conn.execute("INSERT INTO hosts (name) VALUES ('b.example')")
            async with transaction(conn):  # joins
                await conn.execute("INSERT INTO hosts (name) VALUES ('c.example')")
            assert conn.in_transaction
        async with conn.execute("SELECT name FROM hosts ORDER BY name") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["b.example", "c.example"]
    finally:
        await conn.close()


def test_transaction_sync_rolls_back(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "t.sqlite3")
    with pytest.raises(ValueError), transaction_sync(conn):
        conn.execute("INSERT INTO hosts (name) VALUES ('a.example')")
        raise ValueError
    assert conn.execute("SELECT count(*) FROM hosts").fetchone()[0] == 0
    conn.close()


def test_utc_iso_is_one_sortable_form() -> None:
    paris = timezone(timedelta(hours=1))
    assert utc_iso(datetime(2026, 1, 5, 10, 30, 0, 999, tzinfo=paris)) == "2026-01-05T09:30:00+00:00"
    assert parse_iso("2026-01-05T09:30:00+00:00") == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        utc_iso(datetime(2026, 1, 5))


def test_default_db_path(tmp_path: Path) -> None:
    assert default_db_path(tmp_path).parent == tmp_path


async def test_retry_locked_waits_out_a_lock_and_raises_anything_else(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    conn = await open_db(path, busy_timeout_ms=20)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):      # gives up after its attempts
            await retry_locked(lambda: conn.execute("INSERT INTO meta (key, value) VALUES ('a', 1)"),
                               attempts=2, pause_s=0.01)
        tries = 0

        async def write() -> None:
            nonlocal tries
            tries += 1
            if tries == 2:
                holder.execute("COMMIT")                                    # the other writer finishes
            await conn.execute("INSERT INTO meta (key, value) VALUES ('b', 2)")

        await retry_locked(write, attempts=3, pause_s=0.01)
        assert tries == 2
        assert await scalar(conn, "SELECT value FROM meta WHERE key = 'b'") == 2
        calls = 0

        async def broken() -> None:
            nonlocal calls
            calls += 1
            await conn.execute("INSERT INTO no_such_table VALUES (1)")

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await retry_locked(broken, pause_s=0.01)
        assert calls == 1                                                   # not a lock: not tried again
    finally:
        holder.close()
        await conn.close()
