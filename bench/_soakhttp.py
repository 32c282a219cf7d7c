"""HTTP clients of `bench.soak` that really send from a chosen loopback address.

The proxy tells groups apart by the client's address, so every connection is opened from
`local_addr=(ip, 0)` and checked (`sockname`) before anything is sent: a request that would
come from another address is never sent.  (httpcore's HTTP proxy pool does not pass its
`local_address` on to forwarded plain-HTTP connections, so it cannot be used for this.)

`ProxyClient.get` sends absolute-form HTTP/1.1 requests over kept-alive connections (h11,
which mitmproxy and httpcore use too); `tunnel` opens one CONNECT tunnel, does one GET over
TLS inside it, and closes it.
"""
from __future__ import annotations

import asyncio
import logging
import ssl

import h11

logger = logging.getLogger(__name__)

READ_SIZE = 65536
CLOSE_WAIT_S = 2.0


async def _open(proxy_port: int, ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port, local_addr=(ip, 0))
    if writer.get_extra_info("sockname")[0] != ip:
        writer.close()
        raise RuntimeError(f"connection not from {ip}: refusing to send")
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close, waiting a little for it (a TLS close can hang on a stalled peer: then it is aborted)."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT_S)
    except (ConnectionError, ssl.SSLError, TimeoutError):
        writer.transport.abort()


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.used = False


class ProxyClient:
    """Plain-HTTP requests through the proxy on 127.0.0.1:`proxy_port`, from `ip`.

    At most `max_idle` connections are kept for reuse: after a burst (a stalled proxy makes the
    paced client open more), the rest are closed, so the service's descriptor count comes back."""

    def __init__(self, proxy_port: int, ip: str, max_idle: int = 8) -> None:
        self.proxy_port, self.ip, self.max_idle = proxy_port, ip, max_idle
        self.idle: list[_Conn] = []
        self.retries = 0

    async def get(self, url: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        """GET absolute-form `url`: (status, body).  A kept-alive connection the proxy has closed
        meanwhile is retried once on a new one (counted in `retries`)."""
        while self.idle:
            conn = self.idle.pop()
            try:
                return await self._exchange(conn, url, headers)
            except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError) as exc:
                if conn.used:   # the proxy began answering: a real failure
                    raise
                logger.debug("kept-alive connection closed (%s); retrying on a new one", exc)
                self.retries += 1
        reader, writer = await _open(self.proxy_port, self.ip)
        return await self._exchange(_Conn(reader, writer), url, headers)

    async def _exchange(self, conn: _Conn, url: str, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
        h = conn.h11
        try:
            for outgoing in (h11.Request(method="GET", target=url, headers=headers), h11.EndOfMessage()):
                conn.writer.write(h.send(outgoing) or b"")
            await conn.writer.drain()
            status, body = 0, bytearray()
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    h.receive_data(await conn.reader.read(READ_SIZE))
                elif isinstance(event, h11.Response):
                    status, conn.used = event.status_code, True
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise ConnectionError("the proxy closed the connection")
        except BaseException:
            await _close(conn.writer)
            raise
        if h.our_state is h11.DONE and h.their_state is h11.DONE and len(self.idle) < self.max_idle:
            h.start_next_cycle()
            conn.used = False
            self.idle.append(conn)
        else:
            await _close(conn.writer)
        return status, bytes(body)

    async def aclose(self) -> None:
        while self.idle:
            await _close(self.idle.pop().writer)


async def tunnel(proxy_port: int, ip: str, target: str, tls: ssl.SSLContext) -> tuple[int, int, bytes]:
    """CONNECT `target` from `ip`; when it opens, one GET /file over TLS: (connect status, GET status, body)."""
    reader, writer = await _open(proxy_port, ip)
    try:
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        status = int((await reader.readuntil(b"\r\n\r\n")).split(b" ", 2)[1])
        if status != 200:
            return status, 0, b""
        await writer.start_tls(tls, server_hostname="localhost")
        writer.write(b"GET /file HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        await writer.drain()
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
        return status, int(head.split(b" ", 2)[1]), body
    finally:
        await _close(writer)
