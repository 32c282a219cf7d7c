"""The state a running Schoolgate shares between its addons, resolver and background tasks.

`Runtime` owns the engine (settings, category index, register, overrides,
local lists), the batching visit writer and the database path.  `refresh()`
reloads what technical support changes from the CLI (register, overrides,
local list tuning) so a running proxy follows them within seconds; it runs in
the background, never on a request.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from alerts.service import AlertService, topic_from
from proxy import heap
from proxy.arp import ARP_TABLE, read_arp_table
from proxy.context import Context
from proxy.db import open_db
from proxy.decision import Decision
from proxy.engine import Engine
from proxy.listentries import load_local_lists
from proxy.metrics import Counters, MetricsServer
from proxy.overrides import load_active_overrides
from proxy.policy import Identity
from proxy.register import load_snapshot
from proxy.runmarker import clear_running, mark_running
from proxy.visitwriter import BatchWriter

if TYPE_CHECKING:   # imported when started in the background mode (they and httpx, jinja2 cost ~0.2 s)
    from proxy.listupdater import ListUpdater
    from reports.schedule import ReportScheduler

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
TRIM_EVERY_S = 60.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class BlockedRef:
    """What a block page's reference stands for, so a review request cannot name another URL."""

    url: str
    host: str
    identity: Identity
    decision: Decision


class RecentBlocks(OrderedDict[str, BlockedRef]):
    """The last `limit` block references (for the review form).

    A review request is made from the page just shown; a reference that has fallen out gets "this review
    form has expired, reload the blocked page", and the reload gives a new one.  5,000 is well over an
    hour of a large school's block pages, at ~400 bytes each (~2 MB; 20,000 held ~8 MB for no one).
    """

    def __init__(self, limit: int = 5_000) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, reference: str, blocked: BlockedRef) -> None:
        self[reference] = blocked
        while len(self) > self.limit:
            self.popitem(last=False)


class Runtime:
    def __init__(self, ctx: Context, clock: Clock = utcnow, refresh_every: float = 5.0,
                 background: bool = True) -> None:
        """`background=False` (the resolver run on its own beside `schoolgate run`): no alert sender, no
        report scheduler and no run marker, so they never run twice."""
        self.ctx = ctx
        self.background = background
        self.settings = ctx.settings
        self.clock = clock
        self.refresh_every = refresh_every
        self.arp_table = ARP_TABLE
        self.engine = Engine(self.settings, ctx.index_path)
        st = self.settings.storage
        self.writer = BatchWriter(ctx.db_path, queue_size=st.visit_queue, batch_size=st.batch_size,
                                  flush_interval=st.flush_interval_s)
        self.alerts = AlertService(self.settings, ctx.db_path, clock=clock, watch_topic=topic_from(self.engine))
        self.lists: ListUpdater | None = None        # the background tasks of `schoolgate run` only
        self.reports: ReportScheduler | None = None
        if background:
            from proxy.listupdater import ListUpdater
            from reports.schedule import ReportScheduler

            self.lists = ListUpdater(ctx, clock)
            self.reports = ReportScheduler(self.settings, ctx.db_path, ctx.reports_dir, index_path=ctx.index_path,
                                           clock=clock)
        self.secret = _load_secret(ctx.data_dir / "secret.key")
        self._task: asyncio.Task[None] | None = None
        self._db: aiosqlite.Connection | None = None
        self.recent_blocks = RecentBlocks()
        self.started_at = clock()
        self.counters = Counters()                       # bumped by the VisitLog addon (metrics)
        self.dns_counts: dict[str, int] | None = None    # the resolver's counts, when it runs here
        self.metrics: MetricsServer | None = None

    async def start(self) -> None:
        self.ctx.ensure_data_dir()
        self._db = await open_db(self.ctx.db_path)
        if self.background:
            try:
                await mark_running(self._db, self.clock())
            except Exception as exc:  # noqa: BLE001 - e.g. locked or full: filtering starts anyway
                logger.warning("could not record this run in meta: %s", exc)
        await self.refresh()
        await self.writer.start()
        if self.background:
            await self.alerts.start()
        if self.reports is not None and self.lists is not None:
            await self.reports.start()
            await self.lists.start()
        self._task = asyncio.create_task(self._refresh_loop(), name="schoolgate-refresh")
        m = self.settings.metrics
        if m.enabled and self.background:
            server = MetricsServer(self, m.listen_host, m.port)
            try:
                await server.start()
                self.metrics = server
            except OSError as exc:   # filtering matters more than metrics: say so and go on
                logger.error("metrics endpoint not started on %s:%d: %s", m.listen_host, m.port, exc)

    async def stop(self) -> None:
        if self.metrics is not None:
            await self.metrics.stop()
            self.metrics = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.lists is not None and self.reports is not None:
            await self.lists.stop()
            await self.reports.stop()
        if self.background:
            await self.alerts.stop()
        await self.writer.stop()
        if self._db is not None and self.background:
            try:
                await clear_running(self._db)
            except Exception as exc:  # noqa: BLE001 - e.g. the disk is full: the next start says so
                logger.warning("could not record the clean stop: %s", exc)
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        """The service's connection for small writes (review requests, alerts)."""
        if self._db is None:
            raise RuntimeError("the runtime is not started")
        return self._db

    async def refresh(self) -> None:
        """Reload the register, the overrides and the local lists from the database."""
        conn = self.db
        self.engine.register = await load_snapshot(conn)
        self.engine.overrides = tuple(await load_active_overrides(conn, self.clock()))
        self.engine.local = await load_local_lists(conn)
        self.engine.arp = read_arp_table(self.arp_table)

    async def _refresh_loop(self) -> None:
        trim_at = time.monotonic() + TRIM_EVERY_S
        while True:
            await asyncio.sleep(self.refresh_every)
            try:
                await self.refresh()
            except Exception:  # keep filtering with the last good state
                logger.exception("could not reload the register/overrides; keeping the previous state")
            if time.monotonic() >= trim_at:   # freed memory back to the system (`proxy.heap`)
                trim_at = time.monotonic() + TRIM_EVERY_S
                heap.trim()

    def csrf_token(self, reference: str) -> str:
        return hmac.new(self.secret, b"review:" + reference.encode(), hashlib.sha256).hexdigest()[:32]

    def check_csrf(self, reference: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(reference), token)


def _load_secret(path: Path) -> bytes:
    """A per-installation secret (CSRF tokens), created once, readable by the service only."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value.hex())
        return value
