"""Review requests from block pages: stored, listed, approved or rejected by technical support.

Approving a request adds a local `allow` entry for the site (for the
categories it was blocked for) through the audited list tuning, so the
decision and its reason are on the audit trail.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import aiosqlite

from proxy.audit import audit
from proxy.db import transaction, utc_iso
from proxy.listentries import add_entry


class ReviewError(ValueError):
    pass


@dataclass(frozen=True)
class ReviewRequest:
    id: int
    created_at: str
    ref: str
    url: str
    host: str
    user: str | None
    device: str | None
    client_ip: str | None
    group: str | None
    categories: str
    reason_text: str
    status: str


_COLUMNS = ("id, created_at, ref, url, host, user_name, device_name, client_ip, group_name, categories, "
            "reason_text, status")


async def add_request(conn: aiosqlite.Connection, *, ref: str, url: str, host: str, user: str | None,
                      device: str | None, client_ip: str, group: str, categories: tuple[str, ...],
                      reason_text: str, now: dt.datetime) -> int:
    cursor = await conn.execute(
        "INSERT INTO review_requests (created_at, ref, url, host, user_name, device_name, client_ip, group_name, "
        "categories, reason_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (utc_iso(now), ref, url[:2000], host, user, device, client_ip, group, ",".join(categories),
         reason_text[:2000]))
    return int(cursor.lastrowid or 0)


async def list_requests(conn: aiosqlite.Connection, status: str | None = "open") -> list[ReviewRequest]:
    sql = f"SELECT {_COLUMNS} FROM review_requests"
    params: tuple[str, ...] = ()
    if status:
        sql += " WHERE status = ?"
        params = (status,)
    async with conn.execute(sql + " ORDER BY id", params) as cursor:
        rows = await cursor.fetchall()
    return [ReviewRequest(*row) for row in rows]


async def decide_request(conn: aiosqlite.Connection, request_id: int, *, approve: bool, by: str, reason: str,
                         now: dt.datetime) -> ReviewRequest:
    async with conn.execute(f"SELECT {_COLUMNS} FROM review_requests WHERE id = ?", (request_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise ReviewError(f"no review request {request_id}")
    req = ReviewRequest(*row)
    if req.status != "open":
        raise ReviewError(f"review request {request_id} was already {req.status}")
    status = "approved" if approve else "rejected"
    async with transaction(conn):
        await conn.execute("UPDATE review_requests SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
                           (status, utc_iso(now), by, request_id))
        await audit(conn, actor=by, action=f"review.{status}", subject=req.host,
                    details={"id": request_id, "ref": req.ref, "categories": req.categories}, reason=reason,
                    now=now)
        if approve:
            for category in [c for c in req.categories.split(",") if c] or ["*"]:
                await add_entry(conn, kind="allow", domain=req.host, category=category,
                                reason=f"review request {req.ref}: {reason}", by=by, now=now)
    return req
