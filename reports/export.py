"""Subject access export: everything the store holds about one person, as CSV and JSON.

Sections: the register entry, devices assigned to them, their visits and DNS
queries, the incidents about them with their recorded entries, the alert hits
and alert emails of those incidents, their review requests, overrides they
granted, and the audit rows about them (subject `user:NAME`) or made by them.
Each section is one CSV; `export.json` holds them all.  Visits are streamed,
never held in memory all at once.  Illegal-tier addresses are withheld, as in
every report.  The folder is 0700 and its files 0600.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from proxy.db import utc_iso
from reports.files import private_dir, private_file, write_csv
from reports.redact import WITHHELD, is_illegal, shown_term, shown_url

logger = logging.getLogger(__name__)


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class ExportError(LookupError):
    """Nobody of that name in the store."""


@dataclass(frozen=True)
class Section:
    name: str
    header: list[str]
    sql: str
    args: tuple[object, ...]


def _has(conn: sqlite3.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (table,)).fetchone() is not None


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _table_section(conn: sqlite3.Connection, name: str, table: str, where: str, args: tuple[object, ...],
                   order: str = "id") -> Section:
    cols = _columns(conn, table)
    return Section(name, cols, f"SELECT {', '.join(cols)} FROM {table} WHERE {where} ORDER BY {order}", args)


VISIT_HEADER = ["time_utc", "group", "device", "client_ip", "method", "url", "categories", "action", "rule",
                "search_term", "bytes", "page_view", "flagged", "status"]
DNS_HEADER = ["time_utc", "client_ip", "device", "group", "name", "qtype", "action", "rule", "rcode"]


def _sections(conn: sqlite3.Connection, name: str) -> list[Section]:
    key = f"user:{name}"
    incidents = "SELECT id FROM incidents WHERE user_name = ?"
    out = [
        _table_section(conn, "register", "users", "username = ?", (name,)),
        _table_section(conn, "devices", "devices", "assigned_user = ?", (name,)),
        _table_section(conn, "incidents", "incidents", "user_name = ?", (name,)),
        _table_section(conn, "incident_entries", "incident_entries", f"incident_id IN ({incidents})", (name,)),
    ]
    if _has(conn, "alert_hits"):
        out.append(_table_section(conn, "alert_hits", "alert_hits", "user_name = ?", (name,)))
        outbox_where = (f"incident_id IN ({incidents}) OR id IN (SELECT outbox_id FROM alert_hits "
                        "WHERE user_name = ? AND outbox_id IS NOT NULL)")
        out.append(_table_section(conn, "alert_emails", "alert_outbox", outbox_where, (name, name)))
    else:
        out.append(_table_section(conn, "alert_emails", "alert_outbox", f"incident_id IN ({incidents})", (name,)))
    out += [
        _table_section(conn, "review_requests", "review_requests", "user_name = ?", (name,)),
        _table_section(conn, "overrides_granted", "overrides", "by = ?", (name,)),
        _table_section(conn, "audit_about", "audit_log", "subject = ?", (key,)),
        _table_section(conn, "audit_by", "audit_log", "actor = ?", (name,)),
    ]
    return out


OTHERS = "[withheld: concerns other people too]"


def _shared_outbox(conn: sqlite3.Connection, name: str) -> set[int]:
    """Alert emails that also report hits of other people (digests, summaries)."""
    if not _has(conn, "alert_hits"):
        return set()
    return {int(r[0]) for r in conn.execute(
        "SELECT DISTINCT outbox_id FROM alert_hits WHERE outbox_id IS NOT NULL AND COALESCE(user_name, '') != ? "
        "AND outbox_id IN (SELECT outbox_id FROM alert_hits WHERE user_name = ?)", (name, name))}


def _rows(conn: sqlite3.Connection, section: Section, name: str, shared: set[int]) -> Iterator[list[object]]:
    """A section's rows, with illegal-tier addresses and other people's data withheld."""
    illegal_cols = {"url", "host", "search_term"}
    for row in conn.execute(section.sql, section.args):
        record = dict(zip(section.header, row, strict=True))
        cats = [c for c in str(record.get("categories") or "").split(",") if c]
        if is_illegal(cats, str(record.get("rule", ""))) or record.get("kind") == "illegal":
            record = {c: WITHHELD if c in illegal_cols and v else v for c, v in record.items()}
        if section.name == "alert_emails" and record.get("id") in shared:
            record.update({c: OTHERS for c in ("subject", "body_text", "body_html", "recipients") if c in record})
        if section.name == "audit_by" and str(record.get("subject", "")).startswith("user:") \
                and record.get("subject") != f"user:{name}":
            record.update({"subject": OTHERS, "details": OTHERS, "reason": OTHERS})
        yield list(record.values())


def _visits(conn: sqlite3.Connection, user_id: int) -> Iterator[list[object]]:
    sql = ("SELECT v.ts, g.name, d.key, a.ip, m.name, s.name, h.name, pa.text, c.text, v.action, r.text, t.text, "
           "v.bytes, v.flags, v.status FROM visits v JOIN groups g ON g.id = v.group_id "
           "LEFT JOIN devices_seen d ON d.id = v.device_id JOIN addresses a ON a.id = v.ip_id "
           "JOIN methods m ON m.id = v.method_id JOIN schemes s ON s.id = v.scheme_id JOIN hosts h ON h.id = v.host_id "
           "JOIN paths pa ON pa.id = v.path_id LEFT JOIN categorysets c ON c.id = v.catset_id "
           "JOIN rules r ON r.id = v.rule_id LEFT JOIN terms t ON t.id = v.term_id "
           "WHERE v.user_id = ? ORDER BY v.user_id, v.ts")
    for ts, group, device, ip, method, scheme, host, path, catset, action, rule, term, size, flags, status in \
            conn.execute(sql, (user_id,)):
        cats = tuple(str(catset).split(",")) if catset else ()
        yield [utc_iso(dt.datetime.fromtimestamp(ts, dt.UTC)), group, device or "", ip, method,
               shown_url(scheme, host, path, cats, rule), ",".join(cats), "block" if action == 1 else "allow", rule,
               shown_term(term, cats, rule) or "", size, int(bool(flags & 1)), int(bool(flags & 2)), status]


def _dns(conn: sqlite3.Connection, user_id: int) -> Iterator[list[object]]:
    sql = ("SELECT q.ts, a.ip, d.key, g.name, h.name, q.qtype, q.action, r.text, q.rcode FROM dns_queries q "
           "JOIN addresses a ON a.id = q.ip_id LEFT JOIN devices_seen d ON d.id = q.device_id "
           "JOIN groups g ON g.id = q.group_id JOIN hosts h ON h.id = q.host_id JOIN rules r ON r.id = q.rule_id "
           "WHERE q.user_id = ? ORDER BY q.ts")
    for ts, ip, device, group, host, qtype, action, rule, rcode in conn.execute(sql, (user_id,)):
        shown = WITHHELD if is_illegal((), rule) else host
        yield [utc_iso(dt.datetime.fromtimestamp(ts, dt.UTC)), ip, device or "", group, shown, qtype,
               "block" if action == 1 else "allow", rule, rcode]


def _write_json(path: Path, person: str, now: dt.datetime, parts: Sequence[tuple[str, list[str], Path]]) -> None:
    """`export.json`: {"person", "exported_at", "sections": {name: [row objects]}}, streamed from the CSVs
    (the CSVs' guard against spreadsheet formulas, a leading quote, is taken off again)."""
    with private_file(path) as out:
        out.write(json.dumps({"person": person, "exported_at": utc_iso(now)})[:-1] + ', "sections": {')
        for i, (name, header, csv_path) in enumerate(parts):
            out.write(("," if i else "") + json.dumps(name) + ": [")
            with csv_path.open(encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                next(reader, None)
                for j, row in enumerate(reader):
                    values = [v[1:] if v[:1] == "'" and v[1:2] in _FORMULA else v for v in row]
                    out.write(("," if j else "") + json.dumps(dict(zip(header, values, strict=True)),
                                                              ensure_ascii=False))
            out.write("]")
        out.write("}}\n")


def export_user(conn: sqlite3.Connection, name: str, out_dir: Path, now: dt.datetime) -> Path:
    """Write the export of `name` into a new folder under `out_dir`; returns the folder."""
    known = conn.execute("SELECT 1 FROM users WHERE username = ? UNION SELECT 1 FROM principals WHERE name = ? "
                         "UNION SELECT 1 FROM incidents WHERE user_name = ?", (name, name, name)).fetchone()
    if known is None:
        raise ExportError(f"nothing is held about {name!r} (not in the register, the logs or the incidents)")
    safe = "".join(ch if ch.isalnum() or ch in ".-_" else "_" for ch in name)
    folder = private_dir(private_dir(out_dir) / f"export-{safe}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}")
    parts: list[tuple[str, list[str], Path]] = []
    shared = _shared_outbox(conn, name)
    for section in _sections(conn, name):
        path = folder / f"{section.name}.csv"
        write_csv(path, section.header, _rows(conn, section, name, shared))
        parts.append((section.name, section.header, path))
    row = conn.execute("SELECT id FROM principals WHERE name = ?", (name,)).fetchone()
    for label, header, rows in (("visits", VISIT_HEADER, _visits), ("dns_queries", DNS_HEADER, _dns)):
        path = folder / f"{label}.csv"
        write_csv(path, header, rows(conn, int(row[0])) if row else iter(()))
        parts.append((label, header, path))
    _write_json(folder / "export.json", name, now, parts)
    logger.info("subject access export of %s written to %s", name, folder)
    return folder
