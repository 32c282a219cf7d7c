"""Match a request's path against the URL-list entries of one host.

A host's entries sit in the index's `url_blob` as lines `category-id TAB
path-prefix LF` (lower-case paths, no white space).  An entry matches when
the request's lower-case `path?query` starts with it at a boundary (see
`path_matches`), so only a few prefixes of the request can be entries: the
whole of it, the part before each of `/ ? ; & #`, and the part up to and
including each of `/ ? = &`.  Each of those is looked for in the blob with
one C-level `find` for `TAB prefix LF`, which costs the same for a host with
two entries as for `docs.google.com` with a thousand.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Protocol

logger = logging.getLogger(__name__)

_CUT_BEFORE = frozenset("/?;&#")
_CUT_AFTER = frozenset("/?=&")
_SEPARATOR = re.compile(r"[/?;&#=]")


class Searchable(Protocol):
    def find(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def rfind(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def __getitem__(self, index: slice) -> bytes: ...


def path_matches(prefix: str, entry: str) -> bool:
    """Does the request's lower-case `path?query` start with the entry at a boundary?"""
    if not prefix.startswith(entry):
        return False
    if len(prefix) == len(entry) or entry.endswith(("/", "?", "=", "&")):
        return True
    return prefix[len(entry)] in "/?;&#"


def candidates(prefix: str) -> Iterator[str]:
    """Every prefix of the request that an entry matching it could be (with repeats)."""
    yield prefix
    for m in _SEPARATOR.finditer(prefix):
        k = m.start()
        ch = prefix[k]
        if ch in _CUT_BEFORE and k:
            yield prefix[:k]
        if ch in _CUT_AFTER:
            yield prefix[: k + 1]


def matching_ids(blob: Searchable, lo: int, hi: int, prefix: str) -> list[int]:
    """Category ids of the entries in `blob[lo:hi]` that match the request's prefix."""
    out: list[int] = []
    seen: set[str] = set()
    find = blob.find
    for candidate in candidates(prefix):
        if candidate in seen:
            continue
        seen.add(candidate)
        needle = b"\t" + candidate.encode("utf-8", "surrogatepass") + b"\n"
        pos = find(needle, lo, hi)
        while pos >= 0:
            start = max(blob.rfind(b"\n", lo, pos) + 1, lo)
            out.append(int(blob[start:pos]))
            pos = find(needle, pos + 1, hi)
    return out
