"""Subject access export: everything about one person, nothing about another."""
from __future__ import annotations

import csv
import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from proxy.db import open_db_sync
from reports.export import ExportError, export_user
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
