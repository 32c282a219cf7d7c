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
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_malloc_trim: Callable[[int], int] | None = None
_looked = False


def _find() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def trim() -> bool:
    """Give free heap memory back to the system; False where the C library cannot."""
    global _malloc_trim, _looked
    if not _looked:
        _looked = True
        _malloc_trim = _find()
        if _malloc_trim is None:
            logger.debug("malloc_trim is not available: freed memory stays with the process")
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True
