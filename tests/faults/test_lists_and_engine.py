"""The category update server misbehaves; the engine cannot decide.

A local HTTP server on 127.0.0.1 sends junk, stalls, or trickles: the update
fails with a clear reason within its timeout and the running proxy keeps the
last good index.  When no decision can be made at all, pupils are blocked
(fail closed) and groups configured `fail_closed = false` are let through.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from categories.settings import CategorySource
from categories.updater import update_index
from proxy.status import check_categories
from tests.faults.helpers import start_school
from tests.support.school import School


class BadListServer:
    """HTTP on 127.0.0.1: /junk (a 200 of garbage), /stall (never answers), /slow-body, /trickle."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in self._writers:
                w.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path == "/junk":
                body = os.urandom(50_000)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
            elif path == "/stall":
                await asyncio.sleep(30)
            elif path == "/slow-body":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"\x1f\x8b" + b"x" * 100)
                await writer.drain()
                await asyncio.sleep(30)
            elif path == "/trickle":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                for _ in range(300):
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def lists_server() -> AsyncIterator[BadListServer]:
    server = BadListServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def school(tmp_path: Path) -> AsyncIterator[School]:
    s = await start_school(tmp_path)
    try:
        yield s
    finally:
        await s.close()


async def _filtering_works(school: School) -> None:
    pupil = school.client("127.0.2.30")
    assert (await pupil.get("http://bet365.com/", headers={"Connection": "close"})).status_code == 403
    assert (await pupil.get("http://example.com/", headers={"Connection": "close"})).status_code == 200


BAD_SERVERS = [
    ("junk", "corrupt or truncated archive"),
    ("stall", "ReadTimeout"),
    ("slow-body", "ReadTimeout"),
    ("trickle", "stalled"),
]


async def test_a_bad_update_server_keeps_the_last_good_index(school: School, lists_server: BadListServer,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    index = school.ctx.index_path
    before = index.stat()
    cats = school.ctx.settings.categories
    for path, reason in BAD_SERVERS:
        caplog.clear()
        settings = dataclasses.replace(cats, timeout_s=1.0, sources=(
            *cats.sources, CategorySource("ut1", lists_server.url(path), "ut1")))
        update = asyncio.create_task(asyncio.to_thread(update_index, settings, index))
        await _filtering_works(school)             # while the update hangs or chews on junk
        result = await asyncio.wait_for(update, 20)   # a hang would fail here, not a speed goal
        assert not result.ok and not result.changed, path
        assert reason in result.reason and "ut1" in result.reason, (path, result.reason)
        assert "category update failed, keeping the current index" in caplog.text
        after = index.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        assert school.runtime.engine.index is not None and school.runtime.engine.index.reloads == 0
        await _filtering_works(school)
        status = check_categories(school.ctx, school.clock())
        assert status.level == "WARN" and "last update FAILED" in status.summary and result.reason in status.summary
        assert not list((index.parent / "sources").glob("*.part")), path   # no half download left behind


class _BrokenIndex:
    """Stands for an index that cannot be read (a disk error under the mapping)."""

    @property
    def current(self) -> object:
        raise OSError(5, "Input/output error")


async def test_no_decision_possible_fails_closed_for_pupils_open_for_staff(school: School,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    school.runtime.engine.index = _BrokenIndex()  # type: ignore[assignment]
    pupil = school.client("127.0.2.31")
    r = await pupil.get("http://example.com/", headers={"Connection": "close"})
    assert r.status_code == 403 and r.headers["X-Schoolgate-Rule"] == "error.fail_closed"
    teacher = school.client("127.0.3.11")          # staff: fail_closed = false in the demo config
    r = await teacher.get("http://example.com/", headers={"Connection": "close"})
    assert r.status_code == 200
    assert school.runtime.engine.failures == 2
    assert "could not decide http://example.com/ for 127.0.2.31: error.fail_closed" in caplog.text
    assert "error.fail_open" in caplog.text
