"""The answer cache: clamped TTLs, countdown and expiry on an injected clock, negative answers, bounds."""
from __future__ import annotations

from dnslib import QTYPE, RCODE, RR, SOA, A, DNSRecord

from proxy.dnscache import DnsCache
from proxy.dnswire import parse_query


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(name: str = "example.com", ttl: int = 300, rcode: int = RCODE.NOERROR) -> bytes:
    reply = DNSRecord.question(name).reply()
    reply.header.rcode = rcode
    if rcode == RCODE.NOERROR:
        reply.add_answer(RR(name, QTYPE.A, ttl=ttl, rdata=A("192.0.2.1")))
    else:
        reply.add_auth(RR(name, QTYPE.SOA, ttl=ttl, rdata=SOA("ns.example", "host.example", (1, 2, 3, 4, ttl))))
    return reply.pack()


def q(name: str = "example.com", qid: int = 7) -> object:
    query = DNSRecord.question(name)
    query.header.id = qid
    parsed = parse_query(query.pack())
    assert parsed is not None
    return parsed


def test_hit_counts_down_and_expires() -> None:
    mono = Mono()
    cache = DnsCache(0, 3600, clock=mono)
    cache.put("k", answer(ttl=300))
    mono.now += 100.5
    hit = cache.get("k", q(qid=99))  # type: ignore[arg-type]
    assert hit is not None
    reply = DNSRecord.parse(hit)
    assert reply.header.id == 99 and reply.rr[0].ttl == 200
    mono.now += 199.5
    assert cache.get("k", q()) is None and len(cache) == 0  # type: ignore[arg-type]


def test_ttls_clamped_both_ways() -> None:
    mono = Mono()
    cache = DnsCache(60, 600, clock=mono)
    stored = cache.put("short", answer(ttl=5))
    assert DNSRecord.parse(stored).rr[0].ttl == 60
    cache.put("long", answer(ttl=86400))
    mono.now += 599
    assert DNSRecord.parse(cache.get("long", q())).rr[0].ttl == 1  # type: ignore[arg-type]
    mono.now += 1
    assert cache.get("long", q()) is None  # type: ignore[arg-type]


def test_negative_answers_live_for_their_soa_ttl() -> None:
    mono = Mono()
    cache = DnsCache(0, 3600, clock=mono)
    cache.put("nx", answer(ttl=90, rcode=RCODE.NXDOMAIN))
    mono.now += 89
    assert cache.get("nx", q()) is not None  # type: ignore[arg-type]
    mono.now += 1
    assert cache.get("nx", q()) is None  # type: ignore[arg-type]


def test_errors_and_truncated_answers_are_not_stored() -> None:
    cache = DnsCache(0, 3600, clock=Mono())
    cache.put("fail", answer(rcode=RCODE.SERVFAIL))
    tc = DNSRecord.parse(answer())
    tc.header.tc = 1
    cache.put("tc", tc.pack())
    assert len(cache) == 0


def test_bounded() -> None:
    cache = DnsCache(0, 3600, max_entries=100, clock=Mono())
    for i in range(250):
        cache.put(i, answer(f"n{i}.example"))
    assert len(cache) <= 100
    assert cache.get(249, q("n249.example")) is not None  # type: ignore[arg-type]


def test_names_asked_once_are_swept_out_when_they_expire() -> None:
    """Expired entries do not wait for the cache to fill: each sweep (at a put) removes them."""
    mono = Mono()
    cache = DnsCache(30, 3600, clock=mono, sweep_every=30)
    for i in range(200):                                   # 200 names asked once, 30 s each
        cache.put(f"once{i}", answer(f"once{i}.example", ttl=5))
    cache.put("long", answer("long.example", ttl=600))
    assert len(cache) == 201
    mono.now += 29
    cache.put("early", answer("early.example", ttl=300))   # before the sweep is due: nothing removed
    assert len(cache) == 202
    mono.now += 2                                          # 31 s: the short ones have expired
    cache.put("next", answer("next.example", ttl=300))
    assert len(cache) == 3 and cache.swept == 200
    assert cache.get("long", q("long.example")) is not None and cache.get("early", q("early.example")) is not None
