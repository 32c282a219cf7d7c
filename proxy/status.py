"""`schoolgate status`: the state of every part, one line each, OK / WARN / FAIL.

Each check reads what the parts leave behind, never the running process's
memory: the proxy's port (a TCP connect), the resolver (one UDP query for the
block page's name, answered locally), the database (opened read-only), the
outbox, the category index's metadata and the updater's state file beside it
(`INDEX.state.json`, `_last_update`), and the weekly report runs in `meta`
(written by `reports.schedule`).  The clock and the probes are injectable.

The proxy line names the running processes from their markers in `meta`
(`proxy.runmarker`); the store line counts the runs that never stopped cleanly.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from categories.index import CategoryIndex
from categories.updater import state_path
from proxy.context import Context
from proxy.db import open_db_sync, parse_iso, utc_iso
from proxy.runmarker import RUNNING_PREFIX

logger = logging.getLogger(__name__)

OK, WARN, FAIL = "OK", "WARN", "FAIL"
ALERT_WARN_AFTER = dt.timedelta(minutes=5)     # alerts go within a minute when the mail server answers
ALERT_FAIL_AFTER = dt.timedelta(hours=1)
REPORT_GRACE = dt.timedelta(hours=2)
Clock = Callable[[], dt.datetime]


@dataclass
class PartStatus:
    part: str
    level: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Status:
    parts: list[PartStatus]

    @property
    def ok(self) -> bool:
        return all(p.level == OK for p in self.parts)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "parts": [asdict(p) for p in self.parts]}


# -- probes ------------------------------------------------------------------------------------
def _dial_host(host: str) -> str:
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def tcp_listening(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when something accepts a connection on host:port, else why not."""
    try:
        with socket.create_connection((_dial_host(host), port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def dns_answers(host: str, port: int, name: str, timeout: float = 1.0) -> str | None:
    """None when a DNS server on host:port answers a query for `name` (any rcode), else why not."""
    qid = secrets.randbits(16)
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.strip(".").split(".") if part)
    packet = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\x00\x00\x01\x00\x01"
    dial = _dial_host(host)
    family = socket.AF_INET6 if ":" in dial else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (dial, port))
            while True:
                data, _ = sock.recvfrom(4096)
                if len(data) >= 12 and int.from_bytes(data[:2], "big") == qid and data[2] & 0x80:
                    return None
        except TimeoutError:
            return f"no answer within {timeout:g} s"
        except OSError as exc:
            return exc.strerror or type(exc).__name__


# -- checks ------------------------------------------------------------------------------------
def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _meta(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def check_proxy(ctx: Context, conn: sqlite3.Connection | None) -> PartStatus:
    p = ctx.settings.proxy
    why = tcp_listening(p.listen_host, p.listen_port)
    running = []
    if conn is not None:
        running = [json.loads(v) for (v,) in conn.execute("SELECT value FROM meta WHERE key LIKE ?",
                                                           (RUNNING_PREFIX + "%",))]
    details: dict[str, Any] = {"host": p.listen_host, "port": p.listen_port, "running": running}
    if why is not None:
        return PartStatus("proxy", FAIL, f"nothing listening on {p.listen_host}:{p.listen_port} ({why}); "
                                         "is `schoolgate run` running?", details)
    since = f" (pid {running[0]['pid']}, started {running[0]['started_at']})" if running else ""
    return PartStatus("proxy", OK, f"listening on {p.listen_host}:{p.listen_port}{since}", details)


def check_dns(ctx: Context) -> PartStatus:
    d = ctx.settings.dns
    details: dict[str, Any] = {"enabled": d.enabled, "host": d.listen_host, "port": d.listen_port}
    if not d.enabled:
        return PartStatus("dns", OK, "resolver disabled ([dns] enabled = false)", details)
    why = dns_answers(d.listen_host, d.listen_port, ctx.settings.proxy.block_page_name)
    if why is not None:
        return PartStatus("dns", FAIL, f"resolver on {d.listen_host}:{d.listen_port} does not answer: {why}", details)
    return PartStatus("dns", OK, f"resolver answering on {d.listen_host}:{d.listen_port}", details)


def check_store(ctx: Context, conn: sqlite3.Connection, now: dt.datetime) -> PartStatus:
    path = ctx.db_path
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tz = ctx.settings.school.timezone
    midnight = dt.datetime.combine(now.astimezone(tz).date(), dt.time(0), tz)
    today = int(conn.execute("SELECT COUNT(*) FROM visits WHERE ts >= ?", (int(midnight.timestamp()),)).fetchone()[0])
    dropped = int(_meta(conn, "visits_dropped") or 0)
    dns_dropped = int(_meta(conn, "dns_queries_dropped") or 0)
    row = conn.execute("SELECT value FROM meta WHERE key LIKE 'report_glance:%' ORDER BY key DESC LIMIT 1").fetchone()
    at_report = int(json.loads(row[0]).get("visits_dropped") or 0) if row else 0
    recent = max(0, dropped - at_report)
    details = {"path": str(path), "schema_version": version, "size_bytes": size, "visits_today": today,
               "visits_dropped": dropped, "dns_queries_dropped": dns_dropped, "visits_dropped_since_report": recent,
               "unclean_stops": int(_meta(conn, "unclean_stops") or 0)}
    text = (f"schema v{version}, {size / 1048576:.1f} MB, {today} visits today, {dropped} visits not logged"
            + (f" ({recent} since the last weekly report)" if recent else ""))
    return PartStatus("store", WARN if recent else OK, text, details)


def check_outbox(conn: sqlite3.Connection, now: dt.datetime) -> PartStatus:
    pending, failed = (int(conn.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = ?", (s,)).fetchone()[0])
                       for s in ("pending", "failed"))
    row = conn.execute("SELECT created_at, attempts, last_error FROM alert_outbox WHERE status = 'pending' "
                       "ORDER BY created_at LIMIT 1").fetchone()
    oldest = parse_iso(row[0]) if row else None
    age = (now - oldest).total_seconds() if oldest else 0.0
    details = {"pending": pending, "failed": failed, "oldest_pending_age_s": round(age) if oldest else None,
               "last_error": (row[2] or "") if row else ""}
    text = f"{pending} alert email(s) pending, {failed} failed"
    if oldest is not None:
        text += f"; oldest waiting {_age(age)}" + (f" ({row[2]})" if row and row[2] else "")
    level = OK
    if failed or age > ALERT_FAIL_AFTER.total_seconds():
        level = FAIL
    elif age > ALERT_WARN_AFTER.total_seconds():
        level = WARN
    return PartStatus("outbox", level, text, details)


def check_categories(ctx: Context, now: dt.datetime) -> PartStatus:
    path = ctx.index_path
    if not path.exists():
        return PartStatus("categories", FAIL, f"no category index at {path}: run `schoolgate init`", {})
    try:
        with CategoryIndex.open(path) as index:
            meta = dict(index.meta)
    except Exception as exc:  # noqa: BLE001 - a broken index is what status must show
        return PartStatus("categories", FAIL, f"the category index cannot be read: {exc}", {})
    built = parse_iso(meta.get("built_at"))
    age = (now - built).total_seconds() if built else None
    try:
        last = json.loads(state_path(path).read_text()).get("_last_update")
    except (OSError, ValueError, AttributeError):
        last = None
    details = {"built_at": meta.get("built_at"), "age_s": None if age is None else round(age),
               "entries": meta.get("entries"), "last_update": last}
    text = f"{meta.get('entries', '?')} names, built {_age(age) + ' ago' if age is not None else 'at an unknown time'}"
    level = OK
    limit = 2 * ctx.settings.categories.update_hours * 3600
    if age is None or age > limit:
        level = WARN
        text += f" (older than {limit // 3600} h: run `schoolgate categories update`)"
    if isinstance(last, dict):
        text += f"; last update {'ok' if last.get('ok') else 'FAILED'} at {last.get('at', '?')}"
        if not last.get("ok"):
            level = WARN
            text += f": {last.get('reason', '')}"
    else:
        text += "; no update recorded since init"
    return PartStatus("categories", level, text, details)


def check_reports(ctx: Context, conn: sqlite3.Connection, now: dt.datetime) -> PartStatus:
    from reports import runs
    from reports.schedule import due_week, send_time

    row = conn.execute("SELECT key FROM meta WHERE key LIKE ? ORDER BY key DESC LIMIT 1",
                       (runs.PREFIX + "%",)).fetchone()
    due = due_week(now, ctx.settings)
    overdue = now - send_time(due, ctx.settings) > REPORT_GRACE
    if row is None:
        return PartStatus("reports", OK, "no weekly report made yet", {"last": None})
    run = runs.get_run(conn, str(row[0])[len(runs.PREFIX):])
    assert run is not None
    details = {"last": run.label, "state": run.state, "at": utc_iso(run.at), "attempts": run.attempts,
               "error": run.error, "due": due.label}
    text = f"last weekly report {run.label}: {run.state} at {utc_iso(run.at)}"
    if run.error:
        text += f" ({run.error})"
    level = OK if run.state == "sent" else WARN
    if run.state == "failed" and run.attempts >= runs.MAX_ATTEMPTS:
        level = FAIL
    if run.label < due.label and overdue:
        level = WARN if level == OK else level
        text += f"; the report for {due.label} is overdue"
    return PartStatus("reports", level, text, details)


def collect(ctx: Context, now: dt.datetime | None = None) -> Status:
    """Every part's status (never raises for a part's problem: that part says FAIL)."""
    now = now or dt.datetime.now(dt.UTC)
    conn: sqlite3.Connection | None = None
    opened = ""
    if not ctx.db_path.exists():
        opened = f"no database at {ctx.db_path}: run `schoolgate init`"
    else:
        try:
            conn = open_db_sync(ctx.db_path, readonly=True, busy_timeout_ms=2000)
        except Exception as exc:  # noqa: BLE001 - unreadable, locked, newer schema...
            opened = f"the database {ctx.db_path} cannot be opened: {exc}"
    db = conn
    checks: list[tuple[str, Callable[[], PartStatus]]] = [
        ("proxy", lambda: check_proxy(ctx, db)),
        ("dns", lambda: check_dns(ctx)),
        ("store", lambda: check_store(ctx, db, now) if db else PartStatus("store", FAIL, opened)),
        ("outbox", lambda: check_outbox(db, now) if db else PartStatus("outbox", FAIL, "no database")),
        ("categories", lambda: check_categories(ctx, now)),
        ("reports", lambda: check_reports(ctx, db, now) if db else PartStatus("reports", FAIL, "no database")),
    ]
    parts = []
    try:
        for name, check in checks:
            try:
                parts.append(check())
            except Exception as exc:  # noqa: BLE001 - one broken part must not hide the others
                logger.debug("status check of %s failed", name, exc_info=True)
                parts.append(PartStatus(name, FAIL, f"could not be checked: {type(exc).__name__}: {exc}"))
    finally:
        if conn is not None:
            conn.close()
    return Status(parts)


def format_text(status: Status) -> str:
    lines = [f"{p.level:<5} {p.part:<11} {p.summary}" for p in status.parts]
    return "\n".join(lines) + "\n"
