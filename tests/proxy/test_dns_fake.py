"""A small upstream DNS server for the resolver's tests, and its own tests.

`FakeUpstream` listens on 127.0.0.1 (UDP and TCP on one free port), answers
the names it is given (A/AAAA via `add`), NXDOMAIN for the rest, and can be
made slow (`delay`), dead (`dead`: it reads and never answers) or made to set
TC on UDP for some names (`truncate`), so that the resolver must ask again
over TCP.  It keeps every query it received (`seen`), with whether it came
over TCP and whether it had an EDNS OPT record.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, A, DNSRecord, EDNSOption

EDNS_MARK = EDNSOption(65001, b"fake")   # an option the fake adds to EDNS answers


@dataclass
class Seen:
    name: str
    qtype: int
    tcp: bool
    edns: bool
    id: int


@dataclass
class FakeUpstream:
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (name, "A") -> rdata texts
    ttl: int = 300
    delay: float = 0.0
    dead: bool = False
    ignore: set[str] = field(default_factory=set)    # names never answered (as if dropped)
    truncate: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, name: str, *addresses: str) -> None:
        for address in addresses:
            kind = "AAAA" if ":" in address else "A"
            self.records.setdefault((name.lower(), kind), []).append(address)

    def answer(self, data: bytes, tcp: bool) -> bytes | None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".")
        kind = QTYPE[request.q.qtype]
        edns = any(rr.rtype == QTYPE.OPT for rr in request.ar)
        self.seen.append(Seen(name, request.q.qtype, tcp, edns, request.header.id))
        if self.dead or name.lower() in self.ignore:
            return None
        reply = request.reply()
        reply.ar = []
        reply.header.ar = 0
        if edns:
            reply.add_ar(EDNS0(udp_len=4096, opts=[EDNS_MARK]))
        key = name.lower()
        if key in self.truncate and not tcp:
            reply.header.tc = 1
            return reply.pack()
        values = self.records.get((key, kind))
        if values is None and not any(n == key for n, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply.pack()
        for value in values or []:
            rdata = AAAA(value) if kind == "AAAA" else A(value)
            reply.add_answer(RR(request.q.qname, request.q.qtype, ttl=self.ttl, rdata=rdata))
        return reply.pack()

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        fake = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                fake._transport = transport  # type: ignore[assignment]

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                task = loop.create_task(fake._reply_udp(data, addr))
                fake._tasks.add(task)
                task.add_done_callback(fake._tasks.discard)

        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        await loop.create_datagram_endpoint(Protocol, sock=udp)
        self._server = await asyncio.start_server(self._on_tcp, sock=tcp)
        self.port = port
        return "127.0.0.1", port

    async def _reply_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answer(data, tcp=False)
        if answer is not None and self._transport is not None:
            self._transport.sendto(answer, addr)

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(size)
                if self.delay:
                    await asyncio.sleep(self.delay)
                answer = self.answer(data, tcp=True)
                if answer is not None:
                    writer.write(struct.pack("!H", len(answer)) + answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


# -- the fake's own tests: the resolver's tests rely on it -----------------------------------------
async def _ask(fake: FakeUpstream, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    data = DNSRecord.question(name, qtype).pack()
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, lambda: DNSRecord.parse(data).send("127.0.0.1", fake.port,
                                                                               tcp=tcp, timeout=2))
    return DNSRecord.parse(raw)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    server = FakeUpstream()
    server.add("www.example.test", "192.0.2.10", "2001:db8::10")
    server.truncate.add("big.example.test")
    server.add("big.example.test", *[f"192.0.2.{i}" for i in range(1, 60)])
    await server.start()
    yield server
    await server.stop()


async def test_fake_answers_known_names_and_nxdomain(fake: FakeUpstream) -> None:
    reply = await _ask(fake, "www.example.test")
    assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.10"]
    reply = await _ask(fake, "www.example.test", "AAAA")
    assert [str(rr.rdata) for rr in reply.rr] == ["2001:db8::10"]
    reply = await _ask(fake, "nowhere.example.test")
    assert reply.header.rcode == RCODE.NXDOMAIN


async def test_fake_truncates_over_udp_and_answers_over_tcp(fake: FakeUpstream) -> None:
    reply = await _ask(fake, "big.example.test")
    assert reply.header.tc == 1 and not reply.rr
    reply = await _ask(fake, "big.example.test", tcp=True)
    assert len(reply.rr) == 59
    assert [s.tcp for s in fake.seen] == [False, True]
