"""The incident's browsing context, and the governors' summary naming nobody."""
from __future__ import annotations

import datetime as dt
import re
import stat
from pathlib import Path

import pytest

from proxy.db import open_db, open_db_sync
from reports.context import ContextError, browsing_context, format_context
from reports.governors import build_governors, write_governors
from reports.period import parse_days
from reports.redact import WITHHELD
from tests.reports.weekdata import DEVICES, END, HOSTS, LONDON, PUPIL_OWNED_IPS, START, USERS, VISITOR_IPS, Week, build_week


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path, count=800)


async def test_context_is_the_persons_visits_an_hour_either_side(week: Week) -> None:
    assert week.flagged_y3 is not None
    at = week.flagged_y3.ts
    expected = [r for r in week.records if r.user == "y3.pupil" and at - 3600 <= r.ts <= at + 3600]
    conn = await open_db(week.db_path)
    try:
        ctx = await browsing_context(conn, "INC-20261116-0001")
        assert [int(v.at.timestamp()) for v in ctx.visits] == [int(r.ts) for r in expected]
        assert any(v.flagged for v in ctx.visits)
        assert all(v.url == WITHHELD for v in ctx.visits if "iwf" in v.categories)
        text = format_context(ctx, LONDON)
        assert "user y3.pupil" in text and "iwf-test-entry" not in text
        with pytest.raises(ContextError):
            await browsing_context(conn, 999)
    finally:
        await conn.close()


def test_governors_summary_names_nobody(week: Week, tmp_path: Path) -> None:
    period = parse_days(START.date().isoformat(), (END.date() - dt.timedelta(days=1)).isoformat(), LONDON)
    conn = open_db_sync(week.db_path)
    try:
        summary = build_governors(conn, week.settings, period, now=END)
    finally:
        conn.close()
    rows = week.in_week()
    assert summary.glance.blocked == sum(r.action == "block" for r in rows)
    assert summary.glance.flagged == sum(r.flagged for r in rows)
    assert sum(n for _, n in summary.flagged_kinds) == summary.glance.flagged
    assert dict(summary.flagged_kinds)["illegal content (IWF / CTIRU lists)"] == sum("iwf" in r.categories for r in rows)
    assert summary.overrides == 1 and summary.devices_added == 1
    html, csv = write_governors(summary, tmp_path / "out")
    # readable by the service user only, like the weekly report
    assert html.parent == csv.parent and html.parent.parent == tmp_path / "out"
    for folder in (tmp_path / "out", html.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert sorted(p.name for p in html.parent.iterdir()) == sorted([html.name, csv.name])
    for path in (html, csv):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    text = html.read_text() + csv.read_text()
    people = {u for u, _ in USERS} | {"y5.noconsent", "y6.banned", "esafety.lead", "technical support"}
    identifying = people | {d for d, _ in DEVICES} | {ip for _, ip in DEVICES} | set(VISITOR_IPS) | set(PUPIL_OWNED_IPS)
    identifying |= set(HOSTS) | {"INC-20261116-0001", "volcano", "suicide", "kill yourself"}
    for item in identifying:   # as a name of its own (the word "teachers" is fine, the user "teacher" is not)
        assert not re.search(rf"(?<![\w.-]){re.escape(item)}(?![\w-])", text), item
    assert "Summary for governors" in text or "summary for governors" in text
