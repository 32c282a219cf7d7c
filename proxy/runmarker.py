"""The service's running marker in `meta`: was the previous run stopped cleanly?

While it runs, the service keeps `service_running:PID` in `meta`.
`mark_running` (at start) finds the markers of processes that are gone -
killed, crashed, a power cut - logs what that means, counts it
(`unclean_stops`, `last_unclean_stop`) and writes this process's marker;
`clear_running` removes it at a clean stop.  `schoolgate status` reads them.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

import aiosqlite

from proxy.db import utc_iso

logger = logging.getLogger(__name__)

RUNNING_PREFIX = "service_running:"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def mark_running(conn: aiosqlite.Connection, now: dt.datetime, pid: int | None = None) -> list[dict[str, Any]]:
    """Record this process as running; return (and log) the earlier runs that never stopped cleanly."""
    pid = os.getpid() if pid is None else pid
    async with conn.execute("SELECT key, value FROM meta WHERE key LIKE ?", (RUNNING_PREFIX + "%",)) as cur:
        rows = await cur.fetchall()
    unclean = []
    for key, value in rows:
        try:
            marker = json.loads(value)
            other = int(marker["pid"])
        except (ValueError, KeyError, TypeError):
            marker, other = {"pid": None, "started_at": "?"}, -1
        if other != pid and other > 0 and _alive(other):
            continue                      # another Schoolgate process on this database (e.g. `schoolgate dns`)
        unclean.append(marker)
        await conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        logger.warning("the previous run (pid %s, started %s) did not stop cleanly (killed or crashed): alerts and "
                       "incidents it had stored are kept and sent now; visits of its last moments (at most the "
                       "visit writer's flush interval) may not be logged", marker.get("pid"), marker.get("started_at"))
    if unclean:
        await conn.execute("INSERT INTO meta (key, value) VALUES ('unclean_stops', ?) ON CONFLICT (key) DO UPDATE "
                           "SET value = COALESCE(value, 0) + excluded.value", (len(unclean),))
        await conn.execute("INSERT INTO meta (key, value) VALUES ('last_unclean_stop', ?) ON CONFLICT (key) DO "
                           "UPDATE SET value = excluded.value", (json.dumps(unclean[-1], sort_keys=True),))
    await conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                       "excluded.value", (f"{RUNNING_PREFIX}{pid}",
                                          json.dumps({"pid": pid, "started_at": utc_iso(now)})))
    return unclean


async def clear_running(conn: aiosqlite.Connection, pid: int | None = None) -> None:
    await conn.execute("DELETE FROM meta WHERE key = ?", (f"{RUNNING_PREFIX}{os.getpid() if pid is None else pid}",))
