"""`schoolgate report weekly | governors`, `purge` and `export-user` through the real command line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from config.loader import DEFAULT_CONFIG
from proxy.cli import main
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
