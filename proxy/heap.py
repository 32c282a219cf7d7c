"""Handing freed memory back to the system, now and then.

glibc's allocator keeps what a burst freed (rendering a digest of thousands of hits, a
stall with many flows in flight, SQLite's temporary buffers) as free space inside the
process heap, so a long-running service's resident memory only ever goes up in steps.
`malloc_trim(0)` returns the free pages to the system; the runtime calls `trim()` once a
minute.  Elsewhere than glibc (musl, macOS) it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, looked up once; None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        fn = None
    if fn is None:
        logger.debug("malloc_trim is not available: freed memory stays with the process")
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def trim() -> bool:
    """Give free heap memory back to the system; False where the C library cannot."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def freeze_startup_objects() -> int:
    """Keep everything made at start-up out of later garbage collections; the number of objects kept out.

    mitmproxy's flows are cyclic garbage, so the cyclic collector runs often under load, and
    now and then a full collection walks every tracked object in the process: under
    `wrk -c50` that was a 50 ms pause every 1.5 s, with every request in flight waiting
    (about 100k objects: the config, the register, the addons, mitmproxy's own).  Those
    live as long as the service, so after one last collection they are moved to the
    permanent generation (`gc.freeze`) and later full collections walk only what was made
    since: 7-11 ms instead of 50 (`bench.proxy`'s p99 at 50 connections comes from these).

    Objects kept out are still freed when their reference count drops; only a cycle among
    them would never be collected.  So this is called once, by the long-running commands
    (`schoolgate run`, `schoolgate dns`), not by code that starts and stops services in
    one process (tests), and what start-up makes and a reload replaces is freed by its
    reference count (a replaced category index is closed a minute later, which breaks
    its one cycle: `categories.live`).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
