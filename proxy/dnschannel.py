"""One UDP socket to one upstream resolver, shared by many queries at once.

Creating a socket and a task per forwarded query costs more than the rest of
the resolver's work for it; a `UdpChannel` is one connected socket (only that
upstream's datagrams reach it) read by the event loop, with the queries in
flight keyed by their random 16-bit id and checked against their question.
After `MAX_USES` queries a channel retires: the next query opens a new
channel, so a new random source port, and the old one closes when its last
query is answered or times out.  ICMP "port unreachable" fails every query in
flight on the channel at once, so failover does not wait for the timeout.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import socket

logger = logging.getLogger(__name__)


class UdpChannel:
    MAX_USES = 10_000

    def __init__(self, server: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        try:
            self.sock.connect(server)
        except OSError:
            self.sock.close()
            raise
        self.uses = 0
        self.closed = False
        self._pending: dict[int, tuple[bytes, asyncio.Future[bytes]]] = {}
        loop.add_reader(self.sock.fileno(), self._on_readable)

    @property
    def retired(self) -> bool:
        return self.closed or self.uses >= self.MAX_USES

    async def exchange(self, wire: bytes, question: bytes, timeout: float) -> bytes:
        """Send `wire` (its id replaced) and wait for the matching answer; TimeoutError, OSError."""
        if self.closed:
            raise OSError("channel closed")
        pending = self._pending
        qid = secrets.randbits(16)
        while qid in pending:
            qid = secrets.randbits(16)
        future: asyncio.Future[bytes] = self.loop.create_future()
        pending[qid] = (question, future)
        self.uses += 1
        timer = self.loop.call_later(timeout, _expire, future)
        try:
            self.sock.send(qid.to_bytes(2, "big") + wire[2:])
            return await future
        finally:
            timer.cancel()
            pending.pop(qid, None)
            if self.uses >= self.MAX_USES and not pending:
                self.close()

    def _on_readable(self) -> None:
        for _ in range(64):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:          # ICMP errors: the upstream is not there
                self._fail_all(exc)
                return
            if len(data) < 12 or not data[2] & 0x80:
                continue
            found = self._pending.get((data[0] << 8) | data[1])
            if found is None:
                continue                    # late, or not ours
            question, future = found
            if data[12:12 + len(question)].lower() != question:
                logger.debug("ignored an answer from %s with our id but another question", self.server)
                continue
            if not future.done():
                future.set_result(data)

    def _fail_all(self, exc: OSError) -> None:
        for _, future in list(self._pending.values()):
            if not future.done():
                future.set_exception(OSError(exc.errno, f"upstream {self.server[0]}:{self.server[1]}: {exc}"))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.remove_reader(self.sock.fileno())
        except (ValueError, RuntimeError):   # the loop is already closed
            pass
        self.sock.close()
        self._fail_all(OSError("channel closed"))


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("no answer in time"))
