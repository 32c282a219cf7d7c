"""Forwarding to the configured upstream resolvers: UDP, TCP when the answer is truncated, failover.

`Upstreams.query(wire)` sends a query (the client's packet, EDNS and all)
to the upstreams in turn, starting with the one that answered last, each with
`timeout` seconds.  Every attempt uses a fresh socket (a random source port
from the kernel) and a fresh random query id, and an answer counts only when
it comes from that upstream with that id and the same question; the client's
id is put back before the answer is returned.  An answer with TC set is asked
again over TCP.  When every upstream has failed, `UpstreamError` is raised:
the resolver answers SERVFAIL, never NXDOMAIN.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
from collections.abc import Sequence

from proxy.dnswire import is_truncated

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!H")


class UpstreamError(Exception):
    """No upstream resolver gave an answer."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _question_end(wire: bytes) -> int:
    pos = 12
    while wire[pos]:
        pos += 1 + wire[pos]
    return pos + 5


def _matches(answer: bytes, qid: int, question: bytes) -> bool:
    return (len(answer) >= 12 + len(question) and (answer[0] << 8 | answer[1]) == qid
            and bool(answer[2] & 0x80) and answer[12:12 + len(question)].lower() == question)


class Upstreams:
    """The upstream resolvers of `[dns] upstreams` (see the module docstring)."""

    def __init__(self, servers: Sequence[tuple[str, int]], timeout: float = 2.0) -> None:
        if not servers:
            raise ValueError("at least one upstream resolver is needed")
        self.servers = tuple(servers)
        self.timeout = timeout
        self._preferred = 0
        self.failures = [0] * len(self.servers)

    @staticmethod
    def name(server: tuple[str, int]) -> str:
        host, port = server
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def query(self, wire: bytes) -> tuple[bytes, str]:
        """The answer to `wire` (its id restored) and the name of the upstream that gave it."""
        client_id = wire[:2]
        question = wire[12:_question_end(wire)].lower()
        count = len(self.servers)
        errors = []
        for step in range(count):
            i = (self._preferred + step) % count
            server = self.servers[i]
            qid = secrets.randbits(16)
            request = qid.to_bytes(2, "big") + wire[2:]
            try:
                answer = await self._udp(server, request, qid, question)
                if is_truncated(answer):
                    answer = await self._tcp(server, request, qid, question)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                self.failures[i] += 1
                errors.append(f"{self.name(server)}: {type(exc).__name__} {exc}".strip())
                logger.debug("upstream %s failed: %s", self.name(server), exc)
                continue
            self._preferred = i
            return client_id + answer[2:], self.name(server)
        raise UpstreamError("; ".join(errors))

    async def _udp(self, server: tuple[str, int], request: bytes, qid: int, question: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        sock = socket.socket(_family(server[0]), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(server)             # only this upstream's datagrams reach the socket
            await loop.sock_sendall(sock, request)
            deadline = loop.time() + self.timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError("no answer in time")
                answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), remaining)
                if _matches(answer, qid, question):
                    return answer
                logger.debug("ignored a datagram from %s that does not answer our query", self.name(server))
        finally:
            sock.close()

    async def _tcp(self, server: tuple[str, int], request: bytes, qid: int, question: bytes) -> bytes:
        async def exchange() -> bytes:
            reader, writer = await asyncio.open_connection(server[0], server[1])
            try:
                writer.write(_LEN.pack(len(request)) + request)
                await writer.drain()
                while True:
                    (size,) = _LEN.unpack(await reader.readexactly(2))
                    answer = await reader.readexactly(size)
                    if _matches(answer, qid, question):
                        return answer
            finally:
                writer.close()

        return await asyncio.wait_for(exchange(), self.timeout)
