"""The compiled category index: one file, memory-mapped, shared by every process.

File format (version 1, all integers little-endian, sections 8-byte aligned):

    offset 0    magic  b"SGCATIDX"
           8    u32    format version (1)
           12   u32    B, the bucket bits (8..20)
           16   u64    N, entries in the name table
           24   u64    U, hosts in the URL table
           32   7 x (u64 offset, u64 length): the sections below, in this order
           144  zero padding up to HEADER_SIZE (256)
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

A host name's 64-bit hash h (`categories.hashing.name_hash`) picks bucket
`h >> (64 - B)` and fingerprint `(h >> (32 - B)) & 0xFFFFFFFF`: B + 32 bits of
the hash identify a name, so a name that is not listed is taken for a listed
one with probability about N / 2**(B+32) per probe (1e-9 at 5.7M names).
Looking a name up is one read of `dir`, a binary search of a few `fp` slots
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
from categories.expressions import ExpressionSet
from categories.hashing import md5_digest
from categories.normalise import NormalisedURL

logger = logging.getLogger(__name__)

MAGIC = b"SGCATIDX"
VERSION = 1
HEADER_SIZE = 256
HEADER = struct.Struct("<8sIIQQ14Q")
SECTIONS = ("meta", "dir", "fp", "val", "url_keys", "url_offs", "url_blob")
EMPTY: frozenset[str] = frozenset()
_from_bytes = int.from_bytes


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
        self._expressions = ExpressionSet([(names[c], p) for c, p in meta.get("expressions", [])])
        # Single-label entries ("xxx", "zip") are checked in a dict instead of hashing the TLD.
        self._tlds: dict[str, int] = dict(meta.get("tlds", {}))
        # Views last: nothing above can fail with a memoryview exported (mmap.close would refuse).
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
        for view in (self._dir, self._fp, self._val, self._url_keys, self._url_offs,
                     *self._views.values()):
            view.release()
        self._views = {}
        self._mmap.close()

    def __enter__(self) -> CategoryIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- hot path ---------------------------------------------------------------------------
    def _probe(self, name: bytes) -> int:
        """Record id of a name, or -1."""
        h = _from_bytes(md5_digest(name).digest()[:8], "big")
        b = h >> self._shift
        lo = self._dir[b]
        hi = self._dir[b + 1]
        if lo == hi:
            return -1
        fp = (h >> self._fp_shift) & 0xFFFFFFFF
        j = bisect_left(self._fp, fp, lo, hi)
        if j < hi and self._fp[j] == fp:
            return self._val[j]
        return -1

    def lookup_host(self, host: str) -> frozenset[str]:
        """Categories of a normalised host: the name and every parent suffix (IPs as they are)."""
        found = EMPTY
        records = self._records
        for rid, start in self._matches(host):
            record = records[rid]
            cats = record[0] if start == 0 else record[1]
            found = found | cats if found else cats
        return found

    def _matches(self, host: str) -> list[tuple[int, int]]:
        """(record id, offset of the suffix in host) for the host and each listed parent suffix.

        The hot loop of the whole filter: kept flat, with its lookups in locals.
        """
        out: list[tuple[int, int]] = []
        if not host:
            return out
        if ":" in host or host[-1].isdigit():  # an IP literal: itself only
            rid = self._probe(host.encode())
            if rid >= 0:
                out.append((rid, 0))
            return out
        last = host.rfind(".")
        if last >= 0:
            raw = host.encode()
            shift = self._shift
            fp_shift = self._fp_shift
            dir_, fps = self._dir, self._fp
            digest = md5_digest
            from_bytes = _from_bytes
            start = 0
            while start <= last:  # every suffix of two labels or more
                h = from_bytes(digest(raw[start:] if start else raw).digest()[:8], "big")
                b = h >> shift
                lo = dir_[b]
                hi = dir_[b + 1]
                if lo != hi:
                    fp = (h >> fp_shift) & 0xFFFFFFFF
                    j = bisect_left(fps, fp, lo, hi)
                    if j < hi and fps[j] == fp:
                        out.append((self._val[j], start))
                start = raw.find(b".", start) + 1
        if self._tlds:
            rid = self._tlds.get(host[last + 1:], -1)
            if rid >= 0:
                out.append((rid, last + 1))
        return out

    def lookup_url(self, url: NormalisedURL) -> frozenset[str]:
        """Categories of a URL: its host's, URL-list entries (host + path prefix), expressions."""
        if url.kind == "invalid" or not url.host:
            return EMPTY
        found = EMPTY
        records = self._records
        host = url.host
        target = url.target
        prefix = ""
        for rid, start in self._matches(host):
            record = records[rid]
            cats = record[0] if start == 0 else record[1]
            if cats:
                found = found | cats if found else cats
            if record[2]:
                prefix = prefix or target[len(host):].lower()
                for category, entry in self._url_entries(host[start:]):
                    if path_matches(prefix, entry):
                        found = found | {category}
        if self._expressions:
            matched = self._expressions.categories(target)
            if matched:
                found = found | matched
        return found

    def _url_entries(self, host: str) -> list[tuple[str, str]]:
        """(category, path prefix) entries listed for exactly this host."""
        h = _from_bytes(md5_digest(host.encode()).digest()[:8], "big")
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

    # -- slow path, for `categories lookup --json` and `schoolgate explain` ------------------
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


def path_matches(prefix: str, entry: str) -> bool:
    """Does the request's lower-case `path?query` start with the entry at a boundary?"""
    if not prefix.startswith(entry):
        return False
    if len(prefix) == len(entry) or entry.endswith(("/", "?", "=", "&")):
        return True
    return prefix[len(entry)] in "/?;&#"
