"""A tiny real HTTP/1.1 origin server on 127.0.0.1, answering every host.

Each response is JSON describing the request it received (method, host,
path with query, headers), so tests can check what reached the upstream
after the proxy (safe-search rewrites, headers) and count requests.
"""
from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field


@dataclass
class Origin:
    port: int = 0
    tls_port: int = 0
    seen: list[dict[str, object]] = field(default_factory=list)
    _servers: list[asyncio.base_events.Server] = field(default_factory=list)

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        if ssl_context is not None:
            tls = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ssl_context)
            self.tls_port = tls.sockets[0].getsockname()[1]
            self._servers.append(tls)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                info = {"method": method, "target": target, "host": headers.get("host", ""),
                        "headers": headers, "body": body.decode("utf-8", "replace")}
                self.seen.append(info)
                payload = json.dumps(info).encode()
                html = target.endswith(".html") or target == "/"
                ctype = "text/html; charset=utf-8" if html else "application/json"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype.encode() +
                             b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, ssl.SSLError):
            pass
        finally:
            writer.close()
