"""The steady load of `bench.soak`: paced HTTP through the proxy and paced DNS queries, from several clients.

Open loop: request i is started at `start + i / rate` whatever happened to the ones before it
(up to `max_inflight` at once; beyond that a request is counted as skipped, never queued), so a
slow proxy shows up as latency and errors instead of a lower rate.  Plain HTTP goes over
kept-alive connections from each client's own loopback address (`bench._soakhttp`); HTTPS is
one CONNECT per request, so each has exactly one visit row (a tunnel is logged once).  DNS is
UDP, one socket per client address, answers matched by id: a third listed names (and `www.`
below them, some as AAAA), nearly half 2,000 allowed names (the fake upstream answers them,
then the cache does), search engines (safe-search CNAMEs) and 5 % names never asked before.

Every answered request's latency lands in the current window; `take_window()` hands the window
to the sampler and starts a new one.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from dataclasses import dataclass, field
from typing import cast

from dnslib import DNSRecord

from bench._soakhttp import ProxyClient, tunnel
from bench._soaksetup import CLIENTS

logger = logging.getLogger(__name__)

WATCHED_SEARCH = "suicide methods"
TIMEOUT_S = 15.0
DNS_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Item:
    """One kind of request of the mix; `url` is `host:port` for a CONNECT."""

    name: str
    group: str
    url: str
    expect: str            # allow | block: what the policy must decide (checked before the run)
    weight: int
    connect: bool = False
    flagged: bool = False


def build_mix(origin_port: int, tls_port: int) -> list[Item]:
    """Allowed pages to nginx from every group, blocked and flagged pages, HTTPS tunnels, a flagged search.

    Searches the watch lists flag are allowed on every search engine (and would go out), so the
    flagged search is a KS1 pupil's, on Wikipedia, which the walled garden blocks."""
    page = f"http://127.0.0.1:{origin_port}/file"
    tunnel = f"127.0.0.1:{tls_port}"
    return [
        Item("page-ks2", "ks2", page, "allow", 20), Item("page-ks1", "ks1", page, "allow", 6),
        Item("page-staff", "staff", page, "allow", 8), Item("page-guest", "guest", page, "allow", 6),
        Item("https-guest", "guest", tunnel, "allow", 6, connect=True),
        Item("gambling-ks2", "ks2", "http://bet365.com/", "block", 5),
        Item("social-ks2", "ks2", "http://www.facebook.com/", "block", 3),
        Item("gambling-staff", "staff", "http://www.bet365.com/", "block", 2),
        Item("garden-ks1", "ks1", "http://www.bbc.co.uk/news", "block", 2),
        Item("adult-ks2", "ks2", "http://pornhub.com/", "block", 1, flagged=True),
        Item("search-ks1", "ks1", "http://en.wikipedia.org/w/index.php?search="   # walled garden + watch list
             + WATCHED_SEARCH.replace(" ", "+"), "block", 1, flagged=True),
        Item("tunnel-port-ks2", "ks2", tunnel, "block", 1, connect=True, flagged=True),
    ]


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Tally:
    """What the clients saw; counters only grow."""

    http_sent: int = 0
    http_answered: int = 0        # an HTTP response came back (any status), or the CONNECT was answered
    http_skipped: int = 0
    http_retries: int = 0         # kept-alive connections the proxy had closed: retried on a new one
    http_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    by_item: collections.Counter[str] = field(default_factory=collections.Counter)   # "name status"
    bad_body: int = 0
    dns_sent: int = 0
    dns_answered: int = 0
    dns_timeouts: int = 0
    dns_skipped: int = 0
    dns_rcodes: collections.Counter[int] = field(default_factory=collections.Counter)


async def paced(rate: float, stop: asyncio.Event, launch: Callable[[int], Coroutine[Any, Any, None]], max_inflight: int,
                on_skip: Callable[[], None]) -> None:
    """Start `launch(i)` at `rate` per second until `stop` is set; then wait for the ones in flight."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    start, i = loop.time(), 0
    while not stop.is_set():
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
            continue
        if len(tasks) >= max_inflight:
            on_skip()
        else:
            task = asyncio.create_task(launch(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.wait(tasks)


class _DnsClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.next_id = random.randrange(65536)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        future = self.waiting.pop(int.from_bytes(data[:2], "big"), None) if len(data) >= 12 else None
        if future is not None and not future.done():
            future.set_result(data)


class Load:
    """The HTTP and DNS load; `run()` until `stop` is set (see the module docstring)."""

    def __init__(self, *, proxy_port: int, dns_port: int, items: Sequence[Item], listed: Sequence[str],
                 rps: float, qps: float, body_size: int, seed: int = 1) -> None:
        self.proxy_port, self.dns_port = proxy_port, dns_port
        self.rps, self.qps, self.body_size = rps, qps, body_size
        rng = random.Random(seed)
        self.schedule = [item for item in items for _ in range(item.weight)]
        rng.shuffle(self.schedule)
        self.rng = rng
        self.listed = list(listed)
        words = ["news", "maths", "shop", "cloud", "learn", "play", "music", "city", "data", "art"]
        self.allowed = [f"{rng.choice(words)}-{i}-{rng.choice(words)}.example" for i in range(2_000)]
        self.searches = ["www.google.com", "www.youtube.com", "www.bing.com", "duckduckgo.com"]
        self.run_id = f"{rng.randrange(16 ** 6):06x}"
        self.tally = Tally()
        self.window: dict[str, list[float]] = {"http": [], "dns": []}
        self.tls = ssl.create_default_context()
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE   # the origin's throwaway certificate, on loopback
        self._clients: dict[str, ProxyClient] = {}
        self._dns: list[_DnsClient] = []

    def take_window(self) -> dict[str, float]:
        """p50/p99 (ms) and counts of the answers since the last call; starts a new window."""
        window, self.window = self.window, {"http": [], "dns": []}
        out: dict[str, float] = {}
        for kind, values in window.items():
            ms = sorted(v * 1000 for v in values)
            out.update({f"{kind}_n": len(ms), f"{kind}_p50_ms": round(pct(ms, 50), 2),
                        f"{kind}_p99_ms": round(pct(ms, 99), 2)})
        return out

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        for group, ip in CLIENTS.items():
            self._clients[group] = ProxyClient(self.proxy_port, ip)
        for ip in CLIENTS.values():
            _, proto = await loop.create_datagram_endpoint(_DnsClient, local_addr=(ip, 0))
            self._dns.append(proto)

        def skip_http() -> None:
            self.tally.http_skipped += 1

        def skip_dns() -> None:
            self.tally.dns_skipped += 1

        try:
            await asyncio.gather(paced(self.rps, stop, self._http, 256, skip_http),
                                 paced(self.qps, stop, self._query, 1024, skip_dns))
        finally:
            for client in self._clients.values():
                self.tally.http_retries += client.retries
                await client.aclose()
            for dns in self._dns:
                if dns.transport is not None:
                    dns.transport.close()

    # -- HTTP -----------------------------------------------------------------------------------
    async def _http(self, i: int) -> None:
        item = self.schedule[i % len(self.schedule)]
        self.tally.http_sent += 1
        started = time.perf_counter()
        try:
            status = await asyncio.wait_for(self._tunnel(item) if item.connect else self._get(item), TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - every failure is counted by its kind
            self.tally.http_errors[f"{item.name}: {type(exc).__name__}"] += 1
            return
        self.window["http"].append(time.perf_counter() - started)
        self.tally.http_answered += 1
        self.tally.by_item[f"{item.name} {status}"] += 1

    async def _get(self, item: Item) -> str:
        host = item.url.split("/", 3)[2]
        status, body = await self._clients[item.group].get(item.url, [("Host", host), ("Sec-Fetch-Dest", "document")])
        if item.expect == "allow" and len(body) != self.body_size:
            self.tally.bad_body += 1
        return str(status)

    async def _tunnel(self, item: Item) -> str:
        status, inner, body = await tunnel(self.proxy_port, CLIENTS[item.group], item.url, self.tls)
        if status != 200:
            return str(status)
        if len(body) != self.body_size:
            self.tally.bad_body += 1
        return f"{status}/{inner}"

    # -- DNS ------------------------------------------------------------------------------------
    def _question(self, i: int) -> DNSRecord:
        roll = self.rng.random()
        if roll < 0.45:   # listed: answered by the resolver itself (blocked for most groups)
            name = ("www." if roll < 0.15 else "") + self.rng.choice(self.listed)
            return DNSRecord.question(name, "AAAA" if roll < 0.10 else "A")
        if roll < 0.90:
            return DNSRecord.question(self.rng.choice(self.allowed), "A")
        if roll < 0.95:
            return DNSRecord.question(self.rng.choice(self.searches), "A")
        return DNSRecord.question(f"u{i}.{self.run_id}.soak.example", "A")   # a cache miss, a new host string

    async def _query(self, i: int) -> None:
        client = self._dns[self.rng.randrange(len(self._dns))]
        if client.transport is None:
            self.tally.dns_timeouts += 1
            return
        client.next_id = (client.next_id + 1) % 65536
        qid = client.next_id
        record = self._question(i)
        record.header.id = qid
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        client.waiting[qid] = future
        self.tally.dns_sent += 1
        started = time.perf_counter()
        client.transport.sendto(record.pack(), ("127.0.0.1", self.dns_port))
        try:
            answer = await asyncio.wait_for(future, DNS_TIMEOUT_S)
        except TimeoutError:
            client.waiting.pop(qid, None)
            self.tally.dns_timeouts += 1
            return
        self.window["dns"].append(time.perf_counter() - started)
        self.tally.dns_answered += 1
        self.tally.dns_rcodes[answer[3] & 0x0F] += 1
