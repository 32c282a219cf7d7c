"""The CSV files beside a weekly report: every row of every table, for a spreadsheet."""
from __future__ import annotations

from pathlib import Path

from reports.events import Event
from reports.files import write_csv
from reports.model import WeeklyReport

ISO = "%Y-%m-%d %H:%M:%S"


def write_weekly_csvs(report: WeeklyReport, folder: Path) -> list[Path]:
    r = report
    out: list[Path] = []

    def csv(name: str, header: list[str], rows: list[list[object]]) -> None:
        path = folder / name
        write_csv(path, header, rows)
        out.append(path)

    csv("summary.csv", ["figure", "this_week", "previous_week", "change"],
        [[f.label, f.value, "" if f.previous is None else f.previous, "" if f.change is None else f.change]
         for f in r.figures])
    event_header = ["date", "time", "user", "device", "client_ip", "group", "category", "uk_categories",
                    "action", "rule", "url", "search_term", "watch_list", "incident", "incident_status"]

    def event_row(e: Event) -> list[object]:
        return [e.local.strftime("%Y-%m-%d"), e.local.strftime("%H:%M:%S"), e.user or "", e.device or "",
                e.client_ip, e.group, e.category_text, "; ".join(e.uk), e.action, e.rule, e.url, e.term or "",
                e.topic, e.incident_ref, e.incident_status]

    csv("flagged_events.csv", event_header, [event_row(e) for e in r.flagged])
    csv("flagged_searches.csv", event_header, [event_row(e) for e in r.searches])
    csv("circumvention.csv", event_header, [event_row(e) for e in r.circumvention])
    b = r.breakdown
    csv("blocked_by_uk_category.csv", ["uk_category", "blocked"], [[k, v] for k, v in b.uk])
    csv("blocked_by_reason.csv", ["blocked_because", "blocked"], [[k, v] for k, v in b.what])
    csv("blocked_by_group.csv", ["group", "blocked"], [[k, v] for k, v in b.groups])
    csv("blocked_by_day.csv", ["date", "blocked"], [[d.isoformat(), v] for d, v in b.days])
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    csv("blocked_by_hour.csv", ["weekday", *[f"{h:02d}" for h in range(24)]],
        [[days[i], *row] for i, row in enumerate(b.heat)])
    csv("repeated_attempts.csv", ["user", "group", "attempts", "circumvention", "blocked", "days"],
        [[u.user, u.group, u.attempts, u.circumvention, u.blocked, u.days] for u in r.repeated])
    device_header = ["client_ip", "network", "device_class", "requests", "refused", "users", "first_seen", "last_seen"]
    csv("devices_unknown.csv", device_header,
        [[d.ip, d.network, d.device_class, d.visits, d.refused, d.users, d.first.strftime(ISO), d.last.strftime(ISO)]
         for d in r.unknown_devices])
    csv("devices_pupil_owned.csv", device_header,
        [[d.ip, d.network, d.device_class, d.visits, d.refused, d.users, d.first.strftime(ISO), d.last.strftime(ISO)]
         for d in r.pupil_owned])
    csv("devices_new.csv", ["added", "name", "device_class", "network", "assigned_user"],
        [[d.added.strftime(ISO), d.name, d.device_class, d.network, d.assigned_user or ""] for d in r.new_devices])
    change_header = ["at", "by", "action", "subject", "summary", "reason"]
    c = r.changes
    for name, items in (("overrides.csv", c.overrides), ("list_changes.csv", c.lists),
                        ("register_changes.csv", c.register)):
        csv(name, change_header, [[x.at.strftime(ISO), x.actor, x.action, x.subject, x.summary, x.reason]
                                  for x in items])
    csv("review_requests.csv", ["id", "asked", "user", "device", "group", "site", "categories", "reason", "status",
                                "decided", "decided_by"],
        [[q.id, q.created.strftime(ISO), q.user or "", q.device or "", q.group or "", q.host, q.categories,
          q.reason_text, q.status, q.decided.strftime(ISO) if q.decided else "", q.decided_by or ""]
         for q in c.reviews])
    return out
