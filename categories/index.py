"""The compiled category index: one file, memory-mapped, shared by every process.

File format (version 1, all integers little-endian, sections 8-byte aligned):

    offset 0    magic  b"SGCATIDX"
           8    u32    format version (1)
           12   u32    B, the bucket bits (8..20)
           16   u64    N, entries in the name table
           24   u64    U, hosts in the URL table
           32   10 x (u64 offset, u64 length): the sections below, in this order
                (files written before `bloom` and `url_paths` have zeros for them)
           192  zero padding up to HEADER_SIZE (256)
    meta        UTF-8 JSON: format, built_at, categories (id -> name), aliases,
                descriptions, illegal categories, sources with their counts,
                per-category counts, problems, `sets` (category-id lists),
                `records` ([suffix set, exact set, has-URL flag]) and
                `expressions` ([category id, pattern]).
    dir         (2**B + 1) x u32: name-table index of the first entry of each bucket
    fp          N x u32: fingerprints, sorted within each bucket
    val         N x u16: record id of each entry
    url_keys    U x u64: sorted 64-bit hashes of the hosts that have URL entries
    url_offs    (U + 1) x u32: offsets into url_blob
    url_blob    per host: lines "category-id TAB lower-case path-prefix LF"
    bloom       2**k bits (k <= 26), or empty: bit `crc32(name) & (2**k - 1)` is set
                for every name in the table (`categories.bloom`)
    path_keys   K x u64: sorted hashes of "site TAB path" of every URL entry
                (`categories.urlmatch.path_key`), or empty
    path_cids   K x u16: the category id of each

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
from zlib import crc32 as _crc32

from categories import bloom
from categories.errors import IndexFormatError
from categories.expressions import ExpressionSet
from categories.hashing import md5_digest as _md5
from categories.normalise import NormalisedURL
from categories.urlmatch import SMALL_BLOB, hashed_ids, matching_ids, path_matches

logger = logging.getLogger(__name__)

MAGIC = b"SGCATIDX"
VERSION = 1
HEADER_SIZE = 256
HEADER = struct.Struct("<8sIIQQ20Q")
SECTIONS = ("meta", "dir", "fp", "val", "url_keys", "url_offs", "url_blob", "bloom",
            "path_keys", "path_cids")
_ALL_PASS = memoryview(b"\xff")  # the filter of a file without one: every name may be listed
EMPTY: frozenset[str] = frozenset()
_unpack_q = struct.Struct(">Q").unpack_from  # the first 8 bytes of a digest: `name_hash`


class CategoryIndex:
    """A read-only view of a compiled index file (see the module docstring)."""

    def __init__(self, path: Path, mapping: mmap.mmap) -> None:
        self.path = path
        self._mmap = mapping
        try:
            magic, version, bits, n, u, *offsets = HEADER.unpack_from(mapping, 0)
        except struct.error as exc:
            raise IndexFormatError(f"{path}: too short to be a category index") from exc
        if magic != MAGIC:
            raise IndexFormatError(f"{path}: not a category index (bad magic)")
        if version != VERSION:
            raise IndexFormatError(f"{path}: format version {version}, expected {VERSION}")
        bounds: dict[str, tuple[int, int]] = {}
        for i, name in enumerate(SECTIONS):
            start, length = offsets[2 * i], offsets[2 * i + 1]
            if start + length > len(mapping):
                raise IndexFormatError(f"{path}: truncated (section {name})")
            bounds[name] = (start, start + length)
        expected = {"dir": 4 * ((1 << bits) + 1), "fp": 4 * n, "val": 2 * n,
                    "url_keys": 8 * u, "url_offs": 4 * (u + 1)}
        for name, size in expected.items():
            if bounds[name][1] - bounds[name][0] != size:
                raise IndexFormatError(f"{path}: section {name} does not match the header")
        bloom_bytes = bounds["bloom"][1] - bounds["bloom"][0]
        path_entries = (bounds["path_keys"][1] - bounds["path_keys"][0]) // 8
        if (bounds["path_keys"][1] - bounds["path_keys"][0] != 8 * path_entries
                or bounds["path_cids"][1] - bounds["path_cids"][0] != 2 * path_entries):
            raise IndexFormatError(f"{path}: sections path_keys and path_cids do not match")
        if bloom_bytes & (bloom_bytes - 1) or bloom_bytes > bloom.MAX_BITS >> 3:
            raise IndexFormatError(f"{path}: section bloom is not a power of two bytes")
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
        self._small_blob = SMALL_BLOB if path_entries else 1 << 62  # old files: `find` only
        self._bloom = self._views["bloom"] if bloom_bytes else _ALL_PASS
        self._hot = (_md5, _unpack_q, self._shift, self._fp_shift, self._dir, self._fp, self._val,
                     self._exact_sets, self._suffix_sets, self._has_url, _crc32, self._bloom,
                     len(self._bloom) * 8 - 1)

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
        """Release the mapping (lookups afterwards raise ValueError)."""
        self._hot = ()  # type: ignore[assignment]
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
    # `lookup_host` and `lookup_url` run on every request and DNS query; profiled, nearly all
    # their time is per suffix probed: one MD5 (`name_hash`: the digest's first 8 bytes as a
    # big-endian u64, read with one `Struct.unpack_from`), two `dir` reads, a C `bisect` over
    # a few fingerprints.  So the loops stay flat: their state comes out of one tuple, the next
    # suffix is one `bytes.partition`, and the category sets are the frozensets made at open
    # (a lookup with one match allocates nothing).
    def lookup_host(self, host: str) -> frozenset[str]:
        """Categories of a normalised host: the name and every parent suffix (IPs as they are)."""
        if not host:
            return EMPTY
        if ":" in host or host[-1].isdigit():  # an IP literal: itself only
            rid = self._probe(host.encode())
            return self._exact_sets[rid] if rid >= 0 else EMPTY
        found = EMPTY
        dots = host.count(".")
        if dots:
            (md5, unpack, shift, fp_shift, dir_, fps, vals, sets, suffix_sets, _,
             crc, bloom_map, mask) = self._hot
            rest = host.encode()
            while True:  # the name, then each parent suffix of two labels or more
                c = crc(rest) & mask
                if bloom_map[c >> 3] >> (c & 7) & 1:
                    h = unpack(md5(rest).digest())[0]
                    b = h >> shift
                    hi = dir_[b + 1]
                    fp = h >> fp_shift & 0xFFFFFFFF
                    j = bisect_left(fps, fp, dir_[b], hi)
                    if j < hi and fps[j] == fp:
                        cats = sets[vals[j]]
                        if cats:
                            found = found | cats if found else cats
                dots -= 1
                if not dots:
                    break
                rest = rest.partition(b".")[2]
                sets = suffix_sets
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

    def lookup_url(self, url: NormalisedURL) -> frozenset[str]:
        """Categories of a URL: its host's, URL-list entries (host + path prefix), expressions."""
        kind = url.kind
        host = url.host
        if kind == "invalid" or not host:
            return EMPTY
        found = EMPTY
        url_hosts: list[tuple[int, bytes]] = []  # (hash, name) of listed suffixes with URL entries
        if kind == "name":
            dots = host.count(".")
            if dots:
                (md5, unpack, shift, fp_shift, dir_, fps, vals, sets, suffix_sets, has_url,
                 crc, bloom_map, mask) = self._hot
                rest = host.encode()
                while True:  # as in lookup_host
                    c = crc(rest) & mask
                    if bloom_map[c >> 3] >> (c & 7) & 1:
                        h = unpack(md5(rest).digest())[0]
                        b = h >> shift
                        hi = dir_[b + 1]
                        fp = h >> fp_shift & 0xFFFFFFFF
                        j = bisect_left(fps, fp, dir_[b], hi)
                        if j < hi and fps[j] == fp:
                            rid = vals[j]
                            cats = sets[rid]
                            if cats:
                                found = found | cats if found else cats
                            if has_url[rid]:
                                url_hosts.append((h, rest))
                    dots -= 1
                    if not dots:
                        break
                    rest = rest.partition(b".")[2]
                    sets = suffix_sets
            if self._tlds:
                found = self._tld(host, found)
                if self._url_tlds:
                    url_hosts += [(h, site) for h, site in self._url_hashes(host) if b"." not in site]
        else:  # an IP address: itself only
            found = self.lookup_host(host)
            url_hosts = self._url_hashes(host)
        path = url.path
        query = url.query
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

    def _url_hashes(self, host: str) -> list[tuple[int, bytes]]:
        """(hash, name) of the listed suffixes of host (or the IP) that have URL entries."""
        out = []
        for rid, start in self._matches(host):
            if self._has_url[rid]:
                site = host[start:].encode()
                out.append((_unpack_q(_md5(site).digest())[0], site))
        return out

    def _url_ids(self, h: int, site: bytes, prefix: str) -> list[int]:
        """Category ids of the URL entries of `site` (hash h) that match the request's prefix."""
        keys = self._url_keys
        j = bisect_left(keys, h)
        if j == len(keys) or keys[j] != h:
            return []
        lo = self._blob_start + self._url_offs[j]
        hi = self._blob_start + self._url_offs[j + 1]
        if hi - lo < self._small_blob:
            return matching_ids(self._mmap, lo, hi, prefix)
        return hashed_ids(site, prefix, self._path_keys, self._path_cids)

    # -- slow path, for `categories lookup --json` and `schoolgate explain` ------------------
    def _matches(self, host: str) -> list[tuple[int, int]]:
        """(record id, offset of the suffix in host) for the host and each listed parent suffix."""
        out: list[tuple[int, int]] = []
        if not host:
            return out
        if ":" in host or host[-1].isdigit():  # an IP literal: itself only
            rid = self._probe(host.encode())
            return [(rid, 0)] if rid >= 0 else out
        raw = host.encode()
        start = 0
        last = raw.rfind(b".")
        while start <= last:
            rid = self._probe(raw[start:])
            if rid >= 0:
                out.append((rid, start))
            start = raw.find(b".", start) + 1
        rid = self._tlds.get(host[last + 1:], -1)
        if rid >= 0:
            out.append((rid, last + 1))
        return out

    def _url_entries(self, host: str) -> list[tuple[str, str]]:
        """(category, path prefix) entries listed for exactly this host."""
        h = _unpack_q(_md5(host.encode()).digest())[0]
        keys = self._url_keys
        j = bisect_left(keys, h)
        if j == len(keys) or keys[j] != h:
            return []
        blob = self._views["url_blob"][self._url_offs[j]: self._url_offs[j + 1]]
        out = []
        for line in bytes(blob).decode("utf-8").splitlines():
            cid, _, path = line.partition("\t")
            out.append((self.categories[int(cid)], path))
        return out

    def explain_url(self, url: NormalisedURL) -> list[dict[str, str]]:
        """Every entry that matched: {"entry", "list": domains|urls|expressions, "category"}."""
        out: list[dict[str, str]] = []
        if url.kind == "invalid" or not url.host:
            return out
        host = url.host
        prefix = url.target[len(host):].lower()
        for rid, start in self._matches(host):
            suffix = host[start:]
            exact_cats, suffix_cats, has_url = self._records[rid]
            for category in sorted(exact_cats if suffix == host else suffix_cats):
                entry = suffix if category in suffix_cats else f"www.{suffix}"
                out.append({"entry": entry, "list": "domains", "category": category})
            if has_url:
                for category, path in self._url_entries(suffix):
                    if path_matches(prefix, path):
                        out.append({"entry": suffix + path, "list": "urls", "category": category})
        for category, pattern in self._expressions.matching(url.target):
            out.append({"entry": pattern, "list": "expressions", "category": category})
        return out

    def __repr__(self) -> str:
        return f"CategoryIndex({str(self.path)!r}, {len(self._fp)} names)"
