"""The fused URL check: parse, host lookup, URL-list entries and expressions in one function.

`build_checks(index)` returns two closures over the index's tables:
- `lookup_url(url)`: the categories of a `NormalisedURL` (`CategoryIndex.lookup_url`).
  A name (nearly every request) is checked here, in one function; an IP address
  or an invalid host goes to `CategoryIndex._lookup_url_any`;
- `check_url(url)`: `lookup_url(normalise_url(url))` for a URL string (a plain
  lower-case http(s) URL is one regex match and one tuple in `normalise_url`).

Why closures: a URL check is about a hundred bytecodes and each attribute
lookup or bound-method call is a measurable part of it.  Everything the
loop touches (hash functions, the memory-mapped tables, the category sets)
is bound once when the index is opened and read as a local (a closure cell).

The host loop walks the name and each parent suffix of two labels or more
once, and serves the name table and the URL table together: each suffix is
hashed once (CRC-32 for the Bloom filter, MD5 only when the filter lets it
through) and a listed suffix with URL entries is remembered with its hash
for the URL-list step.  Closing the index releases the tables: a check
afterwards raises ValueError.
"""
from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

from categories.explain import url_hashes
from categories.normalise import NormalisedURL, normalise_url

if TYPE_CHECKING:
    from categories.index import CategoryIndex

logger = logging.getLogger(__name__)

CheckURL = Callable[[str], frozenset[str]]
LookupURL = Callable[[NormalisedURL], frozenset[str]]
EMPTY: frozenset[str] = frozenset()


def build_checks(index: CategoryIndex) -> tuple[CheckURL, LookupURL]:
    """`(check_url, lookup_url)` bound to the open index's tables (see the module docstring)."""
    (md5, unpack, shift, fp_shift, dir_, fps, vals, exact_sets, suffix_sets, has_url,
     crc, bloom_map, mask) = index._hot
    url_ids = index._url_ids
    names = index.categories
    tld = index._tld if index._tlds else None
    url_tlds = index._url_tlds
    expressions = index._expressions
    gate = expressions.gate() if expressions else None  # None: every URL goes to `categories`
    expression_categories = expressions.categories if expressions else None
    routed = expressions.routed
    general = index._lookup_url_any

    def lookup_url(url: NormalisedURL) -> frozenset[str]:
        kind, _scheme, host, _port, path, query, _problem = url  # one C-level unpack of the tuple
        if kind != "name" or not host:
            return general(url)
        found = EMPTY
        url_hosts: list[tuple[int, bytes]] | None = None  # listed suffixes with URL entries
        dots = host.count(".")
        if dots:
            rest = host.encode()
            sets = exact_sets
            while True:  # the name, then each parent suffix of two labels or more
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
                            if url_hosts is None:
                                url_hosts = [(h, rest)]
                            else:
                                url_hosts.append((h, rest))
                dots -= 1
                if not dots:
                    break
                rest = rest.partition(b".")[2]
                sets = suffix_sets
        if tld is not None:
            found = tld(host, found)
            if url_tlds:
                extra = [(h, site) for h, site in url_hashes(index, host) if b"." not in site]
                if extra:
                    url_hosts = (url_hosts or []) + extra
        if url_hosts is not None:
            prefix = f"{path}?{query}".lower() if query else path.lower()
            for h, site in url_hosts:
                for cid in url_ids(h, site, prefix):
                    if names[cid] not in found:
                        found = found | {names[cid]}
        if gate is not None:
            target = f"{host}{path}?{query}" if query else host + path
            lowered = target.lower()
            keys = gate(lowered)
            if keys:  # a key of an expression is in the target
                matched = routed(target, lowered, keys)
                if matched:
                    found = found | matched
        elif expression_categories is not None:
            every = expression_categories(f"{host}{path}?{query}" if query else host + path)
            if every:
                found = found | every
        return found

    def check_url(url: str) -> frozenset[str]:
        return lookup_url(normalise_url(url))

    return check_url, lookup_url
