"""`schoolgate explain`, `override`, `lists`, `requests`, `categories`, and the commands still to come."""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

from categories import commands as categories_commands
from proxy.context import Context
from proxy.db import open_db
from proxy.engine import Engine
from proxy.listentries import ListEntryError, add_entry, load_local_lists
from proxy.overrides import OverrideError, add_override, load_active_overrides
from proxy.register import load_snapshot
from proxy.reviews import ReviewError, decide_request, list_requests
from proxy.terminal import shown



def _at(text: str | None, ctx: Context) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.UTC)
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ctx.settings.school.timezone)
    return moment


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("explain", parents=[common], help="the decision for a URL, exactly as the proxy makes it")
    p.add_argument("url")
    p.add_argument("--ip", default="127.0.0.1", help="client address (default 127.0.0.1)")
    p.add_argument("--user", default=None, help="a logged-in user")
    p.add_argument("--at", default=None, help="ISO 8601 time (school time when no offset is given)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=explain)

    p = sub.add_parser("categories", parents=[common], help="the category lists: update | lookup | stats")
    csub = p.add_subparsers(dest="categories_command", metavar="ACTION", required=True)
    a = csub.add_parser("update", parents=[common], help="download, check, compile and swap in the lists")
    a.add_argument("--from", dest="from_", default=None, help="a UT1 tarball/tree path or URL instead of the config's")
    a.add_argument("--force", action="store_true", help="accept a list that shrank more than max_shrink")
    a.set_defaults(handler=lambda a, c: categories_commands.update(c.settings.categories, c.index_path, a.from_,
                                                                   sys.stdout, force=a.force))
    a = csub.add_parser("lookup", parents=[common], help="which categories a host or URL is in")
    a.add_argument("target")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=lambda a, c: categories_commands.lookup(c.index_path, a.target, a.json,
                                                                   sys.stdout))
    a = csub.add_parser("stats", parents=[common], help="what the current index holds")
    a.set_defaults(handler=lambda a, c: categories_commands.stats(c.index_path, sys.stdout))

    p = sub.add_parser("override", parents=[common], help="teachers' time-limited overrides")
    osub = p.add_subparsers(dest="override_command", metavar="ACTION", required=True)
    a = osub.add_parser("add", parents=[common], help="allow a category or domain for a group for N minutes")
    a.add_argument("--group", required=True)
    what = a.add_mutually_exclusive_group(required=True)
    what.add_argument("--category")
    what.add_argument("--domain")
    a.add_argument("--minutes", type=int, required=True)
    a.add_argument("--by", required=True)
    a.add_argument("--reason", required=True)
    a.set_defaults(handler=override_add)

    p = sub.add_parser("lists", parents=[common], help="local tuning of the category lists (audited)")
    lsub = p.add_subparsers(dest="lists_command", metavar="ACTION", required=True)
    for kind in ("allow", "deny"):
        a = lsub.add_parser(kind, parents=[common], help=f"{kind} a domain for a category")
        a.add_argument("domain")
        a.add_argument("--category", required=True, help="a category name, or * (allow only) for all")
        a.add_argument("--reason", required=True)
        a.add_argument("--by", required=True)
        a.set_defaults(handler=lists_change, kind=kind)

    p = sub.add_parser("requests", parents=[common], help="review requests sent from block pages")
    rsub = p.add_subparsers(dest="requests_command", metavar="ACTION", required=True)
    a = rsub.add_parser("list", parents=[common])
    a.add_argument("--all", action="store_true", help="include decided requests")
    a.set_defaults(handler=requests_list)
    for verb in ("approve", "reject"):
        a = rsub.add_parser(verb, parents=[common])
        a.add_argument("id", type=int)
        a.add_argument("--by", default="technical support")
        a.add_argument("--reason", default="")
        a.set_defaults(handler=requests_decide, approve=verb == "approve")



def _engine_from_db(ctx: Context, at: dt.datetime) -> Engine:
    async def load() -> Engine:
        engine = Engine(ctx.settings, ctx.index_path if ctx.index_path.exists() else None)
        if ctx.db_path.exists():
            conn = await open_db(ctx.db_path)
            try:
                engine.register = await load_snapshot(conn)
                engine.overrides = tuple(await load_active_overrides(conn, at))
                engine.local = await load_local_lists(conn)
            finally:
                await conn.close()
        return engine

    return asyncio.run(load())


def explain(args: argparse.Namespace, ctx: Context) -> int:
    at = _at(args.at, ctx)
    engine = _engine_from_db(ctx, at)
    who = engine.identify(args.ip, args.user, at)
    url = args.url if "://" in args.url else f"http://{args.url}/"
    ev = engine.evaluate(who, url, at=at)
    d = ev.decision
    if args.json:
        out = d.to_json()
        out.update({"url": url, "host": ev.host, "user": who.user, "device": who.device,
                    "device_class": who.device_class, "network": who.network, "identified_by": who.source,
                    "search_term": ev.search.term if ev.search else None,
                    "at": at.astimezone(ctx.settings.school.timezone).isoformat()})
        print(json.dumps(out, sort_keys=True))
    else:
        local = at.astimezone(ctx.settings.school.timezone)
        print(f"{d.action.value.upper()}  {url}")
        print(f"  who:        {who.user or '-'} on {who.device or who.client_ip} ({who.device_class}, "
              f"{who.network or 'no network'}), group {d.group}, identified by {who.source}")
        print(f"  when:       {local:%A %d %B %Y %H:%M} ({ctx.settings.school.timezone})")
        print(f"  categories: {', '.join(sorted(ev.categories)) or '(none)'}")
        print(f"  rule:       {d.rule}")
        print(f"  reason:     {d.reason}")
        if d.flagged:
            print(f"  alert:      yes ({d.severity})")
    return 0


def override_add(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            o = await add_override(conn, ctx.settings, group=args.group, minutes=args.minutes, by=args.by,
                                   reason=args.reason, now=dt.datetime.now(dt.UTC), category=args.category,
                                   domain=args.domain)
        except OverrideError as exc:
            print(f"schoolgate: {exc}", file=sys.stderr)
            return 2
        finally:
            await conn.close()
        until = o.ends_at.astimezone(ctx.settings.school.timezone)
        print(f"override {o.id}: {o.category or o.domain} allowed for {o.group} until {until:%H:%M %d/%m/%Y}")
        return 0

    return asyncio.run(run())


def lists_change(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            entry = await add_entry(conn, kind=args.kind, domain=args.domain, category=args.category,
                                    reason=args.reason, by=args.by, now=dt.datetime.now(dt.UTC))
        except ListEntryError as exc:
            print(f"schoolgate: {exc}", file=sys.stderr)
            return 2
        finally:
            await conn.close()
        print(f"list entry {entry}: {args.kind} {args.domain} for {args.category} (applies within seconds)")
        return 0

    return asyncio.run(run())


def requests_list(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            reqs = await list_requests(conn, None if args.all else "open")
        finally:
            await conn.close()
        if not reqs:
            print("no review requests" + ("" if args.all else " waiting"))
        for r in reqs:
            print(f"{r.id:>5}  {r.created_at}  {r.status:<8} {shown(r.ref):<14} {shown(r.host):<30} "
                  f"{shown(r.user or r.client_ip or '-')}  [{shown(r.categories)}]  {shown(r.reason_text[:60])}")
        return 0

    return asyncio.run(run())


def requests_decide(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            r = await decide_request(conn, args.id, approve=args.approve, by=args.by, reason=args.reason,
                                     now=dt.datetime.now(dt.UTC))
        except ReviewError as exc:
            print(f"schoolgate: {exc}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        print(f"review request {r.id} ({r.host}) {'approved' if args.approve else 'rejected'}")
        return 0

    return asyncio.run(run())
