"""The real migrations on a real version-1 database: rows kept, every later step applied, newer refused.

`test_migrations.py` checks the mechanism with a made-up step; this builds a
database with the shipped `0001_initial.sql` alone (what the first release
wrote), fills it the way that release did, and opens it with the current code,
so that `0002_alerts.sql` and every migration after it runs on live data.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from alerts.hits import Hit
from alerts.outbox import insert_hits, unreported
from proxy import register
from proxy.audit import audit_sync, list_audit
from proxy.cli import main
from proxy.db import open_db, open_db_sync
from proxy.migrations import MIGRATIONS_DIR, SCHEMA_VERSION, Migration, SchemaError, load_migrations
from tests.support.school import write_school

AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SEPT = "2026-09-01T08:00:00+00:00"   # created_at / updated_at of the register rows


def _version_1() -> Migration:
    """The first release's schema, read from the shipped file (not from MIGRATIONS)."""
    [first] = sorted(MIGRATIONS_DIR.glob("0001_*.sql"))
    return Migration(1, first.stem.split("_", 1)[1], first.read_text())


def _make_v1(path: Path) -> None:
    conn = open_db_sync(path, migrations=(_version_1(),))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'alert_hits'").fetchone()[0] == 0
    conn.execute("INSERT INTO users (username, full_name, role, group_name, year_group, consent, created_at, "
                 "updated_at) VALUES ('y4.amy', 'Amy Pupil', 'pupil', 'ks2', 'Y4', 1, ?, ?), "
                 "('t.smith', 'Mr Smith', 'staff', 'staff', '', 1, ?, ?)", (SEPT,) * 4)
    conn.execute("INSERT INTO devices (name, mac, network, device_class, assigned_user, created_at, updated_at) "
                 "VALUES ('ks2-laptop-07', '00:11:22:33:44:55', '10.20.2.7', 'school_single_user', 'y4.amy', "
                 "?, ?)", (SEPT,) * 2)
    for table, column, value in (("principals", "name", "y4.amy"), ("groups", "name", "ks2"),
                                 ("devices_seen", "key", "ks2-laptop-07"), ("addresses", "ip", "10.20.2.7"),
                                 ("methods", "name", "GET"), ("schemes", "name", "https"),
                                 ("hosts", "name", "www.bet365.com"), ("paths", "text", "/"),
                                 ("categorysets", "text", "gambling"), ("rules", "text", "group.ks2.category")):
        conn.execute(f"INSERT INTO {table} (id, {column}) VALUES (1, ?)", (value,))
    conn.executemany("INSERT INTO visits (ts, user_id, group_id, device_id, ip_id, method_id, scheme_id, host_id, "
                     "path_id, catset_id, action, rule_id, term_id, bytes, flags, status) "
                     "VALUES (?, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 2048, 5, 403)",
                     [(int(AT.timestamp()) + i,) for i in range(3)])
    conn.execute("INSERT INTO incidents (ref, opened_at, kind, severity, user_name, device_name, group_name) "
                 "VALUES ('INC-20261123-0001', '2026-11-23T10:00:00+00:00', 'category', 'immediate', 'y4.amy', "
                 "'ks2-laptop-07', 'ks2')")
    conn.execute("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status, sent_at, incident_id) "
                 "VALUES ('2026-11-23T10:00:05+00:00', 'immediate', 'Flagged: gambling', 'body', 'sent', "
                 "'2026-11-23T10:00:06+00:00', 1)")
    audit_sync(conn, actor="office", action="user.consent", subject="y4.amy", reason="form returned", now=AT)
    conn.close()


async def test_version_1_database_gets_every_real_migration_and_keeps_its_rows(tmp_path: Path) -> None:
    assert len(load_migrations()) == SCHEMA_VERSION >= 2   # there is at least one real later step to apply
    path = tmp_path / "v1.sqlite3"
    _make_v1(path)
    conn = await open_db(path)   # the current code: 0002_alerts.sql and every later file run here
    try:
        async with conn.execute("PRAGMA user_version") as cur:
            assert (await cur.fetchone())[0] == SCHEMA_VERSION
        # the rows of the first release are all there, through the views and the register's own code
        async with conn.execute("SELECT user_name, device, host, categories, action, rule, page_view, intercepted, "
                                "status FROM visit_view ORDER BY id") as cur:
            assert await cur.fetchall() == [("y4.amy", "ks2-laptop-07", "www.bet365.com", "gambling", "block",
                                             "group.ks2.category", 1, 1, 403)] * 3
        users = {u.username: u for u in await register.list_users(conn)}
        assert set(users) == {"y4.amy", "t.smith"} and users["y4.amy"].consent
        [device] = await register.list_devices(conn)
        assert (device.name, device.assigned_user) == ("ks2-laptop-07", "y4.amy")
        [entry] = await list_audit(conn)
        assert (entry.actor, entry.action, entry.subject, entry.reason) == (
            "office", "user.consent", "y4.amy", "form returned")
        # columns 0002 added to old rows hold their defaults
        async with conn.execute("SELECT ref, who_key, hits, last_at FROM incidents") as cur:
            assert await cur.fetchall() == [("INC-20261123-0001", "", 0, None)]
        async with conn.execute("SELECT status, message_id, attempted_at, hits FROM alert_outbox") as cur:
            assert await cur.fetchall() == [("sent", None, None, 0)]
        # the new tables work, joined to the old rows
        hit = Hit(at=AT, kind="category", severity="immediate", category="gambling", categories=("gambling",),
                  user="y4.amy", role="pupil", device="ks2-laptop-07", client_ip="10.20.2.7", group="ks2",
                  url="https://www.bet365.com/", action="block", rule="group.ks2.category")
        await insert_hits(conn, [hit], [1])
        [stored] = await unreported(conn, "immediate")
        assert (stored.incident_id, stored.hit.user, stored.hit.url) == (1, "y4.amy", "https://www.bet365.com/")
        # the register keeps working on the migrated store, and the audit trail stays append-only
        await register.ban(conn, "y4.amy", None, by="dsl", reason="misuse incident")
        assert (await register.get_user(conn, "y4.amy")).status == "banned"   # type: ignore[union-attr]
        assert [e.action for e in await list_audit(conn)][0] == "user.consent"
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await conn.execute("DELETE FROM audit_log")
    finally:
        await conn.close()


def test_database_newer_than_the_code_is_refused_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = write_school(tmp_path)
    ctx.ensure_data_dir()
    open_db_sync(ctx.db_path).close()
    raw = sqlite3.connect(ctx.db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    newer = f"schema version {SCHEMA_VERSION + 1} but this Schoolgate knows only up to version {SCHEMA_VERSION}"
    with pytest.raises(SchemaError, match=newer):
        open_db_sync(ctx.db_path)
    # the command line says so in one line (exit 1), not with a traceback, and leaves the file alone
    code = main(["users", "list", "--config", str(ctx.config_path), "--data", str(ctx.data_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert newer in err and "Upgrade Schoolgate" in err and "Traceback" not in err
    raw = sqlite3.connect(ctx.db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    raw.close()
