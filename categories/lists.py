"""`CategoryLists`: what an importer produces and the compiler consumes.

Domain entries are kept as 64-bit name hashes (`categories.hashing`) as soon
as they are read, so that the 5.7M lines of a full UT1 download cost 8 bytes
each instead of a Python string each; each name also sets its bit in the
list's Bloom map (`categories.bloom`, 8 MB, made on the first domain added).  An entry `www.example.com` is kept
twice: as itself (covering its subdomains) and as `example.com` for an exact
match only, so that `example.com` is listed too but `other.example.com` is
not (squidGuard treats `www.` as insignificant in the same way).

URL entries (`example.com/some/path`, UT1 `urls` files) are kept as
`(site, path-prefix)` with the host normalised and `www.` dropped, the path
lower-cased.  Expressions are kept as text; the compiler validates them.
"""
from __future__ import annotations

import logging
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from zlib import crc32

from categories.bloom import MASK as BLOOM_MASK
from categories.bloom import new_map
from categories.hashing import bytes_hash
from categories.hostparse import parse_host
from categories.normalise import split_target, strip_www

logger = logging.getLogger(__name__)

MAX_PROBLEMS = 50
_ENTRY = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z_][a-z0-9_-]{0,62}")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def entry_host(text: str) -> str | None:
    """Normalise a listed host name or IP; None if it is not one.

    `.example.com` and `*.example.com` (other filters' ways of saying "and its
    subdomains") are read as `example.com`, which covers subdomains anyway.
    """
    if text.startswith(("*.", ".")):
        text = text.lstrip("*.")
    name = text.lower()
    if _ENTRY.fullmatch(name) is not None and len(name) <= 253:
        return name
    kind, host, _problem = parse_host(text)
    return None if kind == "invalid" else host


def split_url_entry(text: str) -> tuple[str, str] | None:
    """`http://www.Example.com/Path?q` -> (`example.com`, `/path?q`); None if the host is bad."""
    text = _SCHEME.sub("", text.strip())
    slash = text.find("/")
    if slash < 0:
        return None
    host = entry_host(text[:slash])
    if host is None:
        return None
    path, query = split_target(text[slash:])
    prefix = f"{path}?{query}" if query else path
    return strip_www(host), prefix.lower()


@dataclass
class CategoryLists:
    """The lists of one source (UT1 download, built-in files, an IWF feed...)."""

    source: str
    illegal: bool = False
    domains: dict[str, array] = field(default_factory=dict)        # category -> hashes
    exact: dict[str, array] = field(default_factory=dict)          # category -> hashes, exact only
    urls: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    expressions: dict[str, list[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    single: dict[str, set[str]] = field(default_factory=dict)      # one-label names -> categories
    counts: dict[str, int] = field(default_factory=dict)           # entries accepted per category
    problems: list[str] = field(default_factory=list)
    skipped: int = 0
    bloom: bytearray | None = None    # categories.bloom map of every hash in domains and exact
    bloomed: int = 0                  # hashes added with their Bloom bit (the compiler checks)

    def problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def categories(self) -> set[str]:
        return set(self.domains) | set(self.exact) | set(self.urls) | set(self.expressions)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _count(self, category: str, n: int) -> None:
        self.counts[category] = self.counts.get(category, 0) + n

    def add_domains(self, category: str, names: Iterable[str], where: str = "") -> None:
        """Add host names (or IP literals); a line with a `/` is taken as a URL entry."""
        hashes = self.domains.setdefault(category, array("Q"))
        exact = self.exact.setdefault(category, array("Q"))
        if self.bloom is None:
            self.bloom = new_map()
        bloom = self.bloom
        before = len(hashes) + len(exact)
        urls: list[str] = []
        added = 0
        fast = _ENTRY.fullmatch
        append = hashes.append
        for raw in names:
            name = raw.lower()
            if fast(name) is None or len(name) > 253:
                if "/" in raw:
                    urls.append(raw)
                    continue
                host = entry_host(raw)
                if host is None:
                    self.problem(f"{where or category}: not a host name: {raw[:80]!r}")
                    continue
                name = host
            data = name.encode()
            append(bytes_hash(data))
            c = crc32(data) & BLOOM_MASK
            bloom[c >> 3] |= 1 << (c & 7)
            if "." not in name:
                self.single.setdefault(name, set()).add(category)
            elif name.startswith("www"):
                bare = strip_www(name)
                if bare != name:
                    data = bare.encode()
                    exact.append(bytes_hash(data))
                    c = crc32(data) & BLOOM_MASK
                    bloom[c >> 3] |= 1 << (c & 7)
            added += 1
        self.bloomed += len(hashes) + len(exact) - before
        self._count(category, added)
        if urls:
            self.add_urls(category, urls, where)

    def add_urls(self, category: str, entries: Iterable[str], where: str = "") -> None:
        bucket = self.urls.setdefault(category, [])
        added = 0
        for raw in entries:
            parsed = split_url_entry(raw)
            if parsed is None:
                self.problem(f"{where or category}: not a URL entry: {raw[:80]!r}")
                continue
            bucket.append(parsed)
            added += 1
        self._count(category, added)

    def add_expressions(self, category: str, patterns: Iterable[str]) -> None:
        bucket = self.expressions.setdefault(category, [])
        before = len(bucket)
        bucket.extend(p for p in patterns if p.strip())
        self._count(category, len(bucket) - before)


def text_lines(data: bytes) -> list[str]:
    """Decode a list file and return its entries: no blank lines, no `#` comments.

    A comment is a line starting with `#` or a `#` after white space; a `#`
    inside an entry (`example.com/#page`) belongs to the entry.
    """
    return list(iter_text_lines(data, len(data) + 1))


CHUNK = 1 << 20


def iter_text_lines(data: bytes, chunk: int = CHUNK) -> Iterator[str]:
    """`text_lines`, a block of about `chunk` bytes at a time (cut at line ends).

    A 100 MB `domains` file as one list of strings costs ~400 MB; a block at a
    time, a few MB.  Cutting at LF changes nothing: it is white space, and no
    UTF-8 sequence contains its byte.  Whether `#` comments are looked for is
    decided once for the whole file, as `text_lines` does.
    """
    comments = b"#" in data
    start = 0
    size = len(data)
    while start < size:
        end = data.find(b"\n", min(start + chunk, size))
        end = size if end < 0 else end + 1
        text = data[start:end].decode("utf-8", errors="replace")
        start = end
        if not comments:
            yield from text.split()  # one entry per line: the C-speed path for big files
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for mark in (" #", "\t#"):  # a comment after the entry; a bare "#" is part of a URL
                if mark in line:
                    line = line.split(mark, 1)[0].rstrip()
            if line:
                yield line
