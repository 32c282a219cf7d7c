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

from proxy.dictionaries import DICTIONARIES, DictionaryIds

__all__ = ["ACTIONS", "DICTIONARIES", "DnsQueryRecord", "DnsQueryRow", "DnsRow", "INSERT_DNS", "INSERT_VISIT",
           "MAX_TEXT", "RowEncoder", "VisitRecord", "VisitRow", "categoryset_parse", "categoryset_text",
           "dns_row_of", "dropped_counts", "read_dns_queries", "read_visits", "read_visits_sync"]

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


# What the DNS resolver submits instead of a `DnsQueryRecord` (a tuple is several times cheaper
# to make on the event loop): (ts, client_ip, device, user, group, qname, qtype, action, rule,
# upstream, latency_ms, rcode), the fields of `DnsQueryRecord` in its order.
DnsRow = tuple[float, str, str | None, str | None, str, str, int, str, str, str | None, int | None, int | None]


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


# -- writing: records -> rows of dictionary ids ----------------------------
MAX_TEXT = 2_048  # longer paths / terms are cut: the log is not an archive of URLs

INSERT_VISIT = (
    "INSERT INTO visits (ts, user_id, group_id, device_id, ip_id, method_id, scheme_id, "
    "host_id, path_id, catset_id, action, rule_id, term_id, bytes, flags, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DNS = (
    "INSERT INTO dns_queries (ts, ip_id, device_id, user_id, group_id, host_id, qtype, "
    "action, rule_id, upstream_id, latency_ms, rcode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What the encoder runs: the same columns, but no parameter is ever None (the sqlite3 module sends a
# None through its adapter lookup, several times dearer than a number): a missing id is sent as 0
# (ids start at 1) and a missing status, latency or rcode as -1, and NULLIF stores them as NULL.
_WRITE_VISIT = (
    "INSERT INTO visits (ts, user_id, group_id, device_id, ip_id, method_id, scheme_id, "
    "host_id, path_id, catset_id, action, rule_id, term_id, bytes, flags, status) "
    "VALUES (?, NULLIF(?, 0), ?, NULLIF(?, 0), ?, ?, ?, ?, ?, NULLIF(?, 0), ?, ?, NULLIF(?, 0), ?, ?, NULLIF(?, -1))"
)
_WRITE_DNS = (
    "INSERT INTO dns_queries (ts, ip_id, device_id, user_id, group_id, host_id, qtype, "
    "action, rule_id, upstream_id, latency_ms, rcode) "
    "VALUES (?, ?, NULLIF(?, 0), NULLIF(?, 0), ?, ?, ?, ?, ?, NULLIF(?, 0), NULLIF(?, -1), NULLIF(?, -1))"
)
_ADD_META = ("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
             "DO UPDATE SET value = COALESCE(value, 0) + excluded.value")


def dns_row_of(q: DnsQueryRecord) -> DnsRow:
    """A `DnsQueryRecord` as the plain tuple the resolver submits (same fields, same order)."""
    return (q.ts, q.client_ip, q.device, q.user, q.group, q.qname, q.qtype, q.action, q.rule,
            q.upstream, q.latency_ms, q.rcode)


class RowEncoder:
    """Turns records into rows of dictionary ids and writes them (blocking).

    Owned by one thread (the writer's).  A batch's strings are resolved per
    dictionary, all together (`proxy.dictionaries.DictionaryIds`); each row is
    then one tuple of ids, and each table gets one `executemany`.  New
    dictionary ids join the cache only after their transaction commits, so a
    rolled-back batch leaves no stale id.
    """

    def __init__(self, conn: sqlite3.Connection, *, max_cache: int = 50_000) -> None:
        self.conn = conn
        self.dictionaries = DictionaryIds(conn, max_cache=max_cache)
        self._catset_text: dict[tuple[str, ...], str] = {}

    @property
    def cache(self) -> dict[str, dict[str, int]]:
        """The recently used ids per dictionary (the young generation)."""
        return self.dictionaries.cache

    def visit_rows(self, visits: list[VisitRecord]) -> list[tuple[object, ...]]:
        """The rows of `visits` for `_WRITE_VISIT` (ids; 0 or -1 for none)."""
        ids = self.dictionaries.ids
        paths = [v.path if len(v.path) <= MAX_TEXT else v.path[:MAX_TEXT] for v in visits]
        terms = [v.search_term[:MAX_TEXT] if v.search_term else None for v in visits]
        catsets = [self._catset(v.categories) for v in visits]
        users = ids("user", {v.user for v in visits if v.user})
        devices = ids("device", {v.device for v in visits if v.device})
        groups = ids("group", {v.group for v in visits})
        ips = ids("ip", {v.client_ip for v in visits})
        methods = ids("method", {v.method for v in visits})
        schemes = ids("scheme", {v.scheme for v in visits})
        hosts = ids("host", {v.host for v in visits})
        path_ids = ids("path", set(paths))
        catset_ids = ids("catset", {c for c in catsets if c})
        rules = ids("rule", {v.rule for v in visits})
        term_ids = ids("term", {t for t in terms if t})
        return [
            (int(v.ts), users[v.user] if v.user else 0, groups[v.group],
             devices[v.device] if v.device else 0, ips[v.client_ip],
             methods[v.method], schemes[v.scheme], hosts[v.host], path_ids[path],
             catset_ids[catset] if catset else 0, 1 if v.action == "block" else 0, rules[v.rule],
             term_ids[term] if term else 0, int(v.bytes), v.flags, -1 if v.status is None else int(v.status))
            for v, path, catset, term in zip(visits, paths, catsets, terms, strict=True)
        ]

    def _catset(self, categories: tuple[str, ...]) -> str:
        text = self._catset_text.get(categories)
        if text is None:
            if len(self._catset_text) > 10_000:
                self._catset_text.clear()
            text = self._catset_text[categories] = categoryset_text(categories)
        return text

    def dns_rows(self, rows: list[DnsRow]) -> list[tuple[object, ...]]:
        """The rows of DNS queries for `_WRITE_DNS` (ids; 0 or -1 for none)."""
        ids = self.dictionaries.ids
        ips = ids("ip", {r[1] for r in rows})
        devices = ids("device", {r[2] for r in rows if r[2]})
        users = ids("user", {r[3] for r in rows if r[3]})
        groups = ids("group", {r[4] for r in rows})
        hosts = ids("host", {r[5] for r in rows})
        rules = ids("rule", {r[8] for r in rows})
        upstreams = ids("upstream", {r[9] for r in rows if r[9]})
        return [
            (int(ts), ips[ip], devices[device] if device else 0,
             users[user] if user else 0, groups[group], hosts[name],
             int(qtype), 1 if action == "block" else 0, rules[rule],
             upstreams[upstream] if upstream else 0, -1 if latency is None else int(latency),
             -1 if rcode is None else int(rcode))
            for ts, ip, device, user, group, name, qtype, action, rule, upstream, latency, rcode in rows
        ]

    def write(self, records: Sequence[object], drops: dict[str, int]) -> None:
        """Write records (`VisitRecord`, `DnsQueryRecord` or `DnsRow`) and add `drops` to the
        meta counters, in one transaction."""
        visits: list[VisitRecord] = []
        queries: list[DnsRow] = []
        for r in records:
            if type(r) is tuple:
                if len(r) != 12:
                    raise TypeError(f"a DNS row has 12 fields, not {len(r)}")
                queries.append(r)
            elif isinstance(r, VisitRecord):
                visits.append(r)
            elif isinstance(r, DnsQueryRecord):
                queries.append(dns_row_of(r))
            else:
                raise TypeError(f"not a record of the log: {type(r).__name__}")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if visits:
                conn.executemany(_WRITE_VISIT, self.visit_rows(visits))
            if queries:
                conn.executemany(_WRITE_DNS, self.dns_rows(queries))
            for key, count in drops.items():
                if count:
                    conn.execute(_ADD_META, (key, count))
            conn.execute("COMMIT")
        except BaseException:
            self.dictionaries.rolled_back()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.dictionaries.committed()


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
