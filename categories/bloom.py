"""A one-hash Bloom filter of the listed names: "certainly not listed" before any MD5.

Most suffixes a lookup probes are not listed (`www.bbc.co.uk`, `bbc.co.uk`,
`co.uk`...), and each probe of the name table costs an MD5, a `dir` read and a
`bisect`.  The filter answers "not listed" for nearly all of them with one
`zlib.crc32` and one bit test: bit `crc32(name) & (bits - 1)` is set for every
name in the table.  A set bit only means "maybe", so the table still decides;
a clear bit is certain, so the filter can never hide a listed name.  CRC-32 is
not a secure hash, and needs not be: a crafted name whose bit is set only
costs one more probe.

Importers set bits in a fixed map of 2**26 bits (8 MB) as they hash names
(`CategoryLists.add_domains`); the compiler ORs the maps of its sources and
folds the result down to about 12 bits per listed name (a power of two:
bit i of the folded map is the OR of the bits i + k * size), which lets
through about 8% of unlisted names.
"""
from __future__ import annotations

import logging
from zlib import crc32

logger = logging.getLogger(__name__)

MAX_BITS_LOG2 = 26
MAX_BITS = 1 << MAX_BITS_LOG2
MASK = MAX_BITS - 1
MIN_BYTES = 8
BITS_PER_NAME = 8  # at least; rounded up to a power of two


def new_map() -> bytearray:
    """An empty map of MAX_BITS bits."""
    return bytearray(MAX_BITS >> 3)


def add(bitmap: bytearray, name: bytes) -> None:
    """Set the bit of one name (ASCII bytes, as hashed by `categories.hashing`)."""
    c = crc32(name) & MASK
    bitmap[c >> 3] |= 1 << (c & 7)


def size_for(names: int) -> int:
    """Bytes of the folded map for a table of `names` names (a power of two)."""
    size = MIN_BYTES
    while size * 8 < names * BITS_PER_NAME and size * 8 < MAX_BITS:
        size *= 2
    return size


def merge_and_fold(maps: list[bytearray], size: int) -> bytes:
    """OR full-size maps together and fold the result to `size` bytes."""
    acc = 0
    for bitmap in maps:
        if len(bitmap) != MAX_BITS >> 3:
            raise ValueError(f"a Bloom map of {len(bitmap)} bytes, expected {MAX_BITS >> 3}")
        acc |= int.from_bytes(bitmap, "little")
    bits = MAX_BITS
    while bits > size * 8:
        bits //= 2
        acc = (acc & ((1 << bits) - 1)) | (acc >> bits)
    return acc.to_bytes(size, "little")


def maybe_listed(bitmap: bytes | memoryview, name: bytes) -> bool:
    """The filter's answer for one name (the lookups inline this test)."""
    if not bitmap:
        return True
    c = crc32(name) & (len(bitmap) * 8 - 1)
    return bool(bitmap[c >> 3] >> (c & 7) & 1)
