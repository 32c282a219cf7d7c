"""`schoolgate alerts test | pending` and `schoolgate incidents list | show | record`.

Handlers take `(args, ctx)` and return the exit code: 0 done, 1 operational
error (the mail server refused, an incident's record was tampered with), 2 bad
usage.  `incidents show ID --context` prints the person's browsing
around the incident through `reports.incident_context.render(ctx, ref)`.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

from alerts import outbox
from alerts.chain import entries_of, verify_chain
from alerts.incidents import IncidentError, get_incident, hit_summary, list_incidents, record_action
from alerts.procedure import ACTIONS, is_pupil, suggested_actions
from alerts.render import Renderer
from alerts.smtp import MailError, SmtpMailer, build_message
from alerts.views import when
from proxy.terminal import shown
from proxy.context import Context
from proxy.db import open_db
from reports import incident_context


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("alerts", parents=[common], help="alert emails: test | pending")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    a = asub.add_parser("test", parents=[common], help="send a test email through the configured mail server")
    a.add_argument("--to", action="append", default=None, help="send to this address instead of the recipients")
    a.set_defaults(handler=alerts_test)
    a = asub.add_parser("pending", parents=[common], help="alert emails waiting to be sent, and why")
    a.set_defaults(handler=alerts_pending)

    p = sub.add_parser("incidents", parents=[common], help="the incident register: list | show | record")
    isub = p.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)
    a = isub.add_parser("list", parents=[common], help="incidents, newest first")
    a.add_argument("--status", choices=("open", "closed", "all"), default="all")
    a.add_argument("--limit", type=int, default=100)
    a.set_defaults(handler=incidents_list)
    a = isub.add_parser("show", parents=[common], help="one incident, its record, and whether the record is intact")
    a.add_argument("id", help="the incident's number or reference (INC-YYYYMMDD-NNNN)")
    a.add_argument("--context", action="store_true", help="the visits around it (from the reports)")
    a.set_defaults(handler=incidents_show)
    a = isub.add_parser("record", parents=[common], help="record what was done (append-only)")
    a.add_argument("id")
    a.add_argument("--action", required=True, choices=list(ACTIONS), help="from the policy's sanctions tables")
    a.add_argument("--outcome", required=True, help="what happened, in words")
    a.add_argument("--by", required=True, help="who did it")
    a.add_argument("--until", type=dt.date.fromisoformat, default=None,
                   help="remove-network-access: last day of the ban (YYYY-MM-DD); none = until lifted")
    a.set_defaults(handler=incidents_record)


def _err(message: str) -> None:
    print(f"schoolgate: {message}", file=sys.stderr)


def alerts_test(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings
    recipients = args.to or list(s.alerts.recipients)
    mailer = SmtpMailer(s.smtp)

    async def run() -> int:
        now = dt.datetime.now(dt.UTC)
        email = Renderer(s.school.name, s.school.timezone).test(now, mailer.describe())
        msg = build_message(sender=s.alerts.sender, recipients=recipients, subject=email.subject, text=email.text,
                            html="", message_id=f"<schoolgate.test.{int(now.timestamp())}@"
                                            f"{s.alerts.sender.rsplit('@', 1)[-1]}>",
                            date=now.timestamp(), urgent=False)
        try:
            session = await mailer.open()
            try:
                refused = await session.send(msg, s.alerts.sender, recipients)
            finally:
                await session.close()
        except MailError as exc:
            _err(f"alerts test failed: {exc}")
            return 1
        accepted = [r for r in recipients if r not in refused]
        print(f"test email accepted by {mailer.describe()} for {', '.join(accepted)}")
        for addr, why in refused.items():
            _err(f"recipient refused: {addr} ({why})")
        return 1 if refused else 0

    return asyncio.run(run())


def alerts_pending(args: argparse.Namespace, ctx: Context) -> int:
    tz = ctx.settings.school.timezone

    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            rows = await outbox.pending(conn)
        finally:
            await conn.close()
        if not rows:
            print("no alert emails waiting: every alert has been handed to the mail server")
            return 0
        print(f"{len(rows)} alert email(s) waiting:")
        now = dt.datetime.now(dt.UTC)
        for r in rows:
            nxt = "now" if r.next_attempt_at is None or r.next_attempt_at <= now else when(r.next_attempt_at, tz)
            print(f"  #{r.id}  {r.kind:<8} {r.severity:<9} queued {when(r.created_at, tz)}  attempts {r.attempts}"
                  f"  next try {nxt}")
            print(f"        {shown(r.subject)}")
            print(f"        to {', '.join(r.recipients)}")
            if r.last_error:
                print(f"        last error: {shown(r.last_error)}")
            if r.attempted_at is not None:
                print("        (a send was begun: the mail server may already have it; the copy sent next "
                      "carries the same Message-ID)")
        return 0

    return asyncio.run(run())


def incidents_list(args: argparse.Namespace, ctx: Context) -> int:
    tz = ctx.settings.school.timezone

    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            found = await list_incidents(conn, None if args.status == "all" else args.status, args.limit)
        finally:
            await conn.close()
        if not found:
            print("no incidents" if args.status == "all" else f"no {args.status} incidents")
        for i in found:
            who = shown(i.user or i.device or i.client_ip)
            print(f"{i.ref}  {when(i.opened_at, tz):<32} {i.status:<6} {i.kind:<13} {who:<16} "
                  f"{shown(i.device or '-'):<16} {i.group or '-':<6} {i.hits} hit(s)")
        return 0

    return asyncio.run(run())


def incidents_show(args: argparse.Namespace, ctx: Context) -> int:
    s = ctx.settings
    tz = s.school.timezone

    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            inc = await get_incident(conn, args.id)
            if inc is None:
                _err(f"no incident {args.id}")
                return 1
            summary = await hit_summary(conn, inc.id)
            entries = await entries_of(conn, inc.id)
            check = await verify_chain(conn)
        finally:
            await conn.close()
        group = s.groups.get(inc.group or "")
        pupil = is_pupil(inc.role, group.is_pupil if group else False)
        print(f"Incident {inc.ref} ({inc.status})")
        print(f"  kind:      {inc.kind}, {inc.severity}")
        print(f"  opened:    {when(inc.opened_at, tz)}")
        role = f" ({inc.role})" if inc.role else ""
        print(f"  who:       {shown(inc.user or 'not logged in')}{role}, group {inc.group}")
        print(f"  device:    {shown(inc.device or '-')} ({inc.device_class}), IP {inc.client_ip}")
        last = when(summary.last, tz) if summary.last else "-"
        print(f"  hits:      {summary.count}, last {last}; {', '.join(summary.categories)}")
        for url in summary.urls:
            print(f"             {shown(url)}")
        for term in summary.search_terms:
            print(f"             search: \"{shown(term)}\"")
        row, actions = suggested_actions(inc.kind, pupil)
        print(f"  policy ({'pupils' if pupil else 'staff'}): {row}")
        print(f"  suggested: {'; '.join(actions)}")
        print("  record:")
        for e in entries:
            print(f"    {when(e.at, tz)}  {e.action:<24} by {shown(e.by)}: {shown(e.outcome)}  [{e.hash[:12]}]")
        opened = next((e for e in entries if e.action == "opened"), None)
        if opened is not None and opened.detail != inc.facts():
            check.problems.append(f"the incident's details differ from those sealed when it opened (entry "
                                  f"{opened.id})")
        if args.context:
            print(incident_context.render(ctx, inc.ref))
        if not check.ok:
            print("\n!!! WARNING: THE INCIDENT RECORD HAS BEEN ALTERED: its hash chain is broken !!!", file=sys.stderr)
            for problem in check.problems:
                print(f"!!! {problem}", file=sys.stderr)
            print("!!! Treat this record as unreliable and tell the Head Teacher.", file=sys.stderr)
            return 1
        print(f"  chain:     intact ({check.entries} entries verified)")
        return 0

    return asyncio.run(run())


def incidents_record(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            entry = await record_action(conn, args.id, action=args.action, outcome=args.outcome, by=args.by,
                                        now=dt.datetime.now(dt.UTC), until=args.until)
            inc = await get_incident(conn, entry.incident_id)
        except IncidentError as exc:
            _err(str(exc))
            return 1
        finally:
            await conn.close()
        assert inc is not None
        print(f"{inc.ref}: recorded '{ACTIONS[args.action]}' by {args.by} (entry {entry.id}, {entry.hash[:12]})")
        if "banned" in entry.detail:
            until = entry.detail.get("until") or "until lifted"
            print(f"  internet access removed for {entry.detail['banned']} ({until}); the proxy applies it "
                  "within seconds")
        return 0

    return asyncio.run(run())
