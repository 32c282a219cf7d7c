"""The incident record's hash chain: append-only entries, each sealed with the one before.

Every row of `incident_entries` (of all incidents, in id order) carries
`hash = sha256(prev_hash + canonical JSON of the entry)` where `prev_hash` is
the hash of the row before it ("" for the first).  SQL triggers already refuse
UPDATE and DELETE; the chain makes any change made around them (a dropped
trigger, an edited file) show: `verify_chain` recomputes every link.
Append only inside a write transaction (`BEGIN IMMEDIATE`), so two writers
cannot fork the chain.

Deleting the newest entries would leave a shorter chain that is still valid,
so the head (id and hash of the last entry ever appended) is kept apart in
`incident_chain_head` (schema version 3), moved forward by a trigger in the
same transaction as each append.  `verify_chain` compares the chain's end with
it, and the next entry is sealed after the head rather than after the last row
left, so entries cut from the end stay a gap even after later appends.  Every
entry recorded by a person is also written to the audit trail with its hash
(`alerts.incidents.record_action`): a second, independent copy of the head at
each human step, which `verify_chain` checks too.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from proxy.db import parse_iso, utc_iso

logger = logging.getLogger(__name__)

_COLUMNS = "id, incident_id, at, by, action, outcome, detail, prev_hash, hash"
AUDIT_ACTION = "incident.record"   # the audit row of each entry a person records: {"entry": id, "hash": ...}


@dataclass(frozen=True)
class Entry:
    id: int
    incident_id: int
    at: dt.datetime
    by: str
    action: str
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass
class ChainCheck:
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    broken_ids: set[int] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical(entry_id: int, incident_id: int, at: str, by: str, action: str, outcome: str,
              detail: dict[str, Any]) -> str:
    """The one text an entry is hashed as (sorted keys, no spaces, UTF-8)."""
    return json.dumps({"id": entry_id, "incident_id": incident_id, "at": at, "by": by, "action": action,
                       "outcome": outcome, "detail": detail}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)


def seal(prev_hash: str, text: str) -> str:
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


@dataclass
class ChainTail:
    """The end of the chain inside a write transaction: seals entries one after another."""

    next_id: int
    prev_hash: str

    @classmethod
    async def read(cls, conn: aiosqlite.Connection) -> ChainTail:
        """Continue after the stored head (or the last row, if the head is missing or, oddly, behind)."""
        if not conn.in_transaction:
            raise RuntimeError("the incident chain is appended to only inside a write transaction")
        async with conn.execute("SELECT id, hash FROM incident_entries ORDER BY id DESC LIMIT 1") as cur:
            row = await cur.fetchone()
        last_id, last_hash = (int(row[0]), str(row[1])) if row else (0, "")
        head = await read_head(conn)
        if head is not None and head[0] >= last_id:
            last_id, last_hash = head
        return cls(last_id + 1, last_hash)

    def seal(self, incident_id: int, *, at: dt.datetime, by: str, action: str, outcome: str = "",
             detail: dict[str, Any] | None = None) -> Entry:
        """The next entry, sealed (not yet written: `write` it, in order)."""
        detail = json.loads(json.dumps(detail or {}, default=str))
        at_text = utc_iso(at)
        digest = seal(self.prev_hash, canonical(self.next_id, incident_id, at_text, by, action, outcome, detail))
        entry = Entry(self.next_id, incident_id, at.astimezone(dt.UTC).replace(microsecond=0), by, action, outcome,
                      detail, self.prev_hash, digest)
        self.next_id += 1
        self.prev_hash = digest
        return entry


async def write_entries(conn: aiosqlite.Connection, entries: list[Entry]) -> None:
    await conn.executemany(
        f"INSERT INTO incident_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.id, e.incident_id, utc_iso(e.at), e.by, e.action, e.outcome,
          json.dumps(e.detail, sort_keys=True, ensure_ascii=False), e.prev_hash, e.hash) for e in entries])


async def append_entry(conn: aiosqlite.Connection, incident_id: int, *, at: dt.datetime, by: str, action: str,
                       outcome: str = "", detail: dict[str, Any] | None = None) -> Entry:
    """Append one sealed entry; call inside `transaction(conn)`."""
    tail = await ChainTail.read(conn)
    entry = tail.seal(incident_id, at=at, by=by, action=action, outcome=outcome, detail=detail)
    await write_entries(conn, [entry])
    return entry


def _entry(row: Any) -> Entry:
    at = parse_iso(row[2])
    assert at is not None
    try:
        detail = json.loads(row[6] or "{}")
    except ValueError:
        detail = {"unreadable": row[6]}
    return Entry(int(row[0]), int(row[1]), at, row[3], row[4], row[5] or "", detail, row[7] or "", row[8] or "")


async def entries_of(conn: aiosqlite.Connection, incident_id: int) -> list[Entry]:
    async with conn.execute(f"SELECT {_COLUMNS} FROM incident_entries WHERE incident_id = ? ORDER BY id",
                            (incident_id,)) as cur:
        return [_entry(r) for r in await cur.fetchall()]


async def read_head(conn: aiosqlite.Connection) -> tuple[int, str] | None:
    """(id, hash) of the last entry ever appended, as stored apart from the entries; None when missing."""
    async with conn.execute("SELECT last_id, hash FROM incident_chain_head WHERE one = 1") as cur:
        row = await cur.fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


async def verify_chain(conn: aiosqlite.Connection) -> ChainCheck:
    """Recompute every link of the chain and compare its end with the stored head and the audit trail.

    Each problem names the entry it was found at.
    """
    check = ChainCheck()
    prev, expected_id = await _anchor(conn)
    last_id = (expected_id - 1) if expected_id is not None else 0
    async with conn.execute(f"SELECT {_COLUMNS} FROM incident_entries ORDER BY id") as cur:
        async for row in cur:
            check.entries += 1
            entry_id = int(row[0])
            if expected_id is not None and entry_id != expected_id:
                check.problems.append(f"entries {expected_id}..{entry_id - 1} are missing (deleted?)")
                check.broken_ids.add(entry_id)
            if (row[7] or "") != prev:
                check.problems.append(f"entry {entry_id}: does not follow the entry before it (prev_hash differs)")
                check.broken_ids.add(entry_id)
            try:
                detail = json.loads(row[6] or "{}")
            except ValueError:
                detail = None
            text = canonical(entry_id, int(row[1]), row[2], row[3], row[4], row[5] or "", detail or {})
            if detail is None or seal(row[7] or "", text) != row[8]:
                check.problems.append(f"entry {entry_id}: its content was changed after it was written "
                                      "(hash differs)")
                check.broken_ids.add(entry_id)
            prev = row[8] or ""
            expected_id = entry_id + 1
            last_id = entry_id
    await _check_end(conn, check, last_id, prev)
    return check


async def _check_end(conn: aiosqlite.Connection, check: ChainCheck, last_id: int, last_hash: str) -> None:
    """Entries deleted from the end: the chain must end at the stored head and reach every audited entry."""
    head = await read_head(conn)
    if head is None:
        check.problems.append("the record of the chain's last entry (incident_chain_head) is missing: entries may "
                              "have been deleted from the end")
    elif head[0] > last_id:
        first = last_id + 1
        check.problems.append(f"entries {first}..{head[0]} at the end of the chain are missing (deleted?): the last "
                              f"entry ever appended was {head[0]}, the chain now ends at {last_id or 'nothing'}")
        check.broken_ids.add(head[0])
    elif head[0] < last_id:
        check.problems.append(f"entries {head[0] + 1}..{last_id} were written without moving the chain's head "
                              "(written around the triggers?)")
        check.broken_ids.add(last_id)
    elif head[1] != last_hash:
        check.problems.append(f"entry {last_id}: it is not the last entry that was appended (its hash differs from "
                              "the chain's head)")
        check.broken_ids.add(last_id)
    await _check_audited(conn, check, last_id, max(last_id, head[0] if head is not None else 0))


async def _check_audited(conn: aiosqlite.Connection, check: ChainCheck, last_id: int, known_end: int) -> None:
    """Each entry a person recorded has its hash in the audit trail: it must still be in the chain, unchanged.

    This holds even if the head row was rewritten too, or the whole chain re-sealed (sha256 has no key).
    """
    async with conn.execute(
            "SELECT a.entry, a.hash, e.hash FROM (SELECT CAST(json_extract(details, '$.entry') AS INTEGER) AS entry, "
            "json_extract(details, '$.hash') AS hash FROM audit_log WHERE action = ?) a "
            "LEFT JOIN incident_entries e ON e.id = a.entry ORDER BY a.entry", (AUDIT_ACTION,)) as cur:
        rows = await cur.fetchall()
    beyond = [int(r[0]) for r in rows if r[0] is not None and int(r[0]) > known_end]
    if beyond:   # beyond the head too: the head was moved back as well
        check.problems.append(f"entry {max(beyond)} is in the audit trail but the chain ends at {last_id or 'nothing'}"
                              " and so does its head record: entries were deleted from the end")
        check.broken_ids.add(max(beyond))
    for entry_id, audited, stored in rows:
        if stored is not None and audited != stored:
            check.problems.append(f"entry {entry_id}: differs from the copy of its hash in the audit trail "
                                  "(rewritten and re-sealed?)")
            check.broken_ids.add(int(entry_id))


ANCHOR_KEY = "incident_chain_anchor"   # written by reports.retention when it purges a prefix of the chain


async def _anchor(conn: aiosqlite.Connection) -> tuple[str, int | None]:
    """Where the kept chain starts: (previous hash, first id); ("", None) when nothing was purged."""
    async with conn.execute("SELECT value FROM meta WHERE key = ?", (ANCHOR_KEY,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return "", None
    try:
        anchor = json.loads(row[0])
        return str(anchor["prev_hash"]), int(anchor["first_id"])
    except (ValueError, KeyError, TypeError):
        return "", None
