"""The governors' summary: the period's aggregates, with nothing that identifies a person.

Built from the same counts as the weekly report (`build_report` with no event
detail), then reduced to figures: no user names, device names, addresses,
URLs, hosts or search terms are carried into `GovernorsSummary`, so the
template cannot print them.  Groups (ks1, ks2, staff, guest) and categories
are kept: they describe the policy, not a person.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from categories.taxonomy import uk_categories
from config.schema import Settings
from reports.breakdown import NO_UK_CATEGORY
from reports.files import private_dir, write_csv, write_text
from reports.health import Health
from reports.model import Figure, Glance, figures
from reports.period import Period
from reports.redact import is_illegal
from reports.render import render
from reports.visitstats import is_circumvention_rule
from reports.weekly import REPEAT_MIN, build_report


@dataclass(frozen=True)
class GovernorsSummary:
    school: str
    period: Period
    generated: dt.datetime
    glance: Glance
    blocked_uk: list[tuple[str, int]]
    blocked_what: list[tuple[str, int]]
    blocked_groups: list[tuple[str, int]]
    blocked_months: list[tuple[str, int]]
    heat: list[list[int]]
    flagged_kinds: list[tuple[str, int]]
    flagged_uk: list[tuple[str, int]]
    incidents_opened: list[tuple[str, int]]      # by kind
    incidents_status: list[tuple[str, int]]      # of those opened in the period, by status now
    incident_actions: list[tuple[str, int]]      # actions recorded in the period
    people_repeated: int
    devices_unknown: int
    devices_pupil_owned: int
    devices_added: int
    overrides: int
    list_changes: int
    reviews: list[tuple[str, int]]               # by outcome
    register: list[tuple[str, int]]              # by kind of change
    health: Health

    @property
    def figures(self) -> list[Figure]:
        return figures(self.glance, None)


def _sorted(c: Counter[str]) -> list[tuple[str, int]]:
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def _incidents(conn: sqlite3.Connection, period: Period) -> tuple[Counter[str], Counter[str], Counter[str]]:
    kinds: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for kind, status in conn.execute("SELECT kind, status FROM incidents WHERE opened_at >= ? AND opened_at < ?",
                                     (period.start_iso, period.end_iso)):
        kinds[str(kind)] += 1
        states[str(status)] += 1
    actions: Counter[str] = Counter()
    for (action,) in conn.execute("SELECT action FROM incident_entries WHERE at >= ? AND at < ?",
                                  (period.start_iso, period.end_iso)):
        actions[str(action).replace("_", " ")] += 1
    return kinds, states, actions


def build_governors(conn: sqlite3.Connection, settings: Settings, period: Period, *, now: dt.datetime,
                    index_path: Path | None = None) -> GovernorsSummary:
    r = build_report(conn, settings, period, now=now, index_path=index_path, detail=False, compare=False)
    att, d = r.attention, r.dictionaries
    assert att is not None and d is not None
    circ = settings.category_sets.get("circumvention", frozenset())
    kinds: Counter[str] = Counter()
    flagged_uk: Counter[str] = Counter()
    for (catset, rid, has_term), n in att.flagged_kinds.items():
        cats = d.catsets.get(catset, ()) if catset is not None else ()
        rule = d.rules.get(rid, "")
        if is_illegal(cats, rule):
            kind = "illegal content (IWF / CTIRU lists)"
        elif is_circumvention_rule(rule) or (set(cats) & circ):
            kind = "getting round the filter"
        elif has_term and rule.startswith("allow"):
            kind = "searches matching a watch list"
        else:
            kind = "flagged categories"
        kinds[kind] += n
        for uk in uk_categories(list(cats)) or [NO_UK_CATEGORY]:
            flagged_uk[uk] += n
    months: Counter[str] = Counter()
    for day, n in r.breakdown.days:
        months[day.strftime("%Y-%m")] += n
    opened, states, actions = _incidents(conn, period)
    reviews = Counter(q.status for q in r.changes.reviews)
    register = Counter(c.action.replace(".", ": ").replace("_", " ") for c in r.changes.register)
    return GovernorsSummary(
        school=r.school, period=period, generated=r.generated, glance=r.glance,
        blocked_uk=r.breakdown.uk, blocked_what=r.breakdown.what, blocked_groups=r.breakdown.groups,
        blocked_months=sorted(months.items()), heat=r.breakdown.heat,
        flagged_kinds=_sorted(kinds), flagged_uk=_sorted(flagged_uk),
        incidents_opened=_sorted(opened), incidents_status=_sorted(states), incident_actions=_sorted(actions),
        people_repeated=sum(1 for n in att.user_attempts.values() if n >= REPEAT_MIN),
        devices_unknown=len(r.unknown_devices), devices_pupil_owned=len(r.pupil_owned),
        devices_added=len(r.new_devices), overrides=len(r.changes.overrides), list_changes=len(r.changes.lists),
        reviews=_sorted(reviews), register=_sorted(register), health=r.health,
    )


def write_governors(summary: GovernorsSummary, base: Path) -> tuple[Path, Path]:
    """`<base>/governors-<first>-to-<last>/summary.html` and `figures.csv`."""
    p = summary.period
    folder = private_dir(private_dir(base) / f"governors-{p.first_day.isoformat()}-to-{p.last_day.isoformat()}")
    html = write_text(folder / "summary.html", render("governors.html", g=summary))
    rows: list[list[object]] = [["at a glance", f.label, f.value] for f in summary.figures]
    for section, items in (("blocked by UK category", summary.blocked_uk), ("blocked because", summary.blocked_what),
                           ("blocked by group", summary.blocked_groups), ("blocked by month", summary.blocked_months),
                           ("flagged by kind", summary.flagged_kinds), ("flagged by UK category", summary.flagged_uk),
                           ("incidents opened by kind", summary.incidents_opened),
                           ("incidents by status", summary.incidents_status),
                           ("incident actions recorded", summary.incident_actions),
                           ("review requests", summary.reviews), ("register changes", summary.register)):
        rows += [[section, k, v] for k, v in items]
    rows += [["other", "people with repeated attempts", summary.people_repeated],
             ["other", "devices not in the register", summary.devices_unknown],
             ["other", "pupil-owned devices refused", summary.devices_pupil_owned],
             ["other", "devices added to the register", summary.devices_added],
             ["other", "overrides granted", summary.overrides],
             ["other", "category list changes", summary.list_changes]]
    csv = folder / "figures.csv"
    write_csv(csv, ["section", "item", "count"], rows)
    return html, csv
