"""`schoolgate report weekly | governors`, `purge` and `export-user` through the real command line."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from config.loader import DEFAULT_CONFIG
from proxy.cli import main
from proxy.db import open_db_sync
from proxy.records import RowEncoder
from tests.reports.weekdata import Week, build_week


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path, count=300)


def data_dir(week: Week, tmp_path: Path) -> Path:
    """A data dir holding the week's store under the name the demo config gives it."""
    data = tmp_path / "var"
    data.mkdir()
    shutil.copyfile(week.db_path, data / "schoolgate.db")
    return data


def run(*argv: str) -> int:
    return main([*argv, "--config", str(DEFAULT_CONFIG)])


def test_report_weekly_and_governors(week: Week, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_dir(week, tmp_path)
    assert run("report", "weekly", "--week", "2026-W47", "--data", str(data)) == 0
    out = capsys.readouterr().out
    n = len(week.in_week())
    assert f"{n:,} requests" in out
    assert (data / "reports" / "weekly-2026-W47" / "report.html").exists()
    assert run("report", "governors", "--from", "2026-11-16", "--to", "2026-11-22", "--data", str(data),
               "--out", str(tmp_path / "gov")) == 0
    assert (tmp_path / "gov" / "governors-2026-11-16-to-2026-11-22" / "summary.html").exists()
    assert run("report", "weekly", "--week", "2026-W99", "--data", str(data)) == 2


def test_purge_and_export(week: Week, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_dir(week, tmp_path)
    assert run("purge", "--data", str(data)) == 0
    assert "visits" in capsys.readouterr().out
    assert run("export-user", "y3.pupil", "--data", str(data)) == 0
    assert list((data / "exports").glob("export-y3.pupil-*/export.json"))
    assert run("export-user", "nobody", "--data", str(data)) == 1


def test_incident_show_with_context(week: Week, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`incidents show ID --context`: the person's visits an hour either side of the flagged one, nobody else's."""
    data = data_dir(week, tmp_path)
    hit = week.flagged_y3
    assert hit is not None
    at = hit.ts

    def extra(offset: int, host: str, user: str = "y3.pupil") -> object:
        return dataclasses.replace(hit, ts=at + offset, host=host, path="/page", user=user, categories=(),
                                   action="allow", rule="allow", flagged=False, search_term=None)

    inside = {-3600: "edge-before.example", -1800: "half-hour-before.example", 3600: "edge-after.example"}
    outside = {-3601: "too-early.example", 3601: "too-late.example"}
    conn = open_db_sync(data / "schoolgate.db")
    try:
        RowEncoder(conn).write([extra(o, h) for o, h in (inside | outside).items()]
                               + [extra(60, "someone-else.example", user="p01")], {})
    finally:
        conn.close()
    capsys.readouterr()
    assert run("incidents", "show", "INC-20261116-0001", "--context", "--data", str(data)) == 0
    out = capsys.readouterr().out
    assert "Browsing context of INC-20261116-0001: user y3.pupil" in out
    shown = [line for line in out.splitlines() if line[:1] in ("!", "x", " ") and "  [" in line]
    mine = [r for r in week.records if r.user == "y3.pupil" and at - 3600 <= r.ts <= at + 3600]
    assert len(shown) == len(mine) + len(inside)
    assert f"{len(mine) + len(inside)} visit(s)" in out
    for host in inside.values():
        assert f"https://{host}/page" in out, host
    for host in [*outside.values(), "someone-else.example"]:
        assert host not in out, host
    assert any(line.startswith("!") for line in shown)          # the flagged visit itself, marked
