"""Download one source with httpx: conditional GET, timeout, size limit, progress.

The client's read timeout bounds every wait for data, and a server that
trickles (a byte now and then, so no read ever times out) fails as stalled
when fewer than `MIN_PROGRESS` bytes arrive in one read-timeout window.

The HTTP transport is whatever `httpx.Client` the caller passes in, so tests
give it a local server (or an `httpx.MockTransport`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from categories.errors import FetchError

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
MIN_PROGRESS = 64 * 1024   # bytes per read-timeout window: less is a stalled download


@dataclass(frozen=True)
class Fetched:
    not_modified: bool
    etag: str | None
    last_modified: str | None
    size: int


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def download(client: httpx.Client, name: str, url: str, dest: Path, *, max_bytes: int,
             etag: str | None = None, last_modified: str | None = None,
             progress: Progress | None = None) -> Fetched:
    """GET `url` into `dest` (conditionally when etag/last_modified are given)."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return Fetched(True, etag, last_modified, 0)
            if response.status_code != 200:
                raise FetchError(f"{name}: HTTP {response.status_code} from {url}")
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise FetchError(f"{name}: {total} bytes is over the limit of {max_bytes}")
            done = 0
            window = client.timeout.read or 60.0     # the per-read timeout never fires on a trickle:
            window_start, window_done = time.monotonic(), 0   # also ask for MIN_PROGRESS bytes per window
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes():  # decoded, as it arrives: the limit counts real bytes
                    done += len(chunk)
                    if done > max_bytes:
                        raise FetchError(f"{name}: download over the limit of {max_bytes} bytes")
                    out.write(chunk)
                    if progress is not None:
                        progress(name, done, total)
                    window_done += len(chunk)
                    now = time.monotonic()
                    if now - window_start >= window:
                        if window_done < MIN_PROGRESS:
                            raise FetchError(f"{name}: download from {url} stalled: {window_done} bytes in "
                                             f"{now - window_start:.0f} s (at least {MIN_PROGRESS} expected)")
                        window_start, window_done = now, 0
            encoded = response.headers.get("Content-Encoding", "identity") not in ("identity", "")
            received = response.num_bytes_downloaded if encoded else done
            if total is not None and received != total:
                raise FetchError(f"{name}: download ended after {received} of {total} bytes")
            return Fetched(False, response.headers.get("ETag"),
                           response.headers.get("Last-Modified"), done)
    except httpx.HTTPError as exc:
        raise FetchError(f"{name}: cannot download {url}: {exc.__class__.__name__}: {exc}") from exc
