"""A week of a large school written straight into a store, for `bench.report`.

1,500 pupils (KS1 and KS2) and 150 staff on 500 school devices, visitors and
a few pupil-owned phones; 5,000 hosts with a Zipf-like popularity, most
traffic in school hours.  Rows go in with `executemany` in big transactions
(never through the writer's queue), in time order like the real writer's.
"""
from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from proxy.db import open_db_sync, transaction_sync
from proxy.records import FLAG_FLAGGED, FLAG_INTERCEPTED, FLAG_PAGE_VIEW, INSERT_VISIT

CHUNK = 250_000
BLOCKED_SETS = [("games",), ("social_networks",), ("shopping",), ("chat",), ("games", "child"),
                ("webmail",), ("celebrity",), ("manga",), ("gambling",), ("filehosting",)]
FLAGGED_SETS = [("adult",), ("vpn",), ("drogue",), ("agressif",), ("mixed_adult",), ("hacking",)]
ALLOWED_SETS = [(), (), (), ("educational_games",), ("child",), ("press",), ("searchengines",)]
WORDS = ["maths", "reading", "science", "history", "animals", "planets", "music", "art", "puzzle",
         "story", "river", "forest", "ocean", "castle", "robot", "dragon", "garden", "weather"]


def _dictionary(conn: sqlite3.Connection, table: str, column: str, values: list[str]) -> list[int]:
    conn.executemany(f"INSERT OR IGNORE INTO {table} ({column}) VALUES (?)", [(v,) for v in values])
    ids = dict(conn.execute(f"SELECT {column}, id FROM {table}").fetchall())
    return [int(ids[v]) for v in values]


class SchoolWeek:
    """The dictionaries of a big school and a generator of its visits."""

    def __init__(self, conn: sqlite3.Connection, seed: int = 11) -> None:
        rng = self.rng = random.Random(seed)
        pupils = [(f"pupil{i:04d}", "ks1" if i < 600 else "ks2") for i in range(1_500)]
        staff = [(f"staff{i:03d}", "staff") for i in range(150)]
        with transaction_sync(conn):
            self.groups = dict(zip(["ks1", "ks2", "staff", "guest"],
                                   _dictionary(conn, "groups", "name", ["ks1", "ks2", "staff", "guest"]),
                                   strict=True))
            user_ids = _dictionary(conn, "principals", "name", [u for u, _ in pupils + staff])
            self.users = [(uid, self.groups[g]) for uid, (_, g) in zip(user_ids, pupils + staff, strict=True)]
            devices = ([(f"ks1-ipad-{i:03d}", f"10.20.1.{10 + i}") for i in range(200)]
                       + [(f"ks2-laptop-{i:03d}", f"10.20.2.{10 + i}") for i in range(240)]
                       + [(f"staff-laptop-{i:03d}", f"10.20.3.{10 + i}") for i in range(60)])
            dev_ids = _dictionary(conn, "devices_seen", "key", [d for d, _ in devices])
            ip_ids = _dictionary(conn, "addresses", "ip", [ip for _, ip in devices])
            self.devices = list(zip(dev_ids, ip_ids, strict=True))
            self.unknown_ips = _dictionary(conn, "addresses", "ip", [f"10.20.60.{i}" for i in range(10, 110)])
            self.pupil_owned_ips = _dictionary(conn, "addresses", "ip", [f"10.20.70.{i}" for i in range(10, 40)])
            self.methods = _dictionary(conn, "methods", "name", ["GET", "POST"])
            self.schemes = _dictionary(conn, "schemes", "name", ["https", "http"])
            hosts = [f"{rng.choice(WORDS)}{i}.{rng.choice(['co.uk', 'com', 'org', 'org.uk', 'net'])}"
                     for i in range(5_000)]
            self.hosts = _dictionary(conn, "hosts", "name", hosts)
            self.paths = _dictionary(conn, "paths", "text",
                                     [f"/{rng.choice(WORDS)}/{rng.choice(WORDS)}/{i}.html" for i in range(200_000)])
            self.terms = _dictionary(conn, "terms", "text",
                                     [f"{w} {i}" for w in WORDS for i in range(100)])
            sets = BLOCKED_SETS + FLAGGED_SETS + [s for s in ALLOWED_SETS if s]
            set_ids = _dictionary(conn, "categorysets", "text", [",".join(sorted(s)) for s in sets])
            self.blocked_sets = set_ids[:len(BLOCKED_SETS)]
            self.flagged_sets = set_ids[len(BLOCKED_SETS):len(BLOCKED_SETS) + len(FLAGGED_SETS)]
            self.allowed_sets = [None, None, None, *set_ids[len(BLOCKED_SETS) + len(FLAGGED_SETS):]]
            rules = ["allow", "category.blocked", "category.school_hours", "walled_garden",
                     "circumvention.web_proxy", "device.not_allowed", "allow.search_watch"]
            self.rules = dict(zip(rules, _dictionary(conn, "rules", "text", rules), strict=True))
        self.host_weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.hosts))]

    def hour_rows(self, hour_start: int, count: int) -> list[tuple[object, ...]]:
        """`count` visits of the hour starting at unix `hour_start`, in time order."""
        rng = self.rng
        stamps = sorted(hour_start + rng.randrange(3600) for _ in range(count))
        host_ids = rng.choices(self.hosts, weights=self.host_weights, k=count)
        users = rng.choices(self.users, k=count)
        devices = rng.choices(self.devices, k=count)
        paths = rng.choices(self.paths, k=count)
        rolls = [rng.random() for _ in range(count)]
        rules = self.rules
        rows: list[tuple[object, ...]] = []
        for i, ts in enumerate(stamps):
            roll = rolls[i]
            uid: int | None = users[i][0]
            gid = users[i][1]
            did: int | None = devices[i][0]
            ipid = devices[i][1]
            term: int | None = None
            catset: int | None
            if roll < 0.0005:           # flagged: adult, drugs, circumvention...
                catset, action, rule = rng.choice(self.flagged_sets), 1, rules["category.blocked"]
                if roll < 0.0001:
                    rule = rules["circumvention.web_proxy"]
                flags = FLAG_PAGE_VIEW | FLAG_FLAGGED | FLAG_INTERCEPTED
            elif roll < 0.0007:         # a watched search term
                catset, action, rule = self.allowed_sets[-1], 0, rules["allow.search_watch"]
                term = rng.choice(self.terms)
                flags = FLAG_PAGE_VIEW | FLAG_FLAGGED | FLAG_INTERCEPTED
            elif roll < 0.06:           # blocked, not flagged
                catset, action, rule = rng.choice(self.blocked_sets), 1, rules["category.blocked"]
                flags = FLAG_PAGE_VIEW | FLAG_INTERCEPTED
            else:
                catset, action, rule = rng.choice(self.allowed_sets), 0, rules["allow"]
                flags = FLAG_INTERCEPTED | (FLAG_PAGE_VIEW if roll > 0.8 else 0)
                if roll > 0.99:
                    term = rng.choice(self.terms)
            if roll > 0.997:            # a visitor's phone: no user, no register device
                uid, gid, did, ipid = None, self.groups["guest"], None, rng.choice(self.unknown_ips)
            elif 0.0495 < roll < 0.05:  # a pupil's own phone: refused
                uid, did, ipid = None, None, rng.choice(self.pupil_owned_ips)
                gid, action, rule, catset = self.groups["guest"], 1, rules["device.not_allowed"], None
            elif roll > 0.9:            # a shared device nobody logged in to
                uid = None
            rows.append((ts, uid, gid, did, ipid, self.methods[roll < 0.93], self.schemes[roll > 0.95],
                         host_ids[i], paths[i], catset, action, rule, term,
                         0 if action else 2_000 + int(roll * 100_000), flags, None if action else 200))
        return rows


def week_start_utc(monday: dt.date, tz: dt.tzinfo) -> list[int]:
    """Unix starts of the 8 local midnights from `monday` (the last ends the week)."""
    return [int(dt.datetime.combine(monday + dt.timedelta(days=d), dt.time(0), tz).timestamp())
            for d in range(8)]


def generate_week(path: Path, visits: int, monday: dt.date, tz: dt.tzinfo,
                  progress: bool = False) -> int:
    """Write about `visits` visits of the week starting `monday` into a new store at `path`."""
    conn = open_db_sync(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        # bulk load: the two visit indexes are built once at the end (much faster than per row)
        conn.execute("DROP INDEX IF EXISTS visits_ts")
        conn.execute("DROP INDEX IF EXISTS visits_user_ts")
        week = SchoolWeek(conn)
        starts = week_start_utc(monday, tz)
        weights = [1.0, 1.0, 1.0, 1.0, 0.95, 0.03, 0.02]
        per_day = [int(visits * w / sum(weights)) for w in weights]
        per_day[0] += visits - sum(per_day)
        written = 0
        for day, count in enumerate(per_day):
            rows: list[tuple[object, ...]] = []
            for hour_start, n in _hours(starts[day], count, weekend=day >= 5):
                rows += week.hour_rows(hour_start, n)
                if len(rows) >= CHUNK:
                    written += _insert(conn, rows)
                    rows = []
            written += _insert(conn, rows)
            if progress:
                print(f"  day {day + 1}: {written:,} visits written", flush=True)
        conn.execute("CREATE INDEX visits_ts ON visits(ts)")
        conn.execute("CREATE INDEX visits_user_ts ON visits(user_id, ts)")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return written
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> int:
    with transaction_sync(conn):
        conn.executemany(INSERT_VISIT, rows)
    return len(rows)


def _hours(day_start: int, count: int, weekend: bool) -> Iterator[tuple[int, int]]:
    """How many of a day's `count` visits fall in each hour (school hours busiest)."""
    weights = [0.2] * 7 + [2, 8, 10, 10, 10, 9, 10, 10, 9, 3, 2, 2, 1.5, 1, 0.5, 0.3, 0.2]
    if weekend:
        weights = [0.2] * 7 + [0.5] * 14 + [0.3] * 3
    total = sum(weights)
    counts = [int(count * w / total) for w in weights]
    counts[10] += count - sum(counts)
    for hour, n in enumerate(counts):
        yield day_start + hour * 3600, n
