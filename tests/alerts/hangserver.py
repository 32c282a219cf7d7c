"""A mail server that hangs: it accepts the TCP connection on 127.0.0.1 and then stops answering.

`hang_at="connect"`: not even the greeting.  `hang_at="data"`: greeting, EHLO,
MAIL, RCPT and DATA are answered, the message is read to its final "." and the
"250" never comes (the worst moment: the client cannot know whether the
message was taken).  It never closes a connection itself; `stop()` closes the
listener and every connection it holds.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class HangingServer:
    hang_at: str = "connect"                 # connect | data
    port: int = 0
    connections: int = 0
    messages_unanswered: int = 0
    _server: asyncio.base_events.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.hang_at == "data":
                await self._until_the_end_of_a_message(reader, writer)
            while await reader.read(65536):        # silence, until the client gives up and closes
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _until_the_end_of_a_message(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hang.test ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    self.messages_unanswered += 1
                    return
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 hang.test\r\n")
            elif verb == b"DATA":
                writer.write(b"354 end with <CRLF>.<CRLF>\r\n")
                in_data = True
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                return
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
