"""`schoolgate users ...` and `schoolgate devices ...`: the access register.

The policy promises "a record of all staff and pupils who are granted
internet access", that parental permission is sought first, and that access
can be banned or withdrawn.  Every change here lands in the audit trail.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from pathlib import Path
from typing import Any

from proxy import register as reg
from proxy.context import Context
from proxy.db import open_db
from proxy.registercsv import import_devices_csv, import_users_csv
from proxy.terminal import shown


def _by(args: argparse.Namespace) -> str:
    return args.by or getpass.getuser()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", parents=[common], help="the register of pupils and staff")
    us = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = us.add_parser("import", parents=[common], help="import the MIS export (CSV); idempotent")
    p.add_argument("csv", type=Path)
    p.add_argument("--by", default="")
    p.set_defaults(handler=users_import)
    p = us.add_parser("list", parents=[common], help="list the register")
    p.set_defaults(handler=users_list)
    changes = (  # action, help, default reason (None: required)
        ("consent", "record parental consent", "parental consent form received"),
        ("revoke", "withdraw internet access", None),
        ("ban", "ban from the internet (temporary with --until)", None),
        ("lift", "lift a ban or revocation", None),
    )
    for action, helptext, default_reason in changes:
        p = us.add_parser(action, parents=[common], help=helptext)
        p.add_argument("name")
        if action == "ban":
            p.add_argument("--until", type=dt.date.fromisoformat, default=None,
                           help="last day of the ban, YYYY-MM-DD")
        p.add_argument("--reason", required=default_reason is None, default=default_reason)
        p.add_argument("--by", default="")
        p.set_defaults(handler=lambda a, c, what=action: _change(a, c, what))

    devices = sub.add_parser("devices", parents=[common], help="the register of devices")
    ds = devices.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    p = ds.add_parser("import", parents=[common], help="import devices (CSV); idempotent")
    p.add_argument("csv", type=Path)
    p.add_argument("--by", default="")
    p.set_defaults(handler=devices_import)
    p = ds.add_parser("list", parents=[common], help="list the devices")
    p.set_defaults(handler=devices_list)


def _print_report(kind: str, path: Path, report: Any) -> int:
    print(f"{path}: {kind}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
          f"{len(report.rejected)} rejected")
    for line, reason in report.rejected:
        print(f"  line {line}: {reason}", file=sys.stderr)
    return 0


def users_import(args: argparse.Namespace, ctx: Context) -> int:
    return asyncio.run(_import_users(ctx, args.csv, _by(args)))


async def _import_users(ctx: Context, path: Path, by: str) -> int:
    if not path.exists():
        print(f"schoolgate: {path}: no such file", file=sys.stderr)
        return 1
    groups = set(ctx.settings.groups)
    ctx.ensure_data_dir()
    conn = await open_db(ctx.db_path)
    try:
        report = await import_users_csv(conn, path, by=by, known_groups=groups)
    finally:
        await conn.close()
    return _print_report("users", path, report)


def devices_import(args: argparse.Namespace, ctx: Context) -> int:
    return asyncio.run(_import_devices(ctx, args.csv, _by(args)))


async def _import_devices(ctx: Context, path: Path, by: str) -> int:
    if not path.exists():
        print(f"schoolgate: {path}: no such file", file=sys.stderr)
        return 1
    ctx.ensure_data_dir()
    conn = await open_db(ctx.db_path)
    try:
        report = await import_devices_csv(conn, path, by=by)
    finally:
        await conn.close()
    return _print_report("devices", path, report)


def users_list(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            users = await reg.list_users(conn)
        finally:
            await conn.close()
        today = dt.datetime.now(ctx.settings.school.timezone).date()
        print(f"{'username':<18} {'role':<9} {'group':<8} {'consent':<8} {'state':<10} full name")
        for u in users:
            state = reg.effective_state(u, today)
            print(f"{shown(u.username):<18} {u.role:<9} {u.group_name:<8} {'yes' if u.consent else 'no':<8} "
                  f"{state:<10} {shown(u.full_name)}")
        return 0

    return asyncio.run(run())


def devices_list(args: argparse.Namespace, ctx: Context) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            devices = await reg.list_devices(conn)
        finally:
            await conn.close()
        print(f"{'name':<18} {'network':<18} {'class':<19} {'mac':<18} assigned to")
        for d in devices:
            print(f"{shown(d.name):<18} {d.network:<18} {d.device_class:<19} {d.mac or '-':<18} "
                  f"{shown(d.assigned_user or '-')}")
        return 0

    return asyncio.run(run())


def _change(args: argparse.Namespace, ctx: Context, what: str) -> int:
    async def run() -> int:
        conn = await open_db(ctx.db_path)
        try:
            if what == "consent":
                await reg.set_consent(conn, args.name, True, by=_by(args), reason=args.reason)
            elif what == "revoke":
                await reg.revoke(conn, args.name, by=_by(args), reason=args.reason)
            elif what == "ban":
                await reg.ban(conn, args.name, args.until, by=_by(args), reason=args.reason)
            else:
                await reg.lift(conn, args.name, by=_by(args), reason=args.reason)
        except reg.RegisterError as exc:
            print(f"schoolgate: {exc}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        until = f" until {args.until}" if getattr(args, "until", None) else ""
        print(f"{args.name}: {what}{until} recorded")
        return 0

    return asyncio.run(run())
