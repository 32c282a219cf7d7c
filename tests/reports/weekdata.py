"""A week of the demo school with known contents, for the report tests.

Visits are generated with a seeded random generator into a real SQLite store
(through the writer's `RowEncoder`, the same code that writes the live log),
plus a few rows just outside the week and exactly on its edges.  The register
changes, overrides, list tuning and review requests go in through the real
functions that write the audit trail.  Tests compute every expected figure
from `Week.records` in Python, never with the report's SQL.
"""
from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from config.loader import DEFAULT_CONFIG, load_settings
from config.schema import Settings
from proxy.db import open_db, open_db_sync, utc_iso
from proxy.listentries import add_entry
from proxy.overrides import add_override
from proxy.records import RowEncoder, VisitRecord
from proxy.register import ban, revoke, set_consent
from proxy.reviews import add_request, decide_request

LONDON = ZoneInfo("Europe/London")
WEEK = "2026-W47"
START = dt.datetime(2026, 11, 16, tzinfo=LONDON)
END = dt.datetime(2026, 11, 23, tzinfo=LONDON)

HOSTS: dict[str, tuple[str, ...]] = {
    "www.bbc.co.uk": ("press",), "cbeebies.com": ("child",), "miniclip.com": ("games",),
    "facebook.com": ("social_networks",), "bet365.com": ("gambling",), "pornhub.com": ("adult",),
    "nordvpn.com": ("vpn",), "iwf-test-entry.test": ("iwf",), "drugs-example.test": ("drogue",),
    "www.google.com": ("searchengines",), "proxy-example.test": (),
}
FLAGGED_HOSTS = {"pornhub.com", "nordvpn.com", "iwf-test-entry.test", "drugs-example.test"}
BLOCKED_HOSTS = FLAGGED_HOSTS | {"facebook.com", "bet365.com"}
WATCH_TERMS = ["how to commit suicide", "kill yourself"]
PLAIN_TERMS = ["volcano facts", "tudor houses", "times tables"]
USERS = [("y3.pupil", "ks2"), ("y1.pupil", "ks1"), ("teacher", "staff")] + [(f"p{i:02d}", "ks2") for i in range(1, 7)]
DEVICES = [("ks1-ipad-01", "10.20.1.21"), ("ks2-laptop-01", "10.20.2.21"), ("teacher-laptop", "10.20.3.11"),
           ("loan-laptop-y3", "10.20.4.21")]
VISITOR_IPS = ["10.20.60.5", "10.20.60.6"]
PUPIL_OWNED_IPS = ["10.20.70.9"]

# the UK category of each category used above, written out by hand (independent of categories.taxonomy)
UK = {"adult": "pornography", "gambling": "gambling", "iwf": "illegal content", "drogue": "drugs / substance abuse"}


@dataclass
class Week:
    settings: Settings
    db_path: Path
    records: list[VisitRecord] = field(default_factory=list)
    flagged_y3: VisitRecord | None = None      # the visit the test incident is about

    def in_week(self) -> list[VisitRecord]:
        return [r for r in self.records if START.timestamp() <= r.ts < END.timestamp()]


DEMO_HOST_WEIGHTS = {"www.bbc.co.uk": 40, "cbeebies.com": 30, "miniclip.com": 6, "facebook.com": 3, "bet365.com": 0.4,
                     "pornhub.com": 0.15, "nordvpn.com": 0.2, "iwf-test-entry.test": 0.02, "drugs-example.test": 0.1,
                     "www.google.com": 20, "proxy-example.test": 0}


def _record(rng: random.Random, ts: float, demo: bool = False) -> VisitRecord:
    kind = rng.random()
    if demo:   # a quieter, more lifelike mix for the demo picture: few refusals, proxies and watched searches
        kind = 0.3 if kind > 0.012 else kind * 20
    user, group = rng.choice(USERS)
    device, ip = rng.choice(DEVICES)
    term = None
    rule, flagged, path = "allow", False, "/"
    if kind < 0.05:                                 # a pupil's own phone: refused
        user, group, device, ip = None, "guest", None, PUPIL_OWNED_IPS[0]
        host = rng.choice(["www.bbc.co.uk", "miniclip.com"])
        action, rule = "block", "device.not_allowed"
    elif kind < 0.12:                               # a visitor's phone
        user, group, device, ip = None, "guest", None, rng.choice(VISITOR_IPS)
        host, action = rng.choice(["www.bbc.co.uk", "www.google.com"]), "allow"
    elif kind < 0.17:                               # a web proxy: circumvention by rule
        host, action, rule, flagged = "proxy-example.test", "block", "circumvention.web_proxy", True
    elif kind < 0.25:                               # a search
        host, action = "www.google.com", "allow"
        term = rng.choice(WATCH_TERMS + PLAIN_TERMS * 2)
        path = "/search?q=" + term.replace(" ", "+")
        if term in WATCH_TERMS:
            rule, flagged = "allow.search_watch", True
    else:
        host = rng.choices(list(DEMO_HOST_WEIGHTS), list(DEMO_HOST_WEIGHTS.values()))[0] if demo else rng.choice(
            list(HOSTS))
        if host == "proxy-example.test":
            host = "www.bbc.co.uk"
        action = "block" if host in BLOCKED_HOSTS else "allow"
        flagged = host in FLAGGED_HOSTS
        rule = "illegal_tier" if host == "iwf-test-entry.test" else ("category.blocked" if action == "block" else "allow")
        if host == "miniclip.com" and group == "ks2":
            action, rule = "block", "category.school_hours"
        path = rng.choice(["/", "/news/article-1", "/play/game"])
    if rng.random() < 0.1 and device is not None:   # a shared device nobody logged in to
        user = None
    return VisitRecord(ts=ts, user=user, group=group, device=device, client_ip=ip, method="GET", scheme="https",
                       host=host, path=path, categories=HOSTS.get(host, ()), action=action, rule=rule,
                       search_term=term, bytes=0 if action == "block" else 1000, page_view=rng.random() < 0.5,
                       flagged=flagged, intercepted=True, status=None if action == "block" else 200)


def _school_time(rng: random.Random, monday: float) -> float:
    """A moment of a school week, mostly in lessons (for the demo picture)."""
    day = rng.choices(range(7), [1, 1, 1, 1, 0.9, 0.05, 0.05])[0]
    hour = rng.choices(range(24), [0.1] * 7 + [1, 6, 9, 9, 8, 6, 8, 8, 5, 2, 1, 1, 1, 0.6, 0.3, 0.2, 0.1])[0]
    return monday + day * 86400 + hour * 3600 + rng.uniform(0, 3599)


def generate_visits(seed: int = 47, count: int = 1500, demo: bool = False) -> list[VisitRecord]:
    rng = random.Random(seed)
    start, end = START.timestamp(), END.timestamp()
    if demo:
        stamps = [_school_time(rng, start) for _ in range(count)]
        stamps += [_school_time(rng, start - 7 * 86400) for _ in range(int(count * 0.93))]
    else:
        stamps = [rng.uniform(start, end - 1) for _ in range(count)]
        stamps += [rng.uniform(start - 7 * 86400, start - 1) for _ in range(120)]   # the week before
    stamps += [rng.uniform(end, end + 3 * 86400) for _ in range(60)]           # the week after
    stamps += [start, end - 1, end, start - 1]                                 # on the edges
    return [_record(rng, float(int(ts)), demo) for ts in sorted(stamps)]


def _register(conn: sqlite3.Connection) -> None:
    before = utc_iso(START - dt.timedelta(days=30))
    during = utc_iso(START + dt.timedelta(days=1, hours=9))
    users = [("y1.pupil", "pupil", "ks1", 1), ("y3.pupil", "pupil", "ks2", 1), ("y5.noconsent", "pupil", "ks2", 0),
             ("y6.banned", "pupil", "ks2", 1), ("teacher", "staff", "staff", 0), ("esafety.lead", "staff", "staff", 0)]
    users += [(f"p{i:02d}", "pupil", "ks2", 1) for i in range(1, 7)]
    conn.executemany("INSERT INTO users (username, role, group_name, consent, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [(*u, before, before) for u in users])
    devices = [("ks1-ipad-01", "10.20.1.21", "school_shared", None, before),
               ("ks2-laptop-01", "10.20.2.21", "school_shared", None, during),
               ("teacher-laptop", "10.20.3.11", "school_single_user", "teacher", before),
               ("loan-laptop-y3", "10.20.4.21", "loaned", "y3.pupil", before)]
    conn.executemany("INSERT INTO devices (name, network, device_class, assigned_user, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [(n, ip, c, u, t, t) for n, ip, c, u, t in devices])


def _alerts_and_incident(conn: sqlite3.Connection, week: Week) -> None:
    def outbox(at: dt.datetime, status: str) -> None:
        conn.execute("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status) VALUES (?, ?, ?, ?, ?)",
                     (utc_iso(at), "alert", "test alert", "body", status))
    for hours, status in ((10, "sent"), (30, "sent"), (50, "sent"), (60, "pending"), (70, "failed")):
        outbox(START + dt.timedelta(hours=hours), status)
    outbox(START - dt.timedelta(hours=5), "sent")
    for hours in (30, 40, 50):        # the week before had more emails stuck than this one: a fall to report
        outbox(START - dt.timedelta(hours=hours), "failed" if hours != 40 else "pending")
    target = next(r for r in week.in_week() if r.user == "y3.pupil" and r.flagged)
    week.flagged_y3 = target
    at = dt.datetime.fromtimestamp(target.ts, dt.UTC)
    conn.execute("INSERT INTO incidents (id, ref, opened_at, kind, severity, user_name, group_name, status, who_key, "
                 "last_at, hits) VALUES (1, 'INC-20261116-0001', ?, 'category', 'immediate', 'y3.pupil', 'ks2', "
                 "'open', 'user:y3.pupil', ?, 1)", (utc_iso(at), utc_iso(at)))
    conn.execute("INSERT INTO alert_hits (at, kind, severity, group_key, who_key, user_name, incident_id) "
                 "VALUES (?, 'category', 'immediate', 'k', 'user:y3.pupil', 'y3.pupil', 1)", (utc_iso(at),))


async def _changes(db_path: Path, settings: Settings) -> None:
    conn = await open_db(db_path)
    try:
        tue = START + dt.timedelta(days=1, hours=10)
        await add_override(conn, settings, group="ks2", minutes=45, by="teacher", reason="Tudor games lesson",
                           now=tue, category="games")
        await add_entry(conn, kind="allow", domain="scratch.mit.edu", category="*", reason="coding club",
                        by="technical support", now=tue + dt.timedelta(hours=1))
        await ban(conn, "y6.banned", None, "esafety.lead", "misuse incident", now=tue + dt.timedelta(days=1))
        await set_consent(conn, "y5.noconsent", True, "head", "form returned", now=tue + dt.timedelta(days=2))
        await revoke(conn, "p06", "head", "repeated misuse after warnings", now=tue + dt.timedelta(days=3))
        rid = await add_request(conn, ref="R1", url="https://facebook.com/school", host="facebook.com",
                                user="p01", device="ks2-laptop-01", client_ip="10.20.2.21", group="ks2",
                                categories=("social_networks",), reason_text="class page", now=tue)
        await decide_request(conn, rid, approve=False, by="technical support", reason="policy", now=tue)
        await set_consent(conn, "p02", False, "head", "withdrawn", now=END + dt.timedelta(hours=2))  # next week
    finally:
        await conn.close()


async def build_week(tmp: Path, *, seed: int = 47, count: int = 1500, demo: bool = False) -> Week:
    settings = load_settings(DEFAULT_CONFIG)
    week = Week(settings, tmp / "store.sqlite3")
    conn = open_db_sync(week.db_path)
    try:
        _register(conn)
        week.records = generate_visits(seed, count, demo)
        RowEncoder(conn).write(week.records, {"visits_dropped": 7})
        _alerts_and_incident(conn, week)
    finally:
        conn.close()
    await _changes(week.db_path, settings)
    return week
