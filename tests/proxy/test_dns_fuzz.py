"""Random and mutated packets never stop the resolver: it answers FORMERR (or drops) and keeps
answering correctly.  100,000 datagrams are sent without waiting for answers, garbage goes over
TCP too, and the chain itself is checked in process for exceptions on the same kind of input."""
from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import AsyncIterator, Iterator

import pytest
from dnslib import EDNS0, RCODE, DNSRecord

from proxy.context import Context
from tests.proxy.test_dns_support import DnsSchool, addresses, school_data, start_dns_school

FLOOD = 100_000
KS1_IPAD = "127.0.1.5"       # a walled garden: random names are decided without going upstream


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return school_data(tmp_path_factory.mktemp("dns-fuzz"))


@pytest.fixture
async def school(base: Context) -> AsyncIterator[DnsSchool]:
    s = await start_dns_school(base, rate_limit_qps=1_000_000.0, rate_limit_burst=1_000_000, timeout_s=0.3)
    yield s
    await s.close()


def _templates() -> list[bytes]:
    out = []
    for name, qtype in (("www.example.test", "A"), ("bet365.com", "AAAA"), ("www.google.com", "A"),
                        ("use-application-dns.net", "A"), ("a.b.c.d.e.f.example.test", "TXT")):
        q = DNSRecord.question(name, qtype)
        out.append(q.pack())
        q.add_ar(EDNS0(udp_len=4096, flags="do"))
        out.append(q.pack())
    reply = DNSRecord.question("www.example.test").reply()
    out.append(reply.pack())                                   # a response: must be dropped
    two = DNSRecord.question("www.example.test")
    two.add_question(*DNSRecord.question("bet365.com").questions)
    out.append(two.pack())                                     # two questions: FORMERR
    return out


def packets(n: int, seed: int = 20261123) -> Iterator[bytes]:
    """Random bytes, and valid queries with bytes flipped, cut, extended or counts changed."""
    rng = random.Random(seed)
    templates = _templates()
    for _ in range(n):
        kind = rng.random()
        if kind < 0.25:
            yield rng.randbytes(rng.randrange(0, 600))
            continue
        data = bytearray(rng.choice(templates))
        if kind < 0.55:
            for _ in range(rng.randrange(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind < 0.7:
            data = data[:rng.randrange(len(data))]
        elif kind < 0.8:
            data += rng.randbytes(rng.randrange(1, 80))
        elif kind < 0.9:
            struct.pack_into("!HHHH", data, 4, *(rng.choice((0, 1, 2, 255, 65535)) for _ in range(4)))
        elif kind < 0.95:
            data[12:14] = b"\xc0\x0c"                          # a compression loop in the question
        else:
            data = data + rng.randbytes(5000)                 # oversized
        yield bytes(data)


async def test_chain_never_raises_on_garbage(school: DnsSchool) -> None:
    formerr = dropped = 0
    for packet in packets(10_000, seed=7):
        result = school.resolver.handle(packet, KS1_IPAD, True)
        if result is None:
            dropped += 1
            continue
        if not isinstance(result, bytes):
            result = await result            # type: ignore[misc]
            assert result is not None
        assert result[:2] == packet[:2]      # the client's id, whatever else happened
        assert result[2] & 0x80              # a response
        formerr += result[3] & 0x0F == RCODE.FORMERR
    assert formerr > 2_500 and dropped > 500


async def _flood_udp(port: int) -> None:
    loop = asyncio.get_running_loop()

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((KS1_IPAD, 0))
            s.setblocking(False)
            sent = 0
            for packet in packets(FLOOD):
                try:
                    s.sendto(packet, ("127.0.0.1", port))
                except (BlockingIOError, OSError):
                    pass          # too big for a datagram, or the send buffer is full: it counts as sent
                sent += 1
            assert sent == FLOOD

    await loop.run_in_executor(None, send)


async def _flood_tcp(port: int) -> None:
    """Garbage over TCP, 300 connections at once: wrong length prefixes, cut messages, noise."""
    async def one(packet: bytes, extra: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writer.write(struct.pack("!H", min(len(packet) + extra, 65535)) + packet[:65000])
        try:
            await writer.drain()
            await asyncio.wait_for(reader.read(100), 0.2)
        except (OSError, TimeoutError):
            pass
        writer.close()

    rng = random.Random(3)
    await asyncio.gather(*(one(p, rng.choice((0, 0, 7))) for p in packets(300, seed=3)))


async def _settled(school: DnsSchool) -> DNSRecord:
    for _ in range(50):                      # until the server has worked through its backlog
        try:
            return await school.ask("bet365.com", src="127.0.2.5", timeout=0.5)
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the resolver stopped answering")


async def test_flood_of_random_packets_then_correct_answers(school: DnsSchool) -> None:
    # The upstream answers first: the odd names of the flood that the fake upstream cannot parse (and
    # drops) then never make it look down (`Upstreams`: no answer at all for a while is also needed).
    assert (await school.ask("www.example.test", "TXT", src="127.0.2.5")).header.rcode == 0
    await asyncio.gather(_flood_udp(school.port), _flood_tcp(school.port))
    assert addresses(await _settled(school)) == ["127.0.0.1"]
    assert school.resolver.counts["malformed"] > 10_000
    assert addresses(await school.ask("www.example.test", src="127.0.2.5")) == ["192.0.2.10"]
    assert addresses(await school.ask("www.example.test", "AAAA", src="127.0.2.5", tcp=True)) == ["2001:db8::10"]
    reply = await school.ask("use-application-dns.net", src="127.0.60.5")
    assert reply.header.rcode == RCODE.NXDOMAIN
