"""Subject access export: everything about one person, nothing about another."""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
import stat
from pathlib import Path

import pytest

from proxy.audit import audit_sync
from proxy.db import open_db_sync, utc_iso
from proxy.records import RowEncoder, VisitRecord
from reports.export import OTHERS, ExportError, export_user
from reports.redact import WITHHELD
from tests.reports.weekdata import USERS, Week, build_week

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path, count=600)


def _export(week: Week, name: str, out: Path) -> Path:
    conn = open_db_sync(week.db_path)
    try:
        return export_user(conn, name, out, NOW)
    finally:
        conn.close()


def _csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_export_holds_everything_about_the_person(week: Week, tmp_path: Path) -> None:
    folder = _export(week, "y3.pupil", tmp_path / "exports")
    mine = [r for r in week.records if r.user == "y3.pupil"]
    visits = _csv(folder, "visits")
    assert len(visits) == len(mine)
    assert sum(v["url"] == WITHHELD for v in visits) == sum("iwf" in r.categories for r in mine)
    assert not any("iwf-test-entry" in v["url"] for v in visits)
    assert [r["username"] for r in _csv(folder, "register")] == ["y3.pupil"]
    assert [r["name"] for r in _csv(folder, "devices")] == ["loan-laptop-y3"]
    assert [r["ref"] for r in _csv(folder, "incidents")] == ["INC-20261116-0001"]
    assert len(_csv(folder, "alert_hits")) == 1
    data = json.loads((folder / "export.json").read_text())
    assert data["person"] == "y3.pupil"
    assert len(data["sections"]["visits"]) == len(mine)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())


def test_export_holds_nothing_of_another_person(week: Week, tmp_path: Path) -> None:
    folder = _export(week, "p01", tmp_path / "exports")
    cells = {cell for p in folder.glob("*.csv") for row in csv.reader(p.open(encoding="utf-8")) for cell in row}
    others = {u for u, _ in USERS if u != "p01"} | {"y5.noconsent", "y6.banned"}
    for other in others:   # no other person's name as a value, and no record about them (user:NAME)
        assert other not in cells, other
        assert not any(f"user:{other}" in cell or f'"{other}"' in cell for cell in cells), other
    visits = _csv(folder, "visits")
    assert len(visits) == sum(r.user == "p01" for r in week.records)
    requests = _csv(folder, "review_requests")
    assert [(r["host"], r["status"]) for r in requests] == [("facebook.com", "rejected")]


def test_export_of_nobody_is_refused(week: Week, tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        _export(week, "nobody.here", tmp_path / "exports")
    assert not (tmp_path / "exports").exists()


# the other person: everything that identifies p04, none of which may reach the teacher's export
P04 = {"name": "p04", "full": "Priya Fourthly", "device": "p04-own-tablet", "ip": "10.20.2.204",
       "url": "https://p04-private.example/diary", "host": "p04-private.example"}


def _shared_records(week: Week) -> None:
    """The teacher and p04 each have an incident, an alert hit and an alert email; one digest email reports
    both of them, and the teacher made an audit row about p04 (a consent change)."""
    at = NOW - dt.timedelta(days=3)
    conn = open_db_sync(week.db_path)
    try:
        conn.execute("UPDATE users SET full_name = ? WHERE username = 'p04'", (P04["full"],))
        conn.execute("UPDATE users SET full_name = 'Terry Teacher' WHERE username = 'teacher'")
        RowEncoder(conn).write([VisitRecord(
            ts=at.timestamp(), user="p04", group="ks2", device=P04["device"], client_ip=P04["ip"], method="GET",
            scheme="https", host=P04["host"], path="/diary", categories=("adult",), action="block",
            rule="category.blocked", search_term=None, bytes=0, page_view=True, flagged=True, intercepted=True,
            status=None)], {})
        for iid, user, device, ip in ((2, "teacher", "teacher-laptop", "10.20.3.11"),
                                      (3, "p04", P04["device"], P04["ip"])):
            conn.execute("INSERT INTO incidents (id, ref, opened_at, kind, severity, user_name, device_name, "
                         "group_name, status, who_key, client_ip, last_at, hits) VALUES (?, ?, ?, 'category', "
                         "'immediate', ?, ?, 'staff', 'open', ?, ?, ?, 1)",
                         (iid, f"INC-20261120-000{iid}", utc_iso(at), user, device, f"user:{user}", ip, utc_iso(at)))
        emails: list[tuple[int, str, int | None, str]] = [
                  (101, "alert", 2, "teacher on teacher-laptop: https://pornhub.com/"),
                  (102, "digest", None, f"teacher on teacher-laptop: https://pornhub.com/\n{P04['full']} "
                                        f"({P04['name']}) on {P04['device']} {P04['ip']}: {P04['url']}"),
                  (103, "alert", 3, f"{P04['full']} ({P04['name']}) on {P04['device']} {P04['ip']}: {P04['url']}")]
        for oid, kind, incident, body in emails:
            conn.execute("INSERT INTO alert_outbox (id, created_at, kind, severity, dedup_key, subject, body_text, "
                         "body_html, recipients, status, incident_id) VALUES (?, ?, ?, 'immediate', ?, ?, ?, ?, "
                         "'[\"esafety@demo-primary.example\"]', 'sent', ?)",
                         (oid, utc_iso(at), kind, f"{kind}:{oid}", f"Alert: {body.splitlines()[-1][:40]}", body,
                          f"<p>{body}</p>", incident))
        hits = [("teacher", "teacher-laptop", "10.20.3.11", "https://pornhub.com/", 2, 101),
                ("teacher", "teacher-laptop", "10.20.3.11", "https://pornhub.com/", 2, 102),
                (P04["name"], P04["device"], P04["ip"], P04["url"], 3, 102),
                (P04["name"], P04["device"], P04["ip"], P04["url"], 3, 103)]
        conn.executemany("INSERT INTO alert_hits (at, kind, severity, group_key, who_key, user_name, device_name, "
                         "client_ip, url, incident_id, outbox_id) VALUES (?, 'category', 'immediate', ?, ?, ?, ?, ?, "
                         "?, ?, ?)", [(utc_iso(at), f"user:{u}|adult", f"user:{u}", u, d, ip, url, iid, oid)
                                      for u, d, ip, url, iid, oid in hits])
        audit_sync(conn, actor="teacher", action="user.consent", subject=f"user:{P04['name']}",
                   details={"full_name": P04["full"], "device": P04["device"]}, reason=f"{P04['full']}'s form",
                   now=at)
        conn.commit()
    finally:
        conn.close()


def test_shared_emails_and_audit_rows_are_withheld(week: Week, tmp_path: Path) -> None:
    _shared_records(week)
    folder = _export(week, "teacher", tmp_path / "exports")
    assert [r["ref"] for r in _csv(folder, "incidents")] == ["INC-20261120-0002"]
    assert sorted(int(r["outbox_id"]) for r in _csv(folder, "alert_hits")) == [101, 102]
    emails = {int(r["id"]): r for r in _csv(folder, "alert_emails")}
    assert sorted(emails) == [101, 102]
    assert "teacher-laptop" in emails[101]["body_text"]                   # the teacher's own alert, whole
    assert all(emails[102][c] == OTHERS for c in ("subject", "body_text", "body_html", "recipients"))
    [about_p04] = [r for r in _csv(folder, "audit_by") if r["action"] == "user.consent"]
    assert (about_p04["subject"], about_p04["details"], about_p04["reason"]) == (OTHERS, OTHERS, OTHERS)
    texts = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert set(texts) >= {"export.json", "alert_emails.csv", "audit_by.csv", "alert_hits.csv", "visits.csv"}
    data = json.loads(texts["export.json"])
    assert [e["body_text"] for e in data["sections"]["alert_emails"]][1] == OTHERS
    for file, text in texts.items():
        assert not re.search(r"(?<![\w.-])p04(?![\w-])", text), file
        for key in ("full", "device", "ip", "url", "host"):
            assert P04[key] not in text, (file, key)
