"""Every figure of the weekly report against an independent count of the generated week."""
from __future__ import annotations

import csv
import datetime as dt
import re
import stat
from collections import Counter
from dataclasses import asdict
from html import unescape
from pathlib import Path

import pytest

from proxy.db import open_db_sync
from reports.breakdown import NO_UK_CATEGORY
from reports.model import Glance
from reports.period import parse_week
from reports.produce import make_weekly
from reports.redact import WITHHELD
from reports.render import HTML_LIMIT
from reports.weekly import build_report
from tests.reports.weekdata import END, LONDON, START, UK, WEEK, Week, build_week

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
CIRC = {"vpn", "doh", "redirector", "strict_redirector", "residential-proxies"}


@pytest.fixture
async def week(tmp_path: Path) -> Week:
    return await build_week(tmp_path)


def _report(week: Week):  # noqa: ANN202
    conn = open_db_sync(week.db_path)
    try:
        return build_report(conn, week.settings, parse_week(WEEK, LONDON), now=NOW)
    finally:
        conn.close()


def _circ(r) -> bool:  # noqa: ANN001
    return r.rule.startswith("circumvention.") or r.rule == "bare_ip" or (
        r.action == "block" and bool(CIRC & set(r.categories)))


def _glance(rows: list, alerts: tuple[int, int]) -> Glance:  # type: ignore[type-arg]
    """Every glance figure of these visits, counted here (the alert emails are given: they are not visits)."""
    return Glance(visits=len(rows), page_views=sum(r.page_view for r in rows), users=len({r.user for r in rows if r.user}),
                  devices=len({r.device for r in rows if r.device}) + len({r.client_ip for r in rows if not r.device}),
                  blocked=sum(r.action == "block" for r in rows), flagged=sum(r.flagged for r in rows),
                  circumvention=sum(_circ(r) for r in rows), alerts_sent=alerts[0], alerts_pending=alerts[1])


def _change(now: int, before: int) -> str:
    """The change as the report words it: '+12 (+4%)', '−3 (−1%)', 'no change' (a minus sign, not a hyphen)."""
    if now == before:
        return "no change"
    sign = "+" if now > before else "\u2212"
    pct = f" ({sign}{round(abs(now - before) * 100 / before)}%)" if before else ""
    return f"{sign}{abs(now - before):,}{pct}"


def test_change_from_last_week_as_rendered(week: Week, tmp_path: Path) -> None:
    rows = week.in_week()
    before = [r for r in week.records if START.timestamp() - 7 * 86400 <= r.ts < START.timestamp()]
    this, last = asdict(_glance(rows, alerts=(3, 2))), asdict(_glance(before, alerts=(1, 3)))
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out")
    cards = re.findall(r'<div class="value">([^<]*)</div>\s*<div class="label">([^<]*)</div>\s*'
                       r'(?:<div class="change">([^<]*) on the week before</div>)?', made.html)
    shown = {unescape(label): (unescape(value), unescape(change)) for value, label, change in cards}
    labels = {"visits": "Requests logged", "page_views": "Pages viewed", "users": "People online",
              "devices": "Devices online", "blocked": "Blocked attempts", "flagged": "Flagged events",
              "circumvention": "Attempts to get round the filter", "alerts_sent": "Alert emails sent",
              "alerts_pending": "Alert emails not yet sent"}
    assert shown == {labels[k]: (f"{this[k]:,}", _change(this[k], last[k])) for k in labels}
    assert any(this[k] < last[k] for k in labels) and any(this[k] > last[k] for k in labels)
    with (made.files.folder / "summary.csv").open(encoding="utf-8") as f:
        summary = {row["figure"]: row for row in csv.DictReader(f)}
    assert {k: (int(summary[labels[k]]["this_week"]), int(summary[labels[k]]["previous_week"]),
                int(summary[labels[k]]["change"])) for k in labels} == {
        k: (this[k], last[k], this[k] - last[k]) for k in labels}


def test_glance_matches_an_independent_count(week: Week) -> None:
    rows = week.in_week()
    before = [r for r in week.records if START.timestamp() - 7 * 86400 <= r.ts < START.timestamp()]
    report = _report(week)
    g = report.glance
    assert g.visits == len(rows) > 1000
    assert g.page_views == sum(r.page_view for r in rows)
    assert g.users == len({r.user for r in rows if r.user})
    assert g.devices == len({r.device for r in rows if r.device}) + len({r.client_ip for r in rows if not r.device})
    assert g.blocked == sum(r.action == "block" for r in rows)
    assert g.flagged == sum(r.flagged for r in rows)
    assert g.circumvention == sum(_circ(r) for r in rows) > 0
    assert (g.alerts_sent, g.alerts_pending) == (3, 2)
    assert report.previous is not None
    assert report.previous == _glance(before, alerts=(1, 3))
    assert g == _glance(rows, alerts=(3, 2))
    # the edges: the first second of the week is in it, the first second of the next week is not
    assert any(r.ts == START.timestamp() for r in rows) and not any(r.ts == END.timestamp() for r in rows)


def test_blocked_breakdowns(week: Week) -> None:
    rows = [r for r in week.in_week() if r.action == "block"]
    b = _report(week).breakdown
    uk: Counter[str] = Counter()
    for r in rows:
        names = {UK[c] for c in r.categories if c in UK}
        for name in names or {NO_UK_CATEGORY}:
            uk[name] += 1
    assert {k: v for k, v in b.uk if v} == dict(uk)
    assert dict(b.groups) == dict(Counter(r.group for r in rows))
    local = [dt.datetime.fromtimestamp(r.ts, LONDON) for r in rows]
    assert dict(b.days) == {START.date() + dt.timedelta(days=i): sum(t.date() == START.date() + dt.timedelta(days=i)
                                                                     for t in local) for i in range(7)}
    heat = [[0] * 24 for _ in range(7)]
    for t in local:
        heat[t.weekday()][t.hour] += 1
    assert b.heat == heat
    assert sum(n for _, n in b.what) == len(rows)
    assert dict(b.what)["pupil-owned device"] == sum(r.rule == "device.not_allowed" for r in rows)


def test_events_searches_circumvention_and_repeats(week: Week) -> None:
    rows = week.in_week()
    report = _report(week)
    flagged = [r for r in rows if r.flagged]
    assert [(int(e.ts), e.user) for e in report.flagged] == [(int(r.ts), r.user) for r in flagged]
    assert len(report.searches) == sum(1 for r in flagged if r.search_term)
    assert {e.topic for e in report.searches} == {"self_harm", "bullying"}
    assert len(report.circumvention) == sum(_circ(r) for r in rows)
    attempts: Counter[str] = Counter(r.user for r in rows if r.user and r.action == "block" and (r.flagged or _circ(r)))
    assert {u.user: u.attempts for u in report.repeated} == {u: n for u, n in attempts.items() if n >= 3}
    # the incident the alerts opened is named beside its visit, with its status
    assert week.flagged_y3 is not None
    linked = [e for e in report.flagged if e.incident_ref]
    assert [(int(e.ts), e.incident_ref, e.incident_status) for e in linked] == [
        (int(week.flagged_y3.ts), "INC-20261116-0001", "open")]


# written out by hand, independent of categories.taxonomy and the watch lists' code
WORDS = {"adult": "adult content", "vpn": "sites that hide where you are going", "drogue": "drugs"}
TOPIC = {"how to commit suicide": "self_harm", "kill yourself": "bullying"}
ILLEGAL_TEXT = "illegal content (IWF / CTIRU list)"


def _expected_event(r, week: Week) -> dict[str, str]:  # noqa: ANN001
    """What the report must say of one flagged visit, worked out from the generated record."""
    local = dt.datetime.fromtimestamp(r.ts, LONDON)
    illegal = "iwf" in r.categories
    if illegal:
        category = ILLEGAL_TEXT
    elif r.search_term in TOPIC:
        category = f"search on the {TOPIC[r.search_term].replace('_', ' ')} watch list"
    elif r.rule.startswith("circumvention.") and not r.categories:
        category = "getting round the filter"
    else:
        category = WORDS[r.categories[0]]
    assert week.flagged_y3 is not None
    linked = r.user == "y3.pupil" and abs(r.ts - week.flagged_y3.ts) <= 5
    return {"date": local.strftime("%Y-%m-%d"), "time": local.strftime("%H:%M:%S"), "user": r.user or "",
            "device": r.device or "", "client_ip": r.client_ip, "group": r.group, "category": category,
            "uk_categories": "; ".join(UK[c] for c in r.categories if c in UK), "action": r.action, "rule": r.rule,
            "url": WITHHELD if illegal else f"https://{r.host}{r.path}", "search_term": r.search_term or "",
            "watch_list": TOPIC.get(r.search_term or "", ""), "incident": "INC-20261116-0001" if linked else "",
            "incident_status": "open" if linked else ""}


def _table_rows(html: str, after: str) -> list[list[str]]:
    """The cells (text only) of the first table after `after` in the HTML, header row left out."""
    table = html.split(after, 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells:
            rows.append([" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells])
    return rows


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_flagged_events_every_field(week: Week, tmp_path: Path) -> None:
    flagged = [r for r in week.in_week() if r.flagged]
    expected = [_expected_event(r, week) for r in flagged]
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out")
    assert _csv_rows(made.files.folder / "flagged_events.csv") == expected
    assert {e["category"] for e in expected} >= {ILLEGAL_TEXT, "getting round the filter", "adult content",
                                                 "search on the self harm watch list"}
    assert sum(e["incident"] != "" for e in expected) == 1
    # the HTML table: its first rows (all of them up to the HTML limit) say the same
    html_rows = _table_rows(made.html, '<h2 id="flagged">')
    shown = [[dt.datetime.strptime(f"{e['date']} {e['time']}", "%Y-%m-%d %H:%M:%S").strftime("%a %d %b %H:%M"),
              e["user"] or "(not logged in)", e["device"] or e["client_ip"], e["group"], e["category"],
              f"search: “{e['search_term']}”" if e["search_term"] else e["url"],
              f"{e['incident']} {e['incident_status']}" if e["incident"] else "none"] for e in expected]
    assert len(html_rows) == min(len(shown), HTML_LIMIT) and html_rows == shown[:HTML_LIMIT]


def test_flagged_search_terms(week: Week, tmp_path: Path) -> None:
    searches = [r for r in week.in_week() if r.flagged and r.search_term]
    assert {r.search_term for r in searches} == set(TOPIC)
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out")
    assert _csv_rows(made.files.folder / "flagged_searches.csv") == [_expected_event(r, week) for r in searches]
    html_rows = _table_rows(made.html, "<h3>Flagged searches</h3>")
    assert html_rows == [[dt.datetime.fromtimestamp(r.ts, LONDON).strftime("%a %d %b %H:%M"),
                          r.user or "(not logged in)", r.group, f"“{r.search_term}”",
                          TOPIC[r.search_term or ""].replace("_", " ")] for r in searches][:HTML_LIMIT]
    plain = {r.search_term for r in week.in_week() if r.search_term and not r.flagged}
    text = made.files.folder.joinpath("flagged_searches.csv").read_text()
    assert plain and all(term not in text for term in plain if term)


def test_devices_and_changes(week: Week) -> None:
    rows = week.in_week()
    report = _report(week)
    refused = {r.client_ip for r in rows if r.rule == "device.not_allowed"}
    unknown = {r.client_ip for r in rows if r.device is None} - refused
    assert {d.ip for d in report.pupil_owned} == refused
    assert {d.ip for d in report.unknown_devices} == unknown
    assert {d.ip: d.visits for d in report.unknown_devices} == dict(
        Counter(r.client_ip for r in rows if r.client_ip in unknown))
    assert [d.name for d in report.new_devices] == ["ks2-laptop-01"]
    c = report.changes
    assert [(o.actor, o.subject, o.reason) for o in c.overrides] == [("teacher", "group:ks2", "Tudor games lesson")]
    assert "games allowed for ks2 for 45 minutes" in c.overrides[0].summary
    assert [o.subject for o in c.lists] == ["scratch.mit.edu"]
    assert [(o.action, o.subject) for o in c.register] == [("user.ban", "user:y6.banned"),
                                                          ("user.consent", "user:y5.noconsent"),
                                                          ("user.revoke", "user:p06")]
    assert [(q.host, q.status, q.decided_by) for q in c.reviews] == [("facebook.com", "rejected", "technical support")]
    assert report.health.visits_dropped_total == 7


def test_illegal_tier_is_never_shown(week: Week, tmp_path: Path) -> None:
    illegal = [r for r in week.in_week() if "iwf" in r.categories]
    assert illegal, "the generated week has illegal-tier hits"
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out")
    events = [e for e in made.report.flagged if e.illegal]
    assert len(events) == len(illegal) and all(e.url == WITHHELD for e in events)
    texts = [made.html, made.text] + [p.read_text() for p in made.files.csvs]
    for text in texts:
        assert "iwf-test-entry" not in text
    assert WITHHELD in made.html
    with (made.files.folder / "flagged_events.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(r.flagged for r in week.in_week())
    assert sum(row["url"] == WITHHELD for row in rows) == len(illegal)


def test_files_are_private_and_html_is_self_contained(week: Week, tmp_path: Path) -> None:
    made = make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out")
    assert stat.S_IMODE(made.files.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    for path in [made.files.html, made.files.text, *made.files.csvs]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    html = made.html
    assert "Content-Security-Policy" in html and "default-src 'none'" in unescape(html)
    assert "<script" not in html and "http://" not in html.split("</head>")[0]
    assert html.count("<svg") == 4          # UK categories, groups, days, hours
    g = made.report.glance
    assert f">{g.visits:,}<" in html and f">{g.blocked:,}<" in html


def test_empty_week_renders(tmp_path: Path) -> None:
    from config.loader import DEFAULT_CONFIG, load_settings

    settings = load_settings(DEFAULT_CONFIG)
    open_db_sync(tmp_path / "empty.sqlite3").close()
    made = make_weekly(tmp_path / "empty.sqlite3", settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path)
    assert made.report.glance.visits == 0
    assert "None this week." in made.html
    assert "no category index found" in made.html      # and health says why the filter cannot be trusted
