"""The compiled category index: one file, memory-mapped, shared by every process.

The file format is in `categories.indexfile`.

A host name's 64-bit hash h (`categories.hashing.name_hash`) picks bucket
`h >> (64 - B)` and fingerprint `(h >> (32 - B)) & 0xFFFFFFFF`: B + 32 bits of
the hash identify a name, so a name that is not listed is taken for a listed
one with probability about N / 2**(B+32) per probe (1e-9 at 5.7M names).
Looking a name up is one bit of `bloom` (clear for ~92% of names that are
not listed), then one read of `dir`, a binary search of a few `fp` slots
(`bisect` in C over a memoryview) and one read of `val`; nothing is parsed
per entry at open, so opening costs the JSON meta only and the pages of the
tables are shared by every process that maps the file.

A record says which categories an entry gives to the name itself ("exact")
and to its subdomains ("suffix"; an entry `www.example.com` lists
`example.com` for an exact match only), and whether the name has URL entries.
"""
from __future__ import annotations

import json
import logging
import mmap
import struct
from bisect import bisect_left
from pathlib import Path
from types import TracebackType
from typing import Any

from categories.errors import IndexFormatError
from categories.explain import explain_url, url_hashes
from categories.expressions import ExpressionSet
from categories.hashing import md5_digest as _md5
from categories.indexfile import (  # re-exported: the compiler and others import them from here
    HEADER,
    HEADER_SIZE,
    MAGIC,
    SECTIONS,
    VERSION,
    read_header,
)
from categories.hostprobe import OFFSET_MASK, HostTable, host_table
from categories.normalise import NormalisedURL
from categories.urlcheck import CheckURL, LookupURL, build_checks
from categories.urlmatch import SMALL_BLOB, hashed_ids, matching_ids, path_matches, scanned_ids

logger = logging.getLogger(__name__)

_ALL_PASS = memoryview(b"\xff")  # the filter of a file without one: every name may be listed
EMPTY: frozenset[str] = frozenset()
_unpack_q = struct.Struct(">Q").unpack_from  # the first 8 bytes of a digest: `name_hash`


def _closed(_url: Any) -> frozenset[str]:
    raise ValueError("the category index is closed")


class CategoryIndex:
    """A read-only view of a compiled index file (see the module docstring)."""

    def __init__(self, path: Path, mapping: mmap.mmap) -> None:
        self.path = path
        self._mmap = mapping
        bits, n, u, bounds = read_header(mapping, path)
        bloom_bytes = bounds["bloom"][1] - bounds["bloom"][0]
        path_entries = (bounds["path_keys"][1] - bounds["path_keys"][0]) // 8
        try:
            meta = json.loads(mapping[bounds["meta"][0]: bounds["meta"][1]])
        except ValueError as exc:
            raise IndexFormatError(f"{path}: unreadable metadata ({exc})") from exc
        self.meta: dict[str, Any] = meta
        names: list[str] = meta["categories"]
        self.categories: tuple[str, ...] = tuple(names)
        self.aliases: dict[str, str] = dict(meta.get("aliases", {}))
        self.descriptions: dict[str, str] = dict(meta.get("descriptions", {}))
        self.illegal: frozenset[str] = frozenset(meta.get("illegal", []))
        sets = [frozenset(names[c] for c in ids) for ids in meta["sets"]]
        # record id -> (categories for the name itself, for its subdomains, has URL entries)
        self._records: list[tuple[frozenset[str], frozenset[str], bool]] = [
            (sets[s] | sets[e], sets[s], bool(has_url)) for s, e, has_url in meta["records"]]
        # The same, one list per field: the hot loops index these by record id.
        self._exact_sets = [r[0] for r in self._records]
        self._suffix_sets = [r[1] for r in self._records]
        self._has_url = [r[2] for r in self._records]
        self._expressions = ExpressionSet([(names[c], p) for c, p in meta.get("expressions", [])])
        self._has_expressions = bool(self._expressions)
        self._expression_categories = self._expressions.categories
        # Single-label entries ("xxx", "zip") are checked in a dict instead of hashing the TLD.
        self._tlds: dict[str, int] = dict(meta.get("tlds", {}))
        self._url_tlds = any(self._has_url[rid] for rid in self._tlds.values())
        # Views last: nothing above can fail with a memoryview exported (mmap.close would refuse).
        self._blob_start = bounds["url_blob"][0]
        view = memoryview(mapping)
        self._views = {name: view[lo:hi] for name, (lo, hi) in bounds.items()}
        view.release()
        self.bits = bits
        self._shift = 64 - bits
        self._fp_shift = 32 - bits
        self._dir = self._views["dir"].cast("I")
        self._fp = self._views["fp"].cast("I")
        self._val = self._views["val"].cast("H")
        self._url_keys = self._views["url_keys"].cast("Q")
        self._url_offs = self._views["url_offs"].cast("I")
        self._path_keys = self._views["path_keys"].cast("Q")
        self._path_cids = self._views["path_cids"].cast("H")
        self._has_path_table = bool(path_entries)  # files written before it: `find` only
        self._bloom = self._views["bloom"] if bloom_bytes else _ALL_PASS
        # The host loop of every lookup (the name and its parent suffixes), in C where it was built.
        self._names: HostTable = host_table(self._bloom, self._views["dir"], self._views["fp"],
                                            self._views["val"], bits)
        # `lookup_url(url)`: categories of a normalised URL: its host's, URL-list entries (host + path
        # prefix), expressions.  `check_url(url)` is `lookup_url(normalise_url(url))` in one call.
        # Both are closures over the tables above (`categories.urlcheck`).
        self.check_url: CheckURL
        self.lookup_url: LookupURL
        self.check_url, self.lookup_url = build_checks(self)

    @classmethod
    def open(cls, path: Path) -> CategoryIndex:
        """Map the file read-only; costs the JSON metadata only (no per-entry work)."""
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError as exc:
            raise IndexFormatError(f"{path}: no category index (run `schoolgate categories update`)") from exc
        except ValueError as exc:  # empty file
            raise IndexFormatError(f"{path}: empty file") from exc
        try:
            return cls(path, mapping)
        except (IndexFormatError, KeyError, TypeError, ValueError) as exc:
            mapping.close()
            if isinstance(exc, IndexFormatError):
                raise
            raise IndexFormatError(f"{path}: damaged index ({exc!r})") from exc

    def close(self) -> None:
        """Release the mapping (lookups afterwards raise ValueError).

        The check closures refer to the index, and the index to them: they are replaced, so
        that a closed index is freed by its reference count, not only by the cyclic garbage
        collector (which `schoolgate run` keeps away from its start-up objects).
        """
        self.check_url = self.lookup_url = _closed
        self._names.close()
        self._bloom = _ALL_PASS
        for view in (self._dir, self._fp, self._val, self._url_keys, self._url_offs,
                     self._path_keys, self._path_cids, *self._views.values()):
            view.release()
        self._views = {}
        self._mmap.close()

    def __enter__(self) -> CategoryIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- hot path ---------------------------------------------------------------------------
    # `lookup_host` and `lookup_url` run on every request and DNS query.  The probes of the
    # name and its suffixes are `categories.hostprobe` (in C where it was built); the category
    # sets are the frozensets made at open (a lookup with one match allocates no set).
    def lookup_host(self, host: str) -> frozenset[str]:
        """Categories of a normalised host: the name and every parent suffix (IPs as they are)."""
        if not host:
            return EMPTY
        if ":" in host or host[-1].isdigit():  # an IP literal: itself only
            rid = self._probe(host.encode())
            return self._exact_sets[rid] if rid >= 0 else EMPTY
        found = EMPTY
        for hit in self._names.hits(host):  # record id << 32 | where the suffix starts (0: the name)
            cats = (self._suffix_sets if hit & OFFSET_MASK else self._exact_sets)[hit >> 32]
            if cats:
                found = found | cats if found else cats
        if self._tlds:
            found = self._tld(host, found)
        return found

    def _tld(self, host: str, found: frozenset[str]) -> frozenset[str]:
        """Add the categories of a listed single label (`zip`, `xxx`) ending the host."""
        dot = host.rfind(".")
        rid = self._tlds.get(host[dot + 1:], -1)
        if rid >= 0:
            cats = self._suffix_sets[rid] if dot >= 0 else self._exact_sets[rid]
            if cats:
                found = found | cats if found else cats
        return found

    def _lookup_url_any(self, url: NormalisedURL) -> frozenset[str]:
        """`lookup_url` for a host that is not a name (`categories.urlcheck` checks names): an IP
        address (the address itself only) or an invalid one (nothing)."""
        host = url.host
        if url.kind == "invalid" or not host:
            return EMPTY
        found = self.lookup_host(host)  # an IP address: itself only
        path = url.path
        query = url.query
        url_hosts = url_hashes(self, host)
        if url_hosts:
            prefix = f"{path}?{query}".lower() if query else path.lower()
            names = self.categories
            for h, site in url_hosts:
                for cid in self._url_ids(h, site, prefix):
                    if names[cid] not in found:
                        found = found | {names[cid]}
        if self._has_expressions:
            matched = self._expression_categories(f"{host}{path}?{query}" if query else host + path)
            if matched:
                found = found | matched
        return found

    def _probe(self, name: bytes) -> int:
        """Record id of a name, or -1."""
        h = _unpack_q(_md5(name).digest())[0]
        b = h >> self._shift
        hi = self._dir[b + 1]
        fp = h >> self._fp_shift & 0xFFFFFFFF
        j = bisect_left(self._fp, fp, self._dir[b], hi)
        if j < hi and self._fp[j] == fp:
            return int(self._val[j])
        return -1

    def _url_ids(self, h: int, site: bytes, prefix: str) -> list[int]:
        """Category ids of the URL entries of `site` (hash h) that match the request's prefix."""
        keys = self._url_keys
        j = bisect_left(keys, h)
        if j == len(keys) or keys[j] != h:
            return []
        lo = self._blob_start + self._url_offs[j]
        hi = self._blob_start + self._url_offs[j + 1]
        if hi - lo < SMALL_BLOB:
            return scanned_ids(self._mmap, lo, hi, prefix)
        if self._has_path_table:
            return hashed_ids(site, prefix, self._path_keys, self._path_cids)
        return matching_ids(self._mmap, lo, hi, prefix)

    # -- slow path, for `categories lookup --json` and `schoolgate explain` ------------------
    def explain_url(self, url: NormalisedURL) -> list[dict[str, str]]:
        """Every entry that matched: {"entry", "list": domains|urls|expressions, "category"}."""
        return explain_url(self, url)

    def __repr__(self) -> str:
        return f"CategoryIndex({str(self.path)!r}, {len(self._fp)} names)"


__all__ = ["EMPTY", "HEADER", "HEADER_SIZE", "MAGIC", "SECTIONS", "VERSION", "CategoryIndex",
           "path_matches"]
