"""Versioned schema migrations of the store.

Each migration is a numbered SQL file beside this module (`0001_initial.sql`,
`0002_something.sql`, ...).  The database remembers the last version applied in
`PRAGMA user_version`.  Opening a database applies, in order and each in its own
transaction, every migration newer than that version; an older database is thus
upgraded in place with its data kept.  A database written by NEWER code than this
one is refused with `SchemaError` rather than guessed at.

The same `Migration` values are applied through a plain `sqlite3.Connection`
(`apply_migrations`) or an `aiosqlite.Connection` (`apply_migrations_async`),
so the service, the CLI and the tests share one path.  Both expect a connection
in autocommit mode (`isolation_level=None`), which is how `proxy.db` opens them.
"""
from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaError(Exception):
    """The database's schema cannot be used by this code (e.g. it is newer)."""


@dataclass(frozen=True)
class Migration:
    """One step of the schema: `sql` takes the database from `version - 1` to `version`."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        return split_sql(self.sql)


def split_sql(sql: str) -> list[str]:
    """Split a script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    buf = ""
    pieces = sql.split(";")
    for number, piece in enumerate(pieces, start=1):
        buf += piece if number == len(pieces) else piece + ";"
        if sqlite3.complete_statement(buf):
            text = _strip_comments(buf).strip()
            if text and text != ";":
                statements.append(buf.strip())
            buf = ""
    if _strip_comments(buf).strip(" \n\t;"):
        raise SchemaError(f"incomplete SQL statement at the end of a migration: {buf[:80]!r}")
    return statements


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def load_migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Read `NNNN_name.sql` files, checking that versions run 1, 2, 3... without gaps."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise SchemaError(f"migration file name not of the form NNNN_name.sql: {path}")
        found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    check_sequence(found)
    return tuple(found)


def check_sequence(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise SchemaError(
                f"migrations must be numbered 1, 2, 3... without gaps: found version "
                f"{migration.version} ({migration.name}) where {expected} was expected"
            )


MIGRATIONS: tuple[Migration, ...] = load_migrations()
SCHEMA_VERSION: int = MIGRATIONS[-1].version


def _refuse_newer(found: int, known: int) -> None:
    if found > known:
        raise SchemaError(
            f"the database is at schema version {found} but this Schoolgate knows only up to "
            f"version {known}: it was written by a newer release. Upgrade Schoolgate (or "
            f"restore a backup); the database was left untouched."
        )


def pending(version: int, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations still to apply to a database at `version`."""
    check_sequence(migrations)
    _refuse_newer(version, len(migrations))
    return [m for m in migrations if m.version > version]


def apply_migrations(
    conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database up to the last of `migrations`; returns the version reached."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for migration in pending(version, migrations):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            now = int(conn.execute("PRAGMA user_version").fetchone()[0])
            _refuse_newer(now, len(migrations))
            if now < migration.version:
                for statement in migration.statements():
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.info("schema migrated to version %d (%s)", migration.version, migration.name)
        version = migration.version
    return max(version, int(conn.execute("PRAGMA user_version").fetchone()[0]))


async def apply_migrations_async(
    conn: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """`apply_migrations` through aiosqlite (same steps, same transactions)."""
    version = await _user_version(conn)
    for migration in pending(version, migrations):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            now = await _user_version(conn)
            _refuse_newer(now, len(migrations))
            if now < migration.version:
                for statement in migration.statements():
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        logger.info("schema migrated to version %d (%s)", migration.version, migration.name)
        version = migration.version
    return max(version, await _user_version(conn))


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0
