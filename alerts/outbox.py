"""The durable outbox and the stored hits: SQLite rows written before any email is sent.

`insert_hits` keeps every flagged hit (`alert_hits`); `enqueue` writes one
email (`alert_outbox`) and marks the hits it reports, in the caller's
transaction.  The sender (`alerts.sender`) takes `due` rows, marks the start
of each attempt, and marks a row sent right after the SMTP server accepted it.

Delivery guarantee.  A row is written (committed) before any send, so a crash
never loses an alert: pending rows are sent when the service starts again.
The only window for a duplicate is between the server's "250 accepted" and the
`mark_sent` commit a few milliseconds later (or a connection lost after the
message was sent but before the reply was read): the row is then sent again
after a restart.  Every row carries a stable Message-ID, so such a second
copy is the *same* message to the mail system and to mail clients that
de-duplicate by Message-ID, and `attempted_at` without `sent_at` marks the row
as "may already have been delivered".  Delivery is therefore at-least-once to
the SMTP server and exactly-once in every run without a crash inside that
window: never zero times.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from alerts.hits import Hit
from proxy.db import parse_iso, utc_iso

logger = logging.getLogger(__name__)

_HIT_COLUMNS = ("at, kind, severity, group_key, who_key, category, categories, user_name, role, device_name, "
                "device_class, client_ip, group_name, network, url, search_term, watch_topic, action, rule, reason, "
                "attempts, incident_id")
_OUTBOX_COLUMNS = ("id, created_at, kind, severity, dedup_key, subject, body_text, body_html, recipients, status, "
                   "attempts, next_attempt_at, last_error, sent_at, incident_id, message_id, attempted_at, hits")


@dataclass(frozen=True)
class StoredHit:
    id: int
    hit: Hit
    incident_id: int | None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    created_at: dt.datetime
    kind: str
    severity: str
    dedup_key: str
    subject: str
    body_text: str
    body_html: str
    recipients: list[str]
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str
    sent_at: dt.datetime | None
    incident_id: int | None
    message_id: str
    attempted_at: dt.datetime | None
    hits: int


def _hit_values(hit: Hit, incident_id: int | None) -> tuple[Any, ...]:
    return (utc_iso(hit.at), hit.kind, hit.severity, hit.group_key, hit.who_key, hit.category,
            " ".join(hit.categories), hit.user, hit.role, hit.device, hit.device_class, hit.client_ip, hit.group,
            hit.network, hit.url, hit.search_term, hit.watch_topic, hit.action, hit.rule, hit.reason, hit.attempts,
            incident_id)


async def insert_hits(conn: aiosqlite.Connection, hits: Sequence[Hit], incidents: Sequence[int | None]) -> None:
    """Store hits (already redacted) with their incidents; inside the caller's transaction."""
    marks = ", ".join("?" * 22)
    await conn.executemany(f"INSERT INTO alert_hits ({_HIT_COLUMNS}) VALUES ({marks})",
                           [_hit_values(h.redacted(), i) for h, i in zip(hits, incidents, strict=True)])


def _stored(row: Any) -> StoredHit:
    at = parse_iso(row[1])
    assert at is not None
    hit = Hit(at=at, kind=row[2], severity=row[3], category=row[6], categories=tuple((row[7] or "").split()),
              user=row[8], role=row[9], device=row[10], device_class=row[11] or "", client_ip=row[12] or "",
              group=row[13] or "", network=row[14], url=row[15] or "", search_term=row[16] or "",
              watch_topic=row[17] or "", action=row[18] or "", rule=row[19] or "", reason=row[20] or "",
              attempts=int(row[21] or 1))
    return StoredHit(int(row[0]), hit, None if row[22] is None else int(row[22]))


async def unreported(conn: aiosqlite.Connection, severity: str) -> list[StoredHit]:
    """Hits of `severity` no email has reported yet, oldest first."""
    async with conn.execute(f"SELECT id, {_HIT_COLUMNS} FROM alert_hits WHERE outbox_id IS NULL AND severity = ? "
                            "ORDER BY id", (severity,)) as cur:
        return [_stored(r) for r in await cur.fetchall()]


def message_id(row_id: int, created_at: dt.datetime, sender: str) -> str:
    """The stable Message-ID of outbox row `row_id` (the same on every attempt)."""
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "schoolgate.local"
    return f"<schoolgate.alert.{row_id}.{created_at.astimezone(dt.UTC):%Y%m%d%H%M%S}@{domain}>"


async def enqueue(conn: aiosqlite.Connection, *, now: dt.datetime, kind: str, severity: str, dedup_key: str,
                  subject: str, text: str, html: str, recipients: Sequence[str], sender: str,
                  hit_ids: Sequence[int], incident_id: int | None = None, hits: int = 0) -> int:
    """Write one email to the outbox and mark the hits it reports; inside the caller's transaction."""
    cur = await conn.execute(
        "INSERT INTO alert_outbox (created_at, kind, severity, dedup_key, subject, body_text, body_html, "
        "recipients, status, attempts, next_attempt_at, incident_id, hits) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        (utc_iso(now), kind, severity, dedup_key, subject, text, html, json.dumps(list(recipients)), utc_iso(now),
         incident_id, hits))
    row_id = int(cur.lastrowid or 0)
    await conn.execute("UPDATE alert_outbox SET message_id = ? WHERE id = ?",
                       (message_id(row_id, now, sender), row_id))
    for start in range(0, len(hit_ids), 500):
        chunk = list(hit_ids[start:start + 500])
        await conn.execute(f"UPDATE alert_hits SET outbox_id = ? WHERE id IN ({', '.join('?' * len(chunk))})",
                           (row_id, *chunk))
    logger.info("alert %d queued: %s", row_id, subject)
    return row_id


def _row(r: Any) -> OutboxRow:
    created = parse_iso(r[1])
    assert created is not None
    return OutboxRow(int(r[0]), created, r[2], r[3] or "", r[4] or "", r[5], r[6], r[7] or "",
                     json.loads(r[8] or "[]"), r[9], int(r[10]), parse_iso(r[11]), r[12] or "", parse_iso(r[13]),
                     None if r[14] is None else int(r[14]), r[15] or "", parse_iso(r[16]), int(r[17] or 0))


async def due(conn: aiosqlite.Connection, now: dt.datetime, limit: int = 50) -> list[OutboxRow]:
    async with conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM alert_outbox WHERE status = 'pending' AND "
                            "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
                            (utc_iso(now), limit)) as cur:
        return [_row(r) for r in await cur.fetchall()]


async def pending(conn: aiosqlite.Connection) -> list[OutboxRow]:
    async with conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM alert_outbox WHERE status = 'pending' "
                            "ORDER BY id") as cur:
        return [_row(r) for r in await cur.fetchall()]


async def all_rows(conn: aiosqlite.Connection) -> list[OutboxRow]:
    async with conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM alert_outbox ORDER BY id") as cur:
        return [_row(r) for r in await cur.fetchall()]


async def mark_attempt(conn: aiosqlite.Connection, row_id: int, now: dt.datetime) -> None:
    """Committed before the send begins: the row may be delivered from here on."""
    await conn.execute("UPDATE alert_outbox SET attempts = attempts + 1, attempted_at = ? WHERE id = ?",
                       (utc_iso(now), row_id))


async def mark_sent(conn: aiosqlite.Connection, row_id: int, now: dt.datetime, note: str = "") -> None:
    await conn.execute("UPDATE alert_outbox SET status = 'sent', sent_at = ?, last_error = ?, next_attempt_at = NULL "
                       "WHERE id = ? AND status = 'pending'", (utc_iso(now), note or None, row_id))


async def mark_retry(conn: aiosqlite.Connection, row_ids: Sequence[int], error: str, next_at: dt.datetime,
                     *, count_attempt: bool = False) -> None:
    """Why the rows wait and until when; `count_attempt` when no `mark_attempt` counted this try."""
    extra = 1 if count_attempt else 0
    for row_id in row_ids:
        await conn.execute("UPDATE alert_outbox SET last_error = ?, attempts = attempts + ?, next_attempt_at = "
                           "MAX(COALESCE(next_attempt_at, ''), ?) WHERE id = ? AND status = 'pending'",
                           (error, extra, utc_iso(next_at), row_id))


async def emails_since(conn: aiosqlite.Connection, kinds: Sequence[str], since: dt.datetime) -> int:
    marks = ", ".join("?" * len(kinds))
    async with conn.execute(f"SELECT COUNT(*) FROM alert_outbox WHERE kind IN ({marks}) AND created_at > ?",
                            (*kinds, utc_iso(since))) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def last_email(conn: aiosqlite.Connection, kinds: Sequence[str], dedup_key: str | None = None
                     ) -> dt.datetime | None:
    marks = ", ".join("?" * len(kinds))
    sql = f"SELECT MAX(created_at) FROM alert_outbox WHERE kind IN ({marks})"
    args: tuple[Any, ...] = tuple(kinds)
    if dedup_key is not None:
        sql += " AND dedup_key = ?"
        args += (dedup_key,)
    async with conn.execute(sql, args) as cur:
        row = await cur.fetchone()
    return parse_iso(row[0]) if row else None


@dataclass(frozen=True)
class WaitingKey:
    """The hits of one group key no email reports yet, in brief."""

    group_key: str
    first_id: int
    first_at: dt.datetime
    illegal: bool


async def waiting_keys(conn: aiosqlite.Connection, severity: str) -> list[WaitingKey]:
    async with conn.execute("SELECT group_key, MIN(id), MIN(at), MAX(kind = 'illegal') FROM alert_hits "
                            "WHERE outbox_id IS NULL AND severity = ? GROUP BY group_key ORDER BY MIN(id)",
                            (severity,)) as cur:
        rows = await cur.fetchall()
    out = []
    for key, first_id, first_at, illegal in rows:
        at = parse_iso(first_at)
        assert at is not None
        out.append(WaitingKey(key, int(first_id), at, bool(illegal)))
    return out


async def unreported_for(conn: aiosqlite.Connection, severity: str, keys: Sequence[str]) -> list[StoredHit]:
    """The waiting hits of some group keys, oldest first."""
    found: list[StoredHit] = []
    for start in range(0, len(keys), 500):
        chunk = list(keys[start:start + 500])
        async with conn.execute(f"SELECT id, {_HIT_COLUMNS} FROM alert_hits WHERE outbox_id IS NULL AND "
                                f"severity = ? AND group_key IN ({', '.join('?' * len(chunk))})",
                                (severity, *chunk)) as cur:
            found += [_stored(r) for r in await cur.fetchall()]
    found.sort(key=lambda s: s.id)
    return found


async def any_unreported(conn: aiosqlite.Connection) -> bool:
    """Whether any hit waits for an email (a read on the partial index: no write lock taken)."""
    async with conn.execute("SELECT 1 FROM alert_hits INDEXED BY alert_hits_unreported "
                            "WHERE outbox_id IS NULL LIMIT 1") as cur:
        return await cur.fetchone() is not None


async def oldest_unreported(conn: aiosqlite.Connection, severity: str) -> dt.datetime | None:
    async with conn.execute("SELECT MIN(at) FROM alert_hits WHERE outbox_id IS NULL AND severity = ?",
                            (severity,)) as cur:
        row = await cur.fetchone()
    return parse_iso(row[0]) if row else None


async def last_emails_by_key(conn: aiosqlite.Connection, kinds: Sequence[str], keys: Sequence[str]
                             ) -> dict[str, dt.datetime]:
    """The last email of each of `keys` (by the dedup_key index)."""
    marks = ", ".join("?" * len(kinds))
    out: dict[str, dt.datetime] = {}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start:start + 500])
        async with conn.execute(f"SELECT dedup_key, MAX(created_at) FROM alert_outbox WHERE dedup_key IN "
                                f"({', '.join('?' * len(chunk))}) AND kind IN ({marks}) GROUP BY dedup_key",
                                (*chunk, *kinds)) as cur:
            for key, created in await cur.fetchall():
                at = parse_iso(created)
                if at is not None:
                    out[key] = at
    return out


async def references(conn: aiosqlite.Connection, incident_ids: Sequence[int]) -> dict[int, str]:
    """Incident id -> reference."""
    ids = sorted(set(incident_ids))
    out: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        async with conn.execute(f"SELECT id, ref FROM incidents WHERE id IN ({', '.join('?' * len(chunk))})",
                                chunk) as cur:
            out.update({int(r[0]): r[1] for r in await cur.fetchall()})
    return out
