"""Helpers of the resolver's tests: a fake upstream DNS server, the demo school's resolver, a client.

`FakeUpstream` listens on 127.0.0.1 (UDP and TCP on one free port), answers
the names it is given (A/AAAA/any type via `records`), NXDOMAIN for the rest,
and can be made slow (`delay`), dead (`dead`: it reads and never answers) or
made to set TC on UDP for some names (`truncate`), so that the resolver must
ask again over TCP.  It keeps every query it received (`seen`), with whether
it came over TCP and whether it had an EDNS OPT record.

`school_data(tmp)` prepares the demo school on loopback once (config,
register with y6.banned banned, compiled category index: `tests.support.school`);
`start_dns_school(...)` starts a runtime and a real `DnsServer` on 127.0.0.1
port 0 for it, with fake upstreams and injected clocks; `ask(...)` sends a
real query over UDP or TCP from a chosen loopback source address
(127.0.1.5 = a KS1 iPad, 127.0.60.5 = a visitor's phone ...).
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dnslib import AAAA, EDNS0, QTYPE, RCODE, RR, A, DNSRecord, EDNSOption

from proxy.context import Context
from proxy.dns import DnsServer
from proxy.dnsresolver import Resolver
from proxy.dnsupstream import Upstreams
from proxy.runtime import Runtime
from tests.support.school import MONDAY_LESSON, Clock, write_school

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
        if self.dead:
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


class Mono:
    """An injected monotonic clock (seconds) that tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def school_data(tmp: Path) -> Context:
    """The demo school on loopback, initialised under `tmp` (register, ban, index). Sync."""
    from proxy import register
    from proxy.cmd_service import _import_register, build_index
    from proxy.db import open_db

    ctx = write_school(tmp)
    ctx.ensure_data_dir()

    async def init_register() -> None:
        assert await _import_register(ctx) == 0
        conn = await open_db(ctx.db_path)
        await register.ban(conn, "y6.banned", None, by="test", reason="misuse incident")
        await conn.close()

    asyncio.run(init_register())
    log = io.StringIO()
    assert build_index(ctx.settings, ctx.index_path, out=log) == 0, log.getvalue()
    return ctx


@dataclass
class DnsSchool:
    ctx: Context
    runtime: Runtime
    resolver: Resolver
    server: DnsServer
    upstreams: list[FakeUpstream]
    mono: Mono
    clock: Clock

    @property
    def port(self) -> int:
        return self.server.address[1]

    async def ask(self, name: str, qtype: str = "A", src: str = "127.0.0.1", **kwargs: Any) -> DNSRecord:
        return await ask(self.port, name, qtype, src=src, **kwargs)

    async def close(self) -> None:
        await self.server.stop()
        await self.runtime.stop()
        for upstream in self.upstreams:
            await upstream.stop()


async def start_dns_school(base: Context, *, upstreams: int = 1, at: dt.datetime = MONDAY_LESSON,
                           **dns: Any) -> DnsSchool:
    """The resolver of the demo school on 127.0.0.1 port 0, with `upstreams` fake upstreams
    (each knows www.example.test) and `[dns]` settings replaced by `dns`."""
    fakes = []
    for _ in range(upstreams):
        fake = FakeUpstream()
        fake.add("www.example.test", "192.0.2.10", "2001:db8::10")
        fake.add("forcesafesearch.google.com", "216.239.38.120")
        fake.add("restrict.youtube.com", "216.239.38.119")
        fake.add("restrictmoderate.youtube.com", "216.239.38.118")
        fake.add("strict.bing.com", "204.79.197.220")
        fake.add("safe.duckduckgo.com", "52.142.124.215")
        fake.add("www.google.com", "142.250.0.1")
        await fake.start()
        fakes.append(fake)
    settings = base.settings
    dns.setdefault("upstreams", tuple(f.address for f in fakes))
    dns.setdefault("timeout_s", 0.5)
    settings = dataclasses.replace(settings, dns=dataclasses.replace(settings.dns, enabled=True, **dns))
    ctx = Context(config_path=base.config_path, data_dir=base.data_dir, _settings=settings)
    clock = Clock(at)
    runtime = Runtime(ctx, clock=clock, refresh_every=3600)
    await runtime.start()
    mono = Mono()
    resolver = Resolver(settings, runtime.engine, Upstreams(settings.dns.upstreams, settings.dns.timeout_s),
                        log=runtime.writer, now=clock, monotonic=mono)
    server = DnsServer(resolver, "127.0.0.1", 0)
    await server.start()
    return DnsSchool(ctx, runtime, resolver, server, fakes, mono, clock)


def _exchange(port: int, packet: bytes, src: str, tcp: bool, timeout: float) -> bytes:
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0)) as s:
            s.sendall(struct.pack("!H", len(packet)) + packet)
            head = _recv_exactly(s, 2)
            return _recv_exactly(s, struct.unpack("!H", head)[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.sendto(packet, ("127.0.0.1", port))
        return s.recvfrom(65535)[0]


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


async def send_raw(port: int, packet: bytes, src: str = "127.0.0.1", tcp: bool = False,
                   timeout: float = 3.0) -> bytes:
    """One exchange with the server (in a thread, so the server on this loop can answer)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _exchange, port, packet, src, tcp, timeout)


async def ask(port: int, name: str, qtype: str = "A", src: str = "127.0.0.1", tcp: bool = False,
              edns: bool = False, qid: int | None = None, timeout: float = 3.0) -> DNSRecord:
    query = DNSRecord.question(name, qtype)
    if qid is not None:
        query.header.id = qid
    if edns:
        query.add_ar(EDNS0(udp_len=1232))
    answer = DNSRecord.parse(await send_raw(port, query.pack(), src, tcp, timeout))
    assert answer.header.id == query.header.id
    return answer


def addresses(reply: DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA)]


# -- the fake's own tests: the resolver's tests rely on it -----------------------------------------
async def _ask(fake: FakeUpstream, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    data = DNSRecord.question(name, qtype).pack()
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, lambda: DNSRecord.parse(data).send("127.0.0.1", fake.port,
                                                                               tcp=tcp, timeout=2))
    return DNSRecord.parse(raw)


@pytest.fixture
async def fake() -> FakeUpstream:
    server = FakeUpstream()
    server.add("www.example.test", "192.0.2.10", "2001:db8::10")
    server.truncate.add("big.example.test")
    server.add("big.example.test", *[f"192.0.2.{i}" for i in range(1, 60)])
    await server.start()
    yield server  # type: ignore[misc]
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
