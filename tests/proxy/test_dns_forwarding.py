"""Forwarding as clients see it: the cache and its TTLs, ids and 0x20 case, EDNS, failover and
SERVFAIL, TCP both ways, rate limiting and the query log; real queries on loopback to the demo
school's resolver with fake upstreams and injected clocks."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE

from proxy.context import Context
from tests.proxy.test_dns_support import DnsSchool, addresses, school_data, start_dns_school

KS2, TEACHER, VISITOR = "127.0.2.5", "127.0.3.11", "127.0.60.5"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return school_data(tmp_path_factory.mktemp("dns-school"))


@pytest.fixture
async def school(base: Context) -> AsyncIterator[DnsSchool]:
    s = await start_dns_school(base)
    yield s
    await s.close()


async def test_cache_hits_and_expiry(school: DnsSchool) -> None:
    fake = school.upstreams[0]
    fake.ttl = 120
    first = await school.ask("www.example.test", src=KS2)
    assert first.rr[0].ttl == 120
    school.mono.now += 50
    second = await school.ask("www.example.test", src=TEACHER)
    assert addresses(second) == ["192.0.2.10"] and second.rr[0].ttl == 70   # counted down
    assert len(fake.seen) == 1
    school.mono.now += 71
    await school.ask("www.example.test", src=KS2)
    assert len(fake.seen) == 2                                               # expired: asked again


async def test_ttls_are_clamped_to_the_configured_range(base: Context) -> None:
    school = await start_dns_school(base, min_ttl=30, max_ttl=600)
    try:
        fake = school.upstreams[0]
        fake.ttl = 5
        assert (await school.ask("www.example.test", src=KS2)).rr[0].ttl == 30
        school.mono.now += 29
        await school.ask("www.example.test", src=KS2)
        assert len(fake.seen) == 1
        fake.ttl = 86400
        assert (await school.ask("www.example.test", "AAAA", src=KS2)).rr[0].ttl == 600
    finally:
        await school.close()


async def test_query_id_and_case_are_preserved(school: DnsSchool) -> None:
    for _ in range(2):    # upstream, then cache
        reply = await school.ask("WwW.ExAmPlE.TeSt", src=KS2, qid=4321)
        assert reply.header.id == 4321
        assert str(reply.q.qname) == "WwW.ExAmPlE.TeSt."
        assert addresses(reply) == ["192.0.2.10"]
    reply = await school.ask("BeT365.CoM", src=KS2, qid=77)
    assert reply.header.id == 77 and str(reply.q.qname) == "BeT365.CoM."


async def test_edns_is_passed_through(school: DnsSchool) -> None:
    from tests.proxy.test_dns_support import EDNS_MARK

    reply = await school.ask("www.example.test", src=KS2, edns=True)
    assert school.upstreams[0].seen[-1].edns
    opts = [opt for rr in reply.ar if rr.rtype == QTYPE.OPT for opt in rr.rdata]
    assert any(o.code == EDNS_MARK.code and o.data == EDNS_MARK.data for o in opts)
    plain = await school.ask("www.example.test", src=KS2)        # kept apart in the cache
    assert not [rr for rr in plain.ar if rr.rtype == QTYPE.OPT]


async def test_upstream_failover_and_servfail(base: Context) -> None:
    school = await start_dns_school(base, upstreams=2, timeout_s=0.2)
    try:
        first, second = school.upstreams
        first.dead = True
        assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]
        assert len(first.seen) == 1 and len(second.seen) == 1
        second.dead = True
        reply = await school.ask("www.example.test", "AAAA", src=KS2)
        assert reply.header.rcode == RCODE.SERVFAIL                  # never NXDOMAIN
        first.dead = second.dead = False
        assert addresses(await school.ask("www.example.test", "AAAA", src=KS2)) == ["2001:db8::10"]
    finally:
        await school.close()


async def test_a_dead_link_is_answered_at_once_and_probed_until_it_is_back(base: Context) -> None:
    """Three timeouts in a row leave an upstream out for a few seconds; with all of them out,
    SERVFAIL comes at once (not after a timeout per upstream per name), and a probe finds the way back."""
    school = await start_dns_school(base, upstreams=2, timeout_s=0.2)
    try:
        first, second = school.upstreams
        first.dead = second.dead = True
        hold = school.resolver.upstreams.HOLD_S
        for i in range(3):
            assert (await school.ask(f"n{i}.example.test", src=KS2)).header.rcode == RCODE.SERVFAIL
        assert len(first.seen) == len(second.seen) == 3          # each asked, each timed out
        for i in range(5):                                         # left out: nobody waits, nobody is asked
            reply = await school.ask(f"m{i}.example.test", src=KS2, timeout=0.15)
            assert reply.header.rcode == RCODE.SERVFAIL
        assert len(first.seen) == len(second.seen) == 3
        assert school.resolver.upstreams.fast_failures == 5
        second.dead = False                                        # the link is back
        school.mono.now += hold
        assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]   # the probe
        assert len(first.seen) == 4 and len(second.seen) == 4     # first still dead, second answered
        assert addresses(await school.ask("www.example.test", "AAAA", src=KS2)) == ["2001:db8::10"]
        assert len(first.seen) == 4 and len(second.seen) == 5     # first stays left out for now
    finally:
        await school.close()


async def test_names_an_upstream_ignores_never_take_it_out_of_use(base: Context) -> None:
    """A flood of names the upstream drops (timeouts in a row) while it answers others: still in use."""
    school = await start_dns_school(base, timeout_s=0.1)
    try:
        fake = school.upstreams[0]
        fake.ignore = {f"odd{i}.example.test" for i in range(6)}
        assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]
        school.mono.now += 2
        for i in range(6):
            assert (await school.ask(f"odd{i}.example.test", src=KS2)).header.rcode == RCODE.SERVFAIL
        assert addresses(await school.ask("www.example.test", "AAAA", src=KS2)) == ["2001:db8::10"]
        assert school.resolver.upstreams.fast_failures == 0
    finally:
        await school.close()


async def test_slow_upstream_answers_within_the_timeout(base: Context) -> None:
    school = await start_dns_school(base, timeout_s=1.0)
    try:
        school.upstreams[0].delay = 0.2
        assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]
    finally:
        await school.close()


async def test_truncated_upstream_answer_is_fetched_over_tcp(school: DnsSchool) -> None:
    fake = school.upstreams[0]
    many = [f"192.0.2.{i}" for i in range(1, 80)]
    fake.add("big.example.test", *many)
    fake.truncate.add("big.example.test")
    reply = await school.ask("big.example.test", src=KS2, tcp=True)
    assert sorted(addresses(reply)) == sorted(many)
    assert [s.tcp for s in fake.seen if s.name == "big.example.test"] == [False, True]
    udp = await school.ask("big.example.test", src=KS2)              # too big for a plain UDP client
    assert udp.header.tc == 1 and not udp.rr


async def test_tcp_queries(school: DnsSchool) -> None:
    assert addresses(await school.ask("bet365.com", src=KS2, tcp=True)) == ["127.0.0.1"]
    assert addresses(await school.ask("www.example.test", src=KS2, tcp=True)) == ["192.0.2.10"]


async def test_rate_limit_refuses_the_excess(base: Context) -> None:
    school = await start_dns_school(base, rate_limit_qps=1.0, rate_limit_burst=5)
    try:
        codes = [(await school.ask("bet365.com", src=KS2)).header.rcode for _ in range(8)]
        assert codes[:5] == [RCODE.NOERROR] * 5 and codes[5:] == [RCODE.REFUSED] * 3
        assert (await school.ask("bet365.com", src=TEACHER)).header.rcode == RCODE.NOERROR   # per client
        school.mono.now += 2.0                                        # two tokens back
        codes = [(await school.ask("bet365.com", src=KS2)).header.rcode for _ in range(3)]
        assert codes == [RCODE.NOERROR, RCODE.NOERROR, RCODE.REFUSED]
    finally:
        await school.close()


async def test_query_rows_are_written(school: DnsSchool, tmp_path: Path) -> None:
    from proxy.db import open_db
    from proxy.records import read_dns_queries

    await school.ask("rows-bet365.bet365.com", src=KS2)
    await school.ask("www.example.test", src=TEACHER)
    await school.ask("use-application-dns.net", src=VISITOR)
    await school.runtime.writer.flush()
    conn = await open_db(school.ctx.db_path)
    try:
        rows = [r.record for r in await read_dns_queries(conn, 0, 2**40)]
    finally:
        await conn.close()
    blocked = [r for r in rows if r.qname == "rows-bet365.bet365.com"][-1]
    assert (blocked.client_ip, blocked.group, blocked.action, blocked.rule) == (
        KS2, "ks2", "block", "category.blocked")
    assert blocked.qtype == 1 and blocked.upstream is None and blocked.rcode == 0
    assert blocked.ts == int(school.clock().timestamp())
    allowed = [r for r in rows if r.qname == "www.example.test" and r.client_ip == TEACHER][-1]
    assert (allowed.group, allowed.user, allowed.device, allowed.action) == ("staff", "teacher", "teacher-laptop",
                                                                            "allow")
    assert allowed.upstream is not None and allowed.upstream.startswith("127.0.0.1:")
    canary = [r for r in rows if r.qname == "use-application-dns.net"][-1]
    assert (canary.group, canary.action, canary.rule, canary.rcode) == ("guest", "block", "dns.canary", 3)
