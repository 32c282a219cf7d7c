"""Teachers' time-limited overrides: stored, audited, and read back as the policy's `Override`s.

An override lifts a blocked category, or every block on one domain, for one
group, from now for N minutes.  It expires by itself (the policy compares the
time), never lifts the illegal tier (the policy checks that first), and every
one lands in the audit trail.
"""
from __future__ import annotations

import datetime as dt
import logging

import aiosqlite

from config.schema import ILLEGAL_CATEGORIES, Settings
from proxy.audit import audit
from proxy.db import parse_iso, transaction, utc_iso
from proxy.policy import Override

logger = logging.getLogger(__name__)

MAX_MINUTES = 7 * 24 * 60


class OverrideError(ValueError):
    """An override that may not be granted (the message says why)."""


async def add_override(conn: aiosqlite.Connection, settings: Settings, *, group: str, minutes: int, by: str,
                       reason: str, now: dt.datetime, category: str | None = None,
                       domain: str | None = None) -> Override:
    if group not in settings.groups:
        raise OverrideError(f"no group {group!r} (groups: {', '.join(settings.groups)})")
    if not settings.groups[group].overridable:
        raise OverrideError(f"group {group!r} does not allow overrides (overridable = false in the config)")
    if (category is None) == (domain is None):
        raise OverrideError("give exactly one of --category or --domain")
    if category in ILLEGAL_CATEGORIES:
        raise OverrideError("the illegal tier can never be overridden")
    if not 1 <= minutes <= MAX_MINUTES:
        raise OverrideError(f"--minutes must be from 1 to {MAX_MINUTES}")
    if not by.strip() or not reason.strip():
        raise OverrideError("--by and --reason are required: every override is on the audit trail")
    domain = domain.lower().strip(".") if domain else None
    ends = now + dt.timedelta(minutes=minutes)
    async with transaction(conn):
        cursor = await conn.execute(
            "INSERT INTO overrides (group_name, category, domain, starts_at, ends_at, by, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (group, category, domain, utc_iso(now), utc_iso(ends), by, reason))
        oid = int(cursor.lastrowid or 0)
        await audit(conn, actor=by, action="override.add", subject=f"group:{group}",
                    details={"id": oid, "category": category, "domain": domain, "minutes": minutes,
                             "ends_at": utc_iso(ends)}, reason=reason, now=now)
    return Override(oid, group, now, ends, category, domain, by)


async def load_active_overrides(conn: aiosqlite.Connection, now: dt.datetime) -> list[Override]:
    """Overrides not yet expired or revoked (the policy checks the exact window)."""
    async with conn.execute(
        "SELECT id, group_name, category, domain, starts_at, ends_at, by FROM overrides "
        "WHERE revoked_at IS NULL AND ends_at > ? ORDER BY id", (utc_iso(now),)
    ) as cursor:
        rows = await cursor.fetchall()
    out = []
    for oid, group, category, domain, starts, ends, by in rows:
        start_at, end_at = parse_iso(starts), parse_iso(ends)
        assert start_at is not None and end_at is not None
        out.append(Override(int(oid), group, start_at, end_at, category, domain, by))
    return out
