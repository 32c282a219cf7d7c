"""The resolver as clients see it: real UDP/TCP queries on loopback, the demo school's policy,
fake upstreams.  Source addresses stand for networks: 127.0.1.5 is a KS1 iPad, 127.0.2.5 a KS2
laptop, 127.0.3.11 the teacher's laptop, 127.0.60.5 a visitor's phone, 127.0.70.5 a pupil's
own phone, 127.0.4.26 the banned pupil's loaned laptop."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from dnslib import QTYPE, RCODE

from proxy.context import Context
from tests.proxy.test_dns_support import DnsSchool, addresses, school_data, start_dns_school

KS1, KS2, TEACHER, VISITOR, PUPIL_PHONE, BANNED = (
    "127.0.1.5", "127.0.2.5", "127.0.3.11", "127.0.60.5", "127.0.70.5", "127.0.4.26")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return school_data(tmp_path_factory.mktemp("dns-school"))


@pytest.fixture
async def school(base: Context) -> AsyncIterator[DnsSchool]:
    s = await start_dns_school(base)
    yield s
    await s.close()


async def test_blocked_name_points_at_the_block_page(school: DnsSchool) -> None:
    reply = await school.ask("bet365.com", src=KS2)
    assert reply.header.rcode == RCODE.NOERROR
    assert addresses(reply) == ["127.0.0.1"]          # the proxy's listen address
    assert reply.rr[0].ttl == school.ctx.settings.dns.block_ttl
    reply = await school.ask("www.bet365.com", "AAAA", src=KS2)   # no IPv6 proxy: NODATA with an SOA
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert reply.auth and reply.auth[0].rtype == QTYPE.SOA
    assert school.upstreams[0].seen == []             # a blocked name never goes upstream


async def test_allowed_name_is_forwarded(school: DnsSchool) -> None:
    reply = await school.ask("www.example.test", src=KS2)
    assert addresses(reply) == ["192.0.2.10"]
    reply = await school.ask("www.example.test", "AAAA", src=KS2)
    assert addresses(reply) == ["2001:db8::10"]
    reply = await school.ask("missing.example.test", src=KS2)
    assert reply.header.rcode == RCODE.NXDOMAIN      # the upstream's NXDOMAIN passes through


async def test_each_group_gets_its_own_decision(school: DnsSchool) -> None:
    # games: blocked for KS2 in school hours, allowed for staff; KS1 is a walled garden
    assert addresses(await school.ask("miniclip.com", src=KS2)) == ["127.0.0.1"]
    assert addresses(await school.ask("miniclip.com", src=TEACHER)) != ["127.0.0.1"]
    assert addresses(await school.ask("www.example.test", src=KS1)) == ["127.0.0.1"]
    assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]
    # social networks: blocked for guests and pupils, not for staff
    assert addresses(await school.ask("facebook.com", src=VISITOR)) == ["127.0.0.1"]
    # pupils' own phones and banned pupils: everything blocked
    assert addresses(await school.ask("www.example.test", src=PUPIL_PHONE)) == ["127.0.0.1"]
    assert addresses(await school.ask("www.example.test", src=BANNED)) == ["127.0.0.1"]


async def test_illegal_tier_is_blocked_for_everyone(school: DnsSchool) -> None:
    for src in (KS2, TEACHER, VISITOR):
        assert addresses(await school.ask("iwf-test-entry.test", src=src)) == ["127.0.0.1"]


async def test_clients_outside_the_networks_are_refused(base: Context) -> None:
    import dataclasses

    settings = base.settings
    narrowed = tuple(n for n in settings.networks if not str(n.cidr).startswith("127.0.0.0"))
    ctx = Context(config_path=base.config_path, data_dir=base.data_dir,
                  _settings=dataclasses.replace(settings, networks=narrowed))
    school = await start_dns_school(ctx)
    try:
        reply = await school.ask("www.example.test", src="127.0.99.9")
        assert reply.header.rcode == RCODE.REFUSED and not reply.rr
        assert addresses(await school.ask("www.example.test", src=KS2)) == ["192.0.2.10"]
        assert [s.name for s in school.upstreams[0].seen] == ["www.example.test"]
    finally:
        await school.close()


@pytest.mark.parametrize("mode", ["zero", "nxdomain"])
async def test_block_answer_modes(base: Context, mode: str) -> None:
    school = await start_dns_school(base, block_answer=mode, block_ttl=17)
    try:
        a = await school.ask("bet365.com", src=KS2)
        aaaa = await school.ask("bet365.com", "AAAA", src=KS2)
        if mode == "zero":
            assert addresses(a) == ["0.0.0.0"] and addresses(aaaa) == ["::"]
            assert a.rr[0].ttl == 17
        else:
            for reply in (a, aaaa):
                assert reply.header.rcode == RCODE.NXDOMAIN
                assert reply.auth[0].rtype == QTYPE.SOA and reply.auth[0].ttl == 17
    finally:
        await school.close()


async def test_other_types_of_blocked_names_get_no_data(school: DnsSchool) -> None:
    for qtype in ("HTTPS", "TXT", "MX"):
        reply = await school.ask("bet365.com", qtype, src=KS2)
        assert reply.header.rcode == RCODE.NOERROR and not reply.rr, qtype


async def test_canaries(school: DnsSchool) -> None:
    for name in ("use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"):
        reply = await school.ask(name, src=TEACHER)
        assert reply.header.rcode == RCODE.NXDOMAIN, name
        assert reply.auth[0].rtype == QTYPE.SOA
    reply = await school.ask("_dns.resolver.arpa", "SVCB", src=TEACHER)
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr
    assert school.upstreams[0].seen == []


async def test_block_page_name_resolves_to_the_proxy(school: DnsSchool) -> None:
    assert addresses(await school.ask("schoolgate.local", src=VISITOR)) == ["127.0.0.1"]


@pytest.mark.parametrize(("src", "name", "target", "address"), [
    (KS2, "www.google.com", "forcesafesearch.google.com.", "216.239.38.120"),
    (KS2, "www.google.co.uk", "forcesafesearch.google.com.", "216.239.38.120"),
    (VISITOR, "google.de", "forcesafesearch.google.com.", "216.239.38.120"),
    (KS2, "www.youtube.com", "restrict.youtube.com.", "216.239.38.119"),
    (TEACHER, "www.youtube.com", "restrictmoderate.youtube.com.", "216.239.38.118"),
    (TEACHER, "m.youtube.com", "restrictmoderate.youtube.com.", "216.239.38.118"),
    (KS2, "www.bing.com", "strict.bing.com.", "204.79.197.220"),
    (KS2, "duckduckgo.com", "safe.duckduckgo.com.", "52.142.124.215"),
])
async def test_safe_search_by_cname(school: DnsSchool, src: str, name: str, target: str, address: str) -> None:
    reply = await school.ask(name, src=src)
    assert reply.rr[0].rtype == QTYPE.CNAME
    assert str(reply.rr[0].rname).rstrip(".") == name
    assert str(reply.rr[0].rdata) == target
    assert addresses(reply) == [address]             # the target resolved in the same answer
    assert name not in [s.name for s in school.upstreams[0].seen]


async def test_safe_search_answers_differ_by_group_from_the_cache(school: DnsSchool) -> None:
    for _ in range(2):   # the second round comes from the cache
        assert str((await school.ask("www.youtube.com", src=KS2)).rr[0].rdata) == "restrict.youtube.com."
        assert str((await school.ask("www.youtube.com", src=TEACHER)).rr[0].rdata) == \
            "restrictmoderate.youtube.com."
    assert [s.name for s in school.upstreams[0].seen].count("restrict.youtube.com") == 1


async def test_remembered_decisions_follow_overrides_and_the_clock(school: DnsSchool) -> None:
    import datetime as dt

    from proxy.policy import Override

    assert addresses(await school.ask("miniclip.com", src=KS2)) == ["127.0.0.1"]     # games, school hours
    now = school.clock()
    # a teacher lifts games for KS2: the runtime's refresh swaps in new overrides
    school.runtime.engine.overrides = (Override(1, "ks2", now - dt.timedelta(minutes=1),
                                                now + dt.timedelta(minutes=30), category="games", by="teacher"),)
    school.mono.now += 0.2
    assert addresses(await school.ask("miniclip.com", src=KS2)) != ["127.0.0.1"]
    school.runtime.engine.overrides = ()
    school.mono.now += 0.2
    assert addresses(await school.ask("miniclip.com", src=KS2)) == ["127.0.0.1"]
    # after school (the same memo would still say "blocked"): decided again within a minute
    school.clock.now = school.clock.now.replace(hour=16)
    school.mono.now += 61
    assert addresses(await school.ask("miniclip.com", src=KS2)) != ["127.0.0.1"]


@pytest.mark.parametrize("name", ["dns.google", "cloudflare-dns.com", "mozilla.cloudflare-dns.com"])
async def test_doh_resolvers_are_blocked_by_category(school: DnsSchool, name: str) -> None:
    for src in (KS2, TEACHER, VISITOR):
        assert addresses(await school.ask(name, src=src)) == ["127.0.0.1"], (name, src)
    assert school.upstreams[0].seen == []


async def test_no_decision_fails_closed_for_pupils_and_open_for_staff(school: DnsSchool) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("the category index is damaged")

    school.runtime.engine.decide_name = broken  # type: ignore[method-assign]
    assert addresses(await school.ask("www.example.test", src=KS2)) == ["127.0.0.1"]
    assert addresses(await school.ask("www.example.test", src=TEACHER)) == ["192.0.2.10"]
    assert school.resolver.counts["undecided"] == 2


async def test_zone_transfers_and_other_classes_are_refused(school: DnsSchool) -> None:
    from dnslib import CLASS, DNSRecord

    assert (await school.ask("example.test", "AXFR", src=KS2, tcp=True)).header.rcode == RCODE.REFUSED
    chaos = DNSRecord.question("version.bind", "TXT", "CH")
    from tests.proxy.test_dns_support import send_raw

    reply = DNSRecord.parse(await send_raw(school.port, chaos.pack(), src=KS2))
    assert reply.header.rcode == RCODE.REFUSED and reply.q.qclass == CLASS.CH
    assert school.upstreams[0].seen == []
