"""The hook `schoolgate incidents show ID --context` calls (alerts/cli.py): `render(ctx, ref) -> str`.

It may be called from inside a running event loop, so the query runs on its
own loop in a worker thread.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from proxy.context import Context
from proxy.db import open_db
from reports.context import ContextError, browsing_context, format_context

HOURS = 1.0


async def _render(ctx: Context, ref: str, hours: float) -> str:
    conn = await open_db(ctx.db_path)
    try:
        found = await browsing_context(conn, ref, hours)
    except ContextError as exc:
        return f"  context:   {exc}"
    finally:
        await conn.close()
    return format_context(found, ctx.settings.school.timezone)


def render(ctx: Context, ref: str, hours: float = HOURS) -> str:
    """The browsing context of incident `ref` (number or INC-... reference) as text."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="incident-context") as pool:
        return pool.submit(asyncio.run, _render(ctx, ref, hours)).result()
