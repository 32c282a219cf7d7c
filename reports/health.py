"""Filter health: is the filter itself working as the school believes?

* category lists: when the index was built (its metadata) and what the
  updater's state file beside it says (`INDEX.state.json`, when present);
* alerts not delivered (the outbox);
* visits not logged (`meta.visits_dropped`, counted by the writer);
* uptime: the share of the period the service was running, from the spans
  the scheduler records in `meta` (`reports.uptime`).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from categories.index import CategoryIndex
from proxy.db import parse_iso
from reports.period import Period
from reports.uptime import load_spans, uptime_seconds

logger = logging.getLogger(__name__)

STALE_LIST_DAYS = 7


@dataclass(frozen=True)
class ListHealth:
    built_at: dt.datetime | None
    age_days: float | None
    entries: int
    sources: list[dict[str, Any]]
    problems: list[str]             # update failures and index problems, in words
    stale: bool


@dataclass(frozen=True)
class Health:
    lists: ListHealth
    alerts_failed: int              # outbox rows that gave up
    alerts_waiting: int             # pending rows older than 15 minutes
    visits_dropped_total: int
    dns_dropped_total: int
    visits_dropped_period: int | None   # since the previous report, when known
    uptime_s: int
    period_s: int
    uptime_known: bool
    notes: list[str] = field(default_factory=list)

    @property
    def uptime_pct(self) -> float | None:
        if not self.uptime_known or self.period_s <= 0:
            return None
        return round(100.0 * self.uptime_s / self.period_s, 1)


def list_health(index_path: Path | None, now: dt.datetime) -> ListHealth:
    if index_path is None or not index_path.exists():
        return ListHealth(None, None, 0, [], ["no category index found: run `schoolgate init`"], True)
    problems: list[str] = []
    built: dt.datetime | None = None
    entries = 0
    sources: list[dict[str, Any]] = []
    try:
        with CategoryIndex.open(index_path) as index:
            meta = dict(index.meta)
        built = parse_iso(meta.get("built_at"))
        entries = int(meta.get("entries", 0))
        sources = [{"name": s.get("name", "?"), "total": s.get("total", 0)} for s in meta.get("sources", [])]
        problems += [str(p) for p in meta.get("problems", [])[:5]]
    except Exception as exc:  # noqa: BLE001 - a broken index is exactly what health must report
        problems.append(f"the category index could not be read: {exc}")
    problems += _state_problems(index_path.with_name(index_path.name + ".state.json"))
    age = None if built is None else round((now - built).total_seconds() / 86400, 1)
    stale = age is None or age > STALE_LIST_DAYS
    if age is not None and stale:
        problems.append(f"the category lists are {age:.0f} days old (updates should be daily)")
    return ListHealth(built, age, entries, sources, problems, stale)


def _state_problems(path: Path) -> list[str]:
    """Failures the updater recorded (a `last_update` with ok false, or a source `error`)."""
    if not path.exists():
        return []
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return [f"the updater's state file {path.name} could not be read: {exc}"]
    out = []
    last = state.get("_last_update") or state.get("last_update")
    if isinstance(last, dict) and last.get("ok") is False:
        out.append(f"last list update failed at {last.get('at', '?')}: {last.get('reason', 'no reason given')}")
    for name, src in state.items():
        if isinstance(src, dict) and src.get("error"):
            out.append(f"source {name}: {src['error']}")
    return out


def _meta_int(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    try:
        return int(row[0]) if row and row[0] is not None else 0
    except (TypeError, ValueError):
        return 0


def load_health(conn: sqlite3.Connection, period: Period, now: dt.datetime, index_path: Path | None,
                dropped_at_previous: int | None) -> Health:
    failed = conn.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'failed'").fetchone()[0]
    cutoff = (now - dt.timedelta(minutes=15)).astimezone(dt.UTC).isoformat(timespec="seconds")
    waiting = conn.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending' AND created_at < ?",
                           (cutoff,)).fetchone()[0]
    dropped = _meta_int(conn, "visits_dropped")
    spans = load_spans(conn)
    up = uptime_seconds(spans, period.start, min(period.end, now))
    period_s = int((min(period.end, now) - period.start).total_seconds())
    return Health(
        lists=list_health(index_path, now), alerts_failed=int(failed), alerts_waiting=int(waiting),
        visits_dropped_total=dropped, dns_dropped_total=_meta_int(conn, "dns_queries_dropped"),
        visits_dropped_period=None if dropped_at_previous is None else max(0, dropped - dropped_at_previous),
        uptime_s=up, period_s=max(0, period_s), uptime_known=bool(spans),
    )
