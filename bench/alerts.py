"""Benchmark of the alerts under a storm: 10,000 flagged hits in one minute.

    python -m bench.alerts [--json] [--hits N] [--users N] [--hours H]

The demo school's alert settings (grouping window 10 minutes, at most 30
emails an hour, hourly digest), a real SMTP server (aiosmtpd on 127.0.0.1) and
a real SQLite file.  Time is simulated (the injected clock): the hits arrive
evenly over one minute from `--users` pupils (adult sites, self-harm searches,
VPNs, hacking sites for the digest, a few on the illegal tier); the service
runs one pass (store, compose, deliver) per simulated second during the storm,
then one per simulated minute for `--hours` hours, so follow-ups, summaries and
digests all go out.  Wall-clock time and the request-path cost of `submit()`
are measured for real.

Figures: `hits` submitted, `emails` received by the SMTP server (and in the
storm's first minute, and at most in any hour), `incidents`, `lost` (hits not
stored, stored but reported by no email, or immediate without an incident),
`duplicates` (Message-IDs received twice).  `submitted` also counts the
`repeated` hits the repeated-blocks rule adds (10 blocked attempts in 5 minutes).  The peer is the naive design that
emails every hit: `naive_emails` = hits.  The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

from alerts.service import AlertService
from proxy.decision import Action, Page
from proxy.engine import Evaluation
from tests.alerts.helpers import Clock, demo_settings, evaluation, topic_of
from tests.alerts.smtpserver import SmtpServer

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def storm(hits: int, users: int, seed: int = 11) -> list[tuple[Evaluation, str]]:
    rng = random.Random(seed)
    out: list[tuple[Evaluation, str]] = []
    for n in range(hits):
        user = f"pupil{rng.randrange(users):04d}"
        roll = rng.random()
        if roll < 0.002:
            ev = evaluation("http://x.test/", cats=("iwf",), rule="illegal_tier", page=Page.ILLEGAL, user=user)
            url = "http://x.test/"
        elif roll < 0.45:
            url = f"http://adult{rng.randrange(50)}.example/v/{n}"
            ev = evaluation(url, cats=("adult",), user=user)
        elif roll < 0.65:
            url = f"https://www.google.com/search?q=self_harm+{n}"
            ev = evaluation(url, cats=("searchengines",), action=Action.ALLOW, rule="allow.search_watch",
                            search=f"self_harm words {n}", watch_phrase="words", user=user)
        elif roll < 0.85:
            url = f"http://vpn{rng.randrange(20)}.example/"
            ev = evaluation(url, cats=("vpn",), user=user)
        else:
            url = f"http://hack{rng.randrange(20)}.example/"
            ev = evaluation(url, cats=("hacking",), severity="digest", user=user)
        out.append((ev, url))
    return out


async def run(hits: int, users: int, hours: int, folder: Path) -> dict[str, object]:
    smtp = SmtpServer()
    await smtp.start()
    settings = demo_settings(smtp.port)
    clock = Clock(START)
    svc = AlertService(settings, folder / "bench.sqlite3", clock=clock, watch_topic=topic_of)
    await svc.open()
    work = storm(hits, users)
    per_second = -(-hits // 60)
    submit_s = 0.0
    wall = time.perf_counter()
    try:
        for second in range(60):
            batch = work[second * per_second:(second + 1) * per_second]
            t0 = time.perf_counter()
            for ev, url in batch:
                svc.submit(ev, url, at=clock())
            submit_s += time.perf_counter() - t0
            await svc.run_once()
            clock.advance(seconds=1)
        first_minute = len(smtp.received)
        storm_wall = time.perf_counter() - wall
        for _ in range(hours * 60):
            clock.advance(minutes=1)
            await svc.run_once()
        await smtp.wait_for(_sent_rows(folder), timeout=30)
    finally:
        await svc.stop()
        await smtp.stop()
    wall = time.perf_counter() - wall
    db = sqlite3.connect(folder / "bench.sqlite3")
    stored, unreported, no_incident = db.execute(
        "SELECT COUNT(*), SUM(outbox_id IS NULL), SUM(severity = 'immediate' AND incident_id IS NULL) "
        "FROM alert_hits").fetchone()
    incidents, incident_hits = db.execute("SELECT COUNT(*), SUM(hits) FROM incidents").fetchone()
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM alert_outbox GROUP BY kind").fetchall())
    pending = db.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending'").fetchone()[0]
    immediate_hits = db.execute("SELECT COUNT(*) FROM alert_hits WHERE severity = 'immediate'").fetchone()[0]
    sent_at = [dt.datetime.fromisoformat(r[0]) for r in db.execute(
        "SELECT sent_at FROM alert_outbox WHERE sent_at IS NOT NULL ORDER BY sent_at")]
    ids = Counter(r.message["Message-ID"] for r in smtp.received)
    repeated = db.execute("SELECT COUNT(*) FROM alert_hits WHERE kind = 'repeated'").fetchone()[0]
    lost = (svc.submitted - stored) + (unreported or 0) + (no_incident or 0)
    return {
        "bench": "alerts", "hits": hits, "users": users, "emails": len(smtp.received),
        "emails_first_minute": first_minute, "emails_max_per_hour": _max_per_hour(sent_at),
        "emails_by_kind": kinds, "pending": pending, "incidents": incidents,
        "incident_hits": incident_hits, "immediate_hits": immediate_hits, "stored": stored,
        "submitted": svc.submitted, "repeated_hits": repeated,
        "lost": lost, "duplicates": sum(c - 1 for c in ids.values()), "naive_emails": hits,
        "email_ratio_vs_naive": round(len(smtp.received) / hits, 5),
        "submit_us_per_hit": round(submit_s / hits * 1e6, 2), "storm_wall_s": round(storm_wall, 2),
        "wall_s": round(wall, 2), "simulated_hours": hours + 1,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }


def _sent_rows(folder: Path) -> int:
    db = sqlite3.connect(folder / "bench.sqlite3")
    return int(db.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'sent'").fetchone()[0])


def _max_per_hour(times: list[dt.datetime]) -> int:
    best = 0
    for i, t in enumerate(times):
        j = i
        while j < len(times) and times[j] < t + dt.timedelta(hours=1):
            j += 1
        best = max(best, j - i)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--hits", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--hours", type=int, default=2, help="simulated hours after the storm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp:
        result = asyncio.run(run(args.hits, args.users, args.hours, Path(tmp)))
    if not args.json:
        print(f"{result['hits']} flagged hits in one minute from {result['users']} pupils -> "
              f"{result['emails']} emails ({result['emails_first_minute']} in the first minute, at most "
              f"{result['emails_max_per_hour']} in any hour; naive: {result['naive_emails']}), "
              f"{result['incidents']} incidents, lost {result['lost']}, duplicates {result['duplicates']}; "
              f"submit {result['submit_us_per_hit']} us/hit, wall {result['wall_s']} s")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
