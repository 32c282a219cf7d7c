"""The weekly report in a real headless Chromium: it renders, and asks for nothing but itself.

Chromium is started with `--proxy-server` pointing at a small counting proxy
on 127.0.0.1 (a free port) and `--proxy-bypass-list=<-loopback>`, so every
request it makes, to any host and loopback included, plain or `CONNECT`,
reaches that proxy and is recorded before anything else happens.  The proxy
serves the report under a made-up host name and refuses everything else, so
nothing can leave the machine.  The report test then asserts that the only
requests were for the report (and the favicon Chromium asks for by itself);
a second test renders a page with an external image and stylesheet and checks
that the proxy saw them, which shows the first test can fail.
With SCHOOLGATE_SAVE_DEMO=1 the screenshot is saved as docs/report-demo.png: the
report is then made with the category index `schoolgate init` builds for the
demo (the built-in lists and the UT1 sample, ../shared/data/ut1-blacklists.tar.gz),
as of the nightly list update before the Monday report; otherwise with the
built-in lists only, which is quicker.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from categories.compiler import compile_index
from categories.curated import load_builtin
from categories.ut1 import read_ut1
from reports.period import parse_week
from reports.produce import make_weekly
from tests.reports.weekdata import LONDON, WEEK, build_week

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SAVE_AS = ROOT / "docs" / "report-demo.png"
UT1 = ROOT.parent / "shared" / "data" / "ut1-blacklists.tar.gz"
LISTS_BUILT = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)     # the nightly list update before the report
# Chromium's own background services, which would otherwise call Google: they are turned off rather than let
# through, so the assertion below can be exact (one --disable-features flag: a second one replaces the first)
QUIET_FEATURES = ("HttpsUpgrades", "NetworkTimeServiceQuerying", "OptimizationHints", "Translate", "MediaRouter",
                  "OptimizationGuideModelDownloading", "AutofillServerCommunication",
                  "CertificateTransparencyComponentUpdater", "PrivacySandboxSettings4", "AccountConsistency")
SITE = "report.test"          # the host the proxy serves the report under; it resolves nowhere else

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not found: install the Debian "
                                "package `chromium` to check that the report renders with no external request")


class CountingProxy:
    """An HTTP proxy that records every request line it receives and serves files of one folder for `SITE`."""

    def __init__(self, folder: Path) -> None:
        self.requests: list[str] = []
        seen, lock = self.requests, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _count(self) -> None:
                with lock:
                    seen.append(f"{self.command} {self.path}")

            def do_GET(self) -> None:  # noqa: N802
                self._count()
                url = urlsplit(self.path)
                name = url.path.lstrip("/")
                file = folder / name
                if url.hostname == SITE and name and "/" not in name and file.is_file():
                    body = file.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                else:
                    body = b"refused by the test proxy"
                    self.send_response(404 if url.hostname == SITE else 502)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_CONNECT(self) -> None:  # noqa: N802
                self._count()
                self.send_error(502, "refused by the test proxy")

            do_POST = do_HEAD = do_PUT = do_OPTIONS = do_DELETE = do_CONNECT  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


async def screenshot(folder: Path, page: str, shot: Path, profile: Path) -> list[str]:
    """Render http://SITE/page through a counting proxy; returns every request Chromium made."""
    with CountingProxy(folder) as proxy:
        args = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,3000",
                "--hide-scrollbars", f"--proxy-server=http://127.0.0.1:{proxy.port}",
                "--proxy-bypass-list=<-loopback>", "--disable-extensions", "--no-pings",
                "--disable-domain-reliability", "--disable-breakpad", "--no-default-browser-check",
                "--disable-default-apps", "--disable-component-extensions-with-background-pages",
                "--disable-client-side-phishing-detection", "--safebrowsing-disable-auto-update",
                "--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
                "--disable-features=" + ",".join(QUIET_FEATURES),
                # the on-device model manifest, read from a folder that does not exist instead of update.googleapis
                f"--optimization-guide-manifest-override={profile / 'no-models'}",
                # the account service's ListAccounts call, sent to a port Chromium refuses to use (ERR_UNSAFE_PORT)
                "--gaia-url=http://127.0.0.1:1/",
                f"http://{SITE}/{page}"]
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return list(proxy.requests)


def category_index(folder: Path, with_ut1: bool) -> Path:
    """A category index like the demo's `schoolgate init` builds (built-in lists, and UT1 when asked)."""
    lists = [load_builtin()]
    if with_ut1:
        if not UT1.exists():
            pytest.fail(f"{UT1} not found: the demo picture is made with the UT1 sample")
        lists.append(read_ut1(UT1))
    compile_index(lists, folder / "categories.idx", now=lambda: LISTS_BUILT)
    return folder / "categories.idx"


async def test_report_renders_in_chromium_with_no_other_request(tmp_path: Path) -> None:
    save = os.environ.get("SCHOOLGATE_SAVE_DEMO") == "1"
    week = await build_week(tmp_path, count=6000, demo=True)
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON),
                       now=dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON), out_dir=tmp_path / "reports",
                       index_path=category_index(tmp_path, with_ut1=save))
    assert "no category index" not in made.html and "0.2 days ago" in made.html
    shot = tmp_path / "report.png"
    requests = await screenshot(made.files.folder, "report.html", shot, tmp_path / "profile")
    assert requests[0] == f"GET http://{SITE}/report.html"
    # no font, image, script or style fetched, from anywhere, and nothing from Chromium itself
    assert set(requests) <= {f"GET http://{SITE}/report.html", f"GET http://{SITE}/favicon.ico"}, requests
    data = shot.read_bytes()
    assert png_size(data) == (1200, 3000)
    assert len(data) > 60_000                        # a real rendering: text, cards and charts, not a blank page
    if save:
        SAVE_AS.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SAVE_AS)


async def test_an_external_resource_is_seen_by_the_counting_proxy(tmp_path: Path) -> None:
    """The check above can fail: a page asking for outside resources shows them in the proxy's count."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "leaky.html").write_text(
        '<!doctype html><html><head><link rel="stylesheet" href="https://cdn.example.invalid/style.css">'
        '</head><body><p>report</p><img src="http://example.invalid/x.png">'
        '<img src="http://127.0.0.1:8081/y.png"></body></html>', encoding="utf-8")
    requests = await screenshot(folder, "leaky.html", tmp_path / "leaky.png", tmp_path / "profile")
    assert f"GET http://{SITE}/leaky.html" in requests
    assert "GET http://example.invalid/x.png" in requests
    assert "CONNECT cdn.example.invalid:443" in requests        # https goes through the proxy as a tunnel
    assert "GET http://127.0.0.1:8081/y.png" in requests           # and loopback is not let past it
