"""A real headless Chromium through the demo school's proxy: the block page renders, and asks for nothing else.

Loopback is a KS2 school laptop, so `http://www.bet365.com/` gets the gambling
block page.  Chromium runs twice (a screenshot, then `--dump-dom`), through
the real proxy; the test checks that the PNG is a real rendering, that the DOM
holds the child's heading and the review form, and that neither the origin
server nor the visit log saw any request but the page itself (the block page
loads no fonts, scripts or images from anywhere).

Chromium's own background traffic (component updates, network time, Google
sign-in, the HTTPS upgrade probe) is switched off or pointed at a closed
loopback port, so that "only the page" can be checked exactly.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import struct
import zlib
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.school import School

CHROMIUM = Path("/usr/bin/chromium")
URL = "http://www.bet365.com/"
SAVE_AS = Path(__file__).resolve().parents[2] / "docs" / "blockpage-ks2.png"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not found: "
                                "install the Debian package `chromium` to run the block-page browser check")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_args(profile: Path, proxy_url: str) -> list[str]:
    dead = f"http://127.0.0.1:{_closed_port()}"   # loopback bypasses the proxy: these fail at once, locally
    return [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--proxy-server={proxy_url}", "--window-size=1000,1400",
        # the browser's own requests, which would otherwise reach the proxy:
        "--disable-features=HttpsUpgrades,NetworkTimeServiceQuerying,AutofillServerCommunication,"
        "OptimizationHints,OptimizationGuideModelDownloading,OptimizationGuideOnDeviceModel,MediaRouter,Translate",
        f"--gaia-url={dead}", f"--google-apis-url={dead}", f"--component-updater=url-source={dead}/",
        "--disable-client-side-phishing-detection", "--disable-default-apps", "--disable-extensions",
        "--disable-domain-reliability", "--no-pings", "--metrics-recording-only", "--disable-breakpad",
        "--no-default-browser-check",
    ]


async def run_chromium(args: list[str], timeout: float = 30.0) -> bytes:
    """Run Chromium (the proxy serves it from this event loop); its stdout."""
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; fails if `data` is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def png_pixels_compressed(data: bytes) -> int:
    """How many bytes the image data takes once inflated and deflated again at the highest level.

    A 1000x1400 page holding one heading comes to about 7 kB; the block page's
    text, borders and form make it about 77 kB.
    """
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(zlib.compress(zlib.decompress(idat), 9))


async def test_block_page_renders_in_chromium_and_loads_nothing_else(school: School, tmp_path: Path) -> None:
    shot = tmp_path / "blockpage.png"
    await run_chromium([*chromium_args(tmp_path / "profile-shot", school.proxy_url), f"--screenshot={shot}", URL])
    dom = (await run_chromium([*chromium_args(tmp_path / "profile-dom", school.proxy_url), "--dump-dom", URL])
           ).decode("utf-8", "replace")

    assert shot.exists(), "Chromium wrote no screenshot"
    data = shot.read_bytes()
    assert png_size(data) == (1000, 1400)
    assert png_pixels_compressed(data) > 25_000, "the screenshot looks blank"

    assert "<h1>This page is blocked</h1>" in dom
    assert "ask your teacher" in dom
    assert "gambling" in dom
    assert '<form method="post" action="http://schoolgate.local/review">' in dom
    assert 'name="reference"' in dom and 'name="csrf_token"' in dom and "<textarea" in dom

    assert school.origin.seen == [], f"the origin was asked for {[s['host'] for s in school.origin.seen]}"
    await school.runtime.writer.flush()
    with closing(sqlite3.connect(school.ctx.db_path)) as conn:
        seen = conn.execute("SELECT host, path, action, rule FROM visit_view ORDER BY id").fetchall()
    assert seen == [("www.bet365.com", "/", "block", "category.blocked")] * 2, seen

    if os.environ.get("SCHOOLGATE_SAVE_SCREENSHOT"):   # refresh docs/blockpage-ks2.png for the README
        SAVE_AS.parent.mkdir(exist_ok=True)
        shutil.copy(shot, SAVE_AS)
