"""Retention: the purge's boundaries, batching, the incident chain and the dictionary vacuum."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from alerts.chain import append_entry
from config.schema import RetentionSettings
from proxy.db import open_db, open_db_sync, transaction, utc_iso
from proxy.records import DnsQueryRecord, RowEncoder, VisitRecord
from reports.retention import ANCHOR_KEY, purge, vacuum_dictionaries

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
KEEP = RetentionSettings(visits_days=30, dns_days=7, alerts_days=60, incidents_days=365)


def visit(ts: float, host: str, term: str | None = None) -> VisitRecord:
    return VisitRecord(ts=ts, user="p01", group="ks2", device=None, client_ip="10.20.2.5", method="GET",
                       scheme="https", host=host, path="/", categories=(), action="allow", rule="allow",
                       search_term=term, bytes=1, page_view=True, flagged=False, intercepted=True, status=200)


def query(ts: float, name: str) -> DnsQueryRecord:
    return DnsQueryRecord(ts=ts, client_ip="10.20.2.5", device=None, user=None, group="ks2", qname=name, qtype=1,
                          action="allow", rule="allow", upstream=None, latency_ms=1, rcode=0)


def ago(days: float, seconds: int = 0) -> float:
    return (NOW - dt.timedelta(days=days)).timestamp() + seconds


async def _incident(db: Path, iid: int, opened: dt.datetime, entry_times: list[dt.datetime]) -> None:
    conn = await open_db(db)
    try:
        async with transaction(conn):
            await conn.execute("INSERT INTO incidents (id, ref, opened_at, kind, status, last_at) "
                               "VALUES (?, ?, ?, 'category', 'closed', ?)",
                               (iid, f"INC-{iid}", utc_iso(opened), utc_iso(opened)))
            for at in entry_times:
                await append_entry(conn, iid, at=at, by="esafety.lead", action="note", outcome="seen")
    finally:
        await conn.close()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    conn = open_db_sync(path)
    enc = RowEncoder(conn)
    enc.write([visit(ago(30, -1), "old.example", "old search"), visit(ago(30), "edge.example"),
               visit(ago(29), "new.example")] + [visit(ago(40) + i, "bulk.example") for i in range(23)], {})
    enc.write([query(ago(7, -1), "old-dns.example"), query(ago(6), "new-dns.example")], {})
    for days, status in ((61, "sent"), (59, "sent"), (90, "failed")):
        conn.execute("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status) "
                     "VALUES (?, 'alert', 's', 'b', ?)", (utc_iso(NOW - dt.timedelta(days=days)), status))
    conn.close()
    # incident 1: all old; incident 2: opened long ago but with a recent entry; incident 3: recent
    await _incident(path, 1, NOW - dt.timedelta(days=900), [NOW - dt.timedelta(days=900)])
    await _incident(path, 2, NOW - dt.timedelta(days=800), [NOW - dt.timedelta(days=800), NOW - dt.timedelta(days=3)])
    await _incident(path, 3, NOW - dt.timedelta(days=10), [NOW - dt.timedelta(days=10)])
    return path


def hosts(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT host FROM visit_view")}


async def test_purge_boundaries_and_batches(db: Path) -> None:
    conn = open_db_sync(db)
    result = purge(conn, KEEP, NOW, batch=5, pause=0)
    assert hosts(conn) == {"edge.example", "new.example"}                  # exactly 30 days old is kept
    assert result.deleted["visits"] == 24
    assert {r[0] for r in conn.execute("SELECT qname FROM dns_query_view")} == {"new-dns.example"}
    assert [r[0] for r in conn.execute("SELECT status FROM alert_outbox")] == ["sent"]   # the 59-day-old one
    # incident 1 goes; 2 has a recent entry and 3 is recent: kept, and so is the chain from 2's first entry on
    assert sorted(r[0] for r in conn.execute("SELECT id FROM incidents")) == [2, 3]
    assert result.deleted["incidents"] == 1 and result.deleted["incident_entries"] == 1
    anchor = json.loads(conn.execute("SELECT value FROM meta WHERE key = ?", (ANCHOR_KEY,)).fetchone()[0])
    first = conn.execute("SELECT id, prev_hash FROM incident_entries ORDER BY id LIMIT 1").fetchone()
    assert (anchor["first_id"], anchor["prev_hash"]) == (first[0], first[1])
    with pytest.raises(sqlite3.IntegrityError):   # the append-only trigger is back
        conn.execute("DELETE FROM incident_entries")
    row = conn.execute("SELECT actor, details FROM audit_log WHERE action = 'retention.purge'").fetchone()
    assert row[0] == "schoolgate" and json.loads(row[1])["deleted"]["visits"] == 24
    again = purge(conn, KEEP, NOW, batch=5, pause=0)                        # nothing more to do
    assert again.total == 0
    conn.close()


async def test_vacuum_removes_only_unused_names(db: Path) -> None:
    conn = open_db_sync(db)
    purge(conn, KEEP, NOW, pause=0)
    vacuum_dictionaries(conn)
    names = {r[0] for r in conn.execute("SELECT name FROM hosts")}
    assert names == {"edge.example", "new.example", "new-dns.example"}
    assert [r[0] for r in conn.execute("SELECT text FROM terms")] == []     # the old search term is gone
    assert hosts(conn) == {"edge.example", "new.example"}                   # visits still read back whole
    conn.close()


async def test_the_kept_incident_chain_still_verifies_after_a_purge(db: Path) -> None:
    from alerts.chain import verify_chain
    from proxy.db import open_db

    conn = await open_db(db)
    before = await verify_chain(conn)
    assert before.problems == []
    await conn.close()
    sync = open_db_sync(db)
    purge(sync, KEEP, NOW, pause=0)
    sync.close()
    conn = await open_db(db)
    after = await verify_chain(conn)
    assert after.problems == [] and after.entries == before.entries - 1
    await conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps({"first_id": 1, "prev_hash": ""}),
                                                                     ANCHOR_KEY))
    assert (await verify_chain(conn)).problems        # a wrong anchor does not pass
    await conn.close()


async def test_every_limit_to_the_second(tmp_path: Path) -> None:
    """Visits, DNS queries, alert emails and alert hits: one second past the limit goes, exactly at it and one
    second inside it stay; an old email still reported by a kept hit stays with it."""
    path = tmp_path / "edges.sqlite3"
    conn = open_db_sync(path)
    enc = RowEncoder(conn)
    enc.write([visit(ago(30, -1), "v-out.example"), visit(ago(30), "v-at.example"), visit(ago(30, 1), "v-in.example")],
              {})
    enc.write([query(ago(7, -1), "q-out.example"), query(ago(7), "q-at.example"), query(ago(7, 1), "q-in.example")],
              {})

    def at(seconds: int) -> str:                       # the alerts' limit (60 days) plus `seconds` later
        return utc_iso(NOW - dt.timedelta(days=60) + dt.timedelta(seconds=seconds))

    emails = {"e-out": at(-1), "e-at": at(0), "e-in": at(1), "e-old-but-reported": at(-86400)}
    ids = {}
    for subject, created in emails.items():
        ids[subject] = conn.execute("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status) "
                                    "VALUES (?, 'alert', ?, 'b', 'sent')", (created, subject)).lastrowid
    hits = [("h-out", at(-1), ids["e-out"]), ("h-at", at(0), ids["e-at"]), ("h-in", at(1), ids["e-in"]),
            ("h-late", at(3600), ids["e-old-but-reported"]), ("h-none", at(-2), None)]
    conn.executemany("INSERT INTO alert_hits (at, kind, severity, group_key, who_key, user_name, outbox_id) "
                     "VALUES (?, 'category', 'immediate', ?, 'user:p01', 'p01', ?)",
                     [(when, key, oid) for key, when, oid in hits])
    conn.commit()
    result = purge(conn, KEEP, NOW, batch=2, pause=0)
    assert hosts(conn) == {"v-at.example", "v-in.example"}
    assert {r[0] for r in conn.execute("SELECT qname FROM dns_query_view")} == {"q-at.example", "q-in.example"}
    assert {r[0] for r in conn.execute("SELECT group_key FROM alert_hits")} == {"h-at", "h-in", "h-late"}
    assert {r[0] for r in conn.execute("SELECT subject FROM alert_outbox")} == {"e-at", "e-in", "e-old-but-reported"}
    assert {k: result.deleted[k] for k in ("visits", "dns_queries", "alert_hits", "alert_outbox")} == {
        "visits": 1, "dns_queries": 1, "alert_hits": 2, "alert_outbox": 1}
    conn.close()
