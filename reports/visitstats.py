"""The visit aggregates of a period, in four passes that suit ten million rows.

A week of a large school is about ten million visits.  SQLite has no hash
aggregation: a GROUP BY over every row sorts them all, which costs far more
than reading them.  So three passes are shaped to avoid that:

1. `overview`: one linear pass of sums and a distinct count (visits, page
   views, register devices);
2. `attention`: only the rows that need attention (blocked, flagged,
   circumvention, no register device: a few percent), as small integers,
   aggregated in Python into buckets (category set, group, rule, hour),
   per-user attempt counts and per-address counts;
3. `user_visits`: per-user visit counts from the (user, ts) index, without
   touching the table;
then `reports.events` reads the strings of the listed events by id.

The rows of a period are read by their id range (one writer appends visits in
time order) with the `ts` condition kept in every query, so a row is never
counted in the wrong period.  The range's ends are the smallest and largest
ids of the first and last hour of the period's rows, found through the `ts`
index: a row is missed only if the clock stepped back by over an hour at the
period's very edge.
"""
from __future__ import annotations

import logging
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from reports.period import Period

logger = logging.getLogger(__name__)

CIRCUMVENTION_RULE_PREFIX = "circumvention."
BARE_IP_RULE = "bare_ip"
NOT_ALLOWED_RULE = "device.not_allowed"
EDGE_S = 3600

Ids = tuple[int, int] | None


@dataclass(frozen=True)
class Dictionaries:
    """The small dictionaries, id -> text, and the ids the passes test for."""

    groups: dict[int, str]
    rules: dict[int, str]
    catsets: dict[int, tuple[str, ...]]
    circumvention_rules: frozenset[int]
    circumvention_sets: frozenset[int]
    not_allowed_rules: frozenset[int]


def load_dictionaries(conn: sqlite3.Connection, circumvention_categories: Iterable[str]) -> Dictionaries:
    groups = {int(i): str(n) for i, n in conn.execute("SELECT id, name FROM groups")}
    rules = {int(i): str(t) for i, t in conn.execute("SELECT id, text FROM rules")}
    catsets = {int(i): tuple(str(t).split(",")) if t else ()
               for i, t in conn.execute("SELECT id, text FROM categorysets")}
    circ = frozenset(circumvention_categories)
    return Dictionaries(
        groups, rules, catsets,
        circumvention_rules=frozenset(i for i, t in rules.items() if is_circumvention_rule(t)),
        circumvention_sets=frozenset(i for i, cats in catsets.items() if circ & set(cats)),
        not_allowed_rules=frozenset(i for i, t in rules.items() if t == NOT_ALLOWED_RULE),
    )


def is_circumvention_rule(rule: str) -> bool:
    return rule.startswith(CIRCUMVENTION_RULE_PREFIX) or rule == BARE_IP_RULE


def id_range(conn: sqlite3.Connection, period: Period, table: str = "visits") -> Ids:
    """The id range holding the period's rows (None when it has none); see the module docstring."""
    a, b = period.start_ts, period.end_ts
    first = conn.execute(f"SELECT ts FROM {table} WHERE ts >= ? AND ts < ? ORDER BY ts LIMIT 1", (a, b)).fetchone()
    if first is None:
        return None
    last = conn.execute(f"SELECT ts FROM {table} WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 1", (a, b)).fetchone()
    lo = conn.execute(f"SELECT MIN(id) FROM {table} WHERE ts >= ? AND ts < ?",
                      (first[0], min(b, first[0] + EDGE_S))).fetchone()[0]
    hi = conn.execute(f"SELECT MAX(id) FROM {table} WHERE ts > ? AND ts <= ?",
                      (max(a - 1, last[0] - EDGE_S), last[0])).fetchone()[0]
    return int(lo), int(hi)


def in_list(ids: Iterable[int]) -> str:
    """`(1,2,3)` for an SQL IN; `(NULL)` when empty (matches nothing)."""
    text = ",".join(str(int(i)) for i in sorted(ids))
    return f"({text or 'NULL'})"


def circumvention_sql(d: Dictionaries, alias: str = "") -> str:
    """SQL true for a circumvention attempt: a circumvention rule, or a block of a circumvention category."""
    a = f"{alias}." if alias else ""
    return (f"({a}rule_id IN {in_list(d.circumvention_rules)} OR "
            f"({a}action = 1 AND {a}catset_id IN {in_list(d.circumvention_sets)}))")


_RANGE = "id BETWEEN ? AND ? AND ts >= ? AND ts < ?"


def _args(period: Period, ids: tuple[int, int]) -> tuple[int, int, int, int]:
    return (ids[0], ids[1], period.start_ts, period.end_ts)


@dataclass(frozen=True)
class Overview:
    visits: int = 0
    page_views: int = 0
    register_devices: int = 0       # distinct register devices seen


def overview(conn: sqlite3.Connection, period: Period, ids: Ids) -> Overview:
    if ids is None:
        return Overview()
    row = conn.execute(f"SELECT COUNT(*), SUM(flags & 1), COUNT(DISTINCT device_id) FROM visits WHERE {_RANGE}",
                       _args(period, ids)).fetchone()
    return Overview(int(row[0]), int(row[1] or 0), int(row[2]))


@dataclass
class Address:
    """A client address seen with no register device."""

    ip_id: int
    visits: int = 0
    first_ts: int = 2**62
    last_ts: int = 0
    refused: int = 0            # visits refused as a pupil-owned device
    user_ids: set[int] = field(default_factory=set)
    group_ids: Counter[int] = field(default_factory=Counter)


@dataclass
class Attention:
    """Aggregates of the rows that need attention: blocked, flagged, circumvention, no register device."""

    blocked: int = 0
    flagged: int = 0
    circumvention: int = 0
    buckets: Counter[tuple[int | None, int, int, int]] = field(default_factory=Counter)  # catset, group, rule, hour
    user_blocked: Counter[int] = field(default_factory=Counter)
    user_attempts: Counter[int] = field(default_factory=Counter)      # blocked AND (flagged OR circumvention)
    user_circumvention: Counter[int] = field(default_factory=Counter)
    user_days: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # UTC days with attempts
    event_ids: list[int] = field(default_factory=list)                # flagged or circumvention
    flagged_kinds: Counter[tuple[int | None, int, bool]] = field(default_factory=Counter)  # catset, rule, has term
    addresses: dict[int, Address] = field(default_factory=dict)       # ip id -> no register device


def attention(conn: sqlite3.Connection, period: Period, d: Dictionaries, ids: Ids) -> Attention:
    out = Attention()
    if ids is None:
        return out
    circ_rules, circ_sets, refused_rules = d.circumvention_rules, d.circumvention_sets, d.not_allowed_rules
    sql = (f"SELECT id, ts, user_id, device_id, ip_id, group_id, catset_id, rule_id, action, flags, "
           f"term_id IS NOT NULL FROM visits "
           f"WHERE {_RANGE} AND (action = 1 OR (flags & 2) != 0 OR device_id IS NULL "
           f"OR rule_id IN {in_list(circ_rules)})")
    buckets, user_blocked, user_attempts, addresses = out.buckets, out.user_blocked, out.user_attempts, out.addresses
    for vid, ts, uid, did, ipid, gid, catset, rule, action, flags, has_term in conn.execute(sql, _args(period, ids)):
        if did is None:
            addr = addresses.get(ipid)
            if addr is None:
                addr = addresses[ipid] = Address(ipid)
            addr.visits += 1
            addr.first_ts = min(addr.first_ts, ts)
            addr.last_ts = max(addr.last_ts, ts)
            addr.group_ids[gid] += 1
            if uid is not None:
                addr.user_ids.add(uid)
            if rule in refused_rules:
                addr.refused += 1
        flagged = bool(flags & 2)
        circ = rule in circ_rules or (action == 1 and catset in circ_sets)
        if action == 1:
            out.blocked += 1
            buckets[(catset, gid, rule, ts - ts % 3600)] += 1
            if uid is not None:
                user_blocked[uid] += 1
                if flagged or circ:
                    user_attempts[uid] += 1
                    out.user_days[uid].add(ts // 86400)
        if flagged:
            out.flagged += 1
            out.flagged_kinds[(catset, rule, bool(has_term))] += 1
        if circ:
            out.circumvention += 1
            if uid is not None:
                out.user_circumvention[uid] += 1
        if flagged or circ:
            out.event_ids.append(vid)
    return out


def user_visits(conn: sqlite3.Connection, period: Period) -> dict[int, int]:
    """user id -> visits in the period, for users with any (the (user, ts) index alone)."""
    sql = ("SELECT p.id, (SELECT COUNT(*) FROM visits v WHERE v.user_id = p.id AND v.ts >= ? AND v.ts < ?) "
           "FROM principals p")
    return {int(uid): int(n) for uid, n in conn.execute(sql, (period.start_ts, period.end_ts)) if n}


def names(conn: sqlite3.Connection, table: str, column: str, ids: Iterable[int]) -> dict[int, str]:
    """Texts of some dictionary ids (one query per 500)."""
    wanted = sorted({int(i) for i in ids})
    out: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        sql = f"SELECT id, {column} FROM {table} WHERE id IN ({','.join('?' * len(part))})"
        out.update({int(i): str(t) for i, t in conn.execute(sql, part)})
    return out
