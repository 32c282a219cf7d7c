"""Compile imported lists into one index file (format: `categories.index`), atomically.

`compile_index(lists, out_path)` writes a temporary file in the same folder,
fsyncs it, opens it to check it, then `os.replace`s it over `out_path` and
fsyncs the folder: a process holding the old file keeps its mapping, and a
reader never sees half a file.
"""
from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

from categories import bloom
from categories.errors import CategoryError
from categories.hashing import name_hash
from categories.index import HEADER, HEADER_SIZE, MAGIC, SECTIONS, VERSION, CategoryIndex
from categories.lists import CategoryLists
from categories.urlmatch import PREFIX_ONLY, path_key, prefix_rows

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 0x7FF      # category ids live in the low 11 bits of a sort key
EXACT_FLAG = 0x800
URL_MARK = 0xFFF
MAX_RECORDS = 0xFFFF


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _category_ids(lists: Sequence[CategoryLists]) -> dict[str, int]:
    names: set[str] = set()
    for lst in lists:
        names |= lst.categories() | set(lst.counts)
    if len(names) > MAX_CATEGORIES:
        raise CategoryError(f"{len(names)} categories; the index holds at most {MAX_CATEGORIES}")
    return {name: i for i, name in enumerate(sorted(names))}


def _sort_keys(lists: Sequence[CategoryLists], cids: dict[str, int],
               url_sites: dict[str, set[tuple[int, str]]]) -> array:
    """One 64-bit key per entry, sorted: the hash's top 52 bits, then flags and category id.

    Kept in arrays, never in one list of ints (5.7M of them would cost ~250 MB):
    the keys go to 256 parts by their top byte, and each part is sorted alone.
    """
    parts = [array("Q") for _ in range(256)]
    put = [part.append for part in parts]
    for lst in lists:
        for category, hashes in lst.domains.items():
            cid = cids[category]
            for h in hashes:
                put[h >> 56]((h >> 12 << 12) | cid)
        for category, hashes in lst.exact.items():
            low = cids[category] | EXACT_FLAG
            for h in hashes:
                put[h >> 56]((h >> 12 << 12) | low)
    for site in url_sites:
        h = name_hash(site)
        put[h >> 56]((h >> 12 << 12) | URL_MARK)
    keys = array("Q")
    for i, part in enumerate(parts):
        keys.extend(sorted(part))
        parts[i] = array("Q")
    return keys


def _tables(keys: array, bits: int) -> tuple[array, array, array, list[tuple[int, int, bool]]]:
    """Group equal names; return dir, fp, val and the records (suffix mask, exact mask, has URLs)."""
    shift = 32 - bits
    counts = array("I", bytes(4 * (1 << bits)))
    fps = array("I")
    vals = array("H")
    records: dict[tuple[int, int, bool], int] = {}
    current = -1
    suffix = exact = 0
    has_url = False

    def emit() -> None:
        rid = records.setdefault((suffix, exact, has_url), len(records))
        if rid >= MAX_RECORDS:
            raise CategoryError("too many distinct category combinations for the index")
        fps.append(current & 0xFFFFFFFF)
        vals.append(rid)
        counts[current >> 32] += 1

    for key in keys:
        ident = key >> shift
        if ident != current:
            if current >= 0:
                emit()
            current, suffix, exact, has_url = ident, 0, 0, False
        low = key & 0xFFF
        if low == URL_MARK:
            has_url = True
        elif low & EXACT_FLAG:
            exact |= 1 << (low & MAX_CATEGORIES)
        else:
            suffix |= 1 << low
    if current >= 0:
        emit()
    directory = array("I", [0])
    directory.extend(accumulate(counts))
    return directory, fps, vals, list(records)


def _url_section(url_sites: dict[str, set[tuple[int, str]]]) -> tuple[array, array, bytes]:
    by_hash: dict[int, set[tuple[int, str]]] = {}
    for site, entries in url_sites.items():
        by_hash.setdefault(name_hash(site), set()).update(entries)
    keys = array("Q", sorted(by_hash))
    offsets = array("I", [0])
    blob = bytearray()
    for h in keys:
        blob += "".join(f"{cid}\t{path}\n" for cid, path in sorted(by_hash[h])).encode()
        offsets.append(len(blob))
    return keys, offsets, bytes(blob)


def _url_paths_section(url_sites: dict[str, set[tuple[int, str]]]) -> tuple[array, array]:
    """Sorted `path_key(site, path)` of every URL entry with its category id, and the keys
    of the entries' candidate prefixes marked PREFIX_ONLY (`categories.urlmatch`)."""
    rows: set[tuple[int, int]] = set()
    for site, entries in url_sites.items():
        name = site.encode()
        for cid, path in entries:
            rows.add((path_key(name, path), cid))
            rows.update((key, PREFIX_ONLY) for key in prefix_rows(name, path))
    ordered = sorted(rows)
    return array("Q", [k for k, _ in ordered]), array("H", [c for _, c in ordered])


def _single_labels(lists: Sequence[CategoryLists], directory: array, fps: array, vals: array,
                   bits: int) -> dict[str, int]:
    """Record ids of one-label entries (`xxx`), which lookups check in a dict."""
    out: dict[str, int] = {}
    for lst in lists:
        for name in lst.single:
            ident = name_hash(name) >> (32 - bits)
            lo, hi = directory[ident >> 32], directory[(ident >> 32) + 1]
            j = bisect_left(fps, ident & 0xFFFFFFFF, lo, hi)
            if j < hi and fps[j] == ident & 0xFFFFFFFF:
                out[name] = vals[j]
    return out


def _bloom_section(lists: Sequence[CategoryLists], url_sites: dict[str, set[tuple[int, str]]],
                   names: int) -> bytes:
    """The folded Bloom map of every name in the table; empty (no filter) if a list has no map."""
    maps: list[bytearray] = []
    for lst in lists:
        hashes = sum(map(len, lst.domains.values())) + sum(map(len, lst.exact.values()))
        if hashes == 0:
            continue
        if lst.bloom is None or lst.bloomed != hashes:
            logger.warning("%s: names without their Bloom bits; the index has no Bloom filter",
                           lst.source)
            return b""
        maps.append(lst.bloom)
    extra = bloom.new_map()
    for site in url_sites:
        bloom.add(extra, site.encode())
    maps.append(extra)
    return bloom.merge_and_fold(maps, bloom.size_for(names))


def _mask_ids(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def compile_index(lists: Sequence[CategoryLists], out_path: Path,
                  now: Callable[[], datetime] = _utcnow) -> dict[str, Any]:
    """Compile `lists` into `out_path` atomically; return the index metadata."""
    out_path = Path(out_path)
    cids = _category_ids(lists)
    names = sorted(cids, key=cids.__getitem__)
    url_sites: dict[str, set[tuple[int, str]]] = {}
    expressions: list[list[Any]] = []
    problems: list[str] = []
    for lst in lists:
        for category, entries in lst.urls.items():
            for site, path in entries:
                url_sites.setdefault(site, set()).add((cids[category], path))
        for category, patterns in lst.expressions.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems.append(f"{lst.source}: {category}/expressions: skipped {pattern!r}: {exc}")
                    continue
                expressions.append([cids[category], pattern])
    keys = _sort_keys(lists, cids, url_sites)
    bits = max(8, min(20, (len(keys) // 8).bit_length()))
    directory, fps, vals, records = _tables(keys, bits)
    del keys
    sets: dict[int, int] = {}
    record_rows = []
    for suffix, exact, has_url in records:
        s = sets.setdefault(suffix, len(sets))
        e = sets.setdefault(exact, len(sets))
        record_rows.append([s, e, int(has_url)])
    url_keys, url_offs, url_blob = _url_section(url_sites)
    bloom_map = _bloom_section(lists, url_sites, len(fps))
    path_keys, path_cids = _url_paths_section(url_sites)
    meta = _meta(lists, names, now(), bits, len(fps), len(url_keys), problems)
    meta["sets"] = [_mask_ids(mask) for mask in sets]
    meta["records"] = record_rows
    meta["expressions"] = expressions
    meta["tlds"] = _single_labels(lists, directory, fps, vals, bits)
    blobs = [json.dumps(meta, sort_keys=True).encode(), directory.tobytes(), fps.tobytes(),
             vals.tobytes(), url_keys.tobytes(), url_offs.tobytes(), url_blob, bloom_map,
             path_keys.tobytes(), path_cids.tobytes()]
    _write_atomically(out_path, bits, len(fps), len(url_keys), blobs)
    logger.info("compiled %s: %d names, %d URL hosts, %d categories",
                out_path, len(fps), len(url_keys), len(names))
    return {k: v for k, v in meta.items() if k not in ("sets", "records", "expressions")}


def _meta(lists: Sequence[CategoryLists], names: list[str], built: datetime, bits: int,
          entries: int, url_hosts: int, problems: list[str]) -> dict[str, Any]:
    aliases: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    illegal: set[str] = set()
    category_counts: dict[str, int] = dict.fromkeys(names, 0)
    sources = []
    for lst in lists:
        aliases.update({a: t for a, t in lst.aliases.items() if t in category_counts})
        descriptions.update(lst.descriptions)
        if lst.illegal:
            illegal |= lst.categories() | set(lst.counts)
        for category, n in lst.counts.items():
            category_counts[category] += n
        sources.append({"name": lst.source, "illegal": lst.illegal, "total": lst.total,
                        "counts": dict(sorted(lst.counts.items())), "skipped": lst.skipped,
                        "problems": lst.problems[:20]})
        problems.extend(lst.problems[:20])
    return {"format": VERSION, "built_at": built.isoformat(timespec="seconds"),
            "categories": names, "aliases": dict(sorted(aliases.items())),
            "descriptions": descriptions, "illegal": sorted(illegal), "sources": sources,
            "category_counts": category_counts, "entries": entries, "url_hosts": url_hosts,
            "bucket_bits": bits, "problems": problems[:100]}


def _pad(handle: BinaryIO) -> int:
    pos = handle.tell()
    if pos % 8:
        handle.write(b"\0" * (8 - pos % 8))
    return handle.tell()


def _write_atomically(out_path: Path, bits: int, entries: int, url_hosts: int,
                      blobs: list[bytes]) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(b"\0" * HEADER_SIZE)
            offsets: list[int] = []
            for blob in blobs:
                offsets += [_pad(handle), len(blob)]
                handle.write(blob)
            handle.seek(0)
            handle.write(HEADER.pack(MAGIC, VERSION, bits, entries, url_hosts, *offsets))
            handle.flush()
            os.fsync(handle.fileno())
        assert len(SECTIONS) == len(blobs)
        CategoryIndex.open(tmp).close()  # never install a file we cannot read back
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(out_path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
