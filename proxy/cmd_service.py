"""`schoolgate init`, `schoolgate run` and `schoolgate dns`."""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from categories.commands import update as update_categories
from config.schema import Settings

from proxy.context import Context
from proxy.db import open_db
from proxy.pac import proxy_hostport
from proxy.registercsv import import_devices_csv, import_users_csv

if TYPE_CHECKING:   # mitmproxy is imported only by the commands that run it (`schoolgate dns` starts faster)
    from proxy.service import Service

logger = logging.getLogger(__name__)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", parents=[common],
                       help="create the data dir, import the register CSVs, build the category index")
    p.add_argument("--offline", action="store_true", help="do not download category sources (built-in lists only)")
    p.set_defaults(handler=init)
    p = sub.add_parser("run", parents=[common], help="run the proxy (and DNS when enabled) and background tasks")
    p.add_argument("--port", type=int, default=None, help="listen on this port instead of the config's")
    p.add_argument("--mode", choices=("regular", "transparent"), default=None,
                   help="explicit proxy (regular) or behind a firewall redirect (transparent); "
                        "default: the config's [proxy] mode")
    p.set_defaults(handler=run)
    p = sub.add_parser("dns", parents=[common], help="run the DNS resolver alone")
    p.add_argument("--port", type=int, default=None, help="listen on this port instead of the config's")
    p.set_defaults(handler=dns)


def dns(args: argparse.Namespace, ctx: Context) -> int:
    from proxy.cmd_dns import dns_command

    return dns_command(args, ctx)


def init(args: argparse.Namespace, ctx: Context) -> int:
    from proxy.ca import ensure_ca

    settings = ctx.settings
    ctx.ensure_data_dir()
    cert = ensure_ca(ctx.ca_dir, settings.school.name)
    print(f"data directory: {ctx.data_dir.resolve()}")
    print(f"school CA certificate (install on school devices): {cert.resolve()}")
    status = asyncio.run(_import_register(ctx))
    return max(status, build_index(settings, ctx.index_path, offline=args.offline, out=sys.stdout))


def build_index(settings: Settings, index_path: Path, *, offline: bool = False, out: TextIO = sys.stdout) -> int:
    """The first category index: built-in lists plus the configured sources that answer."""
    cats = settings.categories
    if offline:
        cats = dataclasses.replace(cats, sources=tuple(s for s in cats.sources
                                                       if not s.location.startswith(("http://", "https://"))))
    return update_categories(cats, index_path, out=out, init=True)


async def _import_register(ctx: Context) -> int:
    reg = ctx.settings.register
    conn = await open_db(ctx.db_path)
    try:
        print(f"database: {ctx.db_path.resolve()}")
        if reg.users_csv is not None:
            if not reg.users_csv.exists():
                print(f"schoolgate: users CSV {reg.users_csv} does not exist", file=sys.stderr)
                return 1
            r = await import_users_csv(conn, reg.users_csv, by="schoolgate init", known_groups=set(ctx.settings.groups))
            print(f"users: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, {len(r.rejected)} rejected")
            for line, reason in r.rejected:
                print(f"  {reg.users_csv}:{line}: {reason}", file=sys.stderr)
        if reg.devices_csv is not None:
            if not reg.devices_csv.exists():
                print(f"schoolgate: devices CSV {reg.devices_csv} does not exist", file=sys.stderr)
                return 1
            r = await import_devices_csv(conn, reg.devices_csv, by="schoolgate init")
            print(f"devices: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, "
                  f"{len(r.rejected)} rejected")
            for line, reason in r.rejected:
                print(f"  {reg.devices_csv}:{line}: {reason}", file=sys.stderr)
    finally:
        await conn.close()
    return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    from proxy.service import run_forever

    settings = ctx.settings
    if not ctx.index_path.exists():
        print("schoolgate: no category index yet; run `schoolgate init` first "
              f"(looked for {ctx.index_path})", file=sys.stderr)
        return 1

    def announce(service: Service) -> None:
        host, port = service.address or ("?", 0)
        print(f"Schoolgate is filtering for {settings.school.name}")
        if service.mode == "transparent":
            print(f"  proxy:           {host}:{port}, transparent mode: the firewall must redirect the LAN's")
            print(f"                   TCP 80 and 443 to port {port} (README: \"Transparent mode\")")
            print(f"  CA certificate:  {ctx.ca_cert.resolve()}  (install it on school devices)")
        else:
            print(f"  proxy:           http://{host}:{port}  (explicit proxy for HTTP and HTTPS)")
            print(f"  CA certificate:  {ctx.ca_cert.resolve()}  (install it on school devices)")
            print(f"  try it:          curl -x http://{host}:{port} http://example.com/")
            print(f"                   curl -x http://{host}:{port} --cacert {ctx.ca_cert} https://example.com/")
            print(f"  browser:         set the HTTP and HTTPS proxy to {host}:{port}, or the PAC file")
            print(f"                   {pac_url(host, port)}")
        print(f"  data:            {ctx.data_dir.resolve()}")
        print("Press Ctrl-C to stop.", flush=True)

    return asyncio.run(run_forever(ctx, announce, args.port, args.mode))


def pac_url(host: str, port: int) -> str:
    """Where devices fetch the PAC file: the proxy's own port answers it (addons.portal)."""
    if host in ("", "0.0.0.0", "::"):
        return f"http://<this machine's LAN address>:{port}/proxy.pac  (or /wpad.dat, for WPAD)"
    return f"http://{proxy_hostport(host, port)}/proxy.pac  (or /wpad.dat, for WPAD)"
