"""The one batching writer of visits and DNS query rows.

`submit()` is called from the event loop of mitmproxy / the DNS server for every
visit or query.  It never blocks and never waits for the disk: the record goes
into a bounded in-memory queue, or, when the queue is full, is dropped and
counted.  A background task takes the queue in batches and writes each batch
in ONE transaction on the writer's own connection, in its own thread, so the
event loop keeps serving while SQLite works.  Strings go through the store's
dictionaries (hosts, paths, principals...) with an in-memory cache, so a
repeated host or user costs no lookup.

A batch that fails (disk full, database locked beyond the busy timeout) is
retried a bounded number of times; then its rows are dropped, counted, and the
count is added to `meta` (`visits_dropped`, `dns_queries_dropped`) as soon as
the database takes writes again, so reports can show "visits not logged".
Records dropped because the queue was full are counted there too.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from proxy.db import DEFAULT_BUSY_TIMEOUT_MS, open_db_sync
from proxy.records import (  # the query helpers are re-exported for readers of the log
    DnsQueryRecord,
    DnsRow,
    RowEncoder,
    VisitRecord,
    dropped_counts,
    read_dns_queries,
    read_visits,
    read_visits_sync,
)

logger = logging.getLogger(__name__)

__all__ = ["BatchWriter", "WriterStats", "Record", "read_visits", "read_visits_sync",
           "read_dns_queries", "dropped_counts"]

Record = VisitRecord | DnsQueryRecord | DnsRow

META_VISITS_DROPPED = "visits_dropped"
META_DNS_DROPPED = "dns_queries_dropped"


@dataclass(frozen=True)
class WriterStats:
    submitted: int
    written: int
    dropped: int
    dropped_queue_full: int
    dropped_failed: int
    batches: int
    failed_batches: int
    queue_depth: int
    last_error: str | None


class BatchWriter:
    """Batching writer; see the module docstring.  Use from one event loop."""

    def __init__(
        self,
        db_path: Path,
        *,
        queue_size: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.5,
        max_attempts: int = 3,
        retry_delay: float = 0.2,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        cache_mib: int = 8,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("queue_size, batch_size and max_attempts must be at least 1")
        self.db_path = Path(db_path)
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._busy_timeout_ms = busy_timeout_ms
        self._cache_mib = cache_mib
        self._queue: collections.deque[Record] = collections.deque()
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._encoder: RowEncoder | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._flush_wanted = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # counters (touched only on the event loop's thread)
        self._submitted = 0
        self._accepted = 0
        self._done = 0  # accepted records written or given up on
        self._written = 0
        self._dropped_full = 0
        self._dropped_failed = 0
        self._batches = 0
        self._failed_batches = 0
        self._last_error: str | None = None
        self._unpersisted = {META_VISITS_DROPPED: 0, META_DNS_DROPPED: 0}
        self._persist_failing = False
        self._closed = False

    # -- life cycle ---------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None or self._closed:
            raise RuntimeError("BatchWriter already started (a writer runs once)")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="visitwriter")
        self._conn = await self._loop.run_in_executor(self._executor, self._open)
        self._encoder = RowEncoder(self._conn)
        self._task = asyncio.create_task(self._run(), name="visitwriter")
        logger.info("visit writer started on %s", self.db_path)

    def _open(self) -> sqlite3.Connection:
        conn = open_db_sync(self.db_path, busy_timeout_ms=self._busy_timeout_ms)
        # Every batch touches the last leaf page of each active user in the (user, ts)
        # index: a page cache that holds them keeps inserts from re-reading pages.  It also
        # keeps every page the writer appends until the cache is full, so its size is a
        # plateau the service's memory climbs to: 8 MiB holds 2,000 users' leaf pages and the
        # dictionaries' hot index pages (32 MiB was no faster in bench.store, and took an hour
        # of a school's traffic to fill: the soak's "creep").
        conn.execute(f"PRAGMA cache_size = {-1024 * int(self._cache_mib)}")
        return conn

    async def stop(self) -> None:
        """Write everything queued, persist the drop counters, close (once)."""
        if self._task is None or self._closed:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        await self._persist_drops()
        assert self._loop is not None and self._executor is not None
        if self._conn is not None:
            await self._loop.run_in_executor(self._executor, self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
        self._closed = True
        stats = self.stats
        logger.info(
            "visit writer stopped: %d written, %d dropped (%d queue full, %d failed batches)",
            stats.written, stats.dropped, stats.dropped_queue_full, stats.dropped_failed,
        )

    # -- the hot path -------------------------------------------------------
    def submit(self, record: Record) -> bool:
        """Queue one record; False (and counted) when the queue is full or stopped.

        A DNS query may come as a `DnsRow` tuple (what the resolver sends: cheaper than a
        `DnsQueryRecord` to make); the writer's thread does all the rest of the work."""
        self._submitted += 1
        if self._stopping or len(self._queue) >= self._queue_size:
            self._dropped_full += 1
            key = META_VISITS_DROPPED if isinstance(record, VisitRecord) else META_DNS_DROPPED
            self._unpersisted[key] += 1
            if self._dropped_full == 1 or self._dropped_full % 10_000 == 0:
                logger.warning(
                    "visit log queue full (%d): record dropped (%d so far)",
                    self._queue_size, self._dropped_full,
                )
            return False
        self._queue.append(record)
        self._accepted += 1
        if len(self._queue) >= self._batch_size:
            self._poke()
        return True

    def _poke(self) -> None:
        if threading.get_ident() == self._loop_thread or self._loop is None:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def flush(self) -> None:
        """Return once every record accepted before this call is written (or given up)."""
        if self._task is None or self._task.done():
            raise RuntimeError("BatchWriter is not running")
        target = self._accepted
        if self._done >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._flush_wanted = True
        self._wake.set()
        await future

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            submitted=self._submitted,
            written=self._written,
            dropped=self._dropped_full + self._dropped_failed,
            dropped_queue_full=self._dropped_full,
            dropped_failed=self._dropped_failed,
            batches=self._batches,
            failed_batches=self._failed_batches,
            queue_depth=len(self._queue),
            last_error=self._last_error,
        )

    # -- background task ----------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if len(self._queue) < self._batch_size and not (self._stopping or self._flush_wanted):
                try:
                    await asyncio.wait_for(self._wake.wait(), self._flush_interval)
                except TimeoutError:
                    pass
            self._flush_wanted = False
            while self._queue:
                count = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                await self._write_batch(batch)
            if any(self._unpersisted.values()):
                await self._persist_drops()
            if self._stopping and not self._queue:
                return

    async def _write_batch(self, batch: list[Record], *, salvage: bool = True) -> bool:
        """Write one batch (retrying transient failures); False if it was given up."""
        assert self._loop is not None and self._executor is not None
        assert self._encoder is not None
        encoder = self._encoder
        attempts = self._max_attempts if salvage else 1
        for attempt in range(1, attempts + 1):
            drops = dict(self._unpersisted)
            try:
                await self._loop.run_in_executor(self._executor, encoder.write, batch, drops)
            except Exception as exc:  # noqa: BLE001 - any failure must not kill the writer
                self._last_error = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, sqlite3.OperationalError):
                    # not the disk or a lock: some record is bad; keep the others
                    if salvage and len(batch) > 1:
                        logger.warning("a batch of %d rows was refused (%s); writing them one "
                                       "by one", len(batch), self._last_error)
                        await self._salvage(batch)
                        return False
                    break
                if attempt < attempts:
                    logger.warning(
                        "writing a batch of %d rows failed (attempt %d of %d), retrying: %s",
                        len(batch), attempt, attempts, self._last_error,
                    )
                    await asyncio.sleep(self._retry_delay * attempt)
                    continue
                break
            else:
                for key, count in drops.items():
                    self._unpersisted[key] -= count
                self._written += len(batch)
                self._batches += 1
                self._finish(len(batch))
                return True
        self._give_up(batch, attempts)
        return False

    async def _salvage(self, batch: list[Record]) -> None:
        failed_before = self._failed_batches
        for record in batch:
            await self._write_batch([record], salvage=False)
        self._failed_batches = failed_before + 1

    def _give_up(self, batch: list[Record], attempts: int) -> None:
        visits = sum(1 for record in batch if isinstance(record, VisitRecord))
        self._unpersisted[META_VISITS_DROPPED] += visits
        self._unpersisted[META_DNS_DROPPED] += len(batch) - visits
        self._dropped_failed += len(batch)
        self._failed_batches += 1
        logger.error(
            "gave up on %d rows after %d attempt(s) (%s): %d visits and %d DNS queries not "
            "logged; counted in meta %s/%s",
            len(batch), attempts, self._last_error, visits, len(batch) - visits,
            META_VISITS_DROPPED, META_DNS_DROPPED,
        )
        self._finish(len(batch))

    def _finish(self, count: int) -> None:
        self._done += count
        still_waiting = []
        for target, future in self._waiters:
            if self._done >= target:
                if not future.done():
                    future.set_result(None)
            else:
                still_waiting.append((target, future))
        self._waiters = still_waiting

    async def _persist_drops(self) -> None:
        """Add the drops not yet recorded to `meta` (one small transaction)."""
        if not any(self._unpersisted.values()) or self._encoder is None:
            return
        assert self._loop is not None and self._executor is not None
        drops = dict(self._unpersisted)
        try:
            await self._loop.run_in_executor(self._executor, self._encoder.write, [], drops)
        except Exception as exc:  # noqa: BLE001
            self._last_error = f"{type(exc).__name__}: {exc}"
            log = logger.debug if self._persist_failing else logger.warning
            log("could not record %s in meta yet (will retry): %s", drops, self._last_error)
            self._persist_failing = True
            return
        self._persist_failing = False
        for key, count in drops.items():
            self._unpersisted[key] -= count
        logger.info("recorded dropped rows in meta: %s", drops)
