"""`schoolgate explain` and `categories lookup --json`: every list entry that matched a URL.

The slow path: it reports each entry (a domain, a URL prefix, an expression)
with its list and category, where the lookups only return the categories.
`matches` and `url_hashes` also serve the lookups' rare cases (IP addresses,
single-label entries with URL entries).
"""
from __future__ import annotations

import logging
import struct
from bisect import bisect_left
from typing import TYPE_CHECKING

from categories.hashing import md5_digest

from categories.normalise import NormalisedURL
from categories.urlmatch import path_matches

if TYPE_CHECKING:
    from categories.index import CategoryIndex

logger = logging.getLogger(__name__)

_unpack_q = struct.Struct(">Q").unpack_from


def explain_url(index: CategoryIndex, url: NormalisedURL) -> list[dict[str, str]]:
    """Every entry that matched: {"entry", "list": domains|urls|expressions, "category"}."""
    out: list[dict[str, str]] = []
    if url.kind == "invalid" or not url.host:
        return out
    host = url.host
    prefix = url.target[len(host):].lower()
    for rid, start in matches(index, host):
        suffix = host[start:]
        exact_cats, suffix_cats, has_url = index._records[rid]
        for category in sorted(exact_cats if suffix == host else suffix_cats):
            entry = suffix if category in suffix_cats else f"www.{suffix}"
            out.append({"entry": entry, "list": "domains", "category": category})
        if has_url:
            for category, path in url_entries(index, suffix):
                if path_matches(prefix, path):
                    out.append({"entry": suffix + path, "list": "urls", "category": category})
    for category, pattern in index._expressions.matching(url.target):
        out.append({"entry": pattern, "list": "expressions", "category": category})
    return out


def matches(index: CategoryIndex, host: str) -> list[tuple[int, int]]:
    """(record id, offset of the suffix in host) for the host and each listed parent suffix."""
    out: list[tuple[int, int]] = []
    if not host:
        return out
    if ":" in host or host[-1].isdigit():  # an IP literal: itself only
        rid = index._probe(host.encode())
        return [(rid, 0)] if rid >= 0 else out
    raw = host.encode()
    start = 0
    last = raw.rfind(b".")
    while start <= last:
        rid = index._probe(raw[start:])
        if rid >= 0:
            out.append((rid, start))
        start = raw.find(b".", start) + 1
    rid = index._tlds.get(host[last + 1:], -1)
    if rid >= 0:
        out.append((rid, last + 1))
    return out


def url_entries(index: CategoryIndex, host: str) -> list[tuple[str, str]]:
    """(category, path prefix) entries listed for exactly this host."""
    h = _unpack_q(md5_digest(host.encode()).digest())[0]
    keys = index._url_keys
    j = bisect_left(keys, h)
    if j == len(keys) or keys[j] != h:
        return []
    blob = index._views["url_blob"][index._url_offs[j]: index._url_offs[j + 1]]
    out: list[tuple[str, str]] = []
    for line in bytes(blob).decode("utf-8").splitlines():
        cid, _, path = line.partition("\t")
        out.append((index.categories[int(cid)], path))
    return out


def url_hashes(index: CategoryIndex, host: str) -> list[tuple[int, bytes]]:
    """(hash, name) of the listed suffixes of host (or the IP) that have URL entries."""
    out: list[tuple[int, bytes]] = []
    for rid, start in matches(index, host):
        if index._has_url[rid]:
            site = host[start:].encode()
            out.append((_unpack_q(md5_digest(site).digest())[0], site))
    return out
