"""proxy.audit: the append-only audit trail."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from proxy.audit import AuditError, audit, audit_sync, list_audit, list_audit_sync
from proxy.db import open_db, open_db_sync, transaction

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_audit_rows_are_written_and_listed(tmp_path: Path) -> None:
    conn = await open_db(tmp_path / "a.sqlite3")
    try:
        first = await audit(conn, actor="tech", action="lists.allow", subject="example.org",
                            details={"category": "games", "n": 1}, reason="lesson", now=NOW)
        second = await audit(conn, actor="head", action="user.ban", subject="user:y6",
                             now=NOW + timedelta(hours=2))
        assert second == first + 1
        entries = await list_audit(conn)
        assert [(e.actor, e.action, e.subject) for e in entries] == [
            ("tech", "lists.allow", "example.org"), ("head", "user.ban", "user:y6")]
        assert entries[0].details == {"category": "games", "n": 1}
        assert entries[0].reason == "lesson" and entries[0].at == NOW
        assert [e.id for e in await list_audit(conn, since=NOW + timedelta(hours=1))] == [second]
        assert [e.id for e in await list_audit(conn, until=NOW + timedelta(hours=1))] == [first]
        assert [e.id for e in await list_audit(conn, subject="user:y6")] == [second]
    finally:
        await conn.close()


async def test_audit_log_refuses_update_and_delete(tmp_path: Path) -> None:
    conn = await open_db(tmp_path / "b.sqlite3")
    try:
        await audit(conn, actor="tech", action="x", subject="y", now=NOW)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await conn.execute("UPDATE audit_log SET actor = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await conn.execute("DELETE FROM audit_log")
        assert [e.actor for e in await list_audit(conn)] == ["tech"]
    finally:
        await conn.close()


async def test_audit_joins_the_callers_transaction(tmp_path: Path) -> None:
    conn = await open_db(tmp_path / "c.sqlite3")
    try:
        with pytest.raises(RuntimeError):
            async with transaction(conn):
                await conn.execute("INSERT INTO hosts (name) VALUES ('x.example')")
                await audit(conn, actor="tech", action="x", subject="y")
                raise RuntimeError("the change failed")
        assert await list_audit(conn) == []  # no audit row for a change that did not happen
    finally:
        await conn.close()


def test_sync_twin_and_actor_required(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "d.sqlite3")
    audit_sync(conn, actor="cli", action="users.import", subject="users.csv", now=NOW,
               details={"when": NOW})
    entries = list_audit_sync(conn, since=NOW)
    assert len(entries) == 1 and entries[0].details == {"when": "2026-01-05 09:00:00+00:00"}
    with pytest.raises(AuditError):
        audit_sync(conn, actor=" ", action="x", subject="y")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM audit_log WHERE id = 1")
    conn.close()


def test_incident_entries_are_append_only_too(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "e.sqlite3")
    conn.execute("INSERT INTO incidents (ref, opened_at, kind) VALUES ('INC-2026-000001', 'x', 'k')")
    conn.execute("INSERT INTO incident_entries (incident_id, at, by, action, hash) "
                 "VALUES (1, 'x', 'dsl', 'opened', 'h1')")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE incident_entries SET outcome = 'rewritten'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM incident_entries")
    conn.close()
