"""When the service was running: spans kept in `meta`, for the report's uptime figure.

The scheduler (`reports.schedule`) calls `start_span` when the service starts
and `heartbeat` every minute; a span is [started, last seen].  A crash leaves
its span ending at the last heartbeat, so uptime is never overstated by more
than one heartbeat interval.  Spans older than `KEEP_DAYS` are dropped.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3

from proxy.db import parse_iso, transaction_sync, utc_iso

META_KEY = "service_uptime"
KEEP_DAYS = 400
MAX_SPANS = 5_000

Span = tuple[dt.datetime, dt.datetime]


def load_spans(conn: sqlite3.Connection) -> list[Span]:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
    if row is None or not row[0]:
        return []
    try:
        raw = json.loads(row[0])
    except ValueError:
        return []
    spans: list[Span] = []
    for item in raw:
        start, last = parse_iso(item[0]), parse_iso(item[1])
        if start is not None and last is not None:
            spans.append((start, last))
    return spans


def _save(conn: sqlite3.Connection, spans: list[Span], now: dt.datetime) -> None:
    keep_after = now - dt.timedelta(days=KEEP_DAYS)
    kept = [(a, b) for a, b in spans if b >= keep_after][-MAX_SPANS:]
    text = json.dumps([[utc_iso(a), utc_iso(b)] for a, b in kept])
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (META_KEY, text))


def start_span(conn: sqlite3.Connection, now: dt.datetime) -> None:
    """The service has started: open a new span."""
    with transaction_sync(conn):
        spans = load_spans(conn)
        spans.append((now, now))
        _save(conn, spans, now)


def heartbeat(conn: sqlite3.Connection, now: dt.datetime) -> None:
    """The service is still running: extend the newest span to `now`."""
    with transaction_sync(conn):
        spans = load_spans(conn)
        if not spans:
            spans.append((now, now))
        else:
            start, last = spans[-1]
            spans[-1] = (start, max(last, now))
        _save(conn, spans, now)


def uptime_seconds(spans: list[Span], start: dt.datetime, end: dt.datetime) -> int:
    """Seconds of [start, end) covered by the spans (overlaps counted once)."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if b > start and a < end)
    total = 0.0
    current: Span | None = None
    for a, b in clipped:
        if current is None or a > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (a, b)
        else:
            current = (current[0], max(current[1], b))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return int(total)
