"""The weekly report in a real headless Chromium: it renders, and asks for nothing but itself.

The report is served by a small HTTP server on 127.0.0.1 (a free port) that
counts requests; Chromium takes a screenshot of it.  Every other request the
browser might make goes to a proxy on a closed loopback port, so nothing can
leave the machine, and the server must see exactly one request: the report.
With SCHOOLGATE_SAVE_DEMO=1 the screenshot is saved as docs/report-demo.png.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reports.period import parse_week
from reports.produce import make_weekly
from tests.reports.weekdata import LONDON, WEEK, build_week

CHROMIUM = Path("/usr/bin/chromium")
SAVE_AS = Path(__file__).resolve().parents[2] / "docs" / "report-demo.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not found: install the Debian "
                                "package `chromium` to check that the report renders with no external request")


class CountingServer:
    def __init__(self, folder: Path) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                paths.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CountingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def test_report_renders_in_chromium_with_no_other_request(tmp_path: Path, closed_port: int) -> None:
    week = await build_week(tmp_path, count=6000, demo=True)
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON),
                       now=dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON), out_dir=tmp_path / "reports")
    shot = tmp_path / "report.png"
    dead = f"http://127.0.0.1:{closed_port}"
    with CountingServer(made.files.folder) as server:
        args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,3000",
                "--hide-scrollbars", f"--proxy-server={dead}", "--disable-extensions", "--no-pings",
                "--disable-features=HttpsUpgrades,NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter",
                "--disable-domain-reliability", "--disable-breakpad", "--no-default-browser-check",
                f"http://127.0.0.1:{server.port}/report.html"]
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert server.paths == ["/report.html"]          # no font, image, script, style or icon fetched
    data = shot.read_bytes()
    assert png_size(data) == (1200, 3000)
    assert len(data) > 60_000                        # a real rendering: text, cards and charts, not a blank page
    if os.environ.get("SCHOOLGATE_SAVE_DEMO") == "1":
        SAVE_AS.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SAVE_AS)
