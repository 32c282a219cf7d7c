"""Plain lists: one domain (or `host/path` URL) per line, and hosts files.

    # comments and blank lines are ignored
    example.com
    www.example.org          # a trailing comment
    example.net/some/path    # a URL entry (IWF-style feeds)

Hosts files: `0.0.0.0 name [name...]` or `127.0.0.1 name`; any address is
accepted in the first column, and the names a hosts file always carries
(`localhost`, `broadcasthost`...) are skipped.  Either kind may be gzipped.

`load_source(path, fmt, ...)` reads any supported source format from disk.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

from categories.errors import CategoryImportError
from categories.lists import CategoryLists, text_lines
from categories.safetar import DEFAULT_LIMITS, Limits
from categories.ut1 import read_ut1

logger = logging.getLogger(__name__)

FORMATS = ("ut1", "domains", "hosts")
HOSTS_NOISE = frozenset({
    "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
    "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
    "ip6-allhosts", "0.0.0.0",
})


def read_bytes(path: Path, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The contents of a list file, gunzipped if it is gzip, within the size limits."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CategoryImportError(f"cannot read ({exc.strerror})", str(path)) from exc
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = decompressor.decompress(raw, limits.max_member_bytes)
        if decompressor.unconsumed_tail:
            raise CategoryImportError(
                f"over the limit of {limits.max_member_bytes} bytes uncompressed", path.name)
        if not decompressor.eof:
            raise CategoryImportError("truncated gzip data", path.name)
        return data
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise CategoryImportError(f"corrupt gzip data ({exc})", path.name) from exc


def read_domains(data: bytes, category: str, source: str, illegal: bool = False) -> CategoryLists:
    lists = CategoryLists(source, illegal=illegal)
    lists.add_domains(category, text_lines(data), f"{source}")
    return lists


def read_hosts(data: bytes, category: str, source: str, illegal: bool = False) -> CategoryLists:
    names: list[str] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        names.extend(n for n in fields[1:] if n.lower() not in HOSTS_NOISE)
    lists = CategoryLists(source, illegal=illegal)
    lists.add_domains(category, names, source)
    return lists


def load_source(path: Path, fmt: str, source: str, category: str | None = None,
                illegal: bool = False, limits: Limits = DEFAULT_LIMITS) -> CategoryLists:
    """Read a source from disk in the given format ("ut1", "domains" or "hosts")."""
    if fmt == "ut1":
        return read_ut1(path, source, illegal, limits)
    if fmt not in FORMATS:
        raise CategoryImportError(f"unknown list format {fmt!r} (expected one of {FORMATS})", source)
    if not category:
        raise CategoryImportError(f"a {fmt!r} list needs a category", source)
    data = read_bytes(path, limits)
    if fmt == "domains":
        lists = read_domains(data, category, source, illegal)
    else:
        lists = read_hosts(data, category, source, illegal)
    logger.info("imported %s (%s): %d entries in %s, %d skipped",
                source, fmt, lists.total, category, lists.skipped)
    return lists
