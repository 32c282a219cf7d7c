"""Per-client token buckets on an injected clock."""
from __future__ import annotations

from proxy.dnsratelimit import RateLimiter


class Mono:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_rate() -> None:
    mono = Mono()
    limiter = RateLimiter(rate=10, burst=3, clock=mono)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")                                  # another client has its own bucket
    mono.now += 0.1                                            # one token back
    assert [limiter.allow("a") for _ in range(2)] == [True, False]
    mono.now += 10                                             # never more than the burst
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.take_refused() == {"a": 3} and limiter.take_refused() == {}


def test_table_of_clients_is_bounded() -> None:
    mono = Mono()
    limiter = RateLimiter(rate=1, burst=1, clock=mono, max_clients=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
        mono.now += 0.01
    assert len(limiter._buckets) <= 100
