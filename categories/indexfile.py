"""The layout of a compiled category index file, and the checks of its header.

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

`categories.index` reads such a file, `categories.compiler` writes one.
"""
from __future__ import annotations

import logging
import mmap
import struct
from pathlib import Path

from categories import bloom
from categories.errors import IndexFormatError

logger = logging.getLogger(__name__)

MAGIC = b"SGCATIDX"
VERSION = 1
HEADER_SIZE = 256
HEADER = struct.Struct("<8sIIQQ20Q")
SECTIONS = ("meta", "dir", "fp", "val", "url_keys", "url_offs", "url_blob", "bloom",
            "path_keys", "path_cids")

Bounds = dict[str, tuple[int, int]]


def read_header(mapping: mmap.mmap, path: Path) -> tuple[int, int, int, Bounds]:
    """(B, N, U, section -> (start, end)) of a mapped file; IndexFormatError if it is not sound."""
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
    return bits, n, u, bounds
