"""`schoolgate report weekly | governors`, `purge` and `export-user` through the real command line."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import stat
from pathlib import Path

import pytest

from config.loader import DEFAULT_CONFIG
from proxy.cli import main
from proxy.db import open_db_sync
from proxy.records import RowEncoder
from tests.alerts.smtpserver import SmtpServer
from tests.reports.weekdata import Week, build_week

CSVS = {"summary", "flagged_events", "flagged_searches", "circumvention", "blocked_by_uk_category",
        "blocked_by_reason", "blocked_by_group", "blocked_by_day", "blocked_by_hour", "repeated_attempts",
        "devices_unknown", "devices_pupil_owned", "devices_new", "overrides", "list_changes", "register_changes",
        "review_requests"}


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path, count=300)


def data_dir(week: Week, tmp_path: Path) -> Path:
    """A data dir holding the week's store under the name the demo config gives it."""
    data = tmp_path / "var"
    data.mkdir()
    shutil.copyfile(week.db_path, data / "schoolgate.db")
    return data


def run(*argv: str, config: Path = DEFAULT_CONFIG) -> int:
    return main([*argv, "--config", str(config)])


def config_with_smtp_port(tmp_path: Path, port: int) -> Path:
    """The demo config (and the register files it names) with its mail server on `port`."""
    folder = tmp_path / "etc"
    folder.mkdir()
    for name in ("users.csv", "devices.csv"):
        shutil.copyfile(DEFAULT_CONFIG.with_name(name), folder / name)
    text, n = re.subn(r"(?m)^(\[smtp\]\nhost = \"127\.0\.0\.1\"\n)port = 25$", rf"\g<1>port = {port}",
                      DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert n == 1, "the demo config's [smtp] section changed: update this test"
    (folder / "schoolgate.toml").write_text(text, encoding="utf-8")
    return folder / "schoolgate.toml"


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


def test_report_weekly_out_writes_private_files(week: Week, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_dir(week, tmp_path)
    out = tmp_path / "elsewhere" / "reports"
    assert run("report", "weekly", "--week", "2026-W47", "--out", str(out), "--data", str(data)) == 0
    folder = out / "weekly-2026-W47"
    assert str(folder / "report.html") in capsys.readouterr().out
    assert not (data / "reports").exists()                     # --out, not the data dir
    names = {p.name for p in folder.iterdir()}
    assert names == {"report.html", "report.txt"} | {f"{n}.csv" for n in CSVS}
    assert stat.S_IMODE(out.stat().st_mode) == 0o700 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert f">{len(week.in_week()):,}<" in html
    lines = (folder / "flagged_events.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + sum(r.flagged for r in week.in_week())


async def test_report_weekly_send_emails_the_html(week: Week, tmp_path: Path, smtp: SmtpServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = data_dir(week, tmp_path)
    config = config_with_smtp_port(tmp_path, smtp.port)
    code = await asyncio.to_thread(run, "report", "weekly", "--week", "2026-W47", "--send", "--data", str(data),
                                   config=config)
    assert code == 0
    [mail] = await smtp.wait_for(1)
    assert set(mail.recipients) == set(week.settings.reports.recipients)
    assert "emailed to " + ", ".join(week.settings.reports.recipients) in capsys.readouterr().out
    assert "2026-W47" in mail.subject
    rows = week.in_week()
    html = mail.html.replace("\r\n", "\n")
    assert "Weekly online safety audit" in html and html.count("<svg") == 4
    for figure in (len(rows), sum(r.action == "block" for r in rows), sum(r.flagged for r in rows)):
        assert f">{figure:,}<" in html, figure
    assert html.strip() == (data / "reports" / "weekly-2026-W47" / "report.html").read_text(encoding="utf-8").strip()
    assert "iwf-test-entry" not in html + mail.text
