"""The incident chain's head: entries deleted from the end are found, and old databases get a head at migration."""
from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alerts.chain import ANCHOR_KEY, ChainCheck, canonical, seal, verify_chain
from proxy.cli import main
from proxy.cmd_service import _import_register
from proxy.context import Context
from proxy.db import open_db, open_db_sync
from proxy.migrations import MIGRATIONS
from tests.alerts.helpers import Clock, evaluation, service
from tests.support.school import write_school

ADULT = "http://pornhub.com/"


@pytest.fixture
async def school(tmp_path: Path, clock: Clock) -> AsyncIterator[Context]:
    """The demo school with two incidents (entries 1 and 2, "opened") and three recorded actions (3, 4, 5)."""
    ctx = write_school(tmp_path)
    ctx.ensure_data_dir()
    assert await _import_register(ctx) == 0
    svc = service(ctx.settings, ctx.db_path, clock)
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        svc.submit(evaluation(user="y4.pupil"), ADULT)
        await svc.flush()
    finally:
        await svc.conn.close()
        svc._conn = None
    for ref, action in (("1", "refer-head-teacher"), ("2", "inform-parents"), ("1", "remove-network-access")):
        assert await _cli(ctx, "incidents", "record", ref, "--action", action, "--outcome", "done",
                          "--by", "esafety.lead") == 0
    yield ctx


async def _cli(ctx: Context, *argv: str) -> int:
    return await asyncio.to_thread(main, [*argv, "--config", str(ctx.config_path), "--data", str(ctx.data_dir)])


async def _verify(path: Path) -> ChainCheck:
    conn = await open_db(path)
    try:
        return await verify_chain(conn)
    finally:
        await conn.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _cut_end(path: Path, first: int) -> None:
    """What someone covering their tracks does: get round the trigger and delete the newest entries."""
    db = _raw(path)
    db.execute("DROP TRIGGER incident_entries_no_delete")
    db.execute("DELETE FROM incident_entries WHERE id >= ?", (first,))
    db.close()


async def test_a_normal_chain_verifies_and_its_head_is_the_last_entry(school: Context,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    check = await _verify(school.db_path)
    assert check.ok and check.entries == 5, check.problems
    db = _raw(school.db_path)
    assert db.execute("SELECT last_id, hash FROM incident_chain_head").fetchall() == db.execute(
        "SELECT id, hash FROM incident_entries ORDER BY id DESC LIMIT 1").fetchall()
    audited = db.execute("SELECT actor, subject, details FROM audit_log WHERE action = 'incident.record' "
                         "ORDER BY id").fetchall()
    assert [(a, s, json.loads(d)["entry"]) for a, s, d in audited] == [
        ("esafety.lead", "incident:INC-20261123-0001", 3), ("esafety.lead", "incident:INC-20261123-0002", 4),
        ("esafety.lead", "incident:INC-20261123-0001", 5)]
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "2") == 0
    assert "chain:     intact (5 entries verified)" in capsys.readouterr().out


@pytest.mark.parametrize(("first", "shown"), [(5, "entries 5..5"), (3, "entries 3..5")])
async def test_entries_deleted_from_the_end_are_detected(school: Context, capsys: pytest.CaptureFixture[str],
                                                         first: int, shown: str) -> None:
    _cut_end(school.db_path, first)
    check = await _verify(school.db_path)
    assert not check.ok and 5 in check.broken_ids
    assert any(f"{shown} at the end of the chain are missing" in p for p in check.problems), check.problems
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "2") == 1       # incident 2 itself still looks complete
    err = capsys.readouterr().err
    assert "THE INCIDENT RECORD HAS BEEN ALTERED" in err
    assert f"{shown} at the end of the chain are missing (deleted?): the last entry ever appended was 5" in err


async def test_a_cut_end_stays_visible_after_later_entries(school: Context) -> None:
    _cut_end(school.db_path, 4)
    assert await _cli(school, "incidents", "record", "2", "--action", "note", "--outcome", "later",
                      "--by", "teacher") == 0
    db = _raw(school.db_path)
    assert [r[0] for r in db.execute("SELECT id FROM incident_entries ORDER BY id")] == [1, 2, 3, 6]
    check = await _verify(school.db_path)
    assert check.problems == ["entries 4..5 are missing (deleted?)",
                              "entry 6: does not follow the entry before it (prev_hash differs)"]


async def test_head_moved_back_too_is_caught_by_the_audit_trail(school: Context) -> None:
    _cut_end(school.db_path, 5)
    db = _raw(school.db_path)
    with pytest.raises(sqlite3.IntegrityError, match="only moves forward"):
        db.execute("UPDATE incident_chain_head SET last_id = 4, hash = (SELECT hash FROM incident_entries "
                   "WHERE id = 4)")
    with pytest.raises(sqlite3.IntegrityError, match="is kept"):
        db.execute("DELETE FROM incident_chain_head")
    db.execute("DROP TRIGGER incident_chain_head_forward_only")
    db.execute("UPDATE incident_chain_head SET last_id = 4, hash = (SELECT hash FROM incident_entries WHERE id = 4)")
    check = await _verify(school.db_path)
    assert check.problems == ["entry 5 is in the audit trail but the chain ends at 4 and so does its head record: "
                              "entries were deleted from the end"]


async def test_a_missing_head_row_is_reported(school: Context) -> None:
    db = _raw(school.db_path)
    db.execute("DROP TRIGGER incident_chain_head_no_delete")
    db.execute("DELETE FROM incident_chain_head")
    check = await _verify(school.db_path)
    assert not check.ok and "incident_chain_head) is missing" in check.problems[0]


async def test_a_re_sealed_chain_differs_from_the_audit_trail(school: Context) -> None:
    """sha256 has no key: whoever rewrites entry 4 can re-seal 4 and 5 and the head; the audit copy still differs."""
    db = _raw(school.db_path)
    for trigger in ("incident_entries_no_update", "incident_chain_head_forward_only"):
        db.execute(f"DROP TRIGGER {trigger}")
    rows = db.execute("SELECT id, incident_id, at, by, action, outcome, detail, prev_hash FROM incident_entries "
                      "WHERE id >= 4 ORDER BY id").fetchall()
    prev = rows[0][7]
    for entry_id, incident_id, at, by, action, outcome, detail, _ in rows:
        outcome = "nothing needed" if entry_id == 4 else outcome
        digest = seal(prev, canonical(entry_id, incident_id, at, by, action, outcome, json.loads(detail)))
        db.execute("UPDATE incident_entries SET outcome = ?, prev_hash = ?, hash = ? WHERE id = ?",
                   (outcome, prev, digest, entry_id))
        prev = digest
    db.execute("UPDATE incident_chain_head SET hash = ?", (prev,))
    check = await _verify(school.db_path)
    assert check.broken_ids == {4, 5}
    assert all("differs from the copy of its hash in the audit trail" in p for p in check.problems)


def _v2_database_with_entries(path: Path, count: int) -> list[str]:
    """A store written before version 3 (no head), with `count` sealed entries; returns their hashes."""
    db = open_db_sync(path, migrations=MIGRATIONS[:2])
    db.execute("INSERT INTO incidents (id, ref, opened_at, kind, status) VALUES "
               "(1, 'INC-1', '2026-01-05T09:00:00+00:00', 'offensive', 'open')")
    prev, hashes = "", list[str]()
    for entry_id in range(1, count + 1):
        at = f"2026-01-05T09:0{entry_id}:00+00:00"
        prev = seal(prev, canonical(entry_id, 1, at, "teacher", "note", "seen", {}))
        db.execute("INSERT INTO incident_entries (id, incident_id, at, by, action, outcome, detail, prev_hash, hash)"
                   " VALUES (?, 1, ?, 'teacher', 'note', 'seen', '{}', ?, ?)",
                   (entry_id, at, hashes[-1] if hashes else "", prev))
        hashes.append(prev)
    assert db.execute("PRAGMA user_version").fetchone() == (2,)
    db.close()
    return hashes


async def test_migration_3_gives_an_old_database_its_head(tmp_path: Path) -> None:
    """The head of an existing store is set by the migration (not at first verification)."""
    path = tmp_path / "old.sqlite3"
    hashes = _v2_database_with_entries(path, 3)
    conn = open_db_sync(path)                                   # migrates to the current version
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert conn.execute("SELECT last_id, hash FROM incident_chain_head").fetchall() == [(3, hashes[-1])]
    conn.close()
    assert (await _verify(path)).ok
    _cut_end(path, 3)
    check = await _verify(path)
    assert check.problems == ["entries 3..3 at the end of the chain are missing (deleted?): the last entry ever "
                              "appended was 3, the chain now ends at 2"]


async def test_migration_3_of_an_empty_or_fully_purged_chain(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    open_db_sync(empty, migrations=MIGRATIONS[:2]).close()
    conn = open_db_sync(empty)
    assert conn.execute("SELECT last_id, hash FROM incident_chain_head").fetchall() == [(0, "")]
    conn.close()
    assert (await _verify(empty)).ok

    purged = tmp_path / "purged.sqlite3"                        # retention removed the whole chain, 4 entries
    open_db_sync(purged, migrations=MIGRATIONS[:2]).close()
    db = _raw(purged)
    db.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
               (ANCHOR_KEY, json.dumps({"first_id": 5, "prev_hash": "ab" * 32, "purged_before": "x"})))
    db.close()
    conn = open_db_sync(purged)
    assert conn.execute("SELECT last_id, hash FROM incident_chain_head").fetchall() == [(4, "ab" * 32)]
    conn.close()
    assert (await _verify(purged)).ok
