"""Which incident a flagged visit belongs to, and that incident's status.

The alerts keep every flagged hit (`alert_hits`, migration 0002) with the
person's key (`user:NAME`, `device:NAME` or `ip:ADDRESS`), its time and its
incident.  A visit is matched to the hit of the same person within a few
seconds; failing that (an older store, a hit the alerts never saw), to an
incident of the same person whose first and last hits span the visit.
"""
from __future__ import annotations

import bisect
import datetime as dt
import logging
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, replace

from proxy.db import parse_iso, utc_iso
from reports.events import Event
from reports.period import Period

logger = logging.getLogger(__name__)

SLACK_S = 5


@dataclass(frozen=True, slots=True)
class IncidentInfo:
    id: int
    ref: str
    status: str
    kind: str
    opened_ts: int
    last_ts: int
    who_key: str


def who_key(user: str | None, device: str | None, client_ip: str) -> str:
    """The alerts' key of a person (`alerts.hits.Hit.who_key`)."""
    if user:
        return f"user:{user}"
    if device:
        return f"device:{device}"
    return f"ip:{client_ip}"


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def _ts(text: str | None) -> int:
    moment = parse_iso(text)
    return int(moment.timestamp()) if moment is not None else 0


def load_incidents(conn: sqlite3.Connection, period: Period) -> dict[int, IncidentInfo]:
    """Incidents opened before the period ends that were still active in or after it starts."""
    has_who = _has_column(conn, "incidents", "who_key")
    cols = "id, ref, status, kind, opened_at, " + ("last_at, who_key" if has_who else "NULL, ''")
    sql = f"SELECT {cols} FROM incidents WHERE opened_at < ?"
    args: tuple[str, ...] = (period.end_iso,)
    if has_who:
        sql += " AND COALESCE(last_at, opened_at) >= ?"
        args += (utc_iso(period.start),)
    out: dict[int, IncidentInfo] = {}
    for row in conn.execute(sql, args):
        opened = _ts(row[4])
        out[int(row[0])] = IncidentInfo(int(row[0]), str(row[1]), str(row[2]), str(row[3]), opened,
                                        _ts(row[5]) or opened, str(row[6] or ""))
    return out


def link_events(conn: sqlite3.Connection, period: Period, events: list[Event]) -> list[Event]:
    """The events with `incident_ref` and `incident_status` filled in where an incident is known."""
    incidents = load_incidents(conn, period)
    if not incidents or not events:
        return events
    hits: dict[str, list[tuple[int, int]]] = defaultdict(list)   # who_key -> sorted (ts, incident id)
    if _has_table(conn, "alert_hits"):
        sql = ("SELECT who_key, at, incident_id FROM alert_hits WHERE incident_id IS NOT NULL "
               "AND at >= ? AND at < ?")
        bounds = (_shift(period.start_iso, -SLACK_S), _shift(period.end_iso, SLACK_S))
        for key, at, incident_id in conn.execute(sql, bounds):
            hits[str(key)].append((_ts(at), int(incident_id)))
        for items in hits.values():
            items.sort()
    by_who: dict[str, list[IncidentInfo]] = defaultdict(list)
    for info in incidents.values():
        by_who[info.who_key].append(info)
    out = []
    for event in events:
        key = who_key(event.user, event.device, event.client_ip)
        found = _from_hits(hits.get(key, []), event.ts, incidents)
        if found is None:
            found = next((i for i in by_who.get(key, [])
                          if i.opened_ts - SLACK_S <= event.ts <= i.last_ts + SLACK_S), None)
        out.append(event if found is None else replace(event, incident_ref=found.ref, incident_status=found.status))
    return out


def _from_hits(items: list[tuple[int, int]], ts: int, incidents: dict[int, IncidentInfo]) -> IncidentInfo | None:
    if not items:
        return None
    i = bisect.bisect_left(items, (ts - SLACK_S, -1))
    best: tuple[int, int] | None = None
    while i < len(items) and items[i][0] <= ts + SLACK_S:
        if best is None or abs(items[i][0] - ts) < abs(best[0] - ts):
            best = items[i]
        i += 1
    return None if best is None else incidents.get(best[1])


def _shift(iso: str, seconds: int) -> str:
    moment = parse_iso(iso)
    assert moment is not None
    return utc_iso(moment + dt.timedelta(seconds=seconds))
