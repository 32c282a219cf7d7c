"""The store's string dictionaries (hosts, paths, principals...): text -> integer id, a batch at a time.

Visits and DNS queries store each string once, in a dictionary table
(`hosts(id, name UNIQUE)`, ...), and refer to it by id.  `DictionaryIds.ids`
resolves the distinct strings of one batch together:

- the strings the cache knows cost one dictionary lookup each, in memory;
- the others cost two statements for the whole batch: one `executemany`
  `INSERT OR IGNORE` (new strings get an id, strings written by an earlier run
  or another process are left alone) and one `SELECT id, text ... IN (...)`
  (in chunks of at most 256, padded to a few fixed sizes so that SQLite
  prepares each statement once and keeps it).

Call it inside the caller's write transaction.  Ids learnt in it join the
cache only when the caller reports the commit (`committed()`); after a
rollback (`rolled_back()`) they are forgotten, so a rolled-back batch leaves
no id that points at nothing.

The cache keeps the most recently used ids in two generations per
dictionary (a cheap approximation of an LRU): lookups hit the young one
first; an id found in the old one moves to the young one; when the young one
holds `max_cache / 2` ids it becomes the old one and a new young one starts.
At the default 50,000 a dictionary's cache holds at most ~10 MB (paths are
the long strings); a school's hosts, users and devices repeat well within it,
and a path that has fallen out costs one indexed SELECT in its batch.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection

logger = logging.getLogger(__name__)

# dictionary name -> (table, text column)
DICTIONARIES: dict[str, tuple[str, str]] = {
    "host": ("hosts", "name"),
    "path": ("paths", "text"),
    "user": ("principals", "name"),
    "device": ("devices_seen", "key"),
    "rule": ("rules", "text"),
    "catset": ("categorysets", "text"),
    "term": ("terms", "text"),
    "group": ("groups", "name"),
    "ip": ("addresses", "ip"),
    "method": ("methods", "name"),
    "scheme": ("schemes", "name"),
    "upstream": ("upstreams", "name"),
}

CHUNK = 256
_SIZES = (1, 4, 16, 64, CHUNK)   # IN-list lengths: a short list is padded up to the next one


class DictionaryIds:
    """Ids of dictionary strings for one connection, owned by one thread (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection, *, max_cache: int = 50_000) -> None:
        self.conn = conn
        self.max_cache = max_cache
        self._generation = max(1, max_cache // 2)
        self.cache: dict[str, dict[str, int]] = {name: {} for name in DICTIONARIES}    # young
        self._old: dict[str, dict[str, int]] = {name: {} for name in DICTIONARIES}
        self._new: dict[str, dict[str, int]] = {}
        self._insert = {name: f"INSERT OR IGNORE INTO {table} ({column}) VALUES (?)"
                        for name, (table, column) in DICTIONARIES.items()}
        self._select = {
            name: {size: f"SELECT {column}, id FROM {table} WHERE {column} IN ({', '.join('?' * size)})"
                   for size in _SIZES}
            for name, (table, column) in DICTIONARIES.items()
        }
        self.lookups = 0          # strings resolved through SQLite (tests and benchmarks read these)

    def ids(self, name: str, texts: Collection[str]) -> dict[str, int]:
        """`{text: id}` for the distinct `texts` of dictionary `name`, adding the new ones."""
        cache = self.cache[name]
        old = self._old[name]
        found: dict[str, int] = {}
        missing: list[str] = []
        for text in texts:
            known = cache.get(text)
            if known is None:
                known = old.get(text)
                if known is None:
                    missing.append(text)
                    continue
                cache[text] = known                  # used again: young again
            found[text] = known
        if missing:
            fetched = self._fetch(name, missing)
            found.update(fetched)
            self._new.setdefault(name, {}).update(fetched)
        return found

    def _fetch(self, name: str, texts: list[str]) -> dict[str, int]:
        conn = self.conn
        conn.executemany(self._insert[name], [(text,) for text in texts])
        selects = self._select[name]
        fetched: dict[str, int] = {}
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start:start + CHUNK]
            size = next(s for s in _SIZES if s >= len(chunk))
            args = chunk + [chunk[0]] * (size - len(chunk))
            fetched.update(conn.execute(selects[size], args).fetchall())
        self.lookups += len(texts)
        if len(fetched) != len(texts):               # never expected: the insert would have raised
            lost = [text for text in texts if text not in fetched]
            raise sqlite3.IntegrityError(f"{DICTIONARIES[name][0]}: no id for {len(lost)} string(s), "
                                         f"e.g. {lost[0]!r}")
        return fetched

    def committed(self) -> None:
        """The transaction that made the new ids committed: keep them."""
        new, self._new = self._new, {}
        for name, entries in new.items():
            cache = self.cache[name]
            cache.update(entries)
            if len(cache) >= self._generation:
                self._old[name] = cache
                self.cache[name] = {}

    def rolled_back(self) -> None:
        """The transaction was rolled back: forget the ids it made."""
        self._new = {}

    def clear(self) -> None:
        """Forget every cached id (e.g. after the dictionaries were purged)."""
        self._new = {}
        for name in DICTIONARIES:
            self.cache[name] = {}
            self._old[name] = {}
