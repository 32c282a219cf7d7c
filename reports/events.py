"""The visits a report lists one by one: flagged hits and circumvention attempts.

Each comes back as an `Event` with its strings joined in, its local time, its
UK category words and its address already redacted for the illegal tier, so
no template or CSV writer can print what it must not.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from categories.taxonomy import describe, uk_categories
from reports.period import Period
from reports.redact import is_illegal, shown_url, shown_term
from reports.visitstats import is_circumvention_rule


@dataclass(frozen=True, slots=True)
class Event:
    visit_id: int
    ts: int
    local: dt.datetime
    user: str | None
    group: str
    device: str | None
    client_ip: str
    categories: tuple[str, ...]
    action: str                 # allow | block
    rule: str
    url: str                    # redacted for the illegal tier
    term: str | None            # redacted for the illegal tier
    flagged: bool
    circumvention: bool
    illegal: bool
    uk: tuple[str, ...]         # UK filtering categories
    words: str                  # plain words for the categories
    incident_ref: str = ""
    incident_status: str = ""
    topic: str = ""             # the watch list a search term matched

    @property
    def who(self) -> str:
        return self.user or "(not logged in)"

    @property
    def where(self) -> str:
        return self.device or self.client_ip

    @property
    def category_text(self) -> str:
        if self.illegal:
            return "illegal content (IWF / CTIRU list)"
        if self.term and self.topic:
            return f"search on the {self.topic.replace('_', ' ')} watch list"
        if self.circumvention and not self.categories:
            return "getting round the filter"
        return self.words or "uncategorised"


_SELECT = """
    SELECT v.id, v.ts, p.name, g.name, d.key, a.ip, s.name, h.name, pa.text, c.text, v.action, r.text,
           t.text, v.flags
    FROM visits v
    LEFT JOIN principals p ON p.id = v.user_id
    JOIN groups g ON g.id = v.group_id
    LEFT JOIN devices_seen d ON d.id = v.device_id
    JOIN addresses a ON a.id = v.ip_id
    JOIN schemes s ON s.id = v.scheme_id
    JOIN hosts h ON h.id = v.host_id
    JOIN paths pa ON pa.id = v.path_id
    LEFT JOIN categorysets c ON c.id = v.catset_id
    JOIN rules r ON r.id = v.rule_id
    LEFT JOIN terms t ON t.id = v.term_id"""


def event_from_row(row: tuple[object, ...], tz: ZoneInfo, circ_categories: frozenset[str]) -> Event:
    (vid, ts, user, group, device, ip, scheme, host, path, catset, action, rule, term, flags) = row
    cats = tuple(str(catset).split(",")) if catset else ()
    rule_s, action_s = str(rule), "block" if action == 1 else "allow"
    illegal = is_illegal(cats, rule_s)
    circ = is_circumvention_rule(rule_s) or (action_s == "block" and bool(circ_categories & set(cats)))
    return Event(
        visit_id=int(str(vid)), ts=int(str(ts)),
        local=dt.datetime.fromtimestamp(int(str(ts)), tz),
        user=None if user is None else str(user), group=str(group),
        device=None if device is None else str(device), client_ip=str(ip), categories=cats,
        action=action_s, rule=rule_s, url=shown_url(str(scheme), str(host), str(path), cats, rule_s),
        term=shown_term(None if term is None else str(term), cats, rule_s),
        flagged=bool(int(str(flags)) & 2), circumvention=circ, illegal=illegal,
        uk=tuple(uk_categories(list(cats))),
        words=", ".join(dict.fromkeys(describe(c) for c in cats)),
    )


def load_events(conn: sqlite3.Connection, period: Period, event_ids: list[int],
                circ_categories: frozenset[str]) -> list[Event]:
    """The visits `event_ids` (flagged hits and circumvention attempts) with their strings, in time order."""
    rows: list[tuple[object, ...]] = []
    for start in range(0, len(event_ids), 500):
        part = event_ids[start:start + 500]
        sql = f"{_SELECT} WHERE v.id IN ({','.join('?' * len(part))})"
        rows += [tuple(row) for row in conn.execute(sql, part)]
    events = [event_from_row(row, period.tz, circ_categories) for row in rows]
    events.sort(key=lambda e: (e.ts, e.visit_id))
    return events
