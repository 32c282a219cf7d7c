"""Forwarding to the configured upstream resolvers: UDP, TCP when the answer is truncated, failover.

`Upstreams.query(wire)` sends a query (the client's packet, EDNS and all)
to the upstreams in turn, starting with the one that answered last, each with
`timeout` seconds.  UDP goes through a shared `proxy.dnschannel.UdpChannel`
per upstream (a fresh random query id per query, a fresh random source port
every few thousand queries); an answer counts only when it comes from that
upstream with that id and the same question, and the client's id is put back
before the answer is returned.  An answer with TC set is asked
again over TCP.  When every upstream has failed, `UpstreamError` is raised:
the resolver answers SERVFAIL, never NXDOMAIN.

An upstream that fails `DOWN_AFTER` times in a row, and has given no answer
at all for `HOLD_S` seconds, is left out for `HOLD_S` seconds, then tried
again (one query is its probe).  Both conditions: queries that one upstream
ignores (a pupil's flood of odd names) while it answers the others never
take it out of use.  When every upstream is
left out, a query fails at once instead of waiting out a timeout per
upstream: a school whose internet link is down gets SERVFAIL in a
millisecond, not after several seconds per name, and the resolver does not
pile up thousands of waiting queries.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Callable, Sequence

from proxy.dnschannel import UdpChannel
from proxy.dnswire import is_truncated

logger = logging.getLogger(__name__)

_LEN = struct.Struct("!H")


class UpstreamError(Exception):
    """No upstream resolver gave an answer."""


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

    DOWN_AFTER = 3
    HOLD_S = 5.0

    def __init__(self, servers: Sequence[tuple[str, int]], timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not servers:
            raise ValueError("at least one upstream resolver is needed")
        self.servers = tuple(servers)
        self.timeout = timeout
        self.clock = clock
        self._preferred = 0
        self.failures = [0] * len(self.servers)
        self._in_a_row = [0] * len(self.servers)
        self._down_until = [0.0] * len(self.servers)
        self._answered_at = [float("-inf")] * len(self.servers)
        self.fast_failures = 0        # queries failed at once: every upstream was left out
        self._channels: list[UdpChannel | None] = [None] * len(self.servers)

    def _order(self, now: float) -> list[int]:
        """The upstreams to try now, the preferred first; those left out (failing) are skipped."""
        count = len(self.servers)
        order = [(self._preferred + step) % count for step in range(count)]
        return [i for i in order if self._down_until[i] <= now]

    def _failed(self, i: int, now: float) -> None:
        self.failures[i] += 1
        self._in_a_row[i] += 1
        if self._in_a_row[i] >= self.DOWN_AFTER and now - self._answered_at[i] >= self.HOLD_S:
            if self._down_until[i] <= now:
                logger.warning("upstream %s failed %d times in a row and answered nothing for %.0f s: "
                               "left out for %.0f s",
                               self.name(self.servers[i]), self._in_a_row[i], self.HOLD_S, self.HOLD_S)
            self._down_until[i] = now + self.HOLD_S

    @staticmethod
    def name(server: tuple[str, int]) -> str:
        host, port = server
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def query(self, wire: bytes) -> tuple[bytes, str]:
        """The answer to `wire` (its id restored) and the name of the upstream that gave it."""
        client_id = wire[:2]
        question = wire[12:_question_end(wire)].lower()
        now = self.clock()
        order = self._order(now)
        if not order:
            self.fast_failures += 1
            wait = min(self._down_until) - now
            raise UpstreamError(f"every upstream failed {self.DOWN_AFTER} times in a row; "
                                f"trying again in {wait:.1f} s")
        errors = []
        for i in order:
            server = self.servers[i]
            try:
                answer = await self._udp(i, wire, question)
                if is_truncated(answer):
                    qid = secrets.randbits(16)
                    answer = await self._tcp(server, qid.to_bytes(2, "big") + wire[2:], qid, question)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                self._failed(i, self.clock())
                errors.append(f"{self.name(server)}: {type(exc).__name__} {exc}".strip())
                logger.debug("upstream %s failed: %s", self.name(server), exc)
                continue
            self._preferred = i
            self._in_a_row[i] = 0
            self._down_until[i] = 0.0
            self._answered_at[i] = self.clock()
            return client_id + answer[2:], self.name(server)
        raise UpstreamError("; ".join(errors))

    async def _udp(self, i: int, request: bytes, question: bytes) -> bytes:
        channel = self._channels[i]
        loop = asyncio.get_running_loop()
        if channel is None or channel.retired or channel.loop is not loop:
            channel = self._channels[i] = UdpChannel(self.servers[i], loop)
        return await channel.exchange(request, question, self.timeout)

    def close(self) -> None:
        """Close the sockets to the upstreams (queries in flight fail)."""
        for i, channel in enumerate(self._channels):
            if channel is not None:
                channel.close()
                self._channels[i] = None

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
