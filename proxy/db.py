"""Opening the store: one SQLite database file (WAL) under the data dir.

`open_db` (aiosqlite, for the service) and `open_db_sync` (sqlite3, for code that
is not async) open the same file the same way:

* WAL journal, `synchronous=NORMAL`, foreign keys on, a busy timeout;
* autocommit mode (`isolation_level=None`): every statement commits by itself
  unless it runs inside `transaction(conn)` / `transaction_sync(conn)`;
* migrations applied when opened read-write (see `proxy.migrations`);
* a new database file is created with mode 0600 (the service user only).

Readers (reports, the CLI) open their own connections; with WAL they never block
the visit writer, nor does it block them.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite

from proxy.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    SchemaError,
    apply_migrations,
    apply_migrations_async,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "SchemaError",
    "is_locked",
    "open_db",
    "retry_locked",
    "open_db_sync",
    "transaction",
    "transaction_sync",
    "utc_iso",
    "parse_iso",
    "parse_date",
    "default_db_path",
]

DB_FILENAME = "schoolgate.sqlite3"
DEFAULT_BUSY_TIMEOUT_MS = 5_000


def utc_iso(moment: datetime | None = None) -> str:
    """The one text form of a moment in the store: ISO 8601, UTC, whole seconds."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to utc_iso(); pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    """Inverse of `utc_iso` (None stays None)."""
    return None if text is None else datetime.fromisoformat(text)


def parse_date(text: str | None) -> date | None:
    return None if not text else date.fromisoformat(text)


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("database %s had mode %o; tightening to 0600", path, mode)
            os.chmod(path, 0o600)
        return
    os.close(fd)
    os.chmod(path, 0o600)  # in case the umask was unusual
    logger.info("created database %s (mode 0600)", path)


def _pragmas(busy_timeout_ms: int, readonly: bool) -> list[str]:
    statements = [
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
        "PRAGMA foreign_keys = ON",
        "PRAGMA synchronous = NORMAL",
    ]
    if not readonly:
        statements.insert(1, "PRAGMA journal_mode = WAL")
    return statements


def _check_readonly_version(version: int, path: Path, known: int) -> None:
    if version > known:
        raise SchemaError(
            f"{path} is at schema version {version}, newer than this Schoolgate "
            f"(version {known}); upgrade Schoolgate"
        )
    if version < known:
        raise SchemaError(
            f"{path} is at schema version {version}, older than this Schoolgate "
            f"(version {known}); open it read-write once (e.g. `schoolgate init`) to upgrade"
        )


def _ro_uri(path: Path) -> str:
    return f"file:{path.resolve()}?mode=ro"


def open_db_sync(
    path: Path,
    *,
    readonly: bool = False,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the database for blocking code."""
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(_ro_uri(path), uri=True, isolation_level=None,
                               check_same_thread=False)
    else:
        _create_private(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for statement in _pragmas(busy_timeout_ms, readonly):
            conn.execute(statement)
        if readonly:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            _check_readonly_version(version, path, len(migrations))
        else:
            apply_migrations(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


async def open_db(
    path: Path,
    *,
    readonly: bool = False,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> aiosqlite.Connection:
    """Open (creating and migrating if needed) the database for the service.

    Close it with `await conn.close()` (or use `async with await open_db(...)`).
    """
    path = Path(path)
    if readonly:
        conn = await aiosqlite.connect(_ro_uri(path), uri=True, isolation_level=None)
    else:
        _create_private(path)
        conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        for statement in _pragmas(busy_timeout_ms, readonly):
            await conn.execute(statement)
        if readonly:
            async with conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            _check_readonly_version(int(row[0]) if row else 0, path, len(migrations))
        else:
            await apply_migrations_async(conn, migrations)
    except BaseException:
        await conn.close()
        raise
    return conn


@contextlib.asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on error).

    Inside an already open transaction it joins it: the outer one commits.
    """
    if conn.in_transaction:
        yield conn
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:   # SQLite already rolled back after some errors (a full disk, for one)
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


def is_locked(exc: BaseException) -> bool:
    """SQLITE_BUSY: another connection held the write lock past the busy timeout."""
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


async def retry_locked(write: Callable[[], Awaitable[T]], *, attempts: int = 3, pause_s: float = 0.25) -> T:
    """Run `write` (one statement or transaction, nothing written when it fails) again when it meets a lock.

    For writes a person waits on (a review request): the busy timeout already waited, and SQLite's busy
    handler polls rather than queues, so a writer that is unlucky under load gets a second chance
    instead of an error page.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await write()
        except sqlite3.OperationalError as exc:
            if attempt == attempts or not is_locked(exc):
                raise
            logger.warning("database locked (attempt %d of %d); trying again", attempt, attempts)
            await asyncio.sleep(pause_s * attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def transaction_sync(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Sync twin of `transaction`."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:   # SQLite already rolled back after some errors (a full disk, for one)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def default_db_path(data_dir: Path) -> Path:
    """Where the database lives under the data dir."""
    return Path(data_dir) / DB_FILENAME
