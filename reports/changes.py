"""What people changed in the period, from the audit trail and the review requests.

Overrides granted, category list tuning, register changes (consent, bans,
withdrawals, imports) come from `audit_log`, the append-only record that
every one of those changes writes in its own transaction.  Review requests
come from their table: those made in the period and those decided in it.
"""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from proxy.db import parse_iso
from reports.period import Period
from reports.redact import WITHHELD, is_illegal


@dataclass(frozen=True, slots=True)
class Change:
    at: dt.datetime             # school time
    actor: str
    action: str
    subject: str
    summary: str                # one line a head teacher reads
    reason: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    created: dt.datetime
    host: str                   # withheld for the illegal tier
    user: str | None
    device: str | None
    group: str | None
    categories: str
    reason_text: str
    status: str
    decided: dt.datetime | None
    decided_by: str | None


@dataclass(frozen=True)
class Changes:
    overrides: list[Change]
    lists: list[Change]
    register: list[Change]
    reviews: list[Review]


OVERRIDE_PREFIXES = ("override.",)
LIST_PREFIXES = ("lists.", "categories.")
REGISTER_PREFIXES = ("user.", "device.")


def _local(text: str | None, tz: ZoneInfo) -> dt.datetime | None:
    moment = parse_iso(text)
    return None if moment is None else moment.astimezone(tz)


def _override_summary(subject: str, d: dict[str, Any], tz: ZoneInfo) -> str:
    what = d.get("category") or d.get("domain") or "?"
    group = subject.split(":", 1)[1] if subject.startswith("group:") else subject
    minutes = d.get("minutes")
    length = f" for {minutes} minutes" if minutes else ""
    return f"{what} allowed for {group}{length}"


def _register_summary(action: str, subject: str, d: dict[str, Any]) -> str:
    name = subject.split(":", 1)[1] if ":" in subject else subject
    verb = action.split(".", 1)[1] if "." in action else action
    words = {"consent": "parental consent recorded", "consent_withdrawn": "parental consent withdrawn",
             "ban": "access removed (ban)", "revoke": "access withdrawn", "lift": "ban or withdrawal lifted",
             "import_add": "added by import", "import_update": "changed by import"}.get(verb, verb)
    if verb == "ban":
        until = (d.get("after") or {}).get("status_until")
        words += f" until {until}" if until else " until lifted"
    if verb == "import_update":
        keys = sorted((d.get("after") or {}).keys())
        if keys:
            words += f" ({', '.join(keys)})"
    return f"{name}: {words}"


def _list_summary(action: str, subject: str, d: dict[str, Any]) -> str:
    verb = action.split(".", 1)[1] if "." in action else action
    category = d.get("category", "")
    if verb in ("allow", "deny"):
        return f"{subject} {'allowed' if verb == 'allow' else 'blocked'} for {category or 'all categories'}"
    return f"{action} {subject}".strip()


def audit_changes(conn: sqlite3.Connection, period: Period) -> tuple[list[Change], list[Change], list[Change]]:
    """(overrides, list changes, register changes) of the period, oldest first."""
    rows = conn.execute(
        "SELECT at, actor, action, subject, details, reason FROM audit_log WHERE at >= ? AND at < ? ORDER BY id",
        (period.start_iso, period.end_iso)).fetchall()
    overrides: list[Change] = []
    lists: list[Change] = []
    register: list[Change] = []
    for at, actor, action, subject, details, reason in rows:
        try:
            d = json.loads(details or "{}")
        except ValueError:
            d = {}
        when = _local(at, period.tz)
        assert when is not None
        if action.startswith(OVERRIDE_PREFIXES):
            overrides.append(Change(when, actor, action, subject, _override_summary(subject, d, period.tz),
                                    reason, d))
        elif action.startswith(LIST_PREFIXES):
            lists.append(Change(when, actor, action, subject, _list_summary(action, subject, d), reason, d))
        elif action.startswith(REGISTER_PREFIXES):
            register.append(Change(when, actor, action, subject, _register_summary(action, subject, d), reason, d))
    return overrides, lists, register


def reviews(conn: sqlite3.Connection, period: Period) -> list[Review]:
    """Review requests made in the period or decided in it."""
    rows = conn.execute(
        "SELECT id, created_at, host, user_name, device_name, group_name, categories, reason_text, status, "
        "decided_at, decided_by FROM review_requests WHERE (created_at >= ? AND created_at < ?) "
        "OR (decided_at >= ? AND decided_at < ?) ORDER BY id",
        (period.start_iso, period.end_iso, period.start_iso, period.end_iso)).fetchall()
    out = []
    for r in rows:
        cats = [c for c in str(r[6] or "").split(",") if c]
        created = _local(r[1], period.tz)
        assert created is not None
        out.append(Review(int(r[0]), created, WITHHELD if is_illegal(cats) else str(r[2]), r[3], r[4], r[5],
                          ",".join(cats), str(r[7] or ""), str(r[8]), _local(r[9], period.tz), r[10]))
    return out


def load_changes(conn: sqlite3.Connection, period: Period) -> Changes:
    overrides, lists, register = audit_changes(conn, period)
    return Changes(overrides, lists, register, reviews(conn, period))
