"""The record of weekly report runs in `meta`, so a report is emailed at most once.

Key `report_run:weekly:2026-W47`, value JSON `{"state", "at", "attempts", "error", "folder", "refused"}`.
States, in order:

    claimed  the decision to make it was taken (in the same transaction as
             reading that no run exists) - nothing sent yet
    built    the files are written - nothing sent yet
    sending  the email is being handed to the SMTP server
    sent     the server took it                                   (final)
    failed   the server refused it or could not be reached: not sent

A run found `claimed` or `built` long after it began died before sending and
may be retried; a run found `sending` may or may not have been delivered and
is never retried by the scheduler (`schoolgate report weekly --send` sends it
again on purpose); `failed` is retried up to `MAX_ATTEMPTS` times.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from proxy.db import parse_iso, transaction_sync, utc_iso

logger = logging.getLogger(__name__)

PREFIX = "report_run:weekly:"
MAX_ATTEMPTS = 5
RETRY_AFTER = dt.timedelta(minutes=30)
STALE_AFTER = dt.timedelta(hours=2)


@dataclass
class Run:
    label: str
    state: str
    at: dt.datetime
    attempts: int = 0
    error: str = ""
    folder: str = ""
    refused: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "at": utc_iso(self.at), "attempts": self.attempts,
                           "error": self.error, "folder": self.folder, "refused": self.refused}, sort_keys=True)


def get_run(conn: sqlite3.Connection, label: str) -> Run | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PREFIX + label,)).fetchone()
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row[0])
    at = parse_iso(data.get("at"))
    assert at is not None
    return Run(label, str(data["state"]), at, int(data.get("attempts", 0)), str(data.get("error", "")),
               str(data.get("folder", "")), dict(data.get("refused", {})))


def _put(conn: sqlite3.Connection, run: Run) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (PREFIX + run.label, run.to_json()))


def may_retry(run: Run, now: dt.datetime) -> bool:
    """Whether the scheduler may (re)make and send a run found in this state."""
    if run.state in ("claimed", "built"):
        return now - run.at >= STALE_AFTER
    if run.state == "failed":
        return run.attempts < MAX_ATTEMPTS and now - run.at >= RETRY_AFTER
    return False            # sending, sent


def claim(conn: sqlite3.Connection, label: str, now: dt.datetime) -> Run | None:
    """Decide, atomically, to make and send `label`'s report; None when it is done or in hand."""
    with transaction_sync(conn):
        run = get_run(conn, label)
        if run is not None and not may_retry(run, now):
            return None
        attempts = (run.attempts if run is not None else 0) + 1
        claimed = Run(label, "claimed", now, attempts)
        _put(conn, claimed)
    logger.info("weekly report %s: run claimed (attempt %d)", label, attempts)
    return claimed


def advance(conn: sqlite3.Connection, run: Run, state: str, now: dt.datetime, **changes: Any) -> Run:
    """Record the next state of a run (its own small transaction)."""
    new = Run(run.label, state, now, run.attempts, str(changes.get("error", run.error)),
              str(changes.get("folder", run.folder)), dict(changes.get("refused", run.refused)))
    with transaction_sync(conn):
        _put(conn, new)
    return new


def record_manual(conn: sqlite3.Connection, label: str, state: str, now: dt.datetime, **changes: Any) -> Run:
    """A run made on demand (`schoolgate report weekly --send`): recorded so the schedule does not repeat it."""
    with transaction_sync(conn):
        old = get_run(conn, label)
        run = Run(label, state, now, (old.attempts if old else 0) + 1, str(changes.get("error", "")),
                  str(changes.get("folder", "")), dict(changes.get("refused", {})))
        _put(conn, run)
    return run
