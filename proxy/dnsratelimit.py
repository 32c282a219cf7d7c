"""Per-client token buckets: `rate` queries a second on average, bursts up to `burst`.

A client over its rate is answered REFUSED by the resolver (and not logged
per query; see `RateLimiter.refused`).  Buckets of clients that have been
quiet long enough to be full again are forgotten when the table grows, so a
scan of many addresses cannot grow it without bound.  Time comes from an
injected monotonic clock (seconds).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 65_536) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, list[float]] = {}   # client -> [tokens, last refill time]
        self.refused: dict[str, int] = {}             # client -> queries refused (since last report)

    def allow(self, client: str, now: float | None = None) -> bool:
        """Take one token from the client's bucket; False when it is empty.  `now`: the clock's
        reading, when the caller has just read it (one clock read per query instead of two)."""
        if now is None:
            now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget(now)
            self._buckets[client] = [self.burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            self.refused[client] = self.refused.get(client, 0) + 1
            return False
        bucket[0] = tokens - 1.0
        return True

    def _forget(self, now: float) -> None:
        """Drop the buckets that would be full by now (their clients lose nothing)."""
        full_after = self.burst / self.rate
        stale = [c for c, (tokens, last) in self._buckets.items() if now - last >= full_after]
        for client in stale:
            del self._buckets[client]
        if len(self._buckets) >= self.max_clients:   # all busy: forget the oldest half
            for client in list(self._buckets)[: self.max_clients // 2]:
                del self._buckets[client]

    def take_refused(self) -> dict[str, int]:
        """The refused counts since the last call (for a periodic log line)."""
        out, self.refused = self.refused, {}
        return out
