"""proxy.migrations: versioned schema, upgrade in place, newer refused."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proxy.db import open_db, open_db_sync
from proxy.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SchemaError,
    apply_migrations,
    load_migrations,
    split_sql,
)

STEP2 = Migration(
    2, "test_visit_notes",
    """
    -- a later issue adds a column and a table; data must survive
    ALTER TABLE hosts ADD COLUMN note TEXT NOT NULL DEFAULT '';
    CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);
    CREATE TRIGGER notes_no_delete BEFORE DELETE ON notes
    BEGIN
        SELECT RAISE(ABORT, 'notes are kept; really');
    END;
    INSERT INTO notes (text) SELECT name FROM hosts ORDER BY id;
    """,
)
V1 = MIGRATIONS[:1]


def _make_v1_with_rows(path: Path) -> None:
    conn = open_db_sync(path, migrations=V1)
    conn.execute("INSERT INTO hosts (name) VALUES ('kept.example'), ('also.example')")
    conn.execute("INSERT INTO users (username, role, group_name, created_at, updated_at) "
                 "VALUES ('y3.pupil', 'pupil', 'ks2', 'x', 'x')")
    conn.close()


def test_schema_version_is_the_last_migration() -> None:
    assert SCHEMA_VERSION == MIGRATIONS[-1].version == len(MIGRATIONS)
    assert MIGRATIONS[0].name == "initial"


def test_upgrade_in_place_keeps_rows_sync(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    _make_v1_with_rows(path)
    conn = open_db_sync(path, migrations=(*V1, STEP2))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT name, note FROM hosts ORDER BY id").fetchall() == [
        ("kept.example", ""), ("also.example", "")]
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 2
    assert conn.execute("SELECT username FROM users").fetchall() == [("y3.pupil",)]
    with pytest.raises(sqlite3.IntegrityError, match="really"):
        conn.execute("DELETE FROM notes")
    # applied once: opening again changes nothing
    assert apply_migrations(conn, (*V1, STEP2)) == 2
    assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 2
    conn.close()


async def test_upgrade_in_place_keeps_rows_async(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite3"
    _make_v1_with_rows(path)
    conn = await open_db(path, migrations=(*V1, STEP2))
    try:
        async with conn.execute("PRAGMA user_version") as cur:
            assert tuple(await cur.fetchall()) == ((2,),)
        async with conn.execute("SELECT text FROM notes ORDER BY id") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["kept.example", "also.example"]
    finally:
        await conn.close()


def test_failed_migration_rolls_back_whole_step(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite3"
    _make_v1_with_rows(path)
    broken = Migration(2, "broken", "CREATE TABLE half (x);\nINSERT INTO nowhere VALUES (1);")
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        open_db_sync(path, migrations=(*V1, broken))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='half'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM hosts").fetchone()[0] == 2
    conn.close()


async def test_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "n.sqlite3"
    _make_v1_with_rows(path)
    conn = open_db_sync(path, migrations=(*V1, STEP2))
    conn.close()
    with pytest.raises(SchemaError, match="version 2.*only up to version 1"):
        open_db_sync(path, migrations=V1)
    with pytest.raises(SchemaError, match="newer"):
        await open_db(path, migrations=V1)
    with pytest.raises(SchemaError, match="newer"):
        await open_db(path, readonly=True, migrations=V1)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 2
    raw.close()


def test_migrations_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="without gaps"):
        open_db_sync(tmp_path / "g.sqlite3", migrations=(*V1, Migration(3, "gap", "SELECT 1;")))
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x);")
    (tmp_path / "0003_third.sql").write_text("CREATE TABLE b (x);")
    with pytest.raises(SchemaError, match="without gaps"):
        load_migrations(tmp_path)
    (tmp_path / "0003_third.sql").unlink()
    (tmp_path / "2-bad.sql").write_text("")
    with pytest.raises(SchemaError, match="NNNN_name"):
        load_migrations(tmp_path)


def test_split_sql_keeps_trigger_bodies_and_skips_comments() -> None:
    parts = split_sql(STEP2.sql)
    assert len(parts) == 4
    assert parts[2].startswith("CREATE TRIGGER") and parts[2].endswith("END;")
    assert split_sql("-- only a comment; with a semicolon\n") == []
    assert split_sql("SELECT 'a;b';") == ["SELECT 'a;b';"]
    with pytest.raises(SchemaError, match="incomplete"):
        split_sql("SELECT 1; CREATE TABLE x (")
