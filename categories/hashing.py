"""The stable 64-bit hash of a host name used by the compiled index.

`name_hash(name)` is the first 8 bytes of the MD5 digest of the ASCII name,
read big-endian.  It must be the same in every process and every Python
version (Python's own `hash()` is randomised per process), and it is
computed on every lookup, for the host and each of its parent suffixes, so
it must be cheap: the builtin MD5 is about twice as fast as BLAKE2 on short
names here.  MD5 is used as a fingerprint, not for secrecy: to make an
innocent name collide with a listed one an attacker would need a second
preimage, which is not known to be feasible for MD5.
"""
from __future__ import annotations

import logging

try:  # CPython's own (HACL*) MD5: no OpenSSL EVP set-up per call
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - other builds
    from hashlib import md5 as _md5

logger = logging.getLogger(__name__)

_from_bytes = int.from_bytes


def name_hash(name: str) -> int:
    """64-bit hash of an already normalised (lower-case ASCII) name."""
    return _from_bytes(_md5(name.encode()).digest()[:8], "big")


def bytes_hash(name: bytes) -> int:
    """`name_hash` for a name that is already bytes (saves the encode in hot loops)."""
    return _from_bytes(_md5(name).digest()[:8], "big")


md5_digest = _md5
