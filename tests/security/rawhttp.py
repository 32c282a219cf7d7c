"""A raw HTTP/1.1 client for hostile requests: bytes on a socket from a chosen loopback address.

httpx would tidy a hostile URL or header up before it left; this sends the
request line and headers exactly as given (absolute-form, the way a browser
talks to a proxy), with `Connection: close`, and reads the answer to EOF.
"""
from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass


@dataclass
class Answer:
    status: int              # 0: the proxy closed the connection without an answer
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def send(proxy: tuple[str, int], local: str, method: str, target: str,
               headers: list[tuple[str, str]] | None = None, body: bytes = b"", timeout: float = 10) -> Answer:
    head = f"{method} {target} HTTP/1.1\r\n"
    lines = list(headers or [])
    if body:
        lines.append(("Content-Length", str(len(body))))
    lines.append(("Connection", "close"))
    head += "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
    return await exchange(proxy, local, head.encode("utf-8") + body, timeout)


async def exchange(proxy: tuple[str, int], local: str, data: bytes, timeout: float = 10) -> Answer:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(proxy[0], proxy[1], local_addr=(local, 0)), timeout)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except ConnectionError:
        raw = b""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return parse(raw)


def parse(raw: bytes) -> Answer:
    if not raw:
        return Answer(0, {}, b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return Answer(status, headers, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


class KeepAlive:
    """One persistent connection: several requests in turn, each answer read by its Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, proxy: tuple[str, int], local: str, timeout: float = 10) -> KeepAlive:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(proxy[0], proxy[1], local_addr=(local, 0)), timeout)
        return cls(reader, writer)

    async def get(self, target: str, headers: list[tuple[str, str]], timeout: float = 10) -> Answer:
        """One GET; status 0 when the proxy closed the connection instead of answering."""
        head = f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        try:
            self.writer.write(head.encode())
            await self.writer.drain()
            raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            return Answer(0, {}, b"")
        answer = parse(raw)
        length = int(answer.headers.get("content-length", "0") or 0)
        answer.body = await asyncio.wait_for(self.reader.readexactly(length), timeout) if length else b""
        return answer

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


async def connect(proxy: tuple[str, int], local: str, authority: str, timeout: float = 10) -> int:
    """The status of the proxy's answer to CONNECT (0: closed without one); the tunnel is closed at once."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(proxy[0], proxy[1], local_addr=(local, 0)), timeout)
    try:
        writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return parse(head).status
