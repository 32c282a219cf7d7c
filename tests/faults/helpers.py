"""The demo school on loopback with a hand on its parts, for fault tests.

`start_school` is `tests.support.school.start_school` with one more hook:
`prepare(runtime)` runs after the runtime is built and before it starts, so a
test can give the visit writer a short busy timeout or the alert service a
fast tick.  Helpers read the database the way an operator would (a separate
connection) and wait for conditions without fixed sleeps.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from proxy.context import Context
from proxy.runtime import Runtime
from proxy.service import Service
from proxy.visitwriter import BatchWriter
from tests.support.origin import Origin
from tests.support.school import MONDAY_LESSON, Clock, RouteToOrigin, School, origin_tls_context, write_school


async def init_school(tmp: Path, **write_kwargs: Any) -> Context:
    """`schoolgate init` of the demo school on loopback under `tmp` (config, register, index, CA)."""
    from proxy.ca import ensure_ca
    from proxy.cmd_service import _import_register, build_index

    ctx = write_school(tmp, **write_kwargs)
    ctx.ensure_data_dir()
    ensure_ca(ctx.ca_dir, ctx.settings.school.name)
    assert await _import_register(ctx) == 0
    log = io.StringIO()
    assert build_index(ctx.settings, ctx.index_path, out=log) == 0, log.getvalue()
    return ctx


async def start_school(tmp: Path, *, at: dt.datetime = MONDAY_LESSON, prepare: Callable[[Runtime], None] | None = None,
                       listen_port: int | None = 0, **write_kwargs: Any) -> School:
    """The demo school's proxy on `listen_port` (0: a free one; None: the config's)."""
    ctx = await init_school(tmp, **write_kwargs)
    origin = Origin()
    await origin.start(origin_tls_context(tmp))
    clock = Clock(at)
    runtime = Runtime(ctx, clock=clock, refresh_every=0.2)
    if prepare is not None:
        prepare(runtime)
    service = Service(ctx, runtime=runtime, listen_port=listen_port, extra_addons=[RouteToOrigin(origin)])
    await service.start()
    assert service.master is not None
    service.master.options.update(ssl_insecure=True)
    host, port = service.address or ("", 0)
    return School(ctx, service, origin, clock, proxy_url=f"http://{host}:{port}")


def quick_writer(runtime: Runtime, *, busy_timeout_ms: int = 300, max_attempts: int = 2,
                 flush_interval: float = 0.1) -> None:
    """Replace the runtime's visit writer with one that gives up on a locked database quickly."""
    runtime.writer = BatchWriter(runtime.ctx.db_path, queue_size=10_000, batch_size=200, flush_interval=flush_interval,
                                 max_attempts=max_attempts, retry_delay=0.05, busy_timeout_ms=busy_timeout_ms)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def scalar(db: Path, sql: str, *args: Any) -> Any:
    return query(db, sql, *args)[0][0]


def meta(db: Path, key: str) -> Any:
    rows = query(db, "SELECT value FROM meta WHERE key = ?", key)
    return rows[0][0] if rows else None


def visit_paths(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT p.text FROM visits v JOIN paths p ON p.id = v.path_id")]


async def until(condition: Callable[[], bool] | Callable[[], Awaitable[bool]], timeout: float = 15.0,
                what: str = "condition") -> None:
    """Wait until `condition()` holds (fails the test after `timeout`: a hang, not a speed goal)."""
    async def poll() -> None:
        while True:
            value = condition()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def burst(client: httpx.AsyncClient, urls: list[str], concurrency: int = 10) -> list[int]:
    """GET every URL through the proxy (a few at a time); the status codes in order.

    Each request closes its connection: with `RouteToOrigin` rewriting the upstream address, mitmproxy
    opens a new upstream connection per request on a kept-alive client connection, and the sixth one
    stalls (a quirk of the test routing, not of Schoolgate).
    """
    sem = asyncio.Semaphore(concurrency)

    async def one(url: str) -> int:
        async with sem:
            return (await client.get(url, headers={"Connection": "close"})).status_code

    return list(await asyncio.gather(*(one(u) for u in urls)))
