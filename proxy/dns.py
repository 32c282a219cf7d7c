"""The DNS server: UDP and TCP on the configured address, answering through `Resolver`.

UDP is read straight from a non-blocking socket: each time it is readable,
up to `BATCH` datagrams are taken and answered in one go (no per-datagram
trip through the event loop), which is what lets one Python process keep up
with dnsmasq.  Answers the resolver has at once are sent at once; a cache miss
becomes a task.  TCP (RFC 7766: two-byte length prefix, several queries per
connection) is served by asyncio streams, with an idle timeout and a cap on
connections.  Nothing a client sends can stop the server: a packet that makes
the resolver fail is logged and dropped.

`resolver_for(runtime)` builds the resolver of a running Schoolgate (engine,
query log, clock); `DnsServer` serves it.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Coroutine
from typing import Any

from proxy.dnsresolver import Resolver
from proxy.dnsupstream import Upstreams
from proxy.dnswire import MAX_QUERY
from proxy.runtime import Runtime

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!H")


def resolver_for(runtime: Runtime) -> Resolver:
    """The resolver of a running Schoolgate: its engine, its query log and its clock."""
    dns = runtime.settings.dns
    return Resolver(runtime.settings, runtime.engine, Upstreams(dns.upstreams, dns.timeout_s),
                    log=runtime.writer, now=runtime.clock)


class DnsServer:
    """UDP + TCP listener for a `Resolver` (see the module docstring)."""

    BATCH = 256
    RCVBUF = 4 * 1024 * 1024

    def __init__(self, resolver: Resolver, host: str, port: int, *, tcp_idle_s: float = 10.0,
                 max_tcp: int = 256, max_pending: int = 5_000) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self.tcp_idle_s = tcp_idle_s
        self.max_tcp = max_tcp
        self.max_pending = max_pending
        self._udp: socket.socket | None = None
        self._tcp: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tcp_clients = 0
        self._errors = 0
        self._last_error_log = 0.0

    @property
    def address(self) -> tuple[str, int]:
        if self._udp is None:
            raise RuntimeError("the DNS server is not started")
        host, port = self._udp.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for attempt in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.bind((self.host, self.port))
                port = udp.getsockname()[1]
                tcp = socket.socket(family, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    tcp.bind((self.host, port))
                except OSError as exc:
                    tcp.close()
                    if self.port == 0 and exc.errno == errno.EADDRINUSE and attempt < 19:
                        udp.close()
                        continue     # port 0: the UDP port's TCP twin is taken, try another
                    raise
            except BaseException:
                udp.close()
                raise
            break
        udp.setblocking(False)
        with contextlib.suppress(OSError):
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.RCVBUF)
        self._udp = udp
        self._tcp = await asyncio.start_server(self._on_tcp, sock=tcp, limit=70_000)
        self._loop.add_reader(udp.fileno(), self._on_udp)
        logger.info("DNS resolver listening on %s port %d (UDP and TCP)", self.host, port)

    async def stop(self) -> None:
        if self._udp is not None and self._loop is not None:
            self._loop.remove_reader(self._udp.fileno())
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None
        self.resolver.upstreams.close()

    # -- UDP ----------------------------------------------------------------------------------
    def _on_udp(self) -> None:
        sock = self._udp
        if sock is None:
            return
        recvfrom = sock.recvfrom
        sendto = sock.sendto
        handle = self.resolver.handle
        for _ in range(self.BATCH):
            try:
                packet, addr = recvfrom(MAX_QUERY + 1)   # longer: cut, and answered FORMERR
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:       # e.g. ICMP errors reported on the socket
                logger.debug("UDP receive: %s", exc)
                continue
            try:
                result = handle(packet, addr[0], True)
                if result is None:
                    continue
                if type(result) is bytes:
                    sendto(result, addr)
                else:
                    self._later(result, addr)  # type: ignore[arg-type]
            except (BlockingIOError, InterruptedError):
                pass                     # send buffer full: the client will ask again
            except Exception:
                self._failed(addr[0])

    def _later(self, pending: Coroutine[Any, Any, bytes | None], addr: tuple[str, int]) -> None:
        if len(self._tasks) >= self.max_pending:
            pending.close()
            return
        assert self._loop is not None
        task = self._loop.create_task(self._send_later(pending, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_later(self, pending: Coroutine[Any, Any, bytes | None], addr: tuple[str, int]) -> None:
        try:
            answer = await pending
            if answer is not None and self._udp is not None:
                self._udp.sendto(answer, addr)
        except (BlockingIOError, InterruptedError):
            pass
        except Exception:
            self._failed(addr[0])

    def _failed(self, client: str) -> None:
        """A query made the resolver fail: count it, log it now and then, keep serving."""
        self._errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= 10.0:
            self._last_error_log = now
            logger.exception("a query from %s could not be answered (%d so far)", client, self._errors)

    # -- TCP ----------------------------------------------------------------------------------
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        client = peer[0] if peer else ""
        self._tcp_clients += 1
        try:
            if self._tcp_clients > self.max_tcp:
                return
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_s)
                (size,) = _LEN.unpack(head)
                packet = await asyncio.wait_for(reader.readexactly(size), self.tcp_idle_s)
                try:
                    result = self.resolver.handle(packet, client, False)
                    if result is not None and type(result) is not bytes:
                        result = await result   # type: ignore[misc]
                except Exception:
                    self._failed(client)
                    return
                if result is None:
                    return                      # not worth an answer: close, as for garbage
                writer.write(_LEN.pack(len(result)) + result)   # type: ignore[arg-type]
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tcp_clients -= 1
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
