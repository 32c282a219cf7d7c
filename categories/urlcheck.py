"""The fused URL check: parse, host lookup, URL-list entries and expressions in one function.

`build_checks(index)` returns two closures over the index's tables:
- `lookup_url(url)`: the categories of a `NormalisedURL` (`CategoryIndex.lookup_url`).
  A name (nearly every request) is checked here, in one function; an IP address
  or an invalid host goes to `CategoryIndex._lookup_url_any`;
- `check_url(url)`: `lookup_url(normalise_url(url))` for a URL string (a plain
  lower-case http(s) URL is one regex match and one tuple in `normalise_url`).

Why closures: a URL check is about a hundred bytecodes and each attribute
lookup or bound-method call is a measurable part of it.  Everything the
check touches (the host loop, the tables, the category sets) is bound once
when the index is opened and read as a local (a closure cell).

The host loop (`categories.hostprobe`: the name and each parent suffix of
two labels or more, in C where it was built) gives the listed suffixes; one
with URL entries is remembered with its hash for the URL-list step (rare:
its hash is computed again here).  Closing the index releases the tables: a
check afterwards raises ValueError.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from categories.explain import url_hashes
from categories.hashing import bytes_hash
from categories.hostprobe import OFFSET_MASK
from categories.normalise import NormalisedURL, normalise_url

if TYPE_CHECKING:
    from categories.index import CategoryIndex

logger = logging.getLogger(__name__)

CheckURL = Callable[[str], frozenset[str]]
LookupURL = Callable[[NormalisedURL], frozenset[str]]
EMPTY: frozenset[str] = frozenset()


def build_checks(index: CategoryIndex) -> tuple[CheckURL, LookupURL]:
    """`(check_url, lookup_url)` bound to the open index's tables (see the module docstring)."""
    hits = index._names.hits
    offset_mask = OFFSET_MASK
    exact_sets, suffix_sets, has_url = index._exact_sets, index._suffix_sets, index._has_url
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
        for hit in hits(host):  # record id << 32 | where the suffix starts (0: the name itself)
            rid = hit >> 32
            at = hit & offset_mask
            cats = suffix_sets[rid] if at else exact_sets[rid]
            if cats:
                found = found | cats if found else cats
            if has_url[rid]:
                site = host.encode()[at:]
                if url_hosts is None:
                    url_hosts = [(bytes_hash(site), site)]
                else:
                    url_hosts.append((bytes_hash(site), site))
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
