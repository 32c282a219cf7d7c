"""`schoolgate config check`: validate the config and report every problem at once."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from config.errors import ConfigError
from proxy.context import Context


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    cfg = sub.add_parser("config", parents=[common], help="check the configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = cfg_sub.add_parser("check", parents=[common], help="validate; every error names the file, key and line")
    check.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace, ctx: Context) -> int:
    try:
        settings = ctx.settings
    except ConfigError as exc:
        print(f"{ctx.config_path}: {len(exc.issues)} problem(s):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 2
    missing = [str(p) for p in (settings.register.users_csv, settings.register.devices_csv)
               if p is not None and not p.exists()]
    for path in missing:
        print(f"warning: register file {path} does not exist", file=sys.stderr)
    print(f"{ctx.config_path}: OK ({settings.school.name}: {len(settings.groups)} groups, "
          f"{len(settings.networks)} networks, {len(settings.alerts.recipients)} alert recipients)")
    return 0
