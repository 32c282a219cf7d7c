"""The rows the filter logs: one `VisitRecord` per HTTP(S) visit, one
`DnsQueryRecord` per DNS query.  Both are handed to
`proxy.visitwriter.BatchWriter.submit` and come back from the query helpers
there (`VisitRow`, `DnsQueryRow` add the row id).

`ts` is unix time in seconds (UTC); the store keeps whole seconds.
`action` is "allow" or "block".  `categories` is the decision's categories
(stored as one sorted, comma-joined set).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

ACTIONS = ("allow", "block")

FLAG_PAGE_VIEW = 1
FLAG_FLAGGED = 2
FLAG_INTERCEPTED = 4


@dataclass(frozen=True, slots=True)
class VisitRecord:
    ts: float
    user: str | None
    group: str
    device: str | None
    client_ip: str
    method: str
    scheme: str
    host: str
    path: str
    categories: tuple[str, ...]
    action: str
    rule: str
    search_term: str | None
    bytes: int
    page_view: bool
    flagged: bool
    intercepted: bool
    status: int | None

    @property
    def flags(self) -> int:
        return (
            (FLAG_PAGE_VIEW if self.page_view else 0)
            | (FLAG_FLAGGED if self.flagged else 0)
            | (FLAG_INTERCEPTED if self.intercepted else 0)
        )


@dataclass(frozen=True, slots=True)
class DnsQueryRecord:
    ts: float
    client_ip: str
    device: str | None
    user: str | None
    group: str
    qname: str
    qtype: int
    action: str
    rule: str
    upstream: str | None
    latency_ms: int | None
    rcode: int | None


@dataclass(frozen=True, slots=True)
class VisitRow:
    """A visit read back from the store (dictionaries joined back)."""

    id: int
    record: VisitRecord


@dataclass(frozen=True, slots=True)
class DnsQueryRow:
    id: int
    record: DnsQueryRecord


def categoryset_text(categories: tuple[str, ...] | list[str]) -> str:
    """The stored form of a set of categories: sorted, unique, comma-joined."""
    return ",".join(sorted(set(categories)))


def categoryset_parse(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


# -- writing: strings -> dictionary ids ------------------------------------
MAX_TEXT = 2_048  # longer paths / terms are cut: the log is not an archive of URLs

# dictionary name -> (table, text column)
DICTIONARIES: dict[str, tuple[str, str]] = {
    "host": ("hosts", "name"),
    "path": ("paths", "text"),
    "user": ("principals", "name"),
    "device": ("devices_seen", "key"),
    "rule": ("rules", "text"),
    "catset": ("categorysets", "text"),
    "term": ("terms", "text"),
    "group": ("groups", "name"),
    "ip": ("addresses", "ip"),
    "method": ("methods", "name"),
    "scheme": ("schemes", "name"),
    "upstream": ("upstreams", "name"),
}

INSERT_VISIT = (
    "INSERT INTO visits (ts, user_id, group_id, device_id, ip_id, method_id, scheme_id, "
    "host_id, path_id, catset_id, action, rule_id, term_id, bytes, flags, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DNS = (
    "INSERT INTO dns_queries (ts, ip_id, device_id, user_id, group_id, host_id, qtype, "
    "action, rule_id, upstream_id, latency_ms, rcode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class RowEncoder:
    """Turns records into rows of dictionary ids and writes them (blocking).

    Owned by one thread (the writer's).  New dictionary ids join the cache only
    after their transaction commits, so a rolled-back batch leaves no stale id.
    """

    def __init__(self, conn: sqlite3.Connection, *, max_cache: int = 200_000) -> None:
        self.conn = conn
        self.max_cache = max_cache
        self.cache: dict[str, dict[str, int]] = {name: {} for name in DICTIONARIES}
        self._sql = {
            name: (f"INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT ({column}) DO NOTHING "
                   f"RETURNING id", f"SELECT id FROM {table} WHERE {column} = ?")
            for name, (table, column) in DICTIONARIES.items()
        }
        self._new: dict[str, dict[str, int]] = {}
        self._catset_text: dict[tuple[str, ...], str] = {}
        c = self.cache  # cleared in place, never replaced: these stay valid
        self._users, self._groups, self._devices = c["user"], c["group"], c["device"]
        self._ips, self._methods, self._schemes = c["ip"], c["method"], c["scheme"]
        self._hosts, self._paths, self._catsets = c["host"], c["path"], c["catset"]
        self._rules, self._terms = c["rule"], c["term"]

    def _id(self, name: str, text: str) -> int:
        """Id of `text` in a dictionary, added if new (ids start at 1: never falsy)."""
        found = self.cache[name].get(text)
        return found if found is not None else self._miss(name, text)

    def _miss(self, name: str, text: str) -> int:
        new = self._new.setdefault(name, {})
        found = new.get(text)
        if found is None:
            insert, select = self._sql[name]
            row = self.conn.execute(insert, (text,)).fetchone()
            if row is None:  # already there (written by an earlier run)
                row = self.conn.execute(select, (text,)).fetchone()
            found = int(row[0])
            new[text] = found
        return found

    def _opt(self, name: str, text: str | None) -> int | None:
        return None if not text else self._id(name, text)

    def visit_row(self, v: VisitRecord) -> tuple[object, ...]:
        miss = self._miss
        user = v.user and (self._users.get(v.user) or miss("user", v.user)) or None
        device = v.device and (self._devices.get(v.device) or miss("device", v.device)) or None
        path = v.path if len(v.path) <= MAX_TEXT else v.path[:MAX_TEXT]
        catset_text = self._catset_text.get(v.categories)
        if catset_text is None:
            if len(self._catset_text) > 10_000:
                self._catset_text.clear()
            catset_text = self._catset_text[v.categories] = categoryset_text(v.categories)
        catset = catset_text and (self._catsets.get(catset_text) or miss("catset", catset_text))
        term = v.search_term[:MAX_TEXT] if v.search_term else None
        return (
            int(v.ts), user,
            self._groups.get(v.group) or miss("group", v.group),
            device,
            self._ips.get(v.client_ip) or miss("ip", v.client_ip),
            self._methods.get(v.method) or miss("method", v.method),
            self._schemes.get(v.scheme) or miss("scheme", v.scheme),
            self._hosts.get(v.host) or miss("host", v.host),
            self._paths.get(path) or miss("path", path),
            catset or None,
            1 if v.action == "block" else 0,
            self._rules.get(v.rule) or miss("rule", v.rule),
            term and (self._terms.get(term) or miss("term", term)) or None,
            int(v.bytes), v.flags, v.status,
        )

    def dns_row(self, q: DnsQueryRecord) -> tuple[object, ...]:
        return (
            int(q.ts), self._id("ip", q.client_ip), self._opt("device", q.device),
            self._opt("user", q.user), self._id("group", q.group), self._id("host", q.qname),
            int(q.qtype), 1 if q.action == "block" else 0, self._id("rule", q.rule),
            self._opt("upstream", q.upstream), q.latency_ms, q.rcode,
        )

    def write(self, records: Sequence[object], drops: dict[str, int]) -> None:
        """Write records and add `drops` to the meta counters, in one transaction."""
        conn = self.conn
        self._new = {}
        conn.execute("BEGIN IMMEDIATE")
        try:
            visits = [self.visit_row(r) for r in records if isinstance(r, VisitRecord)]
            queries = [self.dns_row(r) for r in records if isinstance(r, DnsQueryRecord)]
            if visits:
                conn.executemany(INSERT_VISIT, visits)
            if queries:
                conn.executemany(INSERT_DNS, queries)
            for key, count in drops.items():
                if count:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = COALESCE(value, 0) + excluded.value",
                        (key, count),
                    )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            new, self._new = self._new, {}
        for name, entries in new.items():
            cache = self.cache[name]
            if len(cache) + len(entries) > self.max_cache:
                cache.clear()
            cache.update(entries)


# -- reading back (reports, incident context, tests) -----------------------
_VISIT_COLUMNS = (
    "id, ts, user_name, group_name, device, client_ip, method, scheme, host, path, "
    "categories, action, rule, search_term, bytes, page_view, flagged, intercepted, status"
)
_DNS_COLUMNS = (
    "id, ts, client_ip, device, user_name, group_name, qname, qtype, action, rule, "
    "upstream, latency_ms, rcode"
)
Moment = float | datetime


def _unix(moment: Moment) -> int:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime")
        return int(moment.timestamp())
    return int(moment)


def _visit(row: Sequence[Any]) -> VisitRow:
    return VisitRow(row[0], VisitRecord(
        ts=float(row[1]), user=row[2], group=row[3], device=row[4], client_ip=row[5],
        method=row[6], scheme=row[7], host=row[8], path=row[9],
        categories=categoryset_parse(row[10]), action=row[11], rule=row[12],
        search_term=row[13], bytes=row[14], page_view=bool(row[15]), flagged=bool(row[16]),
        intercepted=bool(row[17]), status=row[18],
    ))


def _dns(row: Sequence[Any]) -> DnsQueryRow:
    return DnsQueryRow(row[0], DnsQueryRecord(
        ts=float(row[1]), client_ip=row[2], device=row[3], user=row[4], group=row[5],
        qname=row[6], qtype=row[7], action=row[8], rule=row[9], upstream=row[10],
        latency_ms=row[11], rcode=row[12],
    ))


async def read_visits(
    conn: aiosqlite.Connection, since: Moment, until: Moment, *, user: str | None = None,
    limit: int | None = None,
) -> list[VisitRow]:
    """Visits with `since <= ts < until` in time order, optionally of one user
    (the incident context query; it uses the (user, ts) index)."""
    sql, args = _visit_query(since, until, user, limit)
    async with conn.execute(sql, args) as cursor:
        return [_visit(row) for row in await cursor.fetchall()]


def read_visits_sync(
    conn: sqlite3.Connection, since: Moment, until: Moment, *, user: str | None = None,
    limit: int | None = None,
) -> list[VisitRow]:
    sql, args = _visit_query(since, until, user, limit)
    return [_visit(row) for row in conn.execute(sql, args).fetchall()]


def _visit_query(
    since: Moment, until: Moment, user: str | None, limit: int | None
) -> tuple[str, tuple[object, ...]]:
    where = "ts >= ? AND ts < ?"
    args: tuple[object, ...] = (_unix(since), _unix(until))
    if user is not None:
        where += " AND user_id = (SELECT id FROM principals WHERE name = ?)"
        args += (user,)
    sql = f"SELECT {_VISIT_COLUMNS} FROM visit_view WHERE {where} ORDER BY ts, id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, args


async def read_dns_queries(
    conn: aiosqlite.Connection, since: Moment, until: Moment
) -> list[DnsQueryRow]:
    sql = f"SELECT {_DNS_COLUMNS} FROM dns_query_view WHERE ts >= ? AND ts < ? ORDER BY ts, id"
    async with conn.execute(sql, (_unix(since), _unix(until))) as cursor:
        return [_dns(row) for row in await cursor.fetchall()]


async def dropped_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """`{"visits_dropped": n, "dns_queries_dropped": m}`: rows the writer could not log."""
    sql = "SELECT key, value FROM meta WHERE key IN ('visits_dropped', 'dns_queries_dropped')"
    async with conn.execute(sql) as cursor:
        found = {key: int(value or 0) for key, value in await cursor.fetchall()}
    return {key: found.get(key, 0) for key in ("visits_dropped", "dns_queries_dropped")}
