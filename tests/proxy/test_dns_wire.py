"""The hand-written wire format of the resolver's hot path, checked against dnslib."""
from __future__ import annotations

import struct

import pytest
from dnslib import EDNS0, QTYPE, RCODE, RR, A, DNSRecord

from proxy.dnswire import (
    RCODE_FORMERR,
    RCODE_NOTIMP,
    WireError,
    error_answer,
    for_client,
    parse_query,
    rcode_answer,
    record_ttls,
    records_answer,
    restamp,
    soa_record,
    truncated,
)


def query(name: str = "WwW.Example.COM", qtype: str = "A", edns: bool = False, do: bool = False) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = 0xBEEF
    if edns:
        q.add_ar(EDNS0(udp_len=4096, flags="do" if do else ""))
    return q.pack()


def test_parse_a_plain_query() -> None:
    q = parse_query(query())
    assert q is not None
    assert (q.id, q.name, q.qtype, q.qclass, q.edns, q.udp_size) == (0xBEEF, "www.example.com", 1, 1, False, 512)
    assert q.question == query()[12:]                    # case kept byte for byte


def test_parse_edns_and_do() -> None:
    q = parse_query(query("example.com", "AAAA", edns=True, do=True))
    assert q is not None and q.edns and q.do and q.udp_size == 4096 and q.qtype == QTYPE.AAAA


def test_responses_and_runts_are_dropped() -> None:
    assert parse_query(DNSRecord.question("example.com").reply().pack()) is None
    assert parse_query(b"\x00\x01\x00") is None


@pytest.mark.parametrize(("packet", "rcode"), [
    (query()[:20], RCODE_FORMERR),                                       # cut inside the name
    (query()[:-2], RCODE_FORMERR),                                       # cut inside the question
    (query() + b"junk", RCODE_FORMERR),                                  # trailing bytes
    (query()[:4] + struct.pack("!H", 2) + query()[6:], RCODE_FORMERR),  # two questions announced
    (query()[:12] + b"\xc0\x0c\x00\x01\x00\x01", RCODE_FORMERR),        # compression in the question
    (query()[:2] + b"\x28\x00" + query()[4:], RCODE_NOTIMP),            # opcode 5 (UPDATE)
    (query() + b"\x00" * 5000, RCODE_FORMERR),                           # oversized
])
def test_malformed_queries_get_an_error(packet: bytes, rcode: int) -> None:
    with pytest.raises(WireError) as err:
        parse_query(packet)
    assert err.value.rcode == rcode
    answer = error_answer(packet, err.value.rcode)
    assert answer is not None and answer[:2] == b"\xbe\xef" and answer[3] & 0x0F == rcode


def test_name_longer_than_255_bytes_is_formerr() -> None:
    packet = query()[:12] + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01"
    with pytest.raises(WireError):
        parse_query(packet)


def test_answers_parse_with_dnslib() -> None:
    q = parse_query(query(edns=True, do=True))
    assert q is not None
    reply = DNSRecord.parse(records_answer(q, [bytes([10, 0, 0, 1])], 60))
    assert reply.header.id == 0xBEEF and reply.header.qr == 1 and reply.header.ra == 1
    assert str(reply.q.qname) == "WwW.Example.COM."
    assert [(str(rr.rname), str(rr.rdata), rr.ttl) for rr in reply.rr] == [("WwW.Example.COM.", "10.0.0.1", 60)]
    assert reply.ar[0].rtype == QTYPE.OPT and reply.ar[0].edns_do
    nx = DNSRecord.parse(rcode_answer(q, RCODE.NXDOMAIN, soa_record(30), aa=True))
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.header.aa and nx.auth[0].rtype == QTYPE.SOA
    assert nx.auth[0].rdata.times[-1] == 30


def test_truncation_for_small_udp_clients() -> None:
    q = parse_query(query())
    assert q is not None
    big = records_answer(q, [bytes([10, 0, i // 256, i % 256]) for i in range(40)], 60)
    assert len(big) > 512
    assert for_client(big, q, udp=False) == big
    cut = DNSRecord.parse(for_client(big, q, udp=True))
    assert cut.header.tc == 1 and not cut.rr
    assert DNSRecord.parse(truncated(q)).header.id == 0xBEEF


def test_record_ttls_and_restamp() -> None:
    upstream = DNSRecord.question("example.com").reply()
    upstream.rr = [RR("example.com", QTYPE.A, ttl=123, rdata=A("192.0.2.1")),
                   RR("example.com", QTYPE.A, ttl=45, rdata=A("192.0.2.2"))]
    upstream.add_ar(EDNS0(udp_len=1232))
    wire = upstream.pack()
    offsets, ttls = record_ttls(wire)
    assert ttls == [123, 45]                             # the OPT's "TTL" is not a TTL
    q = parse_query(query("EXAMPLE.com"))
    assert q is not None
    out = DNSRecord.parse(restamp(wire, q))
    assert out.header.id == 0xBEEF and str(out.q.qname) == "EXAMPLE.com."
