"""proxy.registercsv: importing the MIS export (bad rows, idempotence, bans kept)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aiosqlite
import pytest

from proxy import register as reg
from proxy.audit import list_audit
from proxy.db import open_db
from proxy.registercsv import derive_group, import_devices_csv, import_users_csv

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
GROUPS = {"ks1", "ks2", "staff", "guest"}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    db = await open_db(tmp_path / "csv.sqlite3")
    try:
        yield db
    finally:
        await db.close()


async def test_good_file_imports_every_row(conn: aiosqlite.Connection) -> None:
    report = await import_users_csv(conn, DATA / "users_good.csv", by="tech",
                                    known_groups=GROUPS, now=NOW)
    assert (report.added, report.updated, report.unchanged, report.rejected) == (6, 0, 0, [])
    users = {u.username: u for u in await reg.list_users(conn)}
    assert users["y3.pupil"].consent and users["y3.pupil"].role == "pupil"
    assert not users["y5.noconsent"].consent and users["y5.noconsent"].consent_at is None
    assert users["esafety.lead"].consent and not users["teacher"].consent
    assert users["teacher"].year_group == "" and users["teacher"].group_name == "staff"
    adds = [e for e in await list_audit(conn) if e.action == "user.import_add"]
    assert len(adds) == 6 and all(e.actor == "tech" and e.reason == "import of users_good.csv"
                                  for e in adds)


async def test_bad_rows_are_reported_with_line_and_reason(conn: aiosqlite.Connection) -> None:
    report = await import_users_csv(conn, DATA / "users_bad.csv", by="tech",
                                    known_groups=GROUPS, now=NOW)
    assert report.added == 3  # ok.one, derived.ks1, ok.two
    lines = dict(report.rejected)
    assert sorted(lines) == [3, 4, 5, 6, 7, 9]
    assert "bad role 'janitor'" in lines[3]
    assert "bad consent value 'maybe'" in lines[4]
    assert "unknown group 'ks9'" in lines[5]
    assert "missing username" in lines[6]
    assert "duplicate username 'ok.one' (first on line 2)" in lines[7]
    assert "no group given for 'derived.none'" in lines[9]
    derived = await reg.get_user(conn, "derived.ks1")
    assert derived is not None and derived.group_name == "ks1"
    one = await reg.get_user(conn, "ok.one")
    assert one is not None and one.full_name == "Good Row"  # the duplicate did not overwrite


async def test_missing_required_column_imports_nothing(conn: aiosqlite.Connection) -> None:
    report = await import_users_csv(conn, DATA / "users_no_username.csv", by="tech")
    assert report.added == 0 and len(report.rejected) == 1
    line, reason = report.rejected[0]
    assert line == 1 and "missing required column 'username'" in reason
    assert await reg.list_users(conn) == []


async def test_semicolons_other_spellings_and_derived_groups(conn: aiosqlite.Connection) -> None:
    report = await import_users_csv(conn, DATA / "users_semicolon.csv", by="tech",
                                    known_groups=GROUPS, now=NOW)
    assert (report.added, report.rejected) == (2, [])
    pupil = await reg.get_user(conn, "semi.pupil")
    staff = await reg.get_user(conn, "semi.staff")
    assert pupil is not None and (pupil.group_name, pupil.year_group) == ("ks1", "Year 2")
    assert staff is not None and (staff.role, staff.group_name) == ("staff", "staff")
    assert derive_group("pupil", "Y4", None) == "ks2"
    assert derive_group("visitor", "", {"ks1"}) is None


async def test_reimport_is_idempotent_and_keeps_bans(conn: aiosqlite.Connection) -> None:
    await import_users_csv(conn, DATA / "users_good.csv", by="tech", known_groups=GROUPS, now=NOW)
    await import_devices_csv(conn, DATA / "devices_good.csv", by="tech", now=NOW)
    await reg.ban(conn, "y6.banned", None, by="head", reason="misuse", now=NOW)
    audit_rows = len(await list_audit(conn))
    again = await import_users_csv(conn, DATA / "users_good.csv", by="tech",
                                   known_groups=GROUPS, now=LATER)
    devices = await import_devices_csv(conn, DATA / "devices_good.csv", by="tech", now=LATER)
    assert (again.added, again.updated, again.unchanged, again.rejected) == (0, 0, 6, [])
    assert (devices.added, devices.updated, devices.unchanged) == (0, 0, 5)
    assert len(await list_audit(conn)) == audit_rows  # nothing changed, nothing audited
    banned = await reg.get_user(conn, "y6.banned")
    assert banned is not None and banned.status == "banned" and banned.updated_at == NOW
    y3 = await reg.get_user(conn, "y3.pupil")
    assert y3 is not None and y3.consent_at == NOW  # not re-stamped


async def test_changed_rows_are_updated_and_audited(conn: aiosqlite.Connection,
                                                    tmp_path: Path) -> None:
    await import_users_csv(conn, DATA / "users_good.csv", by="tech", known_groups=GROUPS, now=NOW)
    await reg.ban(conn, "y6.banned", date(2026, 3, 1), by="head", reason="misuse", now=NOW)
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "username,full_name,role,group,year_group,parental_consent\n"
        "y5.noconsent,Isla Example,pupil,ks2,Year 5,yes\n"       # consent arrived
        "y6.banned,Noah Renamed,pupil,ks2,Year 6,true\n"         # name changed, ban kept
        "newcomer,New Pupil,pupil,ks2,Year 3,no\n")
    report = await import_users_csv(conn, changed, by="office", known_groups=GROUPS, now=LATER)
    assert (report.added, report.updated, report.unchanged) == (1, 2, 0)
    assert report.not_in_file == ["esafety.lead", "teacher", "y1.pupil", "y3.pupil"]
    y5 = await reg.get_user(conn, "y5.noconsent")
    assert y5 is not None and y5.consent and y5.consent_at == LATER
    y6 = await reg.get_user(conn, "y6.banned")
    assert y6 is not None and y6.full_name == "Noah Renamed"
    assert (y6.status, y6.status_until) == ("banned", date(2026, 3, 1))
    updates = {e.subject: e for e in await list_audit(conn) if e.action == "user.import_update"}
    assert set(updates) == {"user:y5.noconsent", "user:y6.banned"}
    assert updates["user:y6.banned"].details == {"before": {"full_name": "Noah Example"},
                                                 "after": {"full_name": "Noah Renamed"}}
    assert updates["user:y5.noconsent"].actor == "office"


async def test_devices_bad_rows(conn: aiosqlite.Connection) -> None:
    await import_users_csv(conn, DATA / "users_good.csv", by="tech", known_groups=GROUPS, now=NOW)
    report = await import_devices_csv(conn, DATA / "devices_bad.csv", by="tech", now=NOW)
    assert report.added == 1
    lines = dict(report.rejected)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert "bad MAC '02:00:00:00:09'" in lines[3]
    assert "bad IP/CIDR '10.20.9.300'" in lines[4]
    assert "bad IP/CIDR '10.20.9.5/24'" in lines[5] and "host bits" in lines[5]
    assert "unknown device class 'toaster'" in lines[6]
    assert "assigned user 'nobody.here' is not in the register" in lines[7]
    assert "duplicate name 'good-one' (first on line 2)" in lines[8]
    assert "neither a MAC nor an IP/CIDR" in lines[9]
    assert "missing device name" in lines[10]


async def test_devices_are_normalised(conn: aiosqlite.Connection) -> None:
    await import_users_csv(conn, DATA / "users_good.csv", by="tech", known_groups=GROUPS, now=NOW)
    report = await import_devices_csv(conn, DATA / "devices_good.csv", by="tech", now=NOW)
    assert (report.added, report.rejected) == (5, [])
    devices = {d.name: d for d in await reg.list_devices(conn)}
    assert devices["ks1-ipad-01"].mac == "02:00:00:00:01:01"
    assert devices["teacher-laptop"].mac == "02:00:00:00:03:11"
    assert devices["staff-phones"].device_class == "staff_owned"
    assert devices["ks1-ipads"].mac is None and devices["ks1-ipads"].network == "10.20.1.0/24"
    assert devices["loan-laptop-y3"].assigned_user == "y3.pupil"


async def test_devices_file_needs_an_address_column(conn: aiosqlite.Connection,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "noaddr.csv"
    path.write_text("name,device_class\nlaptop,loaned\n")
    report = await import_devices_csv(conn, path, by="tech")
    assert report.added == 0 and report.rejected[0][0] == 1
    assert "MAC or an IP/CIDR" in report.rejected[0][1]


async def test_import_needs_an_actor(conn: aiosqlite.Connection) -> None:
    with pytest.raises(ValueError, match="who imports"):
        await import_users_csv(conn, DATA / "users_good.csv", by="")
