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
