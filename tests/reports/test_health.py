"""Filter health in the weekly report: list age and update failures, alerts undelivered, visits not logged,
uptime; each figure from known inputs, checked as rendered in the report's HTML."""
from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape
from pathlib import Path

from categories.compiler import compile_index
from categories.curated import load_builtin
from config.loader import DEFAULT_CONFIG, load_settings
from proxy.db import open_db_sync, utc_iso
from reports.period import parse_week
from reports.produce import make_weekly
from tests.reports.weekdata import END, LONDON, START, WEEK

NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
UTC = dt.UTC


def health_rows(html: str) -> dict[str, str]:
    """The 'Filter health' table as {check: state}, tags and extra spaces taken out."""
    table = html.split("<h2>Filter health</h2>", 1)[1].split("</table>", 1)[0]
    rows = {}
    for check, state in re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", table, re.S):
        rows[check] = " ".join(unescape(re.sub(r"<[^>]+>", " ", state)).split())
    return rows


def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    open_db_sync(path).close()
    return path


def set_meta(db: Path, key: str, value: object) -> None:
    conn = open_db_sync(db)
    try:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                     "excluded.value", (key, value if isinstance(value, str) else json.dumps(value)))
        conn.commit()
    finally:
        conn.close()


def test_health_figures_as_rendered(tmp_path: Path) -> None:
    settings = load_settings(DEFAULT_CONFIG)
    db = store(tmp_path)
    # lists built 10 days 6 hours before the report, and an updater that has been failing since
    built = NOW.astimezone(UTC) - dt.timedelta(days=10, hours=6)
    index = tmp_path / "categories.idx"
    meta = compile_index([load_builtin()], index, now=lambda: built)
    Path(f"{index}.state.json").write_text(json.dumps({
        "_last_update": {"ok": False, "at": "2026-11-22T03:00:00+00:00", "reason": "download refused: HTTP 503"},
        "ut1": {"error": "checksum mismatch"}, "builtin": {"total": 10}}))
    # alert emails: 2 failed, 1 pending for 20 minutes (counted), 1 pending for 5 (not yet), 3 sent
    conn = open_db_sync(db)
    outbox = [("failed", 3 * 24 * 60), ("failed", 30), ("pending", 20), ("pending", 5)] + [("sent", 90)] * 3
    conn.executemany("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status) VALUES (?, 'alert', "
                     "'s', 'b', ?)", [(utc_iso(NOW - dt.timedelta(minutes=m)), st) for st, m in outbox])
    conn.commit()
    conn.close()
    # the service ran 6 h of the week from a span begun before it, 48 h + 12 h overlapping, and 6 h to its end
    spans = [(START - dt.timedelta(hours=4), START + dt.timedelta(hours=6)),
             (START + dt.timedelta(days=1), START + dt.timedelta(days=3)),
             (START + dt.timedelta(days=2, hours=12), START + dt.timedelta(days=3, hours=12)),
             (END - dt.timedelta(hours=6), END + dt.timedelta(hours=3))]
    set_meta(db, "service_uptime", [[utc_iso(a), utc_iso(b)] for a, b in spans])
    up = 6 + 48 + 12 + 6
    # visits not logged: 5 by the end of the week before (its report remembers), 12 now
    set_meta(db, "visits_dropped", "5")
    make_weekly(db, settings, parse_week("2026-W46", LONDON), now=START + dt.timedelta(hours=7),
                out_dir=tmp_path / "w46", index_path=index)
    set_meta(db, "visits_dropped", "12")

    made = make_weekly(db, settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out", index_path=index)
    rows = health_rows(made.html)
    assert rows["Category lists"] == f"built 13 Nov 2026 01:00 (10.2 days ago), {meta['entries']:,} entries " \
                                     "out of date"
    problems = rows["List update problems"].split("; ")
    assert set(problems) == {"last list update failed at 2026-11-22T03:00:00+00:00: download refused: HTTP 503",
                             "source ut1: checksum mismatch",
                             "the category lists are 10 days old (updates should be daily)"}
    assert rows["Alert emails not delivered"] == "2 failed, 1 waiting over 15 minutes"
    assert rows["Visits not logged"] == "7 this week, 12 in all"
    assert rows["Filter running"] == f"{round(100 * up * 3600 / (7 * 86400), 1)}% of the time" == \
        "42.9% of the time"
    # and the box at the top says so
    top = unescape(made.html.split("<h2>Filter health</h2>", 1)[0])
    assert "3 alert emails could not be delivered yet" in top
    assert "download refused: HTTP 503" in top


def test_health_of_a_well_kept_filter(tmp_path: Path) -> None:
    settings = load_settings(DEFAULT_CONFIG)
    db = store(tmp_path)
    index = tmp_path / "categories.idx"
    built = NOW.astimezone(UTC) - dt.timedelta(hours=4)
    meta = compile_index([load_builtin()], index, now=lambda: built)
    set_meta(db, "service_uptime", [[utc_iso(START - dt.timedelta(days=1)), utc_iso(NOW)]])
    made = make_weekly(db, settings, parse_week(WEEK, LONDON), now=NOW, out_dir=tmp_path / "out", index_path=index)
    rows = health_rows(made.html)
    assert rows["Category lists"] == f"built 23 Nov 2026 03:00 (0.2 days ago), {meta['entries']:,} entries"
    assert rows["List update problems"] == "none"
    assert rows["Alert emails not delivered"] == "0 failed, 0 waiting over 15 minutes"
    assert rows["Visits not logged"] == "0 in all"
    assert rows["Filter running"] == "100.0% of the time"
    assert "Needs your attention" not in made.html


def test_uptime_not_recorded_is_said_so(tmp_path: Path) -> None:
    made = make_weekly(store(tmp_path), load_settings(DEFAULT_CONFIG), parse_week(WEEK, LONDON), now=NOW,
                       out_dir=tmp_path / "out", index_path=None)
    rows = health_rows(made.html)
    assert rows["Filter running"] == "not recorded (the report was not made by the running service)"
    assert rows["Category lists"] == "no category index out of date"
    assert rows["List update problems"] == "no category index found: run `schoolgate init`"
