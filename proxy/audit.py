"""The audit trail: who changed what, when and why.

`audit_log` is append-only: SQL triggers refuse UPDATE and DELETE, so not even
the retention purge can rewrite history.  Call `audit()` inside the same
transaction as the change it records (`async with transaction(conn): ...`); on
its own it is a transaction of one row.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from proxy.db import parse_iso, utc_iso

logger = logging.getLogger(__name__)

_INSERT = "INSERT INTO audit_log (at, actor, action, subject, details, reason) VALUES (?, ?, ?, ?, ?, ?)"
_SELECT = "SELECT id, at, actor, action, subject, details, reason FROM audit_log"


class AuditError(ValueError):
    """An audit row that cannot be written (e.g. no actor)."""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def _row(actor: str, action: str, subject: str, details: dict[str, Any] | None, reason: str,
         now: datetime | None) -> tuple[str, str, str, str, str, str]:
    if not actor.strip():
        raise AuditError("an audit row needs an actor (who made the change)")
    if not action.strip():
        raise AuditError("an audit row needs an action")
    text = json.dumps(details or {}, sort_keys=True, default=str, ensure_ascii=False)
    return (utc_iso(now), actor, action, subject, text, reason)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    at = parse_iso(row[1])
    assert at is not None
    return AuditEntry(int(row[0]), at, row[2], row[3], row[4], json.loads(row[5] or "{}"), row[6])


def _where(since: datetime | None, until: datetime | None,
           subject: str | None) -> tuple[str, tuple[str, ...]]:
    clauses: list[str] = []
    args: list[str] = []
    if since is not None:
        clauses.append("at >= ?")
        args.append(utc_iso(since))
    if until is not None:
        clauses.append("at < ?")
        args.append(utc_iso(until))
    if subject is not None:
        clauses.append("subject = ?")
        args.append(subject)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return f"{_SELECT}{where} ORDER BY id", tuple(args)


async def audit(
    conn: aiosqlite.Connection, *, actor: str, action: str, subject: str,
    details: dict[str, Any] | None = None, reason: str = "", now: datetime | None = None,
) -> int:
    """Append one audit row; returns its id."""
    cursor = await conn.execute(_INSERT, _row(actor, action, subject, details, reason, now))
    logger.info("audit: %s %s %s (%s)", actor, action, subject, reason)
    return int(cursor.lastrowid or 0)


def audit_sync(
    conn: sqlite3.Connection, *, actor: str, action: str, subject: str,
    details: dict[str, Any] | None = None, reason: str = "", now: datetime | None = None,
) -> int:
    """Sync twin of `audit`."""
    cursor = conn.execute(_INSERT, _row(actor, action, subject, details, reason, now))
    logger.info("audit: %s %s %s (%s)", actor, action, subject, reason)
    return int(cursor.lastrowid or 0)


async def list_audit(
    conn: aiosqlite.Connection, since: datetime | None = None, until: datetime | None = None,
    *, subject: str | None = None,
) -> list[AuditEntry]:
    """Audit rows with `since <= at < until` (either open), oldest first."""
    sql, args = _where(since, until, subject)
    async with conn.execute(sql, args) as cursor:
        return [_entry(tuple(row)) for row in await cursor.fetchall()]


def list_audit_sync(
    conn: sqlite3.Connection, since: datetime | None = None, until: datetime | None = None,
    *, subject: str | None = None,
) -> list[AuditEntry]:
    sql, args = _where(since, until, subject)
    return [_entry(tuple(row)) for row in conn.execute(sql, args).fetchall()]
