"""proxy.dictionaries: a batch's strings resolved to dictionary ids together, on a real SQLite file."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.db import open_db_sync
from proxy.dictionaries import CHUNK, DictionaryIds


def write(ids: DictionaryIds, name: str, texts: set[str], *, commit: bool = True) -> dict[str, int]:
    ids.conn.execute("BEGIN IMMEDIATE")
    found = ids.ids(name, texts)
    if commit:
        ids.conn.execute("COMMIT")
        ids.committed()
    else:
        ids.conn.execute("ROLLBACK")
        ids.rolled_back()
    return found


def stored(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: id_ for id_, name in conn.execute("SELECT id, name FROM hosts")}


def test_new_and_known_strings_get_their_stored_ids(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "d.sqlite3")
    ids = DictionaryIds(conn)
    names = {f"host{i}.example" for i in range(CHUNK * 2 + 37)}       # several IN chunks, one short
    first = write(ids, "host", names)
    assert first == stored(conn) and len(first) == len(names) and 0 not in first.values()
    assert ids.lookups == len(names)
    again = write(ids, "host", names | {"one-more.example"})              # only the new one goes to SQLite
    assert ids.lookups == len(names) + 1
    assert again == stored(conn)
    # another writer (an earlier run) already stored some: their ids are used, nothing is duplicated
    other = DictionaryIds(open_db_sync(tmp_path / "d.sqlite3"))
    mixed = write(other, "host", {"host3.example", "fresh.example"})
    assert mixed["host3.example"] == first["host3.example"]
    assert conn.execute("SELECT count(*) FROM hosts").fetchone()[0] == len(names) + 2


def test_ids_of_a_rolled_back_batch_are_forgotten(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "d.sqlite3")
    ids = DictionaryIds(conn)
    write(ids, "host", {"gone.example"}, commit=False)
    assert "gone.example" not in ids.cache["host"] and stored(conn) == {}
    kept = write(ids, "host", {"gone.example"})
    assert kept == stored(conn)


def test_recently_used_ids_stay_cached_within_the_bound(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "d.sqlite3")
    ids = DictionaryIds(conn, max_cache=20)
    write(ids, "host", {"hot.example"})
    for batch in range(10):
        write(ids, "host", {"hot.example"} | {f"cold{batch}-{i}.example" for i in range(4)})
        assert len(ids.cache["host"]) + len(ids._old["host"]) <= 20 + 5
    before = ids.lookups
    write(ids, "host", {"hot.example"})            # used in every batch: never evicted
    assert ids.lookups == before
    write(ids, "host", {"cold0-0.example"})        # long unused: asked again, same id
    assert ids.lookups == before + 1
    ids.clear()
    assert write(ids, "host", {"hot.example"}) == {"hot.example": stored(conn)["hot.example"]}


def test_a_string_sqlite_cannot_store_fails_the_batch(tmp_path: Path) -> None:
    conn = open_db_sync(tmp_path / "d.sqlite3")
    ids = DictionaryIds(conn)
    with pytest.raises(UnicodeEncodeError):
        write(ids, "host", {"ok.example", "bad\udcff.example"})
