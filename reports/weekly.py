"""Build the weekly audit report (a `WeeklyReport`) from the store.

`build_report` is blocking (sqlite3) and read-only; run it in a thread from
async code.  The week-at-a-glance figures of each complete week are cached in
`meta` (`report_glance:2026-W47`) when `cache_glance` writes them, so the next
week's "change from last week" costs nothing; without a cached value the
previous week is counted the same way as this one.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import sqlite3
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from config.schema import Settings
from proxy.db import open_db_sync, parse_iso, transaction_sync
from proxy.watchlists import Watchlists
from reports.breakdown import breakdown
from reports.changes import load_changes
from reports.events import Event, load_events
from reports.health import load_health
from reports.incidentlink import link_events
from reports.model import DeviceSeen, Glance, NewDevice, RepeatedUser, WeeklyReport
from reports.period import Period
from reports.visitstats import (
    Attention,
    Dictionaries,
    Overview,
    attention,
    id_range,
    load_dictionaries,
    names,
    overview,
    user_visits,
)

logger = logging.getLogger(__name__)

REPEAT_MIN = 3          # attempts in a week that make "repeated attempts"
GLANCE_KEY = "report_glance:"


def circumvention_categories(settings: Settings) -> frozenset[str]:
    return settings.category_sets.get("circumvention", frozenset())


def alert_counts(conn: sqlite3.Connection, period: Period) -> tuple[int, int]:
    """(sent, not yet sent) of the alert emails queued in the period."""
    row = conn.execute("SELECT SUM(status = 'sent'), SUM(status != 'sent') FROM alert_outbox "
                       "WHERE created_at >= ? AND created_at < ?", (period.start_iso, period.end_iso)).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def _db_file(conn: sqlite3.Connection) -> Path | None:
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file)
    return None


def _overview_alone(path: Path, period: Period, ids: tuple[int, int] | None) -> Overview:
    conn = open_db_sync(path, readonly=True)
    try:
        return overview(conn, period, ids)
    finally:
        conn.close()


def count_glance(conn: sqlite3.Connection, period: Period, d: Dictionaries) -> tuple[Glance, Attention]:
    """The glance figures; the two passes over the period's rows run side by side (SQLite releases the GIL)."""
    ids = id_range(conn, period)
    path = _db_file(conn)
    if path is None or ids is None:
        ov, att = overview(conn, period, ids), attention(conn, period, d, ids)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-overview") as pool:
            side = pool.submit(_overview_alone, path, period, ids)
            att = attention(conn, period, d, ids)
            ov = side.result()
    sent, pending = alert_counts(conn, period)
    glance = Glance(visits=ov.visits, page_views=ov.page_views, users=len(user_visits(conn, period)),
                    devices=ov.register_devices + len(att.addresses), blocked=att.blocked, flagged=att.flagged,
                    circumvention=att.circumvention, alerts_sent=sent, alerts_pending=pending)
    return glance, att


def cached_glance(conn: sqlite3.Connection, period: Period) -> tuple[Glance, int | None] | None:
    """A cached glance of `period` and the visits_dropped counter when it was made."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (GLANCE_KEY + period.label,)).fetchone()
    if row is None:
        return None
    try:
        data = json.loads(row[0])
        return Glance.from_json(data["glance"]), data.get("visits_dropped")
    except (ValueError, KeyError, TypeError):
        return None


def cache_glance(conn: sqlite3.Connection, report: WeeklyReport) -> None:
    """Remember this complete week's figures for next week's comparison."""
    if not report.period.is_week or report.generated < report.period.end:
        return
    value = json.dumps({"glance": report.glance.to_json(), "visits_dropped": report.health.visits_dropped_total})
    with transaction_sync(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                     "value = excluded.value", (GLANCE_KEY + report.period.label, value))


def _repeated(att: Attention, events: list[Event], user_names: dict[int, str],
              user_groups: dict[str, str]) -> list[RepeatedUser]:
    days: dict[str, set[dt.date]] = defaultdict(set)
    for e in events:
        if e.user and e.action == "block":
            days[e.user].add(e.local.date())
    out = []
    for uid, attempts in att.user_attempts.items():
        if attempts < REPEAT_MIN:
            continue
        name = user_names.get(uid, f"#{uid}")
        out.append(RepeatedUser(name, user_groups.get(name, "?"), attempts, att.user_circumvention[uid],
                                att.user_blocked[uid], len(days.get(name, ()))))
    out.sort(key=lambda r: (-r.attempts, r.user))
    return out


def _devices(conn: sqlite3.Connection, att: Attention, settings: Settings,
             period: Period) -> tuple[list[DeviceSeen], list[DeviceSeen]]:
    ips = names(conn, "addresses", "ip", att.addresses)
    unknown, pupil_owned = [], []
    for ip_id, a in att.addresses.items():
        ip = ips.get(ip_id, "?")
        try:
            net = settings.network_for(ipaddress.ip_address(ip))
        except ValueError:
            net = None
        seen = DeviceSeen(ip, net.name if net else "outside the school's networks",
                          net.device_class if net else "", a.visits, a.refused, len(a.user_ids),
                          dt.datetime.fromtimestamp(a.first_ts, period.tz),
                          dt.datetime.fromtimestamp(a.last_ts, period.tz))
        if a.refused or (net is not None and net.device_class == "pupil_owned"):
            pupil_owned.append(seen)
        else:
            unknown.append(seen)
    key = lambda s: (-s.visits, s.ip)  # noqa: E731
    return sorted(unknown, key=key), sorted(pupil_owned, key=key)


def _new_devices(conn: sqlite3.Connection, period: Period) -> list[NewDevice]:
    rows = conn.execute("SELECT name, device_class, network, assigned_user, created_at FROM devices "
                        "WHERE created_at >= ? AND created_at < ? ORDER BY created_at, name",
                        (period.start_iso, period.end_iso)).fetchall()
    out = []
    for name, cls, network, user, created in rows:
        added = parse_iso(created)
        assert added is not None
        out.append(NewDevice(name, cls, network or "", user, added.astimezone(period.tz)))
    return out


def _with_topics(events: list[Event]) -> list[Event]:
    lists = Watchlists.load()
    out = []
    for e in events:
        if e.term and not e.illegal:
            hit = lists.match(e.term)
            e = replace(e, topic=hit.topic) if hit else e
        out.append(e)
    return out


def build_report(conn: sqlite3.Connection, settings: Settings, period: Period, *, now: dt.datetime,
                 index_path: Path | None = None, detail: bool = True, compare: bool = True) -> WeeklyReport:
    """The weekly audit report of `period`.

    Any period works: the governors' summary reuses it with `detail=False` (no
    event rows loaded: only counts) and `compare=False` (no previous period).
    """
    tz = period.tz
    d = load_dictionaries(conn, circumvention_categories(settings))
    glance, att = count_glance(conn, period, d)
    previous: Glance | None = None
    dropped_before: int | None = None
    if compare:
        cached = cached_glance(conn, period.previous())
        if cached is not None:
            previous, dropped_before = cached
        else:
            previous = count_glance(conn, period.previous(), d)[0]
    events: list[Event] = []
    if detail:
        events = load_events(conn, period, att.event_ids, circumvention_categories(settings))
        events = _with_topics(link_events(conn, period, events))
    user_names = names(conn, "principals", "name", att.user_attempts)
    user_groups = {str(u): str(g) for u, g in conn.execute("SELECT username, group_name FROM users")}
    for e in events:
        if e.user:
            user_groups.setdefault(e.user, e.group)
    unknown, pupil_owned = _devices(conn, att, settings, period)
    report = WeeklyReport(
        school=settings.school.name, period=period, generated=now.astimezone(tz), glance=glance,
        previous=previous, breakdown=breakdown(att.buckets, d, settings, period.days, tz),
        events=events, repeated=_repeated(att, events, user_names, user_groups),
        unknown_devices=unknown, pupil_owned=pupil_owned, new_devices=_new_devices(conn, period),
        changes=load_changes(conn, period),
        health=load_health(conn, period, now, index_path, dropped_before),
        attention=att, dictionaries=d,
    )
    logger.info("weekly report %s: %d visits, %d blocked, %d flagged", period.label, glance.visits,
                glance.blocked, glance.flagged)
    return report
