"""proxy.register: consent, ban, revoke, lift (audited) and the hot-path snapshot."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aiosqlite
import pytest

from proxy import register as reg
from proxy.audit import list_audit
from proxy.db import open_db, open_db_sync
from proxy.register import Device, RegisterError, RegisterSnapshot, User
from proxy.registercsv import import_devices_csv, import_users_csv

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GROUPS = {"ks1", "ks2", "staff", "guest"}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    db = await open_db(tmp_path / "reg.sqlite3")
    await import_users_csv(db, DATA / "users_good.csv", by="tech", known_groups=GROUPS, now=NOW)
    await import_devices_csv(db, DATA / "devices_good.csv", by="tech", now=NOW)
    try:
        yield db
    finally:
        await db.close()


async def test_list_and_get(conn: aiosqlite.Connection) -> None:
    users = await reg.list_users(conn)
    assert [u.username for u in users] == sorted(u.username for u in users)
    y3 = await reg.get_user(conn, "y3.pupil")
    assert y3 == User("y3.pupil", "Oliver Example", "pupil", "ks2", "Year 3", True, NOW, "active",
                      None, "", NOW, NOW)
    assert await reg.get_user(conn, "nobody") is None
    devices = await reg.list_devices(conn)
    assert [d.name for d in devices][:2] == ["ks1-ipad-01", "ks1-ipads"]


async def test_consent_is_recorded_and_audited(conn: aiosqlite.Connection) -> None:
    later = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
    user = await reg.set_consent(conn, "y5.noconsent", True, by="office", reason="form returned",
                                 now=later)
    assert user.consent and user.consent_at == later
    stored = await reg.get_user(conn, "y5.noconsent")
    assert stored is not None and stored.consent and stored.updated_at == later
    assert reg.effective_state(stored, later.date()) == "active"
    entry = (await list_audit(conn, subject="user:y5.noconsent"))[-1]
    assert (entry.actor, entry.action, entry.reason, entry.at) == (
        "office", "user.consent", "form returned", later)
    assert entry.details == {"before": {"consent": 0, "consent_at": None},
                             "after": {"consent": 1, "consent_at": "2026-01-06T10:00:00+00:00"}}
    withdrawn = await reg.set_consent(conn, "y5.noconsent", False, by="office", reason="parent")
    assert reg.effective_state(withdrawn, later.date()) == "no_consent"
    assert (await list_audit(conn))[-1].action == "user.consent_withdrawn"


async def test_ban_with_end_date_expires(conn: aiosqlite.Connection) -> None:
    user = await reg.ban(conn, "y6.banned", date(2026, 1, 9), by="head", reason="misuse", now=NOW)
    assert (user.status, user.status_until, user.status_reason) == ("banned", date(2026, 1, 9), "misuse")
    snap = await reg.load_snapshot(conn)
    assert snap.user_state("y6.banned", date(2026, 1, 5)) == "banned"
    assert snap.user_state("y6.banned", date(2026, 1, 9)) == "banned"   # the last day counts
    assert snap.user_state("y6.banned", date(2026, 1, 10)) == "active"  # over by itself
    entry = (await list_audit(conn))[-1]
    assert (entry.actor, entry.action, entry.subject, entry.reason) == (
        "head", "user.ban", "user:y6.banned", "misuse")
    assert entry.details["after"]["status_until"] == "2026-01-09"


async def test_open_ended_ban_revoke_and_lift(conn: aiosqlite.Connection) -> None:
    await reg.ban(conn, "y6.banned", None, by="head", reason="misuse incident", now=NOW)
    snap = await reg.load_snapshot(conn)
    assert snap.user_state("y6.banned", date(2030, 1, 1)) == "banned"
    await reg.revoke(conn, "teacher", by="head", reason="left the school", now=NOW)
    await reg.lift(conn, "y6.banned", by="head", reason="sanction served", now=NOW)
    snap = await reg.load_snapshot(conn)
    assert snap.user_state("y6.banned", date(2026, 1, 5)) == "active"
    assert snap.user_state("teacher", date(2026, 1, 5)) == "revoked"
    assert snap.user_state("y5.noconsent", date(2026, 1, 5)) == "no_consent"
    assert snap.user_state("esafety.lead", date(2026, 1, 5)) == "active"
    assert snap.user_state("stranger", date(2026, 1, 5)) == "unknown"
    actions = [(e.action, e.subject) for e in await list_audit(conn, since=NOW)
               if e.action.startswith("user.") and not e.action.startswith("user.import")]
    assert actions == [("user.ban", "user:y6.banned"), ("user.revoke", "user:teacher"),
                       ("user.lift", "user:y6.banned")]


async def test_register_errors_change_nothing(conn: aiosqlite.Connection) -> None:
    before = len(await list_audit(conn))
    with pytest.raises(RegisterError, match="no user 'ghost'"):
        await reg.ban(conn, "ghost", None, by="head", reason="x")
    with pytest.raises(RegisterError, match="reason"):
        await reg.revoke(conn, "teacher", by="head", reason=" ")
    with pytest.raises(RegisterError, match="who"):
        await reg.set_consent(conn, "teacher", True, by="", reason="x")
    with pytest.raises(RegisterError, match="already past"):
        await reg.ban(conn, "teacher", date(2026, 1, 4), by="head", reason="x", now=NOW)
    with pytest.raises(RegisterError, match="nothing to lift"):
        await reg.lift(conn, "teacher", by="head", reason="x")
    assert len(await list_audit(conn)) == before
    teacher = await reg.get_user(conn, "teacher")
    assert teacher is not None and teacher.status == "active"


async def test_snapshot_device_lookups(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    snap = await reg.load_snapshot(conn)
    exact = snap.device_for_ip("10.20.1.21")
    assert exact is not None and exact.name == "ks1-ipad-01"           # exact IP beats the /24
    shared = snap.device_for_ip("10.20.1.99")
    assert shared is not None and shared.name == "ks1-ipads"           # the containing network
    assert snap.device_for_ip("::ffff:10.20.1.21") == exact            # dual-stack form
    assert snap.device_for_ip("10.20.1.99") is shared                  # cached answer
    assert snap.device_for_ip("10.99.0.1") is None
    assert snap.device_for_ip("not-an-ip") is None
    laptop = snap.device_for_mac("02-00-00-00-03-11")
    assert laptop is not None and laptop.name == "teacher-laptop" and laptop.assigned_user == "teacher"
    assert snap.device_for_mac("0200.0000.0401") == snap.device_for_ip("10.20.4.21")
    assert snap.device_for_mac("02:00:00:00:00:00") is None and snap.device_for_mac("junk") is None
    sync = open_db_sync(tmp_path / "reg.sqlite3")
    assert reg.load_snapshot_sync(sync) == snap
    sync.close()


def test_narrowest_network_wins_and_exact_host_routes() -> None:
    devices = {
        "wide": Device("wide", None, "10.0.0.0/8", "school_shared"),
        "mid": Device("mid", None, "10.20.0.0/16", "school_shared"),
        "narrow": Device("narrow", None, "10.20.3.0/24", "school_single_user"),
        "host32": Device("host32", None, "10.20.3.7/32", "staff_owned"),
        "v6": Device("v6", None, "2001:db8::/64", "visitor_owned"),
        "maconly": Device("maconly", "aa:bb:cc:dd:ee:ff", "", "loaned"),
    }
    snap = RegisterSnapshot({}, devices)

    def name(ip: str) -> str | None:
        device = snap.device_for_ip(ip)
        return device.name if device else None

    assert [name(ip) for ip in ("10.20.3.7", "10.20.3.8", "10.20.4.1", "10.9.9.9", "11.0.0.1",
                                "2001:db8::1", "2001:db9::1")] == [
        "host32", "narrow", "mid", "wide", None, "v6", None]
    assert snap.device_for_mac("AA:BB:CC:DD:EE:FF") == devices["maconly"]


def test_mac_normalisation() -> None:
    assert reg.normalise_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert reg.normalise_mac("aabb.ccdd.eeff") == "aa:bb:cc:dd:ee:ff"
    assert reg.normalise_mac("aa:bb:cc:dd:ee") is None
    assert reg.normalise_mac("gg:bb:cc:dd:ee:ff") is None
