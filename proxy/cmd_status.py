"""`schoolgate status [--json]`: one line per part with OK / WARN / FAIL (see `proxy.status`).

Exit code 0 when every part is OK, 1 otherwise (a monitoring system or a
cron job can act on it); `--json` prints one object for machines:
`{"ok": bool, "parts": [{"part", "level", "summary", "details"}]}`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from proxy.context import Context
from proxy.status import collect, format_text

logger = logging.getLogger(__name__)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common],
                       help="the state of every part (proxy, DNS, store, outbox, lists, reports): OK/WARN/FAIL")
    p.add_argument("--json", action="store_true", help="one JSON object for machines")
    p.set_defaults(handler=status)


def status(args: argparse.Namespace, ctx: Context) -> int:
    result = collect(ctx)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True, default=str))
    else:
        sys.stdout.write(format_text(result))
    return 0 if result.ok else 1
