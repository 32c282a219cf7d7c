"""Retention (UK GDPR storage limitation): delete what is older than the school's periods.

| data                                   | kept for (config `[retention]`)   |
|----------------------------------------|-----------------------------------|
| visits, review requests                | `visits_days`                     |
| DNS queries                            | `dns_days`                        |
| alert emails (outbox) and alert hits   | `alerts_days`                     |
| incidents and their entries            | `incidents_days` (after the last activity) |

Deletes run in batches of `batch` rows, each its own short transaction, so the
visit writer never waits long for the database.  The incident entries are a
hash chain (`alerts.chain`): only a *prefix* of the chain whose incidents are
all past their period is removed, and the hash and id where the kept chain now
starts are recorded in `meta` (`incident_chain_anchor`) so the chain can still
be verified.  The audit trail is never purged (it is the record of who changed
what).  Dictionary rows (hosts, paths, search terms...) left without a visit
are removed by `vacuum_dictionaries`, only while the service is stopped: the
running writer caches their ids.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field

from config.schema import RetentionSettings
from proxy.audit import audit_sync
from proxy.db import transaction_sync, utc_iso

logger = logging.getLogger(__name__)

BATCH = 5_000
ANCHOR_KEY = "incident_chain_anchor"
SYSTEM = "schoolgate"


@dataclass
class PurgeResult:
    deleted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _batched(conn: sqlite3.Connection, sql: str, args: tuple[object, ...], batch: int, pause: float) -> int:
    """Run `DELETE ... WHERE id IN (SELECT id ... LIMIT ?)` until nothing is left; each batch one transaction."""
    total = 0
    while True:
        with transaction_sync(conn):
            deleted = conn.execute(sql, (*args, batch)).rowcount
        total += max(0, deleted)
        if deleted < batch:
            return total
        if pause:
            time.sleep(pause)


def purge(conn: sqlite3.Connection, retention: RetentionSettings, now: dt.datetime, *, batch: int = BATCH,
          pause: float = 0.01) -> PurgeResult:
    """Delete everything older than its retention period; returns what was deleted."""
    result = PurgeResult()
    visits_cut = now - dt.timedelta(days=retention.visits_days)
    dns_cut = now - dt.timedelta(days=retention.dns_days)
    alerts_cut = now - dt.timedelta(days=retention.alerts_days)
    incidents_cut = now - dt.timedelta(days=retention.incidents_days)
    result.cutoffs = {"visits": utc_iso(visits_cut), "dns_queries": utc_iso(dns_cut),
                      "alerts": utc_iso(alerts_cut), "incidents": utc_iso(incidents_cut)}
    d = result.deleted
    d["visits"] = _batched(conn, "DELETE FROM visits WHERE id IN (SELECT id FROM visits WHERE ts < ? LIMIT ?)",
                           (int(visits_cut.timestamp()),), batch, pause)
    d["dns_queries"] = _batched(
        conn, "DELETE FROM dns_queries WHERE id IN (SELECT id FROM dns_queries WHERE ts < ? LIMIT ?)",
        (int(dns_cut.timestamp()),), batch, pause)
    d["review_requests"] = _batched(
        conn, "DELETE FROM review_requests WHERE id IN (SELECT id FROM review_requests WHERE created_at < ? LIMIT ?)",
        (utc_iso(visits_cut),), batch, pause)
    if _has_table(conn, "alert_hits"):
        d["alert_hits"] = _batched(
            conn, "DELETE FROM alert_hits WHERE id IN (SELECT id FROM alert_hits WHERE at < ? LIMIT ?)",
            (utc_iso(alerts_cut),), batch, pause)
        kept_refs = " AND id NOT IN (SELECT outbox_id FROM alert_hits WHERE outbox_id IS NOT NULL)"
    else:
        kept_refs = ""
    d["alert_outbox"] = _batched(
        conn, f"DELETE FROM alert_outbox WHERE id IN (SELECT id FROM alert_outbox WHERE created_at < ?{kept_refs} "
        "LIMIT ?)", (utc_iso(alerts_cut),), batch, pause)
    d["incidents"], d["incident_entries"] = _purge_incidents(conn, incidents_cut)
    if result.total:
        with transaction_sync(conn):
            audit_sync(conn, actor=SYSTEM, action="retention.purge", subject="store",
                       details={"deleted": d, "cutoffs": result.cutoffs},
                       reason="retention periods of the config ([retention])", now=now)
    logger.info("retention purge: %s", ", ".join(f"{k} {v}" for k, v in d.items() if v) or "nothing to delete")
    return result


def _purge_incidents(conn: sqlite3.Connection, cutoff: dt.datetime) -> tuple[int, int]:
    """Delete incidents whose every entry and last activity are before `cutoff`, as a prefix of the chain."""
    cut = utc_iso(cutoff)
    has_last = any(r[1] == "last_at" for r in conn.execute("PRAGMA table_info(incidents)"))
    last = "COALESCE(i.last_at, i.opened_at)" if has_last else "i.opened_at"
    old = {int(r[0]) for r in conn.execute(
        f"SELECT i.id FROM incidents i WHERE {last} < ? AND NOT EXISTS "
        "(SELECT 1 FROM incident_entries e WHERE e.incident_id = i.id AND e.at >= ?)", (cut, cut))}
    if not old:
        return 0, 0
    # the longest prefix of the chain made only of entries of old incidents
    prefix_end = 0
    prefix_hash = ""
    for entry_id, incident_id, digest in conn.execute("SELECT id, incident_id, hash FROM incident_entries ORDER BY id"):
        if int(incident_id) not in old:
            break
        prefix_end, prefix_hash = int(entry_id), str(digest)
    after = {int(r[0]) for r in conn.execute("SELECT DISTINCT incident_id FROM incident_entries WHERE id > ?",
                                             (prefix_end,))}
    doomed = sorted(old - after)   # old incidents with no entry outside the prefix
    if not doomed:
        return 0, 0
    marks = ",".join("?" * len(doomed))
    with transaction_sync(conn):
        entries = 0
        if prefix_end:
            conn.execute("DROP TRIGGER IF EXISTS incident_entries_no_delete")
            entries = conn.execute("DELETE FROM incident_entries WHERE id <= ?", (prefix_end,)).rowcount
            conn.execute("CREATE TRIGGER incident_entries_no_delete BEFORE DELETE ON incident_entries BEGIN "
                         "SELECT RAISE(ABORT, 'incident_entries is append-only'); END")
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                         "value = excluded.value", (ANCHOR_KEY, json.dumps(
                             {"first_id": prefix_end + 1, "prev_hash": prefix_hash, "purged_before": cut})))
        if _has_table(conn, "alert_hits"):
            conn.execute(f"UPDATE alert_hits SET incident_id = NULL WHERE incident_id IN ({marks})", doomed)
        conn.execute(f"UPDATE alert_outbox SET incident_id = NULL WHERE incident_id IN ({marks})", doomed)
        removed = conn.execute(f"DELETE FROM incidents WHERE id IN ({marks})", doomed).rowcount
    return removed, entries


def vacuum_dictionaries(conn: sqlite3.Connection) -> dict[str, int]:
    """Remove dictionary rows no visit or DNS query uses any more.  Only while the service is stopped."""
    uses = {
        "hosts": ("visits.host_id", "dns_queries.host_id"),
        "paths": ("visits.path_id",),
        "terms": ("visits.term_id",),
        "principals": ("visits.user_id", "dns_queries.user_id"),
        "devices_seen": ("visits.device_id", "dns_queries.device_id"),
        "addresses": ("visits.ip_id", "dns_queries.ip_id"),
    }
    out: dict[str, int] = {}
    for table, refs in uses.items():
        used = " UNION ".join(f"SELECT {r.split('.')[1]} FROM {r.split('.')[0]} WHERE {r.split('.')[1]} IS NOT NULL"
                              for r in refs)
        with transaction_sync(conn):
            out[table] = conn.execute(f"DELETE FROM {table} WHERE id NOT IN ({used})").rowcount
    logger.info("dictionaries vacuumed: %s", out)
    return out
