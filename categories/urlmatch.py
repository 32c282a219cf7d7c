"""Match a request's path against the URL-list entries of one host.

An entry matches when the request's lower-case `path?query` starts with it at
a boundary (see `path_matches`), so only a few prefixes of the request can be
entries: the whole of it, the part before each of `/ ? ; & #`, and the part
up to and including each of `/ ? = &` (`candidates`).  Each candidate is
looked up, never each entry: a host with a thousand entries
(`docs.google.com`) costs what a host with two does.

Two ways to look a candidate up, both in the mapped index file:
- `hashed_ids`: the `path_keys` table, sorted 64-bit hashes of
  `site TAB path` (`path_key`) with the category id of each, plus every
  candidate prefix of each entry marked PREFIX_ONLY.  Candidates are tried
  shortest first, one MD5 and one C `bisect` each, and the first that is
  neither an entry nor a prefix of one ends the search (no longer candidate
  can be an entry), so a long request costs two or three probes;
- `matching_ids`: a C-level `find` of `TAB candidate LF` in the host's lines
  of `url_blob` (`category-id TAB path LF`), shortest first, stopping when no
  line starts with `TAB candidate`: the way for a host with many entries in
  files written before `path_keys` existed;
- `scanned_ids`: each of the host's lines tested with one `startswith`, for
  a host with a few entries (nearly all of them: under SMALL_BLOB bytes).
"""
from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from bisect import bisect_left
from typing import Protocol

from categories.hashing import md5_digest

logger = logging.getLogger(__name__)

_CUT_BEFORE = frozenset("/?;&#")
_CUT_AFTER = frozenset("/?=&")
_SPLIT = re.compile(r"([/?;&#=])").split
_unpack_q = struct.Struct(">Q").unpack_from
_ENDS_AT_BOUNDARY = frozenset(b"/?=&")  # `path_matches` on UTF-8 bytes: an entry ending so
_BOUNDARY = frozenset(b"/?;&#")  # or followed in the request by one of these
SMALL_BLOB = 512  # bytes of a host's lines below which testing each line beats hashing candidates
PREFIX_ONLY = 0xFFFF  # a path_cids value: this key is a prefix of entries, not an entry


class Searchable(Protocol):
    def find(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def rfind(self, sub: bytes, start: int = ..., end: int = ...) -> int: ...

    def __getitem__(self, index: slice) -> bytes: ...


class Sequence64(Protocol):
    def __getitem__(self, index: int) -> int: ...

    def __len__(self) -> int: ...


def path_matches(prefix: str, entry: str) -> bool:
    """Does the request's lower-case `path?query` start with the entry at a boundary?"""
    if not prefix.startswith(entry):
        return False
    if len(prefix) == len(entry) or entry.endswith(("/", "?", "=", "&")):
        return True
    return prefix[len(entry)] in "/?;&#"


def candidates(prefix: str) -> Iterator[str]:
    """Every prefix of the request that an entry matching it could be, shortest first.

    Each is a prefix of the next, without repeats; the last is the whole request.
    Lazily: the lookups usually stop after the first two or three.
    """
    parts = _SPLIT(prefix)  # [text, separator, text, separator, ..., text]
    k = len(parts[0])
    last = -1
    for i in range(1, len(parts), 2):
        sep = parts[i]
        if sep in _CUT_BEFORE and k and last != k:
            yield prefix[:k]
        if sep in _CUT_AFTER:
            last = k + 1
            yield prefix[:last]
        k += 1 + len(parts[i + 1])
    if last != k:
        yield prefix


def prefix_rows(site: bytes, path: str) -> list[int]:
    """Keys to mark PREFIX_ONLY for one entry: its own candidates but itself."""
    return [path_key(site, c) for c in list(candidates(path))[:-1]]


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate matches no entry, never raises


def path_key(site: bytes, path: str) -> int:
    """The `url_paths` key of one entry: the u64 hash of `site TAB path` (path lower-case)."""
    return int(_unpack_q(md5_digest(site + b"\t" + _encode(path)).digest())[0])


def hashed_ids(site: bytes, prefix: str, keys: Sequence64, cids: Sequence64) -> list[int]:
    """Category ids of the `url_paths` entries of `site` that match the request's prefix."""
    out: list[int] = []
    head = site + b"\t"
    n = len(keys)
    for candidate in candidates(prefix):
        h = _unpack_q(md5_digest(head + _encode(candidate)).digest())[0]
        j = bisect_left(keys, h)  # type: ignore[arg-type]
        if j == n or keys[j] != h:
            break  # not a prefix of any entry: neither is any longer candidate
        while j < n and keys[j] == h:
            if cids[j] != PREFIX_ONLY:
                out.append(cids[j])
            j += 1
    return out


def matching_ids(blob: Searchable, lo: int, hi: int, prefix: str) -> list[int]:
    """Category ids of the entries in `blob[lo:hi]` that match the request's prefix."""
    out: list[int] = []
    find = blob.find
    for candidate in candidates(prefix):
        head = b"\t" + _encode(candidate)
        if find(head, lo, hi) < 0:
            break  # no entry starts with it: none is a longer candidate either
        needle = head + b"\n"
        pos = find(needle, lo, hi)
        while pos >= 0:
            start = max(blob.rfind(b"\n", lo, pos) + 1, lo)
            out.append(int(blob[start:pos]))
            pos = find(needle, pos + 1, hi)
    return out


def scanned_ids(blob: Searchable, lo: int, hi: int, prefix: str) -> list[int]:
    """`matching_ids` by testing each line: `path_matches` on the UTF-8 bytes of both sides.

    An entry that is a prefix of the request's bytes ends on a character boundary of it,
    so the byte after it is the next character's first (ASCII if it is a boundary).
    """
    out: list[int] = []
    if hi <= lo:
        return out
    request = _encode(prefix)
    n = len(request)
    for line in blob[lo:hi - 1].split(b"\n"):  # every line ends with LF
        cid, _, entry = line.partition(b"\t")
        if request.startswith(entry):
            k = len(entry)
            if k == n or (k and entry[k - 1] in _ENDS_AT_BOUNDARY) or request[k] in _BOUNDARY:
                out.append(int(cid))
    return out
