"""The incident register: opening and joining, recording actions (with the ban), and the hash chain."""
from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alerts.chain import verify_chain
from alerts.incidents import IncidentError, get_incident, list_incidents, record_action
from proxy.cli import main
from proxy.cmd_service import _import_register
from proxy.context import Context
from proxy.db import open_db
from tests.alerts.helpers import Clock, evaluation, service
from tests.support.school import write_school

ADULT = "http://pornhub.com/"


@pytest.fixture
async def school(tmp_path: Path) -> AsyncIterator[Context]:
    ctx = write_school(tmp_path)
    ctx.ensure_data_dir()
    assert await _import_register(ctx) == 0
    yield ctx


async def _cli(ctx: Context, *argv: str) -> int:
    """The real command line (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(main, [*argv, "--config", str(ctx.config_path), "--data", str(ctx.data_dir)])


async def _hits(ctx: Context, clock: Clock, *evs: object) -> None:
    svc = service(ctx.settings, ctx.db_path, clock)
    await svc.open()
    try:
        for ev in evs:
            svc.submit(ev, ADULT)  # type: ignore[arg-type]
        await svc.flush()
    finally:
        await svc.conn.close()
        svc._conn = None


async def test_hits_join_an_open_incident_within_the_window(school: Context, clock: Clock) -> None:
    await _hits(school, clock, evaluation(), evaluation(), evaluation("http://nordvpn.com/", cats=("vpn",)))
    clock.advance(minutes=9)
    await _hits(school, clock, evaluation())                      # joins (last hit 9 minutes ago)
    clock.advance(minutes=11)
    await _hits(school, clock, evaluation())                      # a new incident: the first went quiet
    await _hits(school, clock, evaluation(user="y6.other"))       # someone else: their own
    conn = await open_db(school.db_path)
    try:
        found = sorted(await list_incidents(conn), key=lambda i: i.id)
    finally:
        await conn.close()
    assert [(i.kind, i.user, i.hits) for i in found] == [
        ("offensive", "y3.pupil", 3), ("circumvention", "y3.pupil", 1), ("offensive", "y3.pupil", 1),
        ("offensive", "y6.other", 1)]
    assert found[0].ref == "INC-20261123-0001" and found[0].device == "ks2-laptop-07"


async def test_digest_hits_open_no_incident(school: Context, clock: Clock) -> None:
    await _hits(school, clock, evaluation("http://hack.example/", cats=("hacking",), severity="digest"))
    conn = await open_db(school.db_path)
    try:
        assert await list_incidents(conn) == []
    finally:
        await conn.close()


async def test_record_actions_remove_access_and_close(school: Context, clock: Clock,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    await _hits(school, clock, evaluation())
    assert await _cli(school, "incidents", "record", "INC-20261123-0001", "--action", "refer-head-teacher",
                "--outcome", "Head Teacher informed at 10:30", "--by", "esafety.lead") == 0
    assert await _cli(school, "incidents", "record", "1", "--action", "remove-network-access", "--outcome",
                "one week ban agreed with parents", "--by", "head", "--until", "2026-11-30") == 0
    out = capsys.readouterr().out
    assert "internet access removed for y3.pupil (2026-11-30)" in out
    db = sqlite3.connect(school.db_path)
    assert db.execute("SELECT status, status_until FROM users WHERE username = 'y3.pupil'").fetchone() == (
        "banned", "2026-11-30")
    assert db.execute("SELECT actor, action FROM audit_log WHERE subject = 'user:y3.pupil' ORDER BY id DESC"
                      ).fetchone() == ("head", "user.ban")
    assert await _cli(school, "incidents", "record", "1", "--action", "close", "--outcome", "dealt with",
                "--by", "head") == 0
    assert await _cli(school, "incidents", "record", "1", "--action", "close", "--outcome", "again",
                "--by", "head") == 1
    assert await _cli(school, "incidents", "record", "1", "--action", "sing-a-song", "--outcome", "x",
                "--by", "head") == 2
    assert await _cli(school, "incidents", "record", "99", "--action", "note", "--outcome", "x", "--by", "head") == 1
    capsys.readouterr()
    assert await _cli(school, "incidents", "list") == 0
    listed = capsys.readouterr().out
    assert "INC-20261123-0001" in listed and "closed" in listed and "offensive" in listed and "y3.pupil" in listed
    assert await _cli(school, "incidents", "list", "--status", "open") == 0
    assert "no open incidents" in capsys.readouterr().out
    assert await _cli(school, "incidents", "show", "INC-20261123-0001") == 0
    out = capsys.readouterr().out
    for expected in ("Incident INC-20261123-0001 (closed)", "y3.pupil (pupil), group ks2",
                     "Deliberately accessing or trying to access offensive or pornographic material",
                     "Inform parents/carers", "refer-head-teacher", "remove-network-access", "by head: dealt with",
                     "chain:     intact (4 entries verified)", ADULT):
        assert expected in out, expected


async def test_remove_access_needs_a_user(school: Context, clock: Clock) -> None:
    await _hits(school, clock, evaluation(user=None, role=None))
    conn = await open_db(school.db_path)
    try:
        with pytest.raises(IncidentError, match="has no user"):
            await record_action(conn, 1, action="remove-network-access", outcome="x", by="head",
                                now=dt.datetime.now(dt.UTC))
        inc = await get_incident(conn, 1)
        assert inc is not None and inc.who_key == "device:ks2-laptop-07"
    finally:
        await conn.close()


async def test_a_changed_entry_breaks_the_chain_and_show_says_so(school: Context, clock: Clock,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    await _hits(school, clock, evaluation(), evaluation(user="y4.pupil"))
    for ref in ("1", "2", "1"):
        assert await _cli(school, "incidents", "record", ref, "--action", "inform-parents", "--outcome",
                    "parents phoned", "--by", "esafety.lead") == 0
    db = sqlite3.connect(school.db_path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE incident_entries SET outcome = 'nothing' WHERE id = 3")
    # someone gets round the trigger and softens the record
    db.execute("DROP TRIGGER incident_entries_no_update")
    db.execute("UPDATE incident_entries SET outcome = 'no need to call' WHERE id = 3")
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "1") == 1
    err = capsys.readouterr().err
    assert "THE INCIDENT RECORD HAS BEEN ALTERED" in err and "entry 3" in err
    conn = await open_db(school.db_path)
    try:
        check = await verify_chain(conn)
    finally:
        await conn.close()
    assert not check.ok and check.broken_ids == {3}


async def test_a_deleted_entry_and_changed_incident_facts_show(school: Context, clock: Clock,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    await _hits(school, clock, evaluation())
    for _ in range(2):
        assert await _cli(school, "incidents", "record", "1", "--action", "warning", "--outcome", "warned",
                    "--by", "teacher") == 0
    db = sqlite3.connect(school.db_path, isolation_level=None)
    db.execute("DROP TRIGGER incident_entries_no_delete")
    db.execute("DELETE FROM incident_entries WHERE id = 2")
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "1") == 1
    assert "entries 2..2 are missing" in capsys.readouterr().err

    await _hits(school, clock, evaluation(user="y4.pupil"))     # a second incident, chain continues from 3
    db.execute("UPDATE incidents SET user_name = 'someone.else' WHERE ref LIKE '%-0002'")
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "2") == 1
    assert "details differ from those sealed" in capsys.readouterr().err


PUPIL_OFFENSIVE = ("Refer to Head Teacher; Inform parents/carers; Removal of network/internet access rights; Warning; "
                   "Further sanction, e.g. detention/exclusion")
STAFF_ONLY = ("Refer to Local Authority/HR", "Disciplinary action")
PUPIL_ONLY = ("Inform parents/carers", "Removal of network/internet access rights", "Further sanction", "Warning")


async def test_show_suggests_the_staff_table_for_staff_and_the_pupil_table_for_pupils(
        school: Context, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    staff = {"user": "teacher", "role": "staff", "device": "staff-laptop-11", "device_class": "school_single_user",
             "ip": "10.20.3.11", "group": "staff"}
    await _hits(school, clock, evaluation(),                                        # 1: a pupil, adult
                evaluation(**staff),                                                # 2: staff, adult
                evaluation("http://nordvpn.com/", cats=("vpn",), **{**staff, "role": None}))  # 3: staff group, VPN
    capsys.readouterr()

    assert await _cli(school, "incidents", "show", "INC-20261123-0001") == 0
    pupil = capsys.readouterr().out
    assert "y3.pupil (pupil), group ks2" in pupil
    assert ("policy (pupils): Deliberately accessing or trying to access offensive or pornographic material"
            in pupil)
    assert f"suggested: {PUPIL_OFFENSIVE}\n" in pupil
    assert not any(action in pupil for action in STAFF_ONLY)

    assert await _cli(school, "incidents", "show", "INC-20261123-0002") == 0
    out = capsys.readouterr().out
    assert "teacher (staff), group staff" in out and "staff-laptop-11 (school_single_user), IP 10.20.3.11" in out
    assert "policy (staff): Deliberately accessing or trying to access offensive or pornographic material" in out
    assert "suggested: Refer to Local Authority/HR; Disciplinary action\n" in out
    assert not any(action in out for action in PUPIL_ONLY), out

    # no role known: the filter group says staff; circumvention has its own row of the staff table
    assert await _cli(school, "incidents", "show", "3") == 0
    out = capsys.readouterr().out
    assert "policy (staff): Using proxy sites or other means to subvert the school's filtering system" in out
    assert "suggested: Refer to Local Authority/HR\n" in out and "Inform parents/carers" not in out

    # the staff actions of the policy can be recorded (the table marks no row with suspension: never suggested)
    for action in ("refer-local-authority-hr", "suspension", "disciplinary-action"):
        assert await _cli(school, "incidents", "record", "2", "--action", action, "--outcome", "agreed with HR",
                          "--by", "head") == 0
    capsys.readouterr()
    assert await _cli(school, "incidents", "show", "2") == 0
    out = capsys.readouterr().out
    for action in ("refer-local-authority-hr", "suspension", "disciplinary-action"):
        assert f"{action:<24} by head: agreed with HR" in out, action
    assert "chain:     intact (6 entries verified)" in out
