"""Never an open proxy or resolver: a client outside the school's networks gets nothing, and nothing goes upstream.

The demo school with its loopback network narrowed to 127.0.0.1/32: a client
bound to 127.0.0.2 stands for a machine on the internet.  It is refused at
connect for plain HTTP, CONNECT and the portal's own pages, and the DNS
resolver (run beside the proxy on the same runtime, as `schoolgate run`
does) answers it REFUSED over UDP and TCP.  The same requests from
127.0.0.1 work, so the refusals are about the address and nothing else.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from proxy.cmd_dns import start_dns
from tests.security import rawhttp
from tests.support.school import School, start_school

INSIDE, OUTSIDE = "127.0.0.1", "127.0.0.2"


@dataclass
class FakeUpstream(asyncio.DatagramProtocol):
    """An upstream resolver on 127.0.0.1 that answers every A query with 192.0.2.7 and counts them."""

    seen: list[str] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        q = DNSRecord.parse(data)
        self.seen.append(str(q.q.qname).rstrip("."))
        reply = q.reply()
        reply.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.7"), ttl=300))
        assert self.transport is not None
        self.transport.sendto(reply.pack(), addr)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, int]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(FakeUpstream, local_addr=("127.0.0.1", 0))
    try:
        yield proto, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def _narrow_school(tmp_path: Path, dns_port: int) -> School:
    return await start_school(tmp_path, replace={
        'cidr = "127.0.0.0/8"': 'cidr = "127.0.0.1/32"',
        "enabled = false": "enabled = true",
        'upstreams = ["127.0.0.53"]': f'upstreams = ["127.0.0.1:{dns_port}"]'})


def _addr(school: School) -> tuple[str, int]:
    addr = school.service.address
    assert addr is not None
    return addr


async def test_the_proxy_refuses_clients_outside_the_networks(tmp_path: Path,
                                                              upstream: tuple[FakeUpstream, int]) -> None:
    school = await _narrow_school(tmp_path, upstream[1])
    try:
        proxy = _addr(school)
        for src in (OUTSIDE, INSIDE):
            plain = await rawhttp.send(proxy, src, "GET", "http://example.org/page.html", [("Host", "example.org")])
            connect = await rawhttp.connect(proxy, src, "example.org:443")
            portal = await rawhttp.send(proxy, src, "GET", "http://schoolgate.local/ca.pem",
                                        [("Host", "schoolgate.local")])
            if src == OUTSIDE:
                assert (plain.status, connect, portal.status) == (0, 0, 0), "an outsider got an answer"
            else:
                assert (plain.status, connect, portal.status) == (200, 200, 200)
        assert [s["target"] for s in school.origin.seen] == ["/page.html"]    # only the insider's
    finally:
        await school.close()


def _ask_udp(server: tuple[str, int], src: str, name: str) -> DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(5)
        s.sendto(DNSRecord.question(name).pack(), server)
        return DNSRecord.parse(s.recv(4096))


def _ask_tcp(server: tuple[str, int], src: str, name: str) -> DNSRecord:
    with socket.create_connection(server, timeout=5, source_address=(src, 0)) as s:
        packet = DNSRecord.question(name).pack()
        s.sendall(struct.pack("!H", len(packet)) + packet)
        size = struct.unpack("!H", s.recv(2))[0]
        data = b""
        while len(data) < size:
            data += s.recv(size - len(data))
        return DNSRecord.parse(data)


async def test_the_resolver_refuses_clients_outside_the_networks(tmp_path: Path,
                                                                 upstream: tuple[FakeUpstream, int]) -> None:
    fake, port = upstream
    school = await _narrow_school(tmp_path, port)
    dns = await start_dns(school.runtime, listen_port=0)
    try:
        server = dns.address
        for ask in (_ask_udp, _ask_tcp):
            reply = await asyncio.to_thread(ask, server, OUTSIDE, f"outsider-{ask.__name__}.example.org")
            assert reply.header.rcode == RCODE.REFUSED and not reply.rr, ask.__name__
        assert fake.seen == []                         # nothing went upstream for the outsider
        for ask in (_ask_udp, _ask_tcp):
            reply = await asyncio.to_thread(ask, server, INSIDE, f"insider-{ask.__name__}.example.org")
            assert reply.header.rcode == RCODE.NOERROR and [str(r.rdata) for r in reply.rr] == ["192.0.2.7"]
        assert sorted(fake.seen) == ["insider-_ask_tcp.example.org", "insider-_ask_udp.example.org"]
    finally:
        await dns.stop()
        await school.close()
