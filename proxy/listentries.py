"""Local category tuning (`schoolgate lists allow|deny`): stored with reason and author, audited.

Entries live in the database, not in the compiled index, so they survive
every list update; the engine applies them above the downloaded lists
through `categories.tuning.LocalLists` (which never lifts the illegal tier).
"""
from __future__ import annotations

import datetime as dt

import aiosqlite

from categories.tuning import LocalEntry, LocalLists
from config.schema import ILLEGAL_CATEGORIES
from proxy.audit import audit
from proxy.db import parse_iso, transaction, utc_iso


class ListEntryError(ValueError):
    pass


async def add_entry(conn: aiosqlite.Connection, *, kind: str, domain: str, category: str, reason: str, by: str,
                    now: dt.datetime) -> int:
    if kind not in ("allow", "deny"):
        raise ListEntryError("kind must be allow or deny")
    domain = domain.lower().strip().strip(".")
    if not domain or "/" in domain or " " in domain:
        raise ListEntryError(f"{domain!r} is not a domain name")
    if category in ILLEGAL_CATEGORIES:
        raise ListEntryError("the illegal tier is managed by its licensed feeds only")
    if not reason.strip() or not by.strip():
        raise ListEntryError("--reason and --by are required: every change is on the audit trail")
    async with transaction(conn):
        cursor = await conn.execute(
            "INSERT INTO list_entries (domain, category, kind, reason, by, at) VALUES (?, ?, ?, ?, ?, ?)",
            (domain, category, kind, reason, by, utc_iso(now)))
        entry_id = int(cursor.lastrowid or 0)
        await audit(conn, actor=by, action=f"lists.{kind}", subject=domain,
                    details={"id": entry_id, "category": category}, reason=reason, now=now)
    return entry_id


async def load_entries(conn: aiosqlite.Connection) -> list[LocalEntry]:
    async with conn.execute(
        "SELECT domain, category, kind, reason, by, at FROM list_entries WHERE removed_at IS NULL ORDER BY id"
    ) as cursor:
        rows = await cursor.fetchall()
    return [LocalEntry(domain=d, category=c, kind=k, reason=r, by=b, at=parse_iso(a) or dt.datetime.now(dt.UTC))
            for d, c, k, r, b, a in rows]


async def load_local_lists(conn: aiosqlite.Connection) -> LocalLists:
    return LocalLists(await load_entries(conn))
