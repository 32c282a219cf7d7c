"""The browsing context of an incident: the person's visits an hour either side of its flagged events.

`browsing_context` reads the incident (its person: user, else device, else
address) and the times of its hits (`alert_hits`, else the incident's first
and last activity), then the visits of that person from `hours` before the
first to `hours` after the last.  `format_context` prints them for
`schoolgate incidents show ID --context`.  Illegal-tier addresses are withheld
here as everywhere.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import aiosqlite

from proxy.db import parse_iso
from reports.redact import is_illegal, shown_term, shown_url

logger = logging.getLogger(__name__)

MAX_ROWS = 5_000


class ContextError(LookupError):
    """No such incident."""


@dataclass(frozen=True, slots=True)
class ContextVisit:
    at: dt.datetime             # UTC
    action: str
    url: str                    # withheld for the illegal tier
    categories: tuple[str, ...]
    rule: str
    flagged: bool
    search_term: str | None
    device: str | None
    client_ip: str


@dataclass(frozen=True)
class IncidentContext:
    incident_id: int
    ref: str
    who: str                    # "user y3.pupil", "device ks2-laptop-04" or "address 10.20.2.31"
    since: dt.datetime
    until: dt.datetime
    hits: list[dt.datetime]
    visits: list[ContextVisit]
    truncated: bool


_VISITS = """
    SELECT v.ts, v.action, s.name, h.name, pa.text, c.text, r.text, v.flags, t.text, d.key, a.ip
    FROM visits v
    JOIN schemes s ON s.id = v.scheme_id JOIN hosts h ON h.id = v.host_id JOIN paths pa ON pa.id = v.path_id
    LEFT JOIN categorysets c ON c.id = v.catset_id JOIN rules r ON r.id = v.rule_id
    LEFT JOIN terms t ON t.id = v.term_id LEFT JOIN devices_seen d ON d.id = v.device_id
    JOIN addresses a ON a.id = v.ip_id
    WHERE v.ts >= ? AND v.ts < ? AND {who} ORDER BY v.ts, v.id LIMIT ?"""


async def browsing_context(conn: aiosqlite.Connection, incident_id: int | str, hours: float = 1) -> IncidentContext:
    """The visits of the incident's person from `hours` before its first hit to `hours` after its last."""
    text = str(incident_id).strip()
    where = "id = ?" if text.isdigit() else "ref = ? COLLATE NOCASE"
    async with conn.execute(f"SELECT * FROM incidents WHERE {where}",
                            (int(text) if text.isdigit() else text,)) as cur:
        names = [c[0] for c in cur.description]
        row = await cur.fetchone()
    if row is None:
        raise ContextError(f"no incident {incident_id}")
    full = dict(zip(names, row, strict=True))
    iid, ref = int(full["id"]), str(full["ref"])
    user, device, ip = full.get("user_name"), full.get("device_name"), full.get("client_ip") or ""
    hits = await _hit_times(conn, iid)
    if not hits:
        first = parse_iso(str(full["opened_at"]))
        last = parse_iso(str(full.get("last_at") or full["opened_at"]))
        hits = [m for m in (first, last) if m is not None]
    pad = dt.timedelta(hours=hours)
    since, until = min(hits) - pad, max(hits) + pad
    if user:
        who, cond, arg = f"user {user}", "v.user_id = (SELECT id FROM principals WHERE name = ?)", str(user)
    elif device:
        who, cond, arg = f"device {device}", "v.device_id = (SELECT id FROM devices_seen WHERE key = ?)", str(device)
    else:
        who, cond, arg = f"address {ip}", "v.ip_id = (SELECT id FROM addresses WHERE ip = ?)", str(ip)
    async with conn.execute(_VISITS.format(who=cond),
                            (int(since.timestamp()), int(until.timestamp()) + 1, arg, MAX_ROWS + 1)) as cur:
        rows = list(await cur.fetchall())
    visits = [_visit(tuple(r)) for r in rows[:MAX_ROWS]]
    return IncidentContext(iid, ref, who, since, until, sorted(hits), visits, len(rows) > MAX_ROWS)


async def _hit_times(conn: aiosqlite.Connection, incident_id: int) -> list[dt.datetime]:
    async with conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_hits'") as cur:
        if await cur.fetchone() is None:
            return []
    async with conn.execute("SELECT at FROM alert_hits WHERE incident_id = ? ORDER BY at", (incident_id,)) as cur:
        return [m for (at,) in await cur.fetchall() if (m := parse_iso(at)) is not None]


def _visit(r: tuple[object, ...]) -> ContextVisit:
    ts, action, scheme, host, path, catset, rule, flags, term, device, ip = r
    cats = tuple(str(catset).split(",")) if catset else ()
    return ContextVisit(dt.datetime.fromtimestamp(int(str(ts)), dt.UTC), "block" if action == 1 else "allow",
                        shown_url(str(scheme), str(host), str(path), cats, str(rule)), cats, str(rule),
                        bool(int(str(flags)) & 2), shown_term(None if term is None else str(term), cats, str(rule)),
                        None if device is None else str(device), str(ip))


def format_context(ctx: IncidentContext, tz: dt.tzinfo) -> str:
    """The context as lines of text; flagged visits marked with '!'."""
    lines = [f"Browsing context of {ctx.ref}: {ctx.who}, "
             f"{ctx.since.astimezone(tz):%a %d %b %H:%M} to {ctx.until.astimezone(tz):%H:%M %d %b} (school time)",
             f"{len(ctx.visits)} visit(s); '!' = flagged, 'x' = blocked"]
    for v in ctx.visits:
        mark = "!" if v.flagged else ("x" if v.action == "block" else " ")
        what = f'search "{v.search_term}"  ' if v.search_term else ""
        cats = "illegal-content list" if is_illegal(v.categories, v.rule) else ",".join(v.categories) or "-"
        lines.append(f"{mark} {v.at.astimezone(tz):%H:%M:%S}  {v.action:<5}  {what}{v.url}  [{cats}; {v.rule}]")
    if ctx.truncated:
        lines.append(f"(only the first {MAX_ROWS} visits are shown)")
    if not ctx.visits:
        lines.append("(no visits logged in that time: they may have been deleted under the retention period)")
    return "\n".join(lines)
