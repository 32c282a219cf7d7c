"""The CSV files beside the weekly report, each against an independent count of the generated week.

(`flagged_events.csv`, `flagged_searches.csv` and `summary.csv` are checked in test_weekly.py.)
"""
from __future__ import annotations

import csv
import datetime as dt
from collections import Counter, defaultdict

import pytest

from reports.period import parse_week
from reports.produce import Made, make_weekly
from tests.reports.weekdata import LONDON, PUPIL_OWNED_IPS, START, UK, VISITOR_IPS, WEEK, Week, build_week

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
CIRC = {"vpn", "doh", "redirector", "strict_redirector", "residential-proxies"}
ISO = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Week, Made]:
    import asyncio

    tmp = tmp_path_factory.mktemp("csvs")
    week = asyncio.run(build_week(tmp))
    return week, make_weekly(week.db_path, week.settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp / "out")


def rows(m: Made, name: str) -> list[dict[str, str]]:
    with (m.files.folder / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, LONDON)


def is_circ(r) -> bool:  # noqa: ANN001
    return r.rule.startswith("circumvention.") or (r.action == "block" and bool(CIRC & set(r.categories)))


def test_blocked_by_category_group_day_and_hour(made: tuple[Week, Made]) -> None:
    week, m = made
    blocked = [r for r in week.in_week() if r.action == "block"]
    uk: Counter[str] = Counter()
    for r in blocked:
        for name in {UK[c] for c in r.categories if c in UK} or {"not in a UK category (school policy)"}:
            uk[name] += 1
    by_uk = {row["uk_category"]: int(row["blocked"]) for row in rows(m, "blocked_by_uk_category")}
    assert {k: v for k, v in by_uk.items() if v} == dict(uk)
    assert {"self-harm", "extremism", "violence"} <= set(by_uk)          # the UK categories with none, listed as 0
    assert {row["group"]: int(row["blocked"]) for row in rows(m, "blocked_by_group")} == dict(
        Counter(r.group for r in blocked))
    days = Counter(local(r.ts).date().isoformat() for r in blocked)
    assert [(row["date"], int(row["blocked"])) for row in rows(m, "blocked_by_day")] == [
        ((START.date() + dt.timedelta(days=i)).isoformat(), days[(START.date() + dt.timedelta(days=i)).isoformat()])
        for i in range(7)]
    heat = Counter((local(r.ts).weekday(), local(r.ts).hour) for r in blocked)
    hours = rows(m, "blocked_by_hour")
    assert [row["weekday"] for row in hours] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert [[int(row[f"{h:02d}"]) for h in range(24)] for row in hours] == [
        [heat[(d, h)] for h in range(24)] for d in range(7)]
    reasons = {row["blocked_because"]: int(row["blocked"]) for row in rows(m, "blocked_by_reason")}
    assert sum(reasons.values()) == len(blocked)
    assert reasons["pupil-owned device"] == sum(r.rule == "device.not_allowed" for r in blocked)
    assert reasons["getting round the filter"] == sum(r.rule == "circumvention.web_proxy" for r in blocked)
    assert reasons["illegal content (IWF / CTIRU list)"] == sum("iwf" in r.categories for r in blocked)
    assert reasons["gambling and betting"] == sum(r.host == "bet365.com" for r in blocked)


def test_circumvention(made: tuple[Week, Made]) -> None:
    week, m = made
    circ = [r for r in week.in_week() if is_circ(r)]
    got = [(row["date"], row["time"], row["user"], row["device"], row["client_ip"], row["group"], row["action"],
            row["rule"], row["url"]) for row in rows(m, "circumvention")]
    assert got == [(local(r.ts).strftime("%Y-%m-%d"), local(r.ts).strftime("%H:%M:%S"), r.user or "",
                    r.device or "", r.client_ip, r.group, r.action, r.rule, f"https://{r.host}{r.path}")
                   for r in circ]
    assert {r.host for r in circ} == {"proxy-example.test", "nordvpn.com"}


def test_repeated_attempts(made: tuple[Week, Made]) -> None:
    week, m = made
    mine = defaultdict(list)
    for r in week.in_week():
        if r.user:
            mine[r.user].append(r)
    expected = []
    for user, visits in mine.items():
        attempts = [r for r in visits if r.action == "block" and (r.flagged or is_circ(r))]
        if len(attempts) >= 3:
            expected.append({"user": user, "group": visits[0].group, "attempts": str(len(attempts)),
                             "circumvention": str(sum(is_circ(r) for r in visits)),
                             "blocked": str(sum(r.action == "block" for r in visits)),
                             "days": str(len({local(r.ts).date() for r in attempts}))})
    expected.sort(key=lambda e: (-int(e["attempts"]), e["user"]))
    assert rows(m, "repeated_attempts") == expected


def test_devices(made: tuple[Week, Made]) -> None:
    week, m = made
    networks = {"10.20.60.": ("Visitor devices", "visitor_owned"), "10.20.70.": ("Pupil-owned devices", "pupil_owned")}

    def seen(ips: list[str]) -> list[dict[str, str]]:
        out = []
        for ip in ips:
            visits = [r for r in week.in_week() if r.client_ip == ip]
            if not visits:
                continue
            name, cls = networks[ip.rsplit(".", 1)[0] + "."]
            out.append({"client_ip": ip, "network": name, "device_class": cls, "requests": str(len(visits)),
                        "refused": str(sum(r.rule == "device.not_allowed" for r in visits)),
                        "users": str(len({r.user for r in visits if r.user})),
                        "first_seen": local(min(r.ts for r in visits)).strftime(ISO),
                        "last_seen": local(max(r.ts for r in visits)).strftime(ISO)})
        return out

    by_ip = {row["client_ip"]: row for row in rows(m, "devices_unknown")}
    assert by_ip == {d["client_ip"]: d for d in seen(VISITOR_IPS)} and len(by_ip) == 2
    assert rows(m, "devices_pupil_owned") == seen(PUPIL_OWNED_IPS)
    assert rows(m, "devices_new") == [{"added": "2026-11-17 09:00:00", "name": "ks2-laptop-01",
                                       "device_class": "school_shared", "network": "10.20.2.21", "assigned_user": ""}]


def test_audit_trail_files(made: tuple[Week, Made]) -> None:
    """Overrides, list changes, register changes (a ban, a consent, a withdrawal) and review requests, each as
    the test data made them; the consent withdrawn the Monday after is next week's."""
    _, m = made

    def change(at: str, by: str, action: str, subject: str, summary: str, reason: str) -> dict[str, str]:
        return {"at": at, "by": by, "action": action, "subject": subject, "summary": summary, "reason": reason}

    assert rows(m, "overrides") == [change("2026-11-17 10:00:00", "teacher", "override.add", "group:ks2",
                                           "games allowed for ks2 for 45 minutes", "Tudor games lesson")]
    assert rows(m, "list_changes") == [change("2026-11-17 11:00:00", "technical support", "lists.allow",
                                              "scratch.mit.edu", "scratch.mit.edu allowed for *", "coding club")]
    assert rows(m, "register_changes") == [
        change("2026-11-18 10:00:00", "esafety.lead", "user.ban", "user:y6.banned",
               "y6.banned: access removed (ban) until lifted", "misuse incident"),
        change("2026-11-19 10:00:00", "head", "user.consent", "user:y5.noconsent",
               "y5.noconsent: parental consent recorded", "form returned"),
        change("2026-11-20 10:00:00", "head", "user.revoke", "user:p06", "p06: access withdrawn",
               "repeated misuse after warnings")]
    assert rows(m, "review_requests") == [{
        "id": "1", "asked": "2026-11-17 10:00:00", "user": "p01", "device": "ks2-laptop-01", "group": "ks2",
        "site": "facebook.com", "categories": "social_networks", "reason": "class page", "status": "rejected",
        "decided": "2026-11-17 10:00:00", "decided_by": "technical support"}]
    assert "p06: access withdrawn" in m.html and "repeated misuse after warnings" in m.html
