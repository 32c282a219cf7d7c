"""Helpers of the resolver's tests: the demo school's resolver on loopback and a DNS client.

`school_data(tmp)` prepares the demo school on loopback once (config,
register with y6.banned banned, compiled category index: `tests.support.school`);
`start_dns_school(...)` starts a runtime and a real `DnsServer` on 127.0.0.1
port 0 for it, with fake upstreams (`tests.proxy.test_dns_fake`) and injected
clocks; `ask(...)` sends a real query over UDP or TCP from a chosen loopback
source address (127.0.1.5 = a KS1 iPad, 127.0.60.5 = a visitor's phone ...).
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnslib import EDNS0, QTYPE, DNSRecord

from proxy.context import Context
from proxy.dns import DnsServer
from proxy.dnsresolver import Resolver
from proxy.dnsupstream import Upstreams
from proxy.runtime import Runtime
from tests.proxy.test_dns_fake import EDNS_MARK, FakeUpstream
from tests.support.school import MONDAY_LESSON, Clock, write_school

__all__ = ["EDNS_MARK", "FakeUpstream", "DnsSchool", "Mono", "addresses", "ask", "school_data", "send_raw",
           "start_dns_school"]


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
    resolver = Resolver(settings, runtime.engine, Upstreams(settings.dns.upstreams, settings.dns.timeout_s, mono),
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
