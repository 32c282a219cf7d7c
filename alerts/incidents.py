"""The incident register: every immediate alert opens or joins an incident.

Hits of the same person (user, else device, else address) and the same kind
of incident join an open incident whose last hit is within the joining window;
otherwise a new incident opens, with an `opened` entry holding its facts.
What staff do about it is recorded with `record_action` (the actions of the
policy's sanctions tables); "remove network access" applies the ban in the
register in the same transaction.  Entries are hash-chained (`alerts.chain`).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from alerts.chain import AUDIT_ACTION, ChainTail, Entry, append_entry, write_entries
from alerts.hits import Hit
from alerts.procedure import ACTIONS, CLOSE, REMOVE_ACCESS, kind_of
from proxy import register
from proxy.audit import audit
from proxy.db import parse_iso, transaction, utc_iso

logger = logging.getLogger(__name__)

SYSTEM = "schoolgate"
_COLUMNS = ("id, ref, opened_at, kind, severity, user_name, device_name, group_name, status, who_key, role, "
            "device_class, client_ip, last_at, hits")


class IncidentError(ValueError):
    """An incident that does not exist, or an action that cannot be recorded."""


@dataclass(frozen=True)
class Incident:
    id: int
    ref: str
    opened_at: dt.datetime
    kind: str
    severity: str
    user: str | None
    device: str | None
    group: str | None
    status: str
    who_key: str
    role: str | None
    device_class: str
    client_ip: str
    last_at: dt.datetime | None
    hits: int

    def facts(self) -> dict[str, Any]:
        """What the `opened` entry seals about the incident."""
        return {"ref": self.ref, "opened_at": utc_iso(self.opened_at), "kind": self.kind,
                "user": self.user, "device": self.device, "group": self.group, "role": self.role,
                "device_class": self.device_class, "client_ip": self.client_ip}


def _incident(row: Any) -> Incident:
    opened = parse_iso(row[2])
    assert opened is not None
    return Incident(int(row[0]), row[1], opened, row[3], row[4] or "", row[5], row[6], row[7], row[8],
                    row[9] or "", row[10], row[11] or "", row[12] or "", parse_iso(row[13]), int(row[14] or 0))


async def join_or_open(conn: aiosqlite.Connection, hits: Sequence[Hit], *, window: dt.timedelta,
                       timezone: ZoneInfo) -> list[int | None]:
    """The incident of each hit (None for digest hits); call inside `transaction(conn)`.

    A few statements per batch whatever its size: one query for the open
    incidents of everyone in the batch, then the updates and inserts in bulk.
    """
    out: list[int | None] = [None] * len(hits)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, hit in enumerate(hits):
        if hit.severity == "immediate":
            groups.setdefault((hit.who_key, kind_of(hit)), []).append(i)
    if not groups:
        return out
    since = utc_iso(min(hits[i].at for idx in groups.values() for i in idx) - window)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    who = sorted({key[0] for key in groups})
    for start in range(0, len(who), 500):
        chunk = who[start:start + 500]
        async with conn.execute(
                f"SELECT id, who_key, kind, last_at FROM incidents WHERE status = 'open' AND last_at >= ? AND "
                f"who_key IN ({', '.join('?' * len(chunk))}) ORDER BY id", (since, *chunk)) as cur:
            for incident_id, who_key, kind, last_at in await cur.fetchall():
                found[(who_key, kind)] = (int(incident_id), last_at)
    updates: list[tuple[int, str, int]] = []
    new_rows: list[tuple[Any, ...]] = []
    entries: list[Entry] = []
    next_id = 0
    tail: ChainTail | None = None
    for (who_key, kind), indexes in groups.items():
        batch = [hits[i] for i in indexes]
        first, last = min(h.at for h in batch), max(h.at for h in batch)
        count = sum(h.attempts for h in batch)
        current = found.get((who_key, kind))
        if current is not None and current[1] >= utc_iso(first - window):
            incident_id = current[0]
            updates.append((count, utc_iso(last), incident_id))
        else:
            if tail is None:
                tail = await ChainTail.read(conn)
                async with conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents") as cur:
                    row = await cur.fetchone()
                next_id = int(row[0]) if row else 1
            incident_id, next_id = next_id, next_id + 1
            incident = _new_incident(incident_id, batch[0], kind, timezone, count, last)
            new_rows.append(_incident_values(incident))
            entries.append(tail.seal(incident_id, at=batch[0].at, by=SYSTEM, action="opened",
                                     outcome=f"opened by an alert ({batch[0].kind}: {batch[0].category})",
                                     detail=incident.facts()))
            logger.info("incident %s opened (%s, %s)", incident.ref, kind, who_key)
        for i in indexes:
            out[i] = incident_id
    if new_rows:
        await conn.executemany(f"INSERT INTO incidents ({_COLUMNS}) VALUES ({', '.join('?' * 15)})", new_rows)
        await write_entries(conn, entries)
    if updates:
        await conn.executemany("UPDATE incidents SET hits = hits + ?, last_at = MAX(COALESCE(last_at, ''), ?) "
                               "WHERE id = ?", updates)
    return out


def _new_incident(incident_id: int, hit: Hit, kind: str, timezone: ZoneInfo, count: int,
                  last: dt.datetime) -> Incident:
    ref = f"INC-{hit.at.astimezone(timezone):%Y%m%d}-{incident_id:04d}"
    return Incident(incident_id, ref, hit.at.replace(microsecond=0), kind, "immediate", hit.user, hit.device,
                    hit.group, "open", hit.who_key, hit.role, hit.device_class, hit.client_ip,
                    last.replace(microsecond=0), count)


def _incident_values(i: Incident) -> tuple[Any, ...]:
    return (i.id, i.ref, utc_iso(i.opened_at), i.kind, i.severity, i.user, i.device, i.group, i.status, i.who_key,
            i.role, i.device_class, i.client_ip, utc_iso(i.last_at) if i.last_at else None, i.hits)


async def get_incident(conn: aiosqlite.Connection, ident: int | str) -> Incident | None:
    """By id (an int or digits) or by reference (INC-20261123-0001)."""
    text = str(ident).strip()
    arg: tuple[int | str]
    if text.isdigit():
        sql, arg = f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (int(text),)
    else:
        sql, arg = f"SELECT {_COLUMNS} FROM incidents WHERE ref = ? COLLATE NOCASE", (text,)
    async with conn.execute(sql, arg) as cur:
        row = await cur.fetchone()
    return None if row is None else _incident(row)


async def list_incidents(conn: aiosqlite.Connection, status: str | None = None, limit: int = 500) -> list[Incident]:
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    async with conn.execute(f"SELECT {_COLUMNS} FROM incidents {where} ORDER BY id DESC LIMIT ?",
                            (*args, limit)) as cur:
        return [_incident(r) for r in await cur.fetchall()]


async def record_action(conn: aiosqlite.Connection, ident: int | str, *, action: str, outcome: str, by: str,
                        now: dt.datetime, until: dt.date | None = None) -> Entry:
    """Record what was done about an incident (append-only); applies a ban for "remove network access"."""
    if action not in ACTIONS:
        raise IncidentError(f"unknown action {action!r}; choose one of: {', '.join(ACTIONS)}")
    if not by.strip():
        raise IncidentError("say who recorded it (--by)")
    if not outcome.strip():
        raise IncidentError("say what happened (--outcome)")
    async with transaction(conn):
        incident = await get_incident(conn, ident)
        if incident is None:
            raise IncidentError(f"no incident {ident}")
        detail: dict[str, Any] = {"action_words": ACTIONS[action]}
        if action == REMOVE_ACCESS:
            if not incident.user:
                raise IncidentError(f"{incident.ref} has no user (only device {incident.device or incident.client_ip}):"
                                    " network access is removed per user; ban the user with `schoolgate users ban`")
            try:
                await register.ban(conn, incident.user, until, by=by,
                                   reason=f"incident {incident.ref}: {outcome}", now=now)
            except register.RegisterError as exc:
                raise IncidentError(str(exc)) from None
            detail.update({"banned": incident.user, "until": until.isoformat() if until else None})
        if action == CLOSE:
            if incident.status == "closed":
                raise IncidentError(f"{incident.ref} is already closed")
            await conn.execute("UPDATE incidents SET status = 'closed' WHERE id = ?", (incident.id,))
        entry = await append_entry(conn, incident.id, at=now, by=by, action=action, outcome=outcome, detail=detail)
        await audit(conn, actor=by, action=AUDIT_ACTION, subject=f"incident:{incident.ref}",
                    details={"entry": entry.id, "hash": entry.hash, "action": action}, now=now)
    logger.info("incident %s: %s recorded by %s", incident.ref, action, by)
    return entry


@dataclass(frozen=True)
class HitSummary:
    count: int
    first: dt.datetime | None
    last: dt.datetime | None
    categories: list[str]
    urls: list[str]
    search_terms: list[str]


async def hit_summary(conn: aiosqlite.Connection, incident_id: int, sample: int = 10) -> HitSummary:
    async with conn.execute("SELECT COALESCE(SUM(attempts), 0), MIN(at), MAX(at) FROM alert_hits "
                            "WHERE incident_id = ?", (incident_id,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    async with conn.execute("SELECT DISTINCT category FROM alert_hits WHERE incident_id = ? ORDER BY 1",
                            (incident_id,)) as cur:
        cats = [r[0] for r in await cur.fetchall()]
    async with conn.execute("SELECT DISTINCT url FROM alert_hits WHERE incident_id = ? AND url != '' LIMIT ?",
                            (incident_id, sample)) as cur:
        urls = [r[0] for r in await cur.fetchall()]
    async with conn.execute("SELECT DISTINCT search_term FROM alert_hits WHERE incident_id = ? AND "
                            "search_term != '' LIMIT ?", (incident_id, sample)) as cur:
        terms = [r[0] for r in await cur.fetchall()]
    return HitSummary(int(row[0]), parse_iso(row[1]), parse_iso(row[2]), cats, urls, terms)
