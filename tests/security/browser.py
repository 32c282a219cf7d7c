"""Headless Chromium as a judge of saved pages: the DOM after load, and the console log.

Each page is a file loaded as `file://` with JavaScript on (Chromium's
default), `--dump-dom` and `--enable-logging=stderr --v=0`: a payload that ran
would have changed the title to PWNED or logged SGXSS, and one that the page's
Content-Security-Policy stopped leaves a CSP violation in the console log.
Every network request Chromium might make goes to a proxy on a closed
loopback port, so nothing leaves the machine.  Several pages load at once
(one Chromium each: headless Chromium takes one page per run).
"""
from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PARALLEL = 3


@dataclass
class Loaded:
    path: Path
    dom: str
    console: str
    settled: bool = True     # False: the page never finished loading (a dialog, a navigation loop)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def args_for(page: Path, profile: Path) -> list[str]:
    dead = f"http://127.0.0.1:{_closed_port()}"
    return [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--proxy-server={dead}", "--proxy-bypass-list=<-loopback>",
        "--disable-features=HttpsUpgrades,NetworkTimeServiceQuerying,AutofillServerCommunication,"
        "OptimizationHints,OptimizationGuideModelDownloading,MediaRouter,Translate",
        "--disable-extensions", "--disable-default-apps", "--no-pings", "--disable-breakpad",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom", page.as_uri(),
    ]


async def load(page: Path, profile: Path, timeout: float = 30.0) -> Loaded:
    """The page's DOM and console log; a page that has not settled after `timeout` is reported, not waited on.

    A page of Schoolgate's always settles at once: one that opens an alert()
    dialog or keeps navigating (what an injected payload would do) does not."""
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"}
    proc = await asyncio.create_subprocess_exec(*args_for(page, profile), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Loaded(page, "", "", settled=False)
    console = err.decode("utf-8", "replace")
    assert proc.returncode == 0, console[-2000:]
    return Loaded(page, out.decode("utf-8", "replace"), console)


async def load_all(pages: list[Path], work: Path) -> list[Loaded]:
    """Load every page (a few Chromiums at a time), in order."""
    gate = asyncio.Semaphore(PARALLEL)

    async def one(i: int, page: Path) -> Loaded:
        async with gate:
            return await load(page, work / f"profile-{i}")

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(pages))))
