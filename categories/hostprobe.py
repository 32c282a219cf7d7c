"""The host loop of every category lookup: which suffixes of a host name are listed.

`host_table(bloom, dir, fp, val, bits)` gives an object whose `hits(host)` probes
the name and each parent suffix of two labels or more (`www.bbc.co.uk`,
`bbc.co.uk`, `co.uk`) in the index's name table (`categories.index` explains the
table) and returns one int per listed suffix, the name first:
`record_id << 32 | offset`, where offset is where the suffix starts in the host's
UTF-8 bytes (0: the name itself).  A host without a dot is not probed (single
labels are the index's `tlds`).

Two implementations, with the same answers (tests compare them on the real lists):
- `categories._hostprobe.HostTable`, in C, built when the package is installed
  where there is a C compiler (`setup.py`; optional: the install never fails for
  want of one).  Per suffix it does what the Python does, CRC-32, then MD5 only if
  the Bloom bit is set, then the bucket's binary search, without creating a Python
  object.  Host lookups go from ~13,600 to ~5,000 instructions (callgrind, the
  benchmark's hosts); with `categories._fasturl` a whole URL check costs about
  half the pure-Python one (`categories.native`).
- `PyHostTable`, the same loop in Python (CPython's MD5 and zlib's CRC-32).

`IMPLEMENTATION` says which one `host_table` gives ("C" or "Python"); setting
SCHOOLGATE_PURE_PYTHON=1 asks for the Python one (`categories.native`).
"""
from __future__ import annotations

import logging
import struct
from bisect import bisect_left
from typing import Protocol
from zlib import crc32

from categories import native
from categories.hashing import md5_digest

logger = logging.getLogger(__name__)

_unpack_q = struct.Struct(">Q").unpack_from  # the first 8 bytes of a digest: `name_hash`
OFFSET_MASK = 0xFFFFFFFF


class HostTable(Protocol):
    def hits(self, host: str) -> tuple[int, ...]: ...

    def close(self) -> None: ...


class PyHostTable:
    """The name table's host loop in Python (see the module docstring)."""

    def __init__(self, bloom: memoryview, dir: memoryview, fp: memoryview, val: memoryview,  # noqa: A002
                 bits: int) -> None:
        if not 1 <= bits <= 32:
            raise ValueError("bucket bits must be 1..32")
        self._hot = (bloom, len(bloom) * 8 - 1, dir.cast("I"), fp.cast("I"), val.cast("H"), 64 - bits, 32 - bits)

    def hits(self, host: str) -> tuple[int, ...]:
        dots = host.count(".")
        if not dots:
            return ()
        bloom, mask, dir_, fps, vals, shift, fp_shift = self._hot
        rest = host.encode()
        out: tuple[int, ...] = ()
        at = 0
        while True:
            c = crc32(rest) & mask
            if bloom[c >> 3] >> (c & 7) & 1:
                h = _unpack_q(md5_digest(rest).digest())[0]
                b = h >> shift
                hi = dir_[b + 1]
                fp = h >> fp_shift & 0xFFFFFFFF
                j = bisect_left(fps, fp, dir_[b], hi)
                if j < hi and fps[j] == fp:
                    out += (vals[j] << 32 | at,)
            dots -= 1
            if not dots:
                return out
            label, _, rest = rest.partition(b".")
            at += len(label) + 1

    def close(self) -> None:
        """Release the table's views: `hits` raises ValueError after (a released view refuses reads)."""
        _bloom, _mask, dir_, fps, vals, _s, _f = self._hot
        for view in (dir_, fps, vals):
            view.release()


_built = native.built("_hostprobe")  # None where there was no C compiler
_CHostTable = _built.HostTable if _built is not None else None

IMPLEMENTATION = "C" if _CHostTable is not None and not native.PURE_PYTHON else "Python"


def host_table(bloom: memoryview, dir: memoryview, fp: memoryview, val: memoryview,  # noqa: A002
               bits: int) -> HostTable:
    """The name table's host loop over these sections of a mapped index (raw byte views)."""
    if IMPLEMENTATION == "C":
        return _CHostTable(bloom, dir, fp, val, bits)  # type: ignore[no-any-return,misc]
    return PyHostTable(bloom, dir, fp, val, bits)
